"""Per-customer predictions from the fitted models (clv_model_parameters, not refitted here): probability alive,
expected transactions and mean transaction value over the horizon, and predicted CLV. The maths is in
loyalty.predictive (tested with pytest)."""

from loyalty.predictive.clv import histories_query, score, settings_from_row


def model(dbt, session):
    dbt.config(materialized="table")
    settings = settings_from_row(dbt.ref("int_clv__settings").to_arrow_table().to_pylist())
    customers = histories_query(dbt.ref("int_clv__customer_history")).to_arrow_table()
    parameters = dbt.ref("clv_model_parameters").to_arrow_table()
    return score(customers, parameters, settings)
