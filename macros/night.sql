{#- The values a nightly run sets for itself: the as-of date, the as-of date of the warehouse it builds on
    (previous_as_of), the build mode and fingerprint, and how each raw entity is read (raw sources). The loyalty
    CLI passes them in environment variables (src/loyalty/dbt_runner.py), read only while dbt executes: dbt parses
    the whole project again whenever its --vars change, and these change every night; it does not track an
    environment variable read at execution, so a night keeps the parse dbt saved the night before (issue 14). Only
    settings that rarely change (reporting timezone and currency, the predicted-CLV vars) are --vars.

    A var given explicitly (a plain `dbt build --vars '{as_of_date: ...}'`, a unit test's overrides) wins. -#}

{#- The night's value `name` (LOYALTY_NIGHT, a JSON object), or `default`: none outside the CLI and while parsing. -#}
{% macro night_value(name, default=none) -%}
    {%- set given = var(name, none) -%}
    {%- if given is not none and given != '' -%}{{ return(given) }}{%- endif -%}
    {%- if execute -%}
        {%- set night = fromjson(env_var('LOYALTY_NIGHT', '{}')) -%}
        {%- if night.get(name) is not none and night.get(name) != '' -%}{{ return(night[name]) }}{%- endif -%}
    {%- endif -%}
    {{ return(default) }}
{%- endmacro %}

{#- Each raw source table's reader, by table name: the landing check's (LOYALTY_RAW_SOURCES, a JSON object) when
    the CLI runs dbt, otherwise var('raw_sources') (dbt_project.yml: the bundled data). -#}
{% macro night_raw_sources() -%}
    {%- if execute -%}
        {%- set landed = fromjson(env_var('LOYALTY_RAW_SOURCES', '{}')) -%}
        {%- if landed -%}{{ return(landed) }}{%- endif -%}
    {%- endif -%}
    {{ return(var('raw_sources', {})) }}
{%- endmacro %}
