"""Holdout check of the BG/NBD model: predicted vs actual repeat transactions after the as-of date, overall and
by calibration-period frequency (0, 1, ..., 6, 7+), as Fader, Hardie and Lee (2005) report fit. Empty when no
completed order lies after the as-of date. The maths is in loyalty.predictive (tested with pytest)."""

from loyalty.predictive.clv import HOLDOUT_COLUMNS, evaluation_table, histories_query, settings_from_row


def model(dbt, session):
    dbt.config(materialized="table")
    settings = settings_from_row(dbt.ref("int_clv__settings").to_arrow_table().to_pylist())
    customers = histories_query(dbt.ref("int_clv__holdout_transactions"), HOLDOUT_COLUMNS).to_arrow_table()
    parameters = dbt.ref("clv_model_parameters").to_arrow_table()
    return evaluation_table(customers, parameters, settings)
