-- The bound of raw money values (macro raw_value_bound, in the amount's own currency) keeps every converted value
-- far inside the money type DECIMAL(18, 2), whose largest value is just under 10^16: a value at the bound, converted
-- at the largest ratio between any two rates of the seed (a currency with few units per USD into one with many:
-- GBP into JPY, 150 / 0.79 = 190, in the bundled seed), must fit 1,000 times over, so that only a sum of more than
-- 1,000 values at the bound could overflow (DECISIONS.md, "Landing and staging"). Returns the seed's largest ratio
-- when a replaced exchange_rates seed breaks that.
with ratio as (
    select max(units_per_usd) / min(units_per_usd) as largest_ratio
    from {{ ref('stg_reference__exchange_rates') }}
)

select
    largest_ratio,
    {{ raw_value_bound('money') }} * largest_ratio as largest_converted_value
from ratio
where {{ raw_value_bound('money') }} * largest_ratio * 1000 >= 1e16
