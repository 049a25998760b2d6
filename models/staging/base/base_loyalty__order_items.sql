{{ config(materialized=incremental_materialization(), incremental_strategy='delete+insert',
    unique_key=base_unique_key(),
    on_schema_change='fail') }}
-- Every raw order line, typed, with the reason it cannot be trusted (null when it can).
-- Amounts are in the order's currency. An empty discount_amount means no discount. Quantities, prices, discounts and
-- the line's subtotal (quantity * unit_price) must lie within raw_value_bound (macros/raw_rows/value_parsing.sql).
-- Incremental: a night reads only its new batches; lines held back earlier for an unknown order or product are
-- checked again (it may have arrived since). See held_for_reference.
with framed as (
    {{ frame_raw_rows(source('raw', 'order_items'), ['order_id', 'line_number']) }}
),

typed as (
    select
        -- ids
        {{ clean_text('order_id') }} as order_id,
        {{ parse_integer('line_number') }} as line_number,
        {{ clean_text('product_id') }} as product_id,
        -- numerics
        {{ parse_integer('quantity') }} as quantity,
        {{ parse_money('unit_price') }} as unit_price,
        coalesce({{ parse_money('discount_amount') }}, 0) as discount_amount,
        -- checks
        (
            {{ clean_text('product_id') }} is null
            or {{ clean_text('quantity') }} is null
            or {{ clean_text('unit_price') }} is null
        ) as _value_missing,
        (
            {{ is_unparseable('line_number', parse_integer('line_number')) }}
            or {{ is_unparseable_number('quantity', whole=true) }}
            or {{ is_unparseable_number('unit_price') }}
            or {{ is_unparseable_number('discount_amount') }}
        ) as _number_unparseable,
        (
            {{ is_out_of_range('quantity', 'quantity') }}
            or {{ is_out_of_range('unit_price', 'money') }}
            or {{ is_out_of_range('discount_amount', 'money') }}
        ) as _amount_out_of_range,
        {{ framing_columns() }}
    from framed
),

orders as (
    select order_id from {{ ref('stg_loyalty__orders') }}
),

products as (
    select product_id from {{ ref('stg_loyalty__products') }}
),

checked as (
    select
        typed.order_id,
        typed.line_number,
        typed.product_id,
        typed.quantity,
        typed.unit_price,
        typed.discount_amount,
        case
            {{ key_reasons('typed') }}
            when typed._value_missing then 'missing_value'
            when typed._number_unparseable then 'unparseable_number'
            when typed._amount_out_of_range
                or abs(typed.quantity * typed.unit_price) > {{ raw_value_bound('money') }} then 'amount_out_of_range'
            when typed.quantity < 0 then 'negative_quantity'
            when typed.unit_price < 0 or typed.discount_amount < 0 then 'negative_amount'
            when typed.discount_amount > typed.quantity * typed.unit_price then 'discount_exceeds_line'
        end as _row_reason,
        {{ raw_row_columns('typed') }}
    from typed
    {{ held_for_reference(['unknown_order', 'unknown_product']) }}
),

verdict as (
    select
        {{ star_except(["_row_reason"], "checked") }},
        coalesce(
            checked._row_reason,
            case
                when not {{ is_staged_key('checked.order_id', 'orders', 'order_id') }} then 'unknown_order'
                when not {{ is_staged_key('checked.product_id', 'products', 'product_id') }} then 'unknown_product'
            end
        ) as _quarantine_reason
    from checked
)

{{ keep_raw_row_of_quarantined('verdict', held=true) }}
