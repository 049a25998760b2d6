{#- Models land in the schema their folder names (staging, marts, audit, reference) rather than dbt's default
    "<target schema>_<custom schema>", so BI users see short, stable names such as marts.fct_orders. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
