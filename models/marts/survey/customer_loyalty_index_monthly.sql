-- Customer Loyalty Index per response month: the mean CLI of the month's responses with all three answers (CLI is
-- a per-response score, so a mean is meaningful; anonymous responses count) and how many fall in each band.
-- Months from the first response to the as-of month; months without a complete response have a null mean.
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
        count(cli_score) as responses_with_cli,
        -- summed as exact decimals (cli_score has 6 decimals): a double sum depends on the order DuckDB's
        -- threads add rows in, and the same data must give the same mean on every build
        sum(cast(cli_score as decimal(18, 6))) / nullif(count(cli_score), 0) as mean_cli_score,
        count(*) filter (where cli_band = 'above_average') as above_average,
        count(*) filter (where cli_band = 'average') as average,
        count(*) filter (where cli_band = 'below_average') as below_average
    from responses
    group by response_month
)

select
    -- ids
    months.month_start,
    -- counts
    coalesce(counts.responses_with_cli, 0) as responses_with_cli,
    coalesce(counts.above_average, 0) as above_average_responses,
    coalesce(counts.average, 0) as average_responses,
    coalesce(counts.below_average, 0) as below_average_responses,
    -- metrics
    counts.mean_cli_score,
    {{ safe_ratio('counts.above_average', 'counts.responses_with_cli') }} as above_average_share
from months
left join counts on months.month_start = counts.month_start
