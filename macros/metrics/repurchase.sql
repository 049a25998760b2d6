{#- Repurchase: how often customers buy again (docs/metrics.md, behavioural metrics). Ratios are null when the
    denominator is 0 (undefined, not 0). -#}

{#- Repurchase ratio: repeat customers (2+ valid orders) / customers (1+ valid order). -#}
{% macro repurchase_ratio(repeat_customers, customers) -%}
    {{ safe_ratio(repeat_customers, customers) }}
{%- endmacro %}

{#- Purchase frequency: valid orders / customers. -#}
{% macro purchase_frequency(valid_orders, customers) -%}
    {{ safe_ratio(valid_orders, customers) }}
{%- endmacro %}

{#- Mean days between consecutive valid orders: the gaps telescope, so it is (last - first) / (orders - 1); null
    for a one-order customer. -#}
{% macro mean_days_between_orders(first_order_date, last_order_date, valid_orders) -%}
    case
        when {{ valid_orders }} >= 2
            then cast({{ day_diff(first_order_date, last_order_date) }} as double) / ({{ valid_orders }} - 1)
    end
{%- endmacro %}
