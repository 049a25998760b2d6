-- depends_on: {{ ref('base_loyalty__orders') }}
-- depends_on: {{ ref('base_loyalty__order_items') }}
-- depends_on: {{ ref('stg_loyalty__refunds') }}
-- depends_on: {{ source('last_build', 'fct_orders') }}
-- The customers whose orders change tonight (fct_orders rebuilds every order of exactly them, because
-- customer_order_number numbers a customer's valid orders together): orders or lines staged tonight, refund totals
-- that differ, orders crossing the as-of date since the last night. `last_build` is fct_orders as the last build
-- stored it (source last_build), read before tonight's rows replace it. Empty when fct_orders builds in full.
{% if incremental_run_of('fct_orders') %}
with counted_refunds as (
    select
        order_id,
        sum(amount) as amount
    from {{ ref('stg_loyalty__refunds') }}
    where {{ to_reporting_date('refunded_at') }} <= {{ as_of_date() }}
    group by order_id
)

-- orders staged tonight: new batches, or held back for their customer until tonight
select customer_id
from {{ ref('base_loyalty__orders') }}
where _built_as_of = {{ built_as_of() }} and _copy_number = 1 and _quarantine_reason is null

union

-- order lines staged tonight for an order of an earlier night (a new order's lines come with it, above)
select last_build.customer_id
from {{ ref('base_loyalty__order_items') }} as items
inner join {{ source('last_build', 'fct_orders') }} as last_build on items.order_id = last_build.order_id
where items._built_as_of = {{ built_as_of() }} and items._copy_number = 1 and items._quarantine_reason is null

union

-- orders of earlier nights whose counted refunds differ from last night's: a new refund, a refund now beyond
-- its order (or no longer), a refund crossing the as-of date
select last_build.customer_id
from {{ source('last_build', 'fct_orders') }} as last_build
left join counted_refunds on last_build.order_id = counted_refunds.order_id
where (last_build.refunded_amount <> 0 or counted_refunds.order_id is not null)
    and (
        {{ to_reporting_currency('coalesce(counted_refunds.amount, 0)', 'last_build.exchange_rate') }}
        <> last_build.refunded_amount
    )

union

-- orders of earlier nights dated between last night's as-of date and tonight's (valid or not, numbered or not)
select customer_id
from {{ source('last_build', 'fct_orders') }}
where order_date > least({{ previous_as_of_date() }}, {{ as_of_date() }})
    and order_date <= greatest({{ previous_as_of_date() }}, {{ as_of_date() }})
{% else %}
select cast(null as {{ dbt.type_string() }}) as customer_id
where false
{% endif %}
