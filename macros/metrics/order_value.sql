{#- Order value (docs/metrics.md, behavioural metrics). -#}

{#- Average order value: gross revenue / number of valid orders, rounded to cents. -#}
{% macro average_order_value(gross_revenue, valid_orders) -%}
    cast(round({{ gross_revenue }} / nullif({{ valid_orders }}, 0), 2) as decimal(18, 2))
{%- endmacro %}
