-- Every raw product row, typed, with the reason it cannot be trusted (null when it can).
with framed as (
    {{ frame_raw_rows(source('raw', 'products'), ['product_id']) }}
),

verdict as (
    select
        -- ids
        {{ clean_text('product_id') }} as product_id,
        -- attributes
        {{ clean_text('product_name') }} as product_name,
        lower({{ clean_text('category') }}) as category,
        -- numerics
        {{ parse_money('list_price') }} as list_price,
        case
            {{ key_reasons('framed') }}
            when {{ clean_text('category') }} is null then 'missing_value'
            when {{ is_unparseable_number('list_price') }} then 'unparseable_number'
            when {{ is_out_of_range('list_price', 'money') }} then 'amount_out_of_range'
            when {{ parse_money('list_price') }} < 0 then 'negative_amount'
        end as _quarantine_reason,
        {{ raw_row_columns() }}
    from framed
)

{{ keep_raw_row_of_quarantined('verdict') }}
