-- NPS per response month and customer segment, for four segment types: acquisition_channel, country,
-- loyalty_membership (member when the response was given: enrolled on or before the response date) and
-- lifecycle_stage (the customer's stage as of the as-of date, customer_segments; respondents without a valid
-- order are `no_valid_order`). Anonymous responses have the segment value `anonymous` in every type. Only months
-- and segments with responses have rows. Recompute NPS from the counts to combine rows; never average it.
with responses as (
    select * from {{ ref('fct_survey_responses') }}
    where not is_after_as_of
),

customers as (
    select * from {{ ref('dim_customers') }}
),

stages as (
    select
        customer_id,
        lifecycle_stage
    from {{ ref('customer_segments') }}
),

attributed as (
    select
        responses.response_id,
        responses.response_month,
        responses.nps_category,
        responses.is_anonymous,
        customers.acquisition_channel,
        customers.country_code,
        case
            when customers.loyalty_enrolled_at <= responses.responded_at then 'member'
            else 'non_member'
        end as loyalty_membership,
        coalesce(stages.lifecycle_stage, 'no_valid_order') as lifecycle_stage
    from responses
    left join customers on responses.customer_id = customers.customer_id
    left join stages on responses.customer_id = stages.customer_id
),

segmented as (
    {% for segment_type, column in [
        ('acquisition_channel', 'acquisition_channel'),
        ('country', 'country_code'),
        ('loyalty_membership', 'loyalty_membership'),
        ('lifecycle_stage', 'lifecycle_stage'),
    ] %}
    select
        '{{ segment_type }}' as segment_type,
        case when is_anonymous then 'anonymous' else coalesce({{ column }}, 'unknown') end as segment_value,
        response_month,
        nps_category
    from attributed
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

counts as (
    select
        segment_type,
        segment_value,
        response_month as month_start,
        count(*) as responses,
        count(*) filter (where nps_category = 'promoter') as promoters,
        count(*) filter (where nps_category = 'passive') as passives,
        count(*) filter (where nps_category = 'detractor') as detractors
    from segmented
    group by all
)

select
    -- ids
    segment_type || ':' || segment_value || ':' || {{ year_month_text('month_start') }} as segment_month_id,
    -- dimensions
    segment_type,
    segment_value,
    month_start,
    -- counts
    responses,
    promoters,
    passives,
    detractors,
    -- metrics
    {{ nps('promoters', 'detractors', 'responses') }} as nps,
    {{ nps_margin_of_error('promoters', 'detractors', 'responses') }} as nps_margin_of_error
from counts
