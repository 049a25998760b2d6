{#- A raw row as one value: a struct of its columns (row_struct), its text for the quarantine (row_json) and the
    hash that tells two versions of a row apart (row_hash). -#}

{#- A struct of `columns` (names), each field named as its column. -#}
{% macro row_struct(columns) -%}
    {{ return(adapter.dispatch('row_struct', 'loyalty')(columns)) }}
{%- endmacro %}

{% macro default__row_struct(columns) -%}
    struct_pack({% for column in columns %}{{ column }} := {{ column }}{% if not loop.last %}, {% endif %}{% endfor %})
{%- endmacro %}

{% macro spark__row_struct(columns) -%}
    named_struct({% for column in columns %}'{{ column }}', {{ column }}{% if not loop.last %}, {% endif %}{% endfor %})
{%- endmacro %}

{#- A struct as JSON text, null fields kept as null (Spark leaves them out unless told). -#}
{% macro row_json(row) -%}
    {{ return(adapter.dispatch('row_json', 'loyalty')(row)) }}
{%- endmacro %}

{% macro default__row_json(row) -%}
    cast(to_json({{ row }}) as varchar)
{%- endmacro %}

{% macro spark__row_json(row) -%}
    to_json({{ row }}, map('ignoreNullFields', 'false'))
{%- endmacro %}

{#- A 64-bit hash of a struct: equal for equal rows, null fields included. DuckDB's hash() of the struct; Spark's
    xxhash64 leaves null fields out (two rows differing only in which field is null would hash alike), so it
    hashes the struct's JSON with nulls kept. The engines' hashes differ: a warehouse is built by one engine. -#}
{% macro row_hash(row) -%}
    {{ return(adapter.dispatch('row_hash', 'loyalty')(row)) }}
{%- endmacro %}

{% macro default__row_hash(row) -%}
    hash({{ row }})
{%- endmacro %}

{% macro spark__row_hash(row) -%}
    xxhash64({{ row_json(row) }})
{%- endmacro %}
