{#- Fails for each combination of the columns that appears more than once. With tonight=true, on an incremental
    night only the combinations written tonight are grouped, each compared with all rows of the model (see
    unique_tonight and macros/tonight.sql). -#}
{% test unique_combination_of_columns(model, combination_of_columns, tonight=false) %}
{%- set rows_tonight = tonight_rows(model) if tonight else model -%}
select {{ combination_of_columns | join(', ') }}, count(*) as occurrences
from {{ model }} as all_rows
{%- if rows_tonight is string %}
semi join (select distinct {{ combination_of_columns | join(', ') }} from {{ rows_tonight }} as tonight) as tonight_keys
    on {% for column in combination_of_columns %}all_rows.{{ column }} is not distinct from tonight_keys.{{ column }}
    {%- if not loop.last %} and {% endif %}{% endfor %}
{%- endif %}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1
{% endtest %}
