-- Money divided by a count (money_ratio: average order value, CAC, mean historical CLV) on hand-computed cases,
-- exact halves included, which a floating-point division rounds the wrong way (8.665 is 8.66499... as a double):
-- 34.66 / 4 = 8.665 -> 8.67; -34.66 / 4 -> -8.67; 25.99 / 3 = 8.6633... -> 8.66; 0.02 / 4 = 0.005 -> 0.01;
-- 0.01 / 3 -> 0.00; 100.00 / 1 -> 100.00; a count of 0 or null -> null. Returns the cases where the macro disagrees.
with cases (amount, item_count, expected) as (
    values
    (cast(34.66 as decimal(18, 2)), 4, cast(8.67 as decimal(18, 2))),
    (cast(-34.66 as decimal(18, 2)), 4, cast(-8.67 as decimal(18, 2))),
    (cast(25.99 as decimal(18, 2)), 3, cast(8.66 as decimal(18, 2))),
    (cast(0.02 as decimal(18, 2)), 4, cast(0.01 as decimal(18, 2))),
    (cast(0.01 as decimal(18, 2)), 3, cast(0.00 as decimal(18, 2))),
    (cast(100.00 as decimal(18, 2)), 1, cast(100.00 as decimal(18, 2))),
    (cast(5.00 as decimal(18, 2)), 0, null),
    (cast(5.00 as decimal(18, 2)), null, null)
)

select
    *,
    {{ money_ratio('amount', 'item_count') }} as actual
from cases
where
    not coalesce(
        {{ money_ratio('amount', 'item_count') }} = expected,
        expected is null and {{ money_ratio('amount', 'item_count') }} is null
    )
