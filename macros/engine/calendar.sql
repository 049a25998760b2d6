{#- Calendar expressions the engines spell differently. -#}

{#- A select-list expression giving one row per date from `start` to `stop` (dates, both included) by `step` (an
    interval such as `interval 1 month`), each a date. It must stand alone in its select list's expression (Spark
    does not nest a generator in another expression) and the select must not aggregate. -#}
{% macro date_series(start, stop, step) -%}
    {{ return(adapter.dispatch('date_series', 'loyalty')(start, stop, step)) }}
{%- endmacro %}

{% macro default__date_series(start, stop, step) -%}
    cast(unnest(generate_series({{ start }}, {{ stop }}, {{ step }})) as date)
{%- endmacro %}

{% macro spark__date_series(start, stop, step) -%}
    explode(sequence({{ start }}, {{ stop }}, {{ step }}))
{%- endmacro %}

{#- The ISO day of the week: 1 Monday to 7 Sunday. -#}
{% macro iso_day_of_week(day) -%}
    {{ return(adapter.dispatch('iso_day_of_week', 'loyalty')(day)) }}
{%- endmacro %}

{% macro default__iso_day_of_week(day) -%}
    isodow({{ day }})
{%- endmacro %}

{% macro spark__iso_day_of_week(day) -%}
    (weekday({{ day }}) + 1)
{%- endmacro %}

{#- The English name of a date's day of the week ('Monday') and of its month ('January'). -#}
{% macro day_name(day) -%}
    {{ return(adapter.dispatch('day_name', 'loyalty')(day)) }}
{%- endmacro %}

{% macro default__day_name(day) -%}
    dayname({{ day }})
{%- endmacro %}

{% macro spark__day_name(day) -%}
    date_format({{ day }}, 'EEEE')
{%- endmacro %}

{% macro month_name(day) -%}
    {{ return(adapter.dispatch('month_name', 'loyalty')(day)) }}
{%- endmacro %}

{% macro default__month_name(day) -%}
    monthname({{ day }})
{%- endmacro %}

{% macro spark__month_name(day) -%}
    date_format({{ day }}, 'MMMM')
{%- endmacro %}
