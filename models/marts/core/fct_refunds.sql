-- One row per refund, in the reporting currency at its order's exchange rate. is_counted: refunded on or before
-- the as-of date (only those reduce net revenue).
-- Conversion telescopes: a refund's amount is the converted running total of its order's refunds (in refund
-- order) minus the converted running total before it. Each running total is rounded to cents once, so the counted
-- refunds of an order add up to exactly fct_orders.refunded_amount (which converts their sum once) and monthly
-- series that book refunds on their own date reconcile with lifetime figures to the cent.
with refunds as (
    select * from {{ ref('stg_loyalty__refunds') }}
),

orders as (
    select * from {{ ref('int_orders__enriched') }}
),

running as (
    select
        refunds.*,
        orders.customer_id,
        orders.currency_code,
        orders.exchange_rate,
        sum(refunds.amount) over (
            partition by refunds.order_id order by refunds.refunded_at, refunds.refund_id
            rows between unbounded preceding and current row
        ) as running_amount
    from refunds
    inner join orders on refunds.order_id = orders.order_id
)

select
    -- ids
    refund_id,
    order_id,
    customer_id,
    -- numerics
    amount as amount_in_order_currency,
    currency_code as order_currency_code,
    (
        {{ to_reporting_currency('running_amount', 'exchange_rate') }}
        - {{ to_reporting_currency('running_amount - amount', 'exchange_rate') }}
    ) as amount,
    -- flags
    {{ to_reporting_date('refunded_at') }} <= {{ as_of_date() }} as is_counted,
    -- timestamps
    refunded_at,
    {{ to_reporting_date('refunded_at') }} as refund_date,
    cast(date_trunc('month', {{ to_reporting_date('refunded_at') }}) as date) as refund_month
from running
