-- Exchange rates from the exchange_rates seed with each rate's validity window. A rate applies from valid_from
-- until the day before the next rate of the same currency; the latest rate applies from then on.
select
    upper(trim(currency_code)) as currency_code,
    cast(valid_from as date) as valid_from,
    coalesce(
        lead(cast(valid_from as date)) over (partition by upper(trim(currency_code)) order by valid_from),
        date '9999-12-31'
    ) as valid_to,
    cast(units_per_usd as double) as units_per_usd
from {{ ref('exchange_rates') }}
