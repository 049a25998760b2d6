{{ config(materialized=incremental_materialization(), incremental_strategy='delete+insert', unique_key='customer_id',
    on_schema_change='fail') }}
-- depends_on: {{ ref('int_orders__changed_customers') }}
-- One row per order (completed or cancelled), amounts in the reporting currency.
-- gross_revenue = sum over lines of quantity * unit_price - discount_amount; refunded_amount = refunds refunded on
-- or before the as-of date; net_revenue = gross_revenue - refunded_amount. Amounts are converted once per order
-- (gross and refunded separately), so a fully refunded order has a net revenue of exactly 0.
-- Incremental by customer: a night rebuilds every order of the customers whose orders changed tonight (orders or
-- lines staged tonight, refund totals that differ, orders crossing the as-of date since the last night:
-- int_orders__changed_customers), because customer_order_number numbers a customer's valid orders together.
-- Everything else stays as it was.
with orders as (
    select * from {{ ref('int_orders__enriched') }}
    {% if incremental_run() %}
    where customer_id in (select customer_id from {{ ref('int_orders__changed_customers') }})
    {% endif %}
),

items as (
    select
        order_id,
        count(*) as line_count,
        sum(quantity) as item_quantity,
        sum(quantity * unit_price) as subtotal,
        sum(discount_amount) as discount_amount,
        sum({{ line_gross_revenue('quantity', 'unit_price', 'discount_amount') }}) as gross_revenue
    from {{ ref('stg_loyalty__order_items') }}
    {% if incremental_run() %}where order_id in (select order_id from orders){% endif %}
    group by order_id
),

refunds as (
    select
        order_id,
        sum(amount) as refunded_amount
    from {{ ref('stg_loyalty__refunds') }}
    where {{ to_reporting_date('refunded_at') }} <= {{ as_of_date() }}
    {% if incremental_run() %}and order_id in (select order_id from orders){% endif %}
    group by order_id
),

amounts as (
    select
        orders.*,
        coalesce(items.line_count, 0) as line_count,
        coalesce(items.item_quantity, 0) as item_quantity,
        coalesce(items.subtotal, 0) as subtotal_in_order_currency,
        coalesce(items.discount_amount, 0) as discount_in_order_currency,
        coalesce(items.gross_revenue, 0) as gross_revenue_in_order_currency,
        coalesce(refunds.refunded_amount, 0) as refunded_in_order_currency
    from orders
    left join items on orders.order_id = items.order_id
    left join refunds on orders.order_id = refunds.order_id
),

numbered as (
    select
        *,
        case
            when is_valid_order
                then row_number() over (partition by customer_id, is_valid_order order by ordered_at, order_id)
        end as customer_order_number
    from amounts
)

select
    -- ids
    order_id,
    customer_id,
    -- attributes
    status,
    is_valid_order,
    is_after_as_of,
    customer_order_number,
    coalesce(customer_order_number = 1, false) as is_first_order,
    line_count,
    item_quantity,
    -- numerics
    currency_code as order_currency_code,
    exchange_rate,
    gross_revenue_in_order_currency,
    {{ to_reporting_currency('subtotal_in_order_currency', 'exchange_rate') }} as subtotal,
    {{ to_reporting_currency('discount_in_order_currency', 'exchange_rate') }} as discount_amount,
    {{ to_reporting_currency('gross_revenue_in_order_currency', 'exchange_rate') }} as gross_revenue,
    {{ to_reporting_currency('refunded_in_order_currency', 'exchange_rate') }} as refunded_amount,
    (
        {{ to_reporting_currency('gross_revenue_in_order_currency', 'exchange_rate') }}
        - {{ to_reporting_currency('refunded_in_order_currency', 'exchange_rate') }}
    ) as net_revenue,
    -- timestamps
    ordered_at,
    order_date,
    order_month,
    -- lineage
    {{ built_as_of() }} as _built_as_of
from numbered
