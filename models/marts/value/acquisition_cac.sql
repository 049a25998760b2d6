-- Customer acquisition cost per acquisition channel and month: the channel's marketing spend in the month (in the
-- reporting currency, at the rate in force on the first day of the month) / customers acquired through the
-- channel whose first valid order falls in that month. CLV:CAC compares that cohort's historical CLV to date with
-- what acquiring it cost. Every channel (from spend or customers) x every month from the first spend or cohort
-- month to the as-of month; months without spend or customers are present with zeros.
with spend as (
    select
        spend.acquisition_channel,
        spend.spend_month as acquisition_month,
        sum({{ to_reporting_currency('spend.amount',
            exchange_rate_into_reporting('spend.currency_code', 'spend_rate', 'reporting_rate')) }}) as marketing_spend
    from {{ ref('stg_loyalty__marketing_spend') }} as spend
    {{ join_exchange_rate('spend_rate', 'spend.currency_code', 'spend.spend_month') }}
    {{ join_exchange_rate('reporting_rate', "'" ~ var('reporting_currency') ~ "'", 'spend.spend_month') }}
    where spend.spend_month <= {{ as_of_date() }}
    group by all
),

acquired as (
    select
        acquisition_channel,
        cohort_month as acquisition_month,
        count(*) as new_customers,
        sum(historical_clv) as cohort_historical_clv
    from {{ ref('customer_lifetime_value') }}
    group by all
),

channels as (
    select acquisition_channel from spend
    union
    select acquisition_channel from acquired
),

acquisition_months as (
    select acquisition_month from spend
    union all
    select acquisition_month from acquired
),

months as (
    {{ month_spine('acquisition_months', 'acquisition_month', 'acquisition_month') }}
),

grid as (
    select
        channels.acquisition_channel,
        months.acquisition_month,
        coalesce(spend.marketing_spend, 0) as marketing_spend,
        coalesce(acquired.new_customers, 0) as new_customers,
        coalesce(acquired.cohort_historical_clv, 0) as cohort_historical_clv
    from channels
    cross join months
    left join spend
        on channels.acquisition_channel = spend.acquisition_channel
            and months.acquisition_month = spend.acquisition_month
    left join acquired
        on channels.acquisition_channel = acquired.acquisition_channel
            and months.acquisition_month = acquired.acquisition_month
)

select
    -- ids
    acquisition_channel || ':' || {{ year_month_text('acquisition_month') }} as channel_month_id,
    -- dimensions
    acquisition_channel,
    acquisition_month,
    -- measures
    {{ as_money('marketing_spend') }} as marketing_spend,
    new_customers,
    {{ customer_acquisition_cost('marketing_spend', 'new_customers') }} as customer_acquisition_cost,
    {{ as_money('cohort_historical_clv') }} as cohort_historical_clv,
    {{ money_ratio('cohort_historical_clv', 'new_customers') }} as mean_historical_clv,
    {{ safe_ratio('cohort_historical_clv', 'marketing_spend') }} as clv_to_cac_ratio
from grid
