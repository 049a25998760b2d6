{{ config(materialized=incremental_materialization(), incremental_strategy='delete+insert',
    unique_key=base_unique_key(),
    on_schema_change='fail') }}
-- Every raw order row, typed, with the reason it cannot be trusted (null when it can).
-- Orders after the as-of date are not bad: they are staged and simply do not count in metrics. An order in another
-- currency than the reporting one needs both exchange rates on its date (reporting timezone, as the facts convert
-- it); an order in the reporting currency needs none.
-- Incremental: a night reads only its new batches; orders held back earlier for an unknown customer are checked
-- again (the customer may have arrived since). See held_for_reference.
with framed as (
    {{ frame_raw_rows(source('raw', 'orders'), ['order_id']) }}
),

typed as (
    select
        -- ids
        {{ clean_text('order_id') }} as order_id,
        {{ clean_text('customer_id') }} as customer_id,
        -- attributes
        lower({{ clean_text('status') }}) as status,
        upper({{ clean_text('currency') }}) as currency_code,
        -- timestamps
        {{ parse_utc_timestamp('ordered_at') }} as ordered_at,
        -- checks
        ({{ clean_text('ordered_at') }} is null or {{ clean_text('customer_id') }} is null) as _value_missing,
        {{ is_timestamp_out_of_range('ordered_at') }} as _timestamp_out_of_range,
        {{ framing_columns() }}
    from framed
),

customers as (
    select customer_id from {{ ref('stg_loyalty__customers') }}
),

currencies as (
    select distinct currency_code from {{ ref('stg_reference__exchange_rates') }}
),

checked as (
    select
        typed.order_id,
        typed.customer_id,
        typed.status,
        typed.currency_code,
        typed.ordered_at,
        case
            {{ key_reasons('typed') }}
            when typed._value_missing then 'missing_value'
            when typed.ordered_at is null and not typed._timestamp_out_of_range then 'unparseable_timestamp'
            when typed._timestamp_out_of_range then 'timestamp_out_of_range'
            when typed.status is null or typed.status not in ('completed', 'cancelled') then 'invalid_value'
            when currencies.currency_code is null then 'unknown_currency'
            when {{ exchange_rate_into_reporting('typed.currency_code', 'order_rate', 'reporting_rate') }} is null
                then 'no_exchange_rate_on_date'
        end as _row_reason,
        {{ raw_row_columns('typed') }}
    from typed
    left join currencies on typed.currency_code = currencies.currency_code
    {{ join_exchange_rate('order_rate', 'typed.currency_code', to_reporting_date('typed.ordered_at')) }}
    {{ join_exchange_rate(
        'reporting_rate', "'" ~ var('reporting_currency') ~ "'", to_reporting_date('typed.ordered_at')
    ) }}
    {{ held_for_reference(['unknown_customer']) }}
),

verdict as (
    select
        {{ star_except(["_row_reason"], "checked") }},
        coalesce(
            checked._row_reason,
            case
                when not {{ is_staged_key('checked.customer_id', 'customers', 'customer_id') }} then 'unknown_customer'
            end
        ) as _quarantine_reason
    from checked
)

{{ keep_raw_row_of_quarantined('verdict', held=true) }}
