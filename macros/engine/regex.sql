{#- Regular expressions, written once for both engines. `pattern` is the expression itself, unquoted (it must not
    hold a single quote): DuckDB reads backslashes in a string literal as they are, Spark reads them as escapes
    unless the literal is raw (r'...'), so each engine gets the literal it reads as the same pattern. Both search
    (the pattern may match anywhere unless anchored); both engines' syntaxes (RE2, Java) agree on the patterns the
    project uses (classes, groups, anchors, non-capturing groups, quantifiers). -#}

{#- True when `text` holds a match of `pattern`; null when `text` is null. -#}
{% macro regex_contains(text, pattern) -%}
    {{ return(adapter.dispatch('regex_contains', 'loyalty')(text, pattern)) }}
{%- endmacro %}

{% macro default__regex_contains(text, pattern) -%}
    regexp_matches({{ text }}, '{{ pattern }}')
{%- endmacro %}

{% macro spark__regex_contains(text, pattern) -%}
    regexp_like({{ text }}, r'{{ pattern }}')
{%- endmacro %}

{#- `text` with every match of `pattern` replaced by `replacement` (an SQL expression). -#}
{% macro regex_replace_all(text, pattern, replacement) -%}
    {{ return(adapter.dispatch('regex_replace_all', 'loyalty')(text, pattern, replacement)) }}
{%- endmacro %}

{% macro default__regex_replace_all(text, pattern, replacement) -%}
    regexp_replace({{ text }}, '{{ pattern }}', {{ replacement }}, 'g')
{%- endmacro %}

{% macro spark__regex_replace_all(text, pattern, replacement) -%}
    regexp_replace({{ text }}, r'{{ pattern }}', {{ replacement }})
{%- endmacro %}
