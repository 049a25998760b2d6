-- Every valid recommend score and its NPS category (docs/metrics.md). Returns the scores the macro gets wrong.
with cases (score, expected_category) as (
    values
    (0, 'detractor'), (1, 'detractor'), (2, 'detractor'), (3, 'detractor'), (4, 'detractor'),
    (5, 'detractor'), (6, 'detractor'), (7, 'passive'), (8, 'passive'), (9, 'promoter'), (10, 'promoter')
)

select
    *,
    {{ nps_category('score') }} as actual_category
from cases
where {{ nps_category('score') }} is distinct from expected_category
