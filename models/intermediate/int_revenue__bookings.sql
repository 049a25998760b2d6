-- One row per revenue booking of a valid order, the single source of every monthly revenue series: the order's
-- gross revenue on its order date, and each counted refund (refunded on or before the as-of date) on its own
-- refund date, as a negative net amount. A month that has closed therefore never changes when a refund arrives
-- later: the refund lands in the month it happened. (Lifetime figures subtract refunds from their order instead:
-- fct_orders.net_revenue.) A refund dated before its order (bad source data) is booked on the order date.
with orders as (
    select * from {{ ref('fct_orders') }}
    where is_valid_order
),

refunds as (
    select * from {{ ref('fct_refunds') }}
    where is_counted
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
    greatest(refunds.refund_date, orders.order_date) as booking_date,
    cast(date_trunc('month', greatest(refunds.refund_date, orders.order_date)) as date) as booking_month,
    {{ as_money(0) }} as gross_revenue,
    refunds.amount as refunded_amount,
    - refunds.amount as net_revenue
from refunds
inner join orders on refunds.order_id = orders.order_id
