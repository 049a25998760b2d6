-- The calibration-frequency rows of clv_model_evaluation partition the overall row: customers and actual and
-- predicted totals add up. Returns the overall row when they do not.
with buckets as (
    select
        sum(customers) as customers,
        sum(actual_transactions) as actual_transactions,
        sum(predicted_transactions) as predicted_transactions
    from {{ ref('clv_model_evaluation') }}
    where breakdown = 'calibration_frequency'
)

select overall.*
from {{ ref('clv_model_evaluation') }} as overall
cross join buckets
where overall.breakdown = 'overall'
    and (
        overall.customers != buckets.customers
        or overall.actual_transactions != buckets.actual_transactions
        or abs(overall.predicted_transactions - buckets.predicted_transactions)
        > 1e-6 * (1 + overall.predicted_transactions)
    )
