{#- The value of `value` on the row where `by` is largest (arg_max) or smallest (arg_min) in a group: DuckDB's
    arg_max / arg_min, Spark's max_by / min_by. `by` is an expression, or a list of expressions compared in order
    (a tie on the first is broken by the second: a row value in DuckDB, a struct in Spark). Rows whose `by` is null
    are skipped. -#}
{% macro arg_max(value, by) -%}
    {{ return(adapter.dispatch('arg_extreme', 'loyalty')('max', value, by)) }}
{%- endmacro %}

{% macro arg_min(value, by) -%}
    {{ return(adapter.dispatch('arg_extreme', 'loyalty')('min', value, by)) }}
{%- endmacro %}

{% macro default__arg_extreme(extreme, value, by) -%}
    arg_{{ extreme }}({{ value }}, {{ by if by is string else '(' ~ (by | join(', ')) ~ ')' }})
{%- endmacro %}

{% macro spark__arg_extreme(extreme, value, by) -%}
    {{ extreme }}_by({{ value }}, {{ by if by is string else 'struct(' ~ (by | join(', ')) ~ ')' }})
{%- endmacro %}
