-- Every raw marketing-spend row (one per acquisition channel and month), typed, with the reason it cannot be
-- trusted (null when it can). spend_month is any date in the month (usually its first day).
with framed as (
    {{ frame_raw_rows(source('raw', 'marketing_spend'), ['channel', 'spend_month']) }}
),

typed as (
    select
        -- ids
        lower({{ clean_text('channel') }}) as acquisition_channel,
        cast(date_trunc('month', try_cast({{ clean_text('spend_month') }} as date)) as date) as spend_month,
        -- numerics
        {{ parse_money('amount') }} as amount,
        upper({{ clean_text('currency') }}) as currency_code,
        -- checks
        ({{ clean_text('amount') }} is null or {{ clean_text('currency') }} is null) as _value_missing,
        {{ framing_columns() }}
    from framed
),

currencies as (
    select distinct currency_code from {{ ref('exchange_rates') }}
),

verdict as (
    select
        typed.acquisition_channel,
        typed.spend_month,
        typed.amount,
        typed.currency_code,
        case
            {{ key_reasons('typed') }}
            when typed._value_missing then 'missing_value'
            when typed.spend_month is null then 'unparseable_timestamp'
            when typed.amount is null then 'unparseable_number'
            when typed.amount < 0 then 'negative_amount'
            when currencies.currency_code is null then 'unknown_currency'
        end as _quarantine_reason,
        {{ raw_row_columns('typed') }}
    from typed
    left join currencies on typed.currency_code = currencies.currency_code
)

{{ keep_raw_row_of_quarantined('verdict') }}
