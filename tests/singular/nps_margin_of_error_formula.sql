-- The NPS and its 95 % margin of error (docs/metrics.md) on hand-computed cases. 2 promoters, 1 detractor of 5:
-- NPS 20, P = 0.4, D = 0.2 -> 196 x sqrt((0.6 - 0.04) / 5) = 196 x sqrt(0.112) = 65.5941460803. 1 promoter and 1
-- detractor of 2: NPS 0, 196 x sqrt(1 / 2) = 138.5929291126. All 4 promoters: NPS 100, margin 0. No responses:
-- both null. Returns the cases where the macros disagree.
with cases (promoters, detractors, responses, expected_nps, expected_margin) as (
    values
    (2, 1, 5, 20.0, 65.5941460803),
    (1, 1, 2, 0.0, 138.5929291126),
    (4, 0, 4, 100.0, 0.0),
    (0, 3, 3, -100.0, 0.0),
    (0, 0, 0, null, null)
)

select
    *,
    {{ nps('promoters', 'detractors', 'responses') }} as actual_nps,
    {{ nps_margin_of_error('promoters', 'detractors', 'responses') }} as actual_margin
from cases
where
    not (
        coalesce(
            abs({{ nps('promoters', 'detractors', 'responses') }} - expected_nps) < 1e-9,
            {{ nps('promoters', 'detractors', 'responses') }} is null and expected_nps is null
        )
        and coalesce(
            abs({{ nps_margin_of_error('promoters', 'detractors', 'responses') }} - expected_margin) < 1e-9,
            {{ nps_margin_of_error('promoters', 'detractors', 'responses') }} is null and expected_margin is null
        )
    )
