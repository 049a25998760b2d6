{#- Order value (docs/metrics.md, behavioural metrics). -#}

{#- Average order value: gross revenue / number of valid orders, rounded to cents (money_ratio). -#}
{% macro average_order_value(gross_revenue, valid_orders) -%}
    {{ money_ratio(gross_revenue, valid_orders) }}
{%- endmacro %}
