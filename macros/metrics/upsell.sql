{#- Upsell: customers buying more than one product type (docs/metrics.md, behavioural metrics). -#}

{#- Upsell rate (docs/metrics.md; can exceed 1): customers who bought 2+ product types / customers who
    bought exactly one. -#}
{% macro upsell_rate(multi_type_customers, single_type_customers) -%}
    {{ safe_ratio(multi_type_customers, single_type_customers) }}
{%- endmacro %}

{#- Multi-type share, in [0, 1]: multi / (multi + single). -#}
{% macro multi_type_share(multi_type_customers, single_type_customers) -%}
    {{ safe_ratio(multi_type_customers, '(' ~ multi_type_customers ~ ' + ' ~ single_type_customers ~ ')') }}
{%- endmacro %}
