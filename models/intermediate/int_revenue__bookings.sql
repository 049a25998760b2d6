-- One row per revenue booking of a valid order, the single source of every monthly revenue series: the order's
-- gross revenue on its order date, and each counted refund (refunded on or before the as-of date) on its own
-- refund date, as a negative net amount. A month that has closed therefore never changes when a refund arrives
-- later: the refund lands in the month it happened. (Lifetime figures subtract refunds from their order instead:
-- fct_orders.net_revenue.) A refund is never dated before its order: staging holds such a refund back
-- (refund_before_order).
-- Incremental by customer: a night rebuilds the bookings of the customers whose orders fct_orders rebuilt tonight
-- (a changed refund total or a refund crossing the as-of date makes fct_orders rebuild its customer).
{{ config(
    materialized=incremental_materialization(),
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{% if incremental_run() %}delete from {{ this }} where customer_id in {{ customers_written_tonight(ref('fct_orders')) }}{% endif %}"
) }}
with orders as (
    select * from {{ ref('fct_orders') }}
    where is_valid_order
    {% if incremental_run() %}and customer_id in {{ customers_written_tonight(ref('fct_orders')) }}{% endif %}
),

refunds as (
    select * from {{ ref('fct_refunds') }}
    where is_counted
    {% if incremental_run() %}and customer_id in {{ customers_written_tonight(ref('fct_orders')) }}{% endif %}
)

select
    'order:' || orders.order_id as booking_id,
    'order' as booking_type,
    orders.order_id,
    orders.customer_id,
    orders.order_date as booking_date,
    orders.order_month as booking_month,
    orders.gross_revenue,
    {{ as_money(0) }} as refunded_amount,
    orders.gross_revenue as net_revenue
from orders

union all

select
    'refund:' || refunds.refund_id as booking_id,
    'refund' as booking_type,
    refunds.order_id,
    orders.customer_id,
    refunds.refund_date as booking_date,
    refunds.refund_month as booking_month,
    {{ as_money(0) }} as gross_revenue,
    refunds.amount as refunded_amount,
    -refunds.amount as net_revenue
from refunds
inner join orders on refunds.order_id = orders.order_id
