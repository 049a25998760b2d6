-- Every raw survey response, typed, with the reason it cannot be trusted (null when it can).
-- customer_id may be empty (an anonymous response); a non-empty one must be a staged customer. Scores must be
-- whole numbers from 0 to 10: anything else is rejected, never clipped. recommend_score is required; the two
-- intent scores and category_monthly_spend may be empty. The optional currency column defaults to the reporting
-- currency; a spend in another currency needs both exchange rates on the response date (reporting timezone).
with framed as (
    {{ frame_raw_rows(source('raw', 'survey_responses'), ['response_id']) }}
),

typed as (
    select
        -- ids
        {{ clean_text('response_id') }} as response_id,
        {{ clean_text('customer_id') }} as customer_id,
        -- scores
        {{ parse_integer('recommend_score') }} as recommend_score,
        {{ parse_integer('repurchase_intent_score') }} as repurchase_intent_score,
        {{ parse_integer('cross_buy_intent_score') }} as cross_buy_intent_score,
        -- numerics
        {{ parse_money('category_monthly_spend') }} as category_monthly_spend,
        coalesce(upper({{ clean_text('currency') }}), '{{ var("reporting_currency") }}') as currency_code,
        -- timestamps
        {{ parse_utc_timestamp('responded_at') }} as responded_at,
        -- checks
        ({{ clean_text('responded_at') }} is null or {{ clean_text('recommend_score') }} is null) as _value_missing,
        (
            {% for score in ['recommend_score', 'repurchase_intent_score', 'cross_buy_intent_score'] %}
            ({{ clean_text(score) }} is not null and {{ try_number(clean_text(score)) }} is null)
            {%- if not loop.last %} or {% endif %}
            {% endfor %}
            or {{ is_unparseable_number('category_monthly_spend') }}
        ) as _number_unparseable,
        {{ is_out_of_range('category_monthly_spend', 'money') }} as _amount_out_of_range,
        {{ is_timestamp_out_of_range('responded_at') }} as _timestamp_out_of_range,
        (
            {% for score in ['recommend_score', 'repurchase_intent_score', 'cross_buy_intent_score'] %}
            (
                {{ try_number(clean_text(score)) }} is not null
                and coalesce({{ parse_integer(score) }} not between 0 and 10, true)
            )
            {%- if not loop.last %} or {% endif %}
            {% endfor %}
        ) as _score_out_of_range,
        {{ framing_columns() }}
    from framed
),

customers as (
    select customer_id from {{ ref('stg_loyalty__customers') }}
),

currencies as (
    select distinct currency_code from {{ ref('stg_reference__exchange_rates') }}
),

verdict as (
    select
        typed.response_id,
        typed.customer_id,
        typed.recommend_score,
        typed.repurchase_intent_score,
        typed.cross_buy_intent_score,
        typed.category_monthly_spend,
        typed.currency_code,
        typed.responded_at,
        case
            {{ key_reasons('typed') }}
            when typed._value_missing then 'missing_value'
            when typed.responded_at is null and not typed._timestamp_out_of_range then 'unparseable_timestamp'
            when typed._timestamp_out_of_range then 'timestamp_out_of_range'
            when typed._number_unparseable then 'unparseable_number'
            when typed._amount_out_of_range then 'amount_out_of_range'
            when typed._score_out_of_range then 'score_out_of_range'
            when typed.category_monthly_spend < 0 then 'negative_amount'
            when currencies.currency_code is null then 'unknown_currency'
            when typed.category_monthly_spend is not null
                and {{ exchange_rate_into_reporting('typed.currency_code', 'spend_rate', 'reporting_rate') }} is null
                then 'no_exchange_rate_on_date'
            when typed.customer_id is not null and customers.customer_id is null then 'unknown_customer'
        end as _quarantine_reason,
        {{ raw_row_columns('typed') }}
    from typed
    left join customers on typed.customer_id = customers.customer_id
    left join currencies on typed.currency_code = currencies.currency_code
    {{ join_exchange_rate('spend_rate', 'typed.currency_code', to_reporting_date('typed.responded_at')) }}
    {{ join_exchange_rate(
        'reporting_rate', "'" ~ var('reporting_currency') ~ "'", to_reporting_date('typed.responded_at')
    ) }}
)

{{ keep_raw_row_of_quarantined('verdict') }}
