-- One row per customer with a valid order line of at least one unit: how many product types (categories) they
-- bought as of the as-of date, and the dates they first reached one and two types. The upsell metrics count a
-- customer as multi-type from the day their second type was first bought, so a monthly series can use each
-- customer's purchases up to that month's end. Lines with a quantity of 0 buy nothing and do not count.
-- Incremental by customer: a night rebuilds the customers whose lines fct_order_items rebuilt tonight.
{{ config(
    materialized=incremental_materialization(),
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{% if incremental_run() %}delete from {{ this }} where customer_id in {{ customers_written_tonight(ref('fct_order_items')) }}{% endif %}"
) }}
with lines as (
    select * from {{ ref('fct_order_items') }}
    where is_valid_order and quantity > 0
    {% if incremental_run() %}and customer_id in {{ customers_written_tonight(ref('fct_order_items')) }}{% endif %}
),

first_purchase_of_type as (
    select
        customer_id,
        category,
        min(order_date) as first_bought_on
    from lines
    group by customer_id, category
),

ranked as (
    select
        *,
        row_number() over (partition by customer_id order by first_bought_on, category) as type_number
    from first_purchase_of_type
)

select
    customer_id,
    count(*) as product_type_count,
    min(first_bought_on) as first_product_type_date,
    min(first_bought_on) filter (where type_number = 2) as second_product_type_date
from ranked
group by customer_id
