{#- Whole days from `start` to `stop` (dates): stop - start. -#}
{% macro day_diff(start, stop) -%}
    {{ return(adapter.dispatch('day_diff', 'loyalty')(start, stop)) }}
{%- endmacro %}

{% macro default__day_diff(start, stop) -%}
    datediff('day', {{ start }}, {{ stop }})
{%- endmacro %}

{% macro spark__day_diff(start, stop) -%}
    datediff({{ stop }}, {{ start }})
{%- endmacro %}

{#- Whole months from `start` to `stop`, both first days of months. -#}
{% macro month_diff(start, stop) -%}
    {{ return(adapter.dispatch('month_diff', 'loyalty')(start, stop)) }}
{%- endmacro %}

{% macro default__month_diff(start, stop) -%}
    datediff('month', {{ start }}, {{ stop }})
{%- endmacro %}

{#- months_between of two first days of months is a whole number -#}
{% macro spark__month_diff(start, stop) -%}
    cast(months_between({{ stop }}, {{ start }}) as int)
{%- endmacro %}
