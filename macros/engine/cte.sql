{#- The keyword that makes a CTE computed once (DuckDB's `as materialized (...)`); nothing on Spark, which has no
    such hint. -#}
{% macro materialized_cte() -%}
    {{ return(adapter.dispatch('materialized_cte', 'loyalty')()) }}
{%- endmacro %}

{% macro default__materialized_cte() -%}
    materialized
{%- endmacro %}

{% macro spark__materialized_cte() -%}
{%- endmacro %}
