-- The calibration-frequency rows of clv_model_evaluation partition the overall row: customers and actual and
-- predicted totals add up. Returns the overall totals and the buckets' sums when they do not.
with buckets as (
    select
        sum(customers) as customers,
        sum(actual_transactions) as actual_transactions,
        sum(predicted_transactions) as predicted_transactions
    from {{ ref('clv_model_evaluation') }}
    where breakdown = 'calibration_frequency'
)

select
    overall.customers,
    overall.actual_transactions,
    overall.predicted_transactions,
    buckets.customers as bucket_customers,
    buckets.actual_transactions as bucket_actual_transactions,
    buckets.predicted_transactions as bucket_predicted_transactions
from {{ ref('clv_model_evaluation') }} as overall
cross join buckets
where overall.breakdown = 'overall'
    and (
        overall.customers != buckets.customers
        or overall.actual_transactions != buckets.actual_transactions
        or (
            abs(overall.predicted_transactions - buckets.predicted_transactions)
            > 1e-6 * (1 + overall.predicted_transactions)
        )
    )
