-- Invariant: every response is in exactly one segment of each segment type, so per type and month the segments'
-- counts add up to nps_monthly's. Returns the type-months that do not.
with segments as (
    select
        segment_type,
        month_start,
        sum(responses) as responses,
        sum(promoters) as promoters,
        sum(detractors) as detractors
    from {{ ref('nps_segments') }}
    group by all
),

types as (
    select distinct segment_type from segments
)

select
    types.segment_type,
    monthly.month_start,
    monthly.responses,
    segments.responses as segment_responses
from {{ ref('nps_monthly') }} as monthly
cross join types
left join segments on types.segment_type = segments.segment_type and monthly.month_start = segments.month_start
where monthly.responses <> coalesce(segments.responses, 0)
    or monthly.promoters <> coalesce(segments.promoters, 0)
    or monthly.detractors <> coalesce(segments.detractors, 0)
