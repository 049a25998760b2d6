{{ config(materialized='view') }}
-- Orders with their reporting-timezone dates, the as-of rule and the exchange rate into the reporting currency.
-- A valid order is completed and placed on or before the as-of date (docs/metrics.md, building blocks). The rate is
-- the one in force on the order's date (1 for an order in the reporting currency, on any date); the order's lines
-- and refunds are converted at the same rate, so a full refund nets an order to exactly zero. Staging holds back
-- an order in another currency dated when either rate is missing (no_exchange_rate_on_date), so every order here
-- has a rate. A view: the facts read it for tonight's customers only.
with orders as (
    select * from {{ ref('stg_loyalty__orders') }}
),

dated as (
    select
        *,
        {{ to_reporting_date('ordered_at') }} as order_date
    from orders
)

select
    dated.order_id,
    dated.customer_id,
    dated.ordered_at,
    dated.order_date,
    cast(date_trunc('month', dated.order_date) as date) as order_month,
    dated.status,
    dated.order_date > {{ as_of_date() }} as is_after_as_of,
    dated.status = 'completed' and dated.order_date <= {{ as_of_date() }} as is_valid_order,
    dated.currency_code,
    {{ exchange_rate_into_reporting('dated.currency_code', 'order_rate', 'reporting_rate') }} as exchange_rate
from dated
{{ join_exchange_rate('order_rate', 'dated.currency_code', 'dated.order_date') }}
{{ join_exchange_rate('reporting_rate', "'" ~ var('reporting_currency') ~ "'", 'dated.order_date') }}
