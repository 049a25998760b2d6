{#- Reporting time: every day and month a user sees is in var('reporting_timezone') (LOYALTY_TIMEZONE). Timestamps
    are stored in UTC; these macros are the only place they are converted. -#}

{% macro reporting_timezone() -%}
    '{{ var("reporting_timezone") }}'
{%- endmacro %}

{#- A UTC timestamp as wall-clock time in the reporting timezone. -#}
{% macro to_reporting_time(utc_timestamp) -%}
    {{ return(adapter.dispatch('to_reporting_time', 'loyalty')(utc_timestamp)) }}
{%- endmacro %}

{% macro default__to_reporting_time(utc_timestamp) -%}
    (({{ utc_timestamp }} at time zone 'UTC') at time zone {{ reporting_timezone() }})
{%- endmacro %}

{#- Spark's timestamps are instants shown in the session timezone (UTC, profiles.yml): from_utc_timestamp gives the
    wall-clock time in another zone. -#}
{% macro spark__to_reporting_time(utc_timestamp) -%}
    from_utc_timestamp({{ utc_timestamp }}, {{ reporting_timezone() }})
{%- endmacro %}

{#- Today in the reporting timezone. -#}
{% macro reporting_today() -%}
    {{ return(adapter.dispatch('reporting_today', 'loyalty')()) }}
{%- endmacro %}

{% macro default__reporting_today() -%}
    cast(now() at time zone {{ reporting_timezone() }} as date)
{%- endmacro %}

{% macro spark__reporting_today() -%}
    to_date(from_utc_timestamp(current_timestamp(), {{ reporting_timezone() }}))
{%- endmacro %}

{% macro to_reporting_date(utc_timestamp) -%}
    cast({{ to_reporting_time(utc_timestamp) }} as date)
{%- endmacro %}

{% macro to_reporting_month(utc_timestamp) -%}
    cast(date_trunc('month', {{ to_reporting_time(utc_timestamp) }}) as date)
{%- endmacro %}

{#- The as-of date (LOYALTY_AS_OF, a night's value: night.sql): nothing after it counts in metrics. Without one,
    today in the reporting timezone. -#}
{% macro as_of_date() -%}
    {%- set as_of = night_value('as_of_date') -%}
    {%- if as_of -%}
        date '{{ as_of }}'
    {%- else -%}
        {{ reporting_today() }}
    {%- endif -%}
{%- endmacro %}

{#- The time now, as a UTC timestamp. -#}
{% macro utc_now() -%}
    {{ return(adapter.dispatch('utc_now', 'loyalty')()) }}
{%- endmacro %}

{% macro default__utc_now() -%}
    cast(now() at time zone 'UTC' as timestamp)
{%- endmacro %}

{% macro spark__utc_now() -%}
    current_timestamp()
{%- endmacro %}
