-- One row per customer (anyone with a valid order as of the as-of date): historical CLV and the order history
-- behind it. Lifetime figures subtract each refund counted as of the as-of date from its own order
-- (fct_orders.net_revenue), so historical_clv = net_revenue = gross_revenue - refunded_amount. The predictive
-- columns come from clv_customer_predictions (BG/NBD and Gamma-Gamma; null when a model did not converge).
with orders as (
    select * from {{ ref('fct_orders') }}
    where is_valid_order
),

customers as (
    select * from {{ ref('dim_customers') }}
),

product_types as (
    select * from {{ ref('int_customers__product_types') }}
),

predictions as (
    select * from {{ ref('clv_customer_predictions') }}
),

history as (
    select
        customer_id,
        {{ arg_min('order_id', 'customer_order_number') }} as first_order_id,
        {{ arg_max('order_id', 'customer_order_number') }} as last_order_id,
        min(order_date) as first_order_date,
        min(order_date) filter (where customer_order_number = 2) as second_order_date,
        max(order_date) as last_order_date,
        count(*) as valid_order_count,
        count(distinct order_date) as order_days,
        sum(gross_revenue) as gross_revenue,
        sum(refunded_amount) as refunded_amount,
        sum(net_revenue) as net_revenue
    from orders
    group by customer_id
)

select
    -- ids
    history.customer_id,
    history.first_order_id,
    history.last_order_id,
    -- attributes
    cast(date_trunc('month', history.first_order_date) as date) as cohort_month,
    customers.acquisition_channel,
    customers.country_code,
    customers.is_loyalty_member,
    history.valid_order_count >= 2 as is_repeat_customer,
    coalesce(product_types.product_type_count, 0) as product_type_count,
    coalesce(product_types.product_type_count, 0) >= 2 as is_multi_type_customer,
    -- counts
    history.valid_order_count,
    history.order_days,
    -- money
    {{ as_money('history.gross_revenue') }} as gross_revenue,
    {{ as_money('history.refunded_amount') }} as refunded_amount,
    {{ as_money('history.net_revenue') }} as net_revenue,
    {{ as_money('history.net_revenue') }} as historical_clv,
    {{ average_order_value('history.gross_revenue', 'history.valid_order_count') }} as average_order_value,
    -- timing
    {{ mean_days_between_orders('history.first_order_date', 'history.last_order_date', 'history.valid_order_count') }}
        as mean_days_between_orders,
    {{ day_diff('history.last_order_date', as_of_date()) }} as days_since_last_order,
    -- dates
    history.first_order_date,
    history.second_order_date,
    history.last_order_date,
    -- predictive (clv_customer_predictions)
    predictions.time_unit as clv_time_unit,
    predictions.frequency as clv_frequency,
    predictions.recency as clv_recency,
    predictions.tenure as clv_tenure,
    predictions.probability_alive,
    predictions.horizon_months as clv_horizon_months,
    predictions.expected_transactions,
    predictions.expected_mean_transaction_value,
    predictions.predicted_clv
from history
inner join customers on history.customer_id = customers.customer_id
left join product_types on history.customer_id = product_types.customer_id
left join predictions on history.customer_id = predictions.customer_id
