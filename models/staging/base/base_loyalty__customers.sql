-- Every raw customer row, typed, with the reason it cannot be trusted (null when it can).
with framed as (
    {{ frame_raw_rows(source('raw', 'customers'), ['customer_id'], email_columns=['email']) }}
),

typed as (
    select
        -- ids
        {{ clean_text('customer_id') }} as customer_id,
        -- attributes
        email as email_hash,  -- already hashed by frame_raw_rows
        upper({{ clean_text('country') }}) as country_code,
        lower({{ clean_text('acquisition_channel') }}) as acquisition_channel,
        -- timestamps
        {{ parse_utc_timestamp('signup_at') }} as signed_up_at,
        -- checks
        {{ clean_text('signup_at') }} is null as _signup_missing,
        {{ is_timestamp_out_of_range('signup_at') }} as _timestamp_out_of_range,
        {{ framing_columns() }}
    from framed
),

verdict as (
    select
        typed.customer_id,
        typed.email_hash,
        typed.country_code,
        typed.acquisition_channel,
        typed.signed_up_at,
        case
            {{ key_reasons('typed') }}
            when typed._signup_missing then 'missing_value'
            when typed.signed_up_at is null and not typed._timestamp_out_of_range then 'unparseable_timestamp'
            when typed._timestamp_out_of_range then 'timestamp_out_of_range'
        end as _quarantine_reason,
        {{ raw_row_columns('typed') }}
    from typed
)

{{ keep_raw_row_of_quarantined('verdict') }}
