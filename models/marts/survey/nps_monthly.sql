-- Net Promoter Score per month (response month, reporting timezone), from the first month with a response to the
-- as-of month; months without responses are present with 0 responses and a null NPS. Every response counts,
-- anonymous ones included. NPS is recomputed from the counts of the month; to combine months or segments, sum the
-- counts and recompute (the semantic layer's `nps` metric does this), never average NPS values.
with responses as (
    select * from {{ ref('fct_survey_responses') }}
    where not is_after_as_of
),

months as (
    {{ month_spine('responses', 'response_month') }}
),

counts as (
    select
        response_month as month_start,
        count(*) as responses,
        count(*) filter (where nps_category = 'promoter') as promoters,
        count(*) filter (where nps_category = 'passive') as passives,
        count(*) filter (where nps_category = 'detractor') as detractors
    from responses
    group by response_month
)

select
    -- ids
    months.month_start,
    -- counts
    coalesce(counts.responses, 0) as responses,
    coalesce(counts.promoters, 0) as promoters,
    coalesce(counts.passives, 0) as passives,
    coalesce(counts.detractors, 0) as detractors,
    -- metrics
    {{ safe_ratio('counts.promoters', 'counts.responses') }} as promoter_share,
    {{ safe_ratio('counts.detractors', 'counts.responses') }} as detractor_share,
    {{ nps('counts.promoters', 'counts.detractors', 'counts.responses') }} as nps,
    {{ nps_margin_of_error('counts.promoters', 'counts.detractors', 'counts.responses') }} as nps_margin_of_error
from months
left join counts on months.month_start = counts.month_start
