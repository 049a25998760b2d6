{#- Small SQL helpers with no metric of their own. -#}

{#- num / den as a double; null when den is 0 or null. -#}
{% macro safe_ratio(numerator, denominator) -%}
    (cast({{ numerator }} as double) / nullif({{ denominator }}, 0))
{%- endmacro %}
