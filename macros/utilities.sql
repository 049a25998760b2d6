{#- Small SQL helpers with no metric of their own (documented in utilities.yml). -#}

{#- num / den as a double; null when den is 0 or null. -#}
{% macro safe_ratio(numerator, denominator) -%}
    (cast({{ numerator }} as double) / nullif({{ denominator }}, 0))
{%- endmacro %}

{#- A month spine: one row per month, its first day as a date in column `column_name`, from the earliest month in
    `month_column` of `relation` (first days of months) to the as-of month, both included; no rows when `relation`
    is empty. The monthly marts build their months with it (see utilities.yml). -#}
{% macro month_spine(relation, month_column, column_name='month_start') -%}
    select {{ date_series('first_month', 'last_month', 'interval 1 month') }} as {{ column_name }}
    from (
        select
            min({{ month_column }}) as first_month,
            cast(date_trunc('month', {{ as_of_date() }}) as date) as last_month,
            count(*) as months
        from {{ relation }}
    ) as spine_bounds
    where months > 0
{%- endmacro %}
