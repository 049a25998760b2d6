{{ config(
    materialized=incremental_materialization(),
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{% if incremental_run() %}delete from {{ this }} where customer_id in (select customer_id from {{ ref('int_engagement__changed_customers') }}){% endif %}"
) }}
-- depends_on: {{ ref('int_engagement__changed_customers') }}
-- Engagement per customer and month (reporting timezone): counts of site visits, reviews, social shares and
-- referrals on or before the as-of date, and an engagement score weighting each kind by the effort it takes and
-- what it does for the shop (engagement_score macro). Only months in which the customer had an event have a row.
-- Incremental by customer: a night rebuilds every month of the customers with events staged tonight or dated
-- between last night's as-of date and tonight's (int_engagement__changed_customers).
with events as (
    select
        customer_id,
        event_type,
        {{ to_reporting_month('occurred_at') }} as month_start
    from {{ ref('stg_loyalty__engagement_events') }}
    where {{ to_reporting_date('occurred_at') }} <= {{ as_of_date() }}
    {% if incremental_run() %}
    and customer_id in (select customer_id from {{ ref('int_engagement__changed_customers') }})
    {% endif %}
),

counts as (
    select
        customer_id,
        month_start,
        count(*) filter (where event_type = 'site_visit') as site_visits,
        count(*) filter (where event_type = 'review') as reviews,
        count(*) filter (where event_type = 'social_share') as social_shares,
        count(*) filter (where event_type = 'referral') as referrals
    from events
    group by all
)

select
    -- ids
    customer_id || ':' || {{ year_month_text('month_start') }} as customer_month_id,
    customer_id,
    month_start,
    -- counts
    site_visits,
    reviews,
    social_shares,
    referrals,
    -- metric
    {{ engagement_score('site_visits', 'reviews', 'social_shares', 'referrals') }} as engagement_score
from counts
