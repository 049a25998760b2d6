-- Invariant: the counted refunds of each order, converted one by one (fct_refunds.amount), add up to the order's
-- refunded_amount in fct_orders, to the cent. Returns the orders where they do not.
with refunds as (
    select
        order_id,
        sum(amount) as refunded_amount
    from {{ ref('fct_refunds') }}
    where is_counted
    group by order_id
)

select
    orders.order_id,
    orders.refunded_amount,
    refunds.refunded_amount as sum_of_refunds
from {{ ref('fct_orders') }} as orders
left join refunds on orders.order_id = refunds.order_id
where orders.refunded_amount <> coalesce(refunds.refunded_amount, 0)
