{{ config(
    materialized=incremental_materialization(),
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{% if incremental_run() %}delete from {{ this }} where customer_id in {{ customers_written_tonight(ref('fct_orders')) }}{% endif %}"
) }}
-- depends_on: {{ ref('fct_orders') }}
-- One row per order line, amounts in the reporting currency. Each line is converted on its own (rounded to
-- cents), so lines can differ from their order's converted total by a cent each in a foreign currency.
-- Incremental by customer: a night rebuilds the lines of the customers whose orders fct_orders rebuilt tonight.
with orders as (
    select * from {{ ref('int_orders__enriched') }}
    {% if incremental_run() %}
    where customer_id in {{ customers_written_tonight(ref('fct_orders')) }}
    {% endif %}
),

items as (
    select * from {{ ref('stg_loyalty__order_items') }}
    {% if incremental_run() %}where order_id in (select order_id from orders){% endif %}
),

products as (
    select * from {{ ref('stg_loyalty__products') }}
)

select
    -- ids
    items.order_id || '-' || cast(items.line_number as {{ dbt.type_string() }}) as order_item_id,
    items.order_id,
    items.line_number,
    orders.customer_id,
    items.product_id,
    -- attributes
    products.category,
    orders.status as order_status,
    orders.is_valid_order,
    -- numerics
    items.quantity,
    {{ to_reporting_currency('items.unit_price', 'orders.exchange_rate') }} as unit_price,
    {{ to_reporting_currency('items.quantity * items.unit_price', 'orders.exchange_rate') }} as subtotal,
    {{ to_reporting_currency('items.discount_amount', 'orders.exchange_rate') }} as discount_amount,
    {{ to_reporting_currency(line_gross_revenue('items.quantity', 'items.unit_price', 'items.discount_amount'),
       'orders.exchange_rate') }} as gross_revenue,
    -- timestamps
    orders.ordered_at,
    orders.order_date,
    -- lineage
    {{ built_as_of() }} as _built_as_of
from items
inner join orders on items.order_id = orders.order_id
inner join products on items.product_id = products.product_id
