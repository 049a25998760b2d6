-- The CLI band boundaries of docs/metrics.md, including 75 (unreachable with whole-number scores, but the band
-- definition must still put it in above_average). Returns the cases where the macro disagrees.
with cases (cli, expected_band) as (
    values
    (0.0, 'below_average'),
    (39.999999, 'below_average'),
    (40.0, 'average'),
    (74.999999, 'average'),
    (75.0, 'above_average'),
    (100.0, 'above_average')
)

select
    *,
    {{ cli_band('cli') }} as actual_band
from cases
where {{ cli_band('cli') }} is distinct from expected_band
