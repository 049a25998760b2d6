{#- Currency conversion, defined once. Seed exchange_rates holds units of each currency per 1 USD, effective from
    valid_from until the next rate of that currency; an amount's exchange_rate into the reporting currency is
    units_per_usd(reporting) / units_per_usd(amount's currency), taken on the order's (or response's) date.
    Converted amounts are rounded to cents. -#}
{% macro to_reporting_currency(amount, exchange_rate) -%}
    cast(round(({{ amount }}) * ({{ exchange_rate }}), 2) as decimal(18, 2))
{%- endmacro %}

{#- An amount of money (two decimal places) divided by a count (a whole number), rounded to cents half away from
    zero: 34.66 / 4 = 8.665 is 8.67. Computed exactly, in whole cents, so every engine gives the same cent: a
    division in floating point (DuckDB's decimal / integer is a double) rounds 8.665, stored as 8.66499..., down.
    Null when the count is 0 or null. -#}
{% macro money_ratio(amount, count) -%}
    {%- set cents = 'cast((' ~ amount ~ ') * 100 as bigint)' -%}
    case when {{ count }} > 0 then cast(
        cast(
            (case when {{ cents }} < 0 then -1 else 1 end)
            * {{ int_div('2 * abs(' ~ cents ~ ') + ' ~ count, '2 * ' ~ count) }}
            as decimal(18, 0)
        ) * 0.01 as decimal(18, 2)
    ) end
{%- endmacro %}

{#- A sum of money as the warehouse's money type. -#}
{% macro as_money(amount) -%}
    cast({{ amount }} as decimal(18, 2))
{%- endmacro %}

{#- Gross revenue of an order line: quantity * unit_price - discount_amount (docs/metrics.md, building blocks). -#}
{% macro line_gross_revenue(quantity, unit_price, discount_amount) -%}
    ({{ quantity }} * {{ unit_price }} - {{ discount_amount }})
{%- endmacro %}

{#- Joins, as `alias`, the exchange rate of `currency` in force on `on_date` (seed exchange_rates, through
    stg_reference__exchange_rates). Used twice per conversion: the amount's currency and the reporting currency,
    then combined by exchange_rate_into_reporting. -#}
{% macro join_exchange_rate(alias, currency, on_date) -%}
left join {{ ref('stg_reference__exchange_rates') }} as {{ alias }}
    on {{ alias }}.currency_code = {{ currency }}
    and {{ on_date }} >= {{ alias }}.valid_from
    and {{ on_date }} < {{ alias }}.valid_to
{%- endmacro %}

{#- The exchange rate of an amount in `currency` on a date into the reporting currency, from the two rates joined
    by join_exchange_rate as `amount_rate` and `reporting_rate`: units_per_usd(reporting) / units_per_usd(currency).
    An amount already in the reporting currency needs no rate: 1 on any date, also before the seed's first rate.
    Null when a rate is missing on that date; the base models quarantine such amounts as no_exchange_rate_on_date
    with this same macro, so a staged amount always has a rate. -#}
{% macro exchange_rate_into_reporting(currency, amount_rate, reporting_rate) -%}
    case
        when {{ currency }} = '{{ var("reporting_currency") }}' then cast(1 as double)
        else {{ reporting_rate }}.units_per_usd / {{ amount_rate }}.units_per_usd
    end
{%- endmacro %}
