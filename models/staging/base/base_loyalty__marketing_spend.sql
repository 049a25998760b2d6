-- Every raw marketing-spend row (one per acquisition channel and month), typed, with the reason it cannot be
-- trusted (null when it can). spend_month is any date in the month (usually its first day). A spend in another
-- currency than the reporting one needs both exchange rates on the first day of its month, where acquisition_cac
-- converts it.
with framed as (
    {{ frame_raw_rows(source('raw', 'marketing_spend'), ['channel', 'spend_month']) }}
),

typed as (
    select
        -- ids
        lower({{ clean_text('channel') }}) as acquisition_channel,
        {{ parse_month('spend_month') }} as spend_month,
        -- numerics
        {{ parse_money('amount') }} as amount,
        upper({{ clean_text('currency') }}) as currency_code,
        -- checks
        ({{ clean_text('amount') }} is null or {{ clean_text('currency') }} is null) as _value_missing,
        {{ is_month_out_of_range('spend_month') }} as _timestamp_out_of_range,
        {{ is_unparseable_number('amount') }} as _number_unparseable,
        {{ is_out_of_range('amount', 'money') }} as _amount_out_of_range,
        {{ framing_columns() }}
    from framed
),

currencies as (
    select distinct currency_code from {{ ref('stg_reference__exchange_rates') }}
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
            when typed.spend_month is null and not typed._timestamp_out_of_range then 'unparseable_timestamp'
            when typed._timestamp_out_of_range then 'timestamp_out_of_range'
            when typed._number_unparseable then 'unparseable_number'
            when typed._amount_out_of_range then 'amount_out_of_range'
            when typed.amount < 0 then 'negative_amount'
            when currencies.currency_code is null then 'unknown_currency'
            when {{ exchange_rate_into_reporting('typed.currency_code', 'spend_rate', 'reporting_rate') }} is null
                then 'no_exchange_rate_on_date'
        end as _quarantine_reason,
        {{ raw_row_columns('typed') }}
    from typed
    left join currencies on typed.currency_code = currencies.currency_code
    {{ join_exchange_rate('spend_rate', 'typed.currency_code', 'typed.spend_month') }}
    {{ join_exchange_rate('reporting_rate', "'" ~ var('reporting_currency') ~ "'", 'typed.spend_month') }}
)

{{ keep_raw_row_of_quarantined('verdict') }}
