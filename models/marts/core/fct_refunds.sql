-- One row per refund, in the reporting currency at its order's exchange rate. is_counted: refunded on or before
-- the as-of date (only those reduce net revenue).
with refunds as (
    select * from {{ ref('stg_loyalty__refunds') }}
),

orders as (
    select * from {{ ref('int_orders__enriched') }}
)

select
    -- ids
    refunds.refund_id,
    refunds.order_id,
    orders.customer_id,
    -- numerics
    refunds.amount as amount_in_order_currency,
    orders.currency_code as order_currency_code,
    {{ to_reporting_currency('refunds.amount', 'orders.exchange_rate') }} as amount,
    -- flags
    {{ to_reporting_date('refunds.refunded_at') }} <= {{ as_of_date() }} as is_counted,
    -- timestamps
    refunds.refunded_at,
    {{ to_reporting_date('refunds.refunded_at') }} as refund_date
from refunds
inner join orders on refunds.order_id = orders.order_id
