{#- Every column of a relation but some: DuckDB's `* exclude (...)`, Spark's `* except (...)`. `columns` are bare
    column names; `relation` (optional) qualifies the star. -#}
{% macro star_except(columns, relation=none) -%}
    {{ return(adapter.dispatch('star_except', 'loyalty')(columns, relation)) }}
{%- endmacro %}

{% macro default__star_except(columns, relation) -%}
    {{ relation ~ '.' if relation }}* exclude ({{ columns | join(', ') }})
{%- endmacro %}

{% macro spark__star_except(columns, relation) -%}
    {{ relation ~ '.' if relation }}* except ({{ columns | join(', ') }})
{%- endmacro %}

{#- The column names of `relation`, for SQL that must list them on an engine without DuckDB's star expressions
    (columns(*), *columns(...)); none on DuckDB, where the star expressions are used instead. Empty while dbt
    parses (nothing is read then). -#}
{% macro listed_columns(relation) -%}
    {{ return(adapter.dispatch('listed_columns', 'loyalty')(relation)) }}
{%- endmacro %}

{% macro default__listed_columns(relation) -%}
    {{ return(none) }}
{%- endmacro %}

{% macro spark__listed_columns(relation) -%}
    {%- if not execute -%}{{ return([]) }}{%- endif -%}
    {{ return(adapter.get_columns_in_relation(relation) | map(attribute='name') | list) }}
{%- endmacro %}
