{#- dbt's unique (fails for each non-null value that occurs more than once), reading on an incremental night only
    the keys written tonight: each is compared with all keys of the model, so a key written tonight that collides
    with an old one fails (old keys were unique among themselves on the night that wrote them). See
    macros/tonight.sql. -#}
{% test unique_tonight(model, column_name) %}
{%- set tonight = tonight_rows(model) -%}
select
    {{ column_name }} as unique_field,
    count(*) as n_records
from {{ model }}
where {{ column_name }} is not null
{%- if tonight is string %}
    and {{ column_name }} in (select tonight.{{ column_name }} from {{ tonight }} as tonight)
{%- endif %}
group by {{ column_name }}
having count(*) > 1
{% endtest %}
