{#- Currency conversion, defined once. Seed exchange_rates holds units of each currency per 1 USD, effective from
    valid_from until the next rate of that currency; an amount's exchange_rate into the reporting currency is
    units_per_usd(reporting) / units_per_usd(amount's currency), taken on the order's (or response's) date.
    Converted amounts are rounded to cents. -#}
{% macro to_reporting_currency(amount, exchange_rate) -%}
    cast(round(({{ amount }}) * ({{ exchange_rate }}), 2) as decimal(18, 2))
{%- endmacro %}

{#- Gross revenue of an order line: quantity * unit_price - discount_amount (metrics spec, building blocks). -#}
{% macro line_gross_revenue(quantity, unit_price, discount_amount) -%}
    ({{ quantity }} * {{ unit_price }} - {{ discount_amount }})
{%- endmacro %}

{#- Joins, as `alias`, the exchange rate of `currency` in force on `on_date` (seed exchange_rates, through
    stg_reference__exchange_rates). Used twice per conversion: the amount's currency and the reporting currency. -#}
{% macro join_exchange_rate(alias, currency, on_date) -%}
left join {{ ref('stg_reference__exchange_rates') }} as {{ alias }}
    on {{ alias }}.currency_code = {{ currency }}
    and {{ on_date }} >= {{ alias }}.valid_from
    and {{ on_date }} < {{ alias }}.valid_to
{%- endmacro %}
