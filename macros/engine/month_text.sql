{#- A date's month as text 'YYYY-MM' (the BI-friendly month label of the marts). -#}
{% macro year_month_text(day) -%}
    {{ return(adapter.dispatch('year_month_text', 'loyalty')(day)) }}
{%- endmacro %}

{% macro default__year_month_text(day) -%}
    strftime({{ day }}, '%Y-%m')
{%- endmacro %}

{% macro spark__year_month_text(day) -%}
    date_format({{ day }}, 'yyyy-MM')
{%- endmacro %}
