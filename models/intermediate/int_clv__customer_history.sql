-- One row per customer (a valid order on or before the as-of date): the history the predictive models fit on
-- (docs/metrics.md, predictive metrics). Purchases on the same calendar day (reporting timezone) are ONE
-- transaction; the first transaction-day is not counted. x = repeat transaction-days, t_x = days from the first
-- to the last transaction-day, T = days from the first transaction-day to the as-of date, in the time unit of
-- var clv_time_unit (week = days / 7). The spend model uses the mean net revenue per repeat transaction-day.
with valid_orders as (
    select
        customer_id,
        order_date,
        net_revenue
    from {{ ref('fct_orders') }}
    where is_valid_order
),

transaction_days as (
    select
        customer_id,
        order_date,
        sum(net_revenue) as net_revenue
    from valid_orders
    group by customer_id, order_date
),

dated as (
    select
        *,
        min(order_date) over (partition by customer_id) as first_transaction_date
    from transaction_days
),

histories as (
    select
        customer_id,
        min(order_date) as first_transaction_date,
        max(order_date) as last_transaction_date,
        count(*) as transaction_days,
        sum(net_revenue) filter (where order_date > first_transaction_date) as repeat_net_revenue
    from dated
    group by customer_id
)

select
    -- ids
    customer_id,
    -- dates
    first_transaction_date,
    last_transaction_date,
    {{ as_of_date() }} as as_of_date,
    -- history in days
    transaction_days,
    transaction_days - 1 as frequency,
    {{ day_diff('first_transaction_date', 'last_transaction_date') }} as recency_days,
    {{ day_diff('first_transaction_date', as_of_date()) }} as tenure_days,
    -- history in the model's time unit
    '{{ clv_time_unit() }}' as time_unit,
    cast(recency_days as double) / {{ clv_time_unit_days() }} as recency,
    cast(tenure_days as double) / {{ clv_time_unit_days() }} as tenure,
    -- spend
    coalesce(repeat_net_revenue, 0) as repeat_net_revenue,
    case when frequency > 0 then cast(repeat_net_revenue as double) / frequency end as mean_repeat_value
from histories
