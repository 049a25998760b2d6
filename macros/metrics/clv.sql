{#- Settings of the predicted-CLV models (dbt vars clv_time_unit, clv_horizon_months, clv_annual_discount_rate in
    dbt_project.yml; override with --vars). Each macro checks its var, so a bad value stops the build at compile
    time with one clear message instead of a Python traceback in the model that would use it. -#}

{% macro clv_time_unit() -%}
    {%- set unit = var("clv_time_unit", "day") | string | trim | lower -%}
    {%- if unit not in ("day", "week") -%}
        {{ exceptions.raise_compiler_error("var clv_time_unit must be 'day' or 'week', not '" ~ unit ~ "'") }}
    {%- endif -%}
    {{ return(unit) }}
{%- endmacro %}

{#- Days per time unit: recency, tenure and the holdout length are day counts divided by this. -#}
{% macro clv_time_unit_days() -%}
    {{ return(7 if clv_time_unit() == "week" else 1) }}
{%- endmacro %}

{% macro clv_horizon_months() -%}
    {%- set months = var("clv_horizon_months", 12) -%}
    {%- if months is not number or months != (months | int) or months < 1 -%}
        {{ exceptions.raise_compiler_error("var clv_horizon_months must be a whole number of months >= 1, not '" ~ months ~ "'") }}
    {%- endif -%}
    {{ return(months | int) }}
{%- endmacro %}

{% macro clv_annual_discount_rate() -%}
    {%- set rate = var("clv_annual_discount_rate", 0.10) -%}
    {%- if rate is not number or rate <= -1 -%}
        {{ exceptions.raise_compiler_error("var clv_annual_discount_rate must be a number > -1 (0.10 is 10 %), not '" ~ rate ~ "'") }}
    {%- endif -%}
    {{ return(rate | float) }}
{%- endmacro %}
