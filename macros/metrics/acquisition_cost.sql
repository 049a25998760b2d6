{#- Customer acquisition cost (docs/metrics.md, behavioural metrics). -#}

{#- Customer acquisition cost: a channel's spend in a month / customers acquired through it whose first valid
    order is in that month. -#}
{% macro customer_acquisition_cost(spend, new_customers) -%}
    {{ money_ratio(spend, new_customers) }}
{%- endmacro %}
