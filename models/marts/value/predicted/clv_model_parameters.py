"""BG/NBD and Gamma-Gamma fitted by maximum likelihood on every customer's history (int_clv__customer_history):
one row per parameter, with whether and how the fit converged. The maths is in loyalty.predictive (tested with
pytest: dbt unit tests do not run Python models)."""

from loyalty.predictive.clv import fit_parameters, histories_query, settings_from_row


def model(dbt, session):
    dbt.config(materialized="table")
    settings = settings_from_row(dbt.ref("int_clv__settings").to_arrow_table().to_pylist())
    customers = histories_query(dbt.ref("int_clv__customer_history")).to_arrow_table()
    parameters, _ = fit_parameters(customers, settings)  # the warnings are the rows' messages
    return parameters
