{{ config(materialized=incremental_materialization(), incremental_strategy='delete+insert',
    unique_key=base_unique_key(),
    on_schema_change='fail') }}
-- Every raw loyalty-programme event, typed, with the reason it cannot be trusted (null when it can).
-- event_type: enrolled | points_earned | points_redeemed | tier_changed; points (whole, >= 0) for the points
-- events, at most raw_value_bound('points'); tier (bronze | silver | gold) for enrolled and tier_changed.
with framed as (
    {{ frame_raw_rows(source('raw', 'loyalty_events'), ['event_id']) }}
),

typed as (
    select
        -- ids
        {{ clean_text('event_id') }} as event_id,
        {{ clean_text('customer_id') }} as customer_id,
        -- attributes
        lower({{ clean_text('event_type') }}) as event_type,
        lower({{ clean_text('tier') }}) as tier,
        -- numerics
        {{ parse_integer('points') }} as points,
        -- timestamps
        {{ parse_utc_timestamp('occurred_at') }} as occurred_at,
        -- checks
        ({{ clean_text('customer_id') }} is null or {{ clean_text('occurred_at') }} is null) as _value_missing,
        {{ is_timestamp_out_of_range('occurred_at') }} as _timestamp_out_of_range,
        {{ is_unparseable_number('points', whole=true) }} as _number_unparseable,
        {{ is_out_of_range('points', 'points') }} as _amount_out_of_range,
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
        typed.tier,
        typed.points,
        typed.occurred_at,
        case
            {{ key_reasons('typed') }}
            when typed._value_missing then 'missing_value'
            when typed.occurred_at is null and not typed._timestamp_out_of_range then 'unparseable_timestamp'
            when typed._timestamp_out_of_range then 'timestamp_out_of_range'
            when typed._number_unparseable then 'unparseable_number'
            when typed._amount_out_of_range then 'amount_out_of_range'
            when typed.event_type is null
                or typed.event_type not in ('enrolled', 'points_earned', 'points_redeemed', 'tier_changed')
                or (typed.tier is not null and typed.tier not in ('bronze', 'silver', 'gold'))
                then 'invalid_value'
            when typed.points < 0 then 'negative_amount'
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
