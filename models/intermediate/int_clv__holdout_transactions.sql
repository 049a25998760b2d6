-- The holdout the predictive models are checked against: for each customer of the calibration period
-- (int_clv__customer_history), the repeat transaction-days after the as-of date, up to the last order date in
-- the data. Valid orders stop at the as-of date, so the holdout counts completed orders flagged is_after_as_of.
-- Empty when no completed order lies after the as-of date: nothing to compare with.
with calibration as (
    select * from {{ ref('int_clv__customer_history') }}
),

later_orders as (
    select
        customer_id,
        order_date
    from {{ ref('fct_orders') }}
    where status = 'completed' and is_after_as_of
),

holdout_transactions as (
    select
        customer_id,
        count(distinct order_date) as holdout_transactions
    from later_orders
    group by customer_id
),

holdout_window as (
    select
        cast({{ as_of_date() }} + interval 1 day as date) as holdout_start_date,
        max(order_date) as holdout_end_date
    from {{ ref('fct_orders') }}
)

select
    -- ids
    calibration.customer_id,
    -- calibration history, as the models use it
    calibration.frequency,
    calibration.recency,
    calibration.tenure,
    calibration.mean_repeat_value,
    -- holdout
    coalesce(holdout_transactions.holdout_transactions, 0) as holdout_transactions,
    holdout_window.holdout_start_date,
    holdout_window.holdout_end_date,
    (
        cast({{ day_diff(as_of_date(), 'holdout_window.holdout_end_date') }} as double)
        / {{ clv_time_unit_days() }}
    ) as holdout_length
from calibration
cross join holdout_window
left join holdout_transactions on calibration.customer_id = holdout_transactions.customer_id
where exists (select 1 from later_orders)
