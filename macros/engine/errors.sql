{#- An expression that stops the statement with `message` (an SQL string expression) when it is evaluated. -#}
{% macro fail_with(message) -%}
    {{ return(adapter.dispatch('fail_with', 'loyalty')(message)) }}
{%- endmacro %}

{% macro default__fail_with(message) -%}
    error({{ message }})
{%- endmacro %}

{% macro spark__fail_with(message) -%}
    raise_error({{ message }})
{%- endmacro %}
