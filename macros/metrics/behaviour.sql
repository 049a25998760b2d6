{#- Behavioural metric definitions (docs/metrics.md, building blocks and behavioural metrics). Each
    formula is written once here and used by every mart that reports it. Ratios are null when the denominator is
    0 (undefined, not 0). -#}

{#- num / den as a double; null when den is 0 or null. -#}
{% macro safe_ratio(numerator, denominator) -%}
    (cast({{ numerator }} as double) / nullif({{ denominator }}, 0))
{%- endmacro %}

{#- A sum of money as the warehouse's money type. -#}
{% macro as_money(amount) -%}
    cast({{ amount }} as decimal(18, 2))
{%- endmacro %}

{#- Average order value: gross revenue / number of valid orders, rounded to cents. -#}
{% macro average_order_value(gross_revenue, valid_orders) -%}
    cast(round({{ gross_revenue }} / nullif({{ valid_orders }}, 0), 2) as decimal(18, 2))
{%- endmacro %}

{#- Purchase frequency: valid orders / customers. -#}
{% macro purchase_frequency(valid_orders, customers) -%}
    {{ safe_ratio(valid_orders, customers) }}
{%- endmacro %}

{#- Repurchase ratio: repeat customers (2+ valid orders) / customers (1+ valid order). -#}
{% macro repurchase_ratio(repeat_customers, customers) -%}
    {{ safe_ratio(repeat_customers, customers) }}
{%- endmacro %}

{#- Upsell rate (docs/metrics.md; can exceed 1): customers who bought 2+ product types / customers who
    bought exactly one. -#}
{% macro upsell_rate(multi_type_customers, single_type_customers) -%}
    {{ safe_ratio(multi_type_customers, single_type_customers) }}
{%- endmacro %}

{#- Multi-type share, in [0, 1]: multi / (multi + single). -#}
{% macro multi_type_share(multi_type_customers, single_type_customers) -%}
    {{ safe_ratio(multi_type_customers, '(' ~ multi_type_customers ~ ' + ' ~ single_type_customers ~ ')') }}
{%- endmacro %}

{#- Mean days between consecutive valid orders: the gaps telescope, so it is (last - first) / (orders - 1); null
    for a one-order customer. -#}
{% macro mean_days_between_orders(first_order_date, last_order_date, valid_orders) -%}
    case
        when {{ valid_orders }} >= 2
            then cast(({{ last_order_date }} - {{ first_order_date }}) as double) / ({{ valid_orders }} - 1)
    end
{%- endmacro %}

{#- Customer acquisition cost: a channel's spend in a month / customers acquired through it whose first valid
    order is in that month. -#}
{% macro customer_acquisition_cost(spend, new_customers) -%}
    cast(round({{ spend }} / nullif({{ new_customers }}, 0), 2) as decimal(18, 2))
{%- endmacro %}

{#- Share of wallet of one survey response: net revenue over the 12 months up to the response date / (12 x the
    monthly category spend reported), capped at 1. A reported spend of 0 with revenue is capped at 1; with no
    revenue either it is undefined (null). -#}
{% macro share_of_wallet(net_revenue_12m, monthly_category_spend) -%}
    case
        when {{ monthly_category_spend }} > 0
            then least(cast({{ net_revenue_12m }} as double) / (12 * {{ monthly_category_spend }}), 1.0)
        when {{ monthly_category_spend }} = 0 and {{ net_revenue_12m }} > 0 then 1.0
    end
{%- endmacro %}

{#- Whether share_of_wallet was capped: the uncapped ratio exceeds 1. -#}
{% macro share_of_wallet_is_capped(net_revenue_12m, monthly_category_spend) -%}
    ({{ net_revenue_12m }} > 12 * {{ monthly_category_spend }})
{%- endmacro %}
