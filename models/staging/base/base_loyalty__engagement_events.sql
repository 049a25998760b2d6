{{ config(materialized=incremental_materialization(), incremental_strategy='delete+insert',
    unique_key=base_unique_key(),
    on_schema_change='fail') }}
-- Every raw engagement event, typed, with the reason it cannot be trusted (null when it can).
-- event_type: site_visit | review | social_share | referral.
-- Incremental: a night reads only its new batches; events held back earlier for an unknown customer are checked
-- again. See held_for_reference.
with framed as (
    {{ frame_raw_rows(source('raw', 'engagement_events'), ['event_id']) }}
),

typed as (
    select
        -- ids
        {{ clean_text('event_id') }} as event_id,
        {{ clean_text('customer_id') }} as customer_id,
        -- attributes
        lower({{ clean_text('event_type') }}) as event_type,
        -- timestamps
        {{ parse_utc_timestamp('occurred_at') }} as occurred_at,
        -- checks
        ({{ clean_text('customer_id') }} is null or {{ clean_text('occurred_at') }} is null) as _value_missing,
        {{ is_timestamp_out_of_range('occurred_at') }} as _timestamp_out_of_range,
        {{ framing_columns() }}
    from framed
),

customers as (
    select customer_id from {{ ref('stg_loyalty__customers') }}
),

checked as (
    select
        typed.event_id,
        typed.customer_id,
        typed.event_type,
        typed.occurred_at,
        case
            {{ key_reasons('typed') }}
            when typed._value_missing then 'missing_value'
            when typed.occurred_at is null and not typed._timestamp_out_of_range then 'unparseable_timestamp'
            when typed._timestamp_out_of_range then 'timestamp_out_of_range'
            when typed.event_type is null
                or typed.event_type not in ('site_visit', 'review', 'social_share', 'referral') then 'invalid_value'
        end as _row_reason,
        {{ raw_row_columns('typed') }}
    from typed
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
