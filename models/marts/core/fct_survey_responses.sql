-- One row per survey response with its NPS category and Customer Loyalty Index (docs/metrics.md, survey metrics).
-- category_monthly_spend is converted into the reporting currency at the rate in force on the response date (a
-- spend in the reporting currency needs no rate; staging holds back a spend without one).
with responses as (
    select * from {{ ref('stg_loyalty__survey_responses') }}
),

scored as (
    select
        *,
        {{ to_reporting_date('responded_at') }} as response_date,
        {{ cli_score('recommend_score', 'repurchase_intent_score', 'cross_buy_intent_score') }} as cli_score
    from responses
)

select
    -- ids
    scored.response_id,
    scored.customer_id,
    scored.customer_id is null as is_anonymous,
    -- scores
    scored.recommend_score,
    {{ nps_category('scored.recommend_score') }} as nps_category,
    scored.repurchase_intent_score,
    scored.cross_buy_intent_score,
    scored.cli_score,
    {{ cli_band('scored.cli_score') }} as cli_band,
    -- numerics
    {{ to_reporting_currency('scored.category_monthly_spend',
       exchange_rate_into_reporting('scored.currency_code', 'spend_rate', 'reporting_rate')) }}
        as category_monthly_spend,
    -- timestamps
    scored.responded_at,
    scored.response_date,
    cast(date_trunc('month', scored.response_date) as date) as response_month,
    scored.response_date > {{ as_of_date() }} as is_after_as_of
from scored
{{ join_exchange_rate('spend_rate', 'scored.currency_code', 'scored.response_date') }}
{{ join_exchange_rate('reporting_rate', "'" ~ var('reporting_currency') ~ "'", 'scored.response_date') }}
