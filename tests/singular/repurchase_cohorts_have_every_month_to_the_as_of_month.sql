-- Invariant: repurchase_cohorts has one row per cohort (every cohort month of customer_lifetime_value) and month
-- from the cohort month to the as-of month, no more, no less. Returns the cohorts whose row count is wrong.
with expected as (
    select
        cohort_month,
        {{ month_diff('cohort_month', "cast(date_trunc('month', " ~ as_of_date() ~ ") as date)") }}
        + 1 as expected_rows
    from {{ ref('customer_lifetime_value') }}
    group by cohort_month
),

actual as (
    select
        cohort_month,
        count(*) as actual_rows,
        max(months_since_first_order) as last_period
    from {{ ref('repurchase_cohorts') }}
    group by cohort_month
)

select
    coalesce(expected.cohort_month, actual.cohort_month) as cohort_month,
    expected.expected_rows,
    actual.actual_rows,
    actual.last_period
from expected
full outer join actual on expected.cohort_month = actual.cohort_month
where expected.expected_rows is distinct from actual.actual_rows
    or actual.last_period is distinct from expected.expected_rows - 1
