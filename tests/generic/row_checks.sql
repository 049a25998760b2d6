{#- A model's row-level checks in one scan of it (instead of one test, and one scan, per column and check).
    Fails once for each failing row and failed check; failed_check names the check, failing_value shows the value
    (null for an expression):
      not_null: [columns]                            not_null(column): the column is null
      accepted_range: {column: {min_value, max_value}} accepted_range(column): a non-null value below min_value or
                                                     above max_value (either bound may be omitted)
      accepted_values: {column: [values]}            accepted_values(column): a non-null value not in the list
      expressions: [expression]                      expression_is_true(expression): not true (false or null)
    Each check means what the test it replaces (not_null, accepted_range, accepted_values, expression_is_true)
    means; see DECISIONS.md, "dbt data tests (issue 14)". -#}
{% test row_checks(model, not_null=[], accepted_range={}, accepted_values={}, expressions=[]) %}
{%- set checks = [] -%}
{%- for column in not_null -%}
    {%- do checks.append({'name': 'not_null(' ~ column ~ ')', 'value': column, 'fails': column ~ ' is null'}) -%}
{%- endfor -%}
{%- for column, bounds in accepted_range.items() -%}
    {%- set outside = [] -%}
    {%- if bounds.get('min_value') is not none -%}{%- do outside.append(column ~ ' < ' ~ bounds['min_value']) -%}{%- endif -%}
    {%- if bounds.get('max_value') is not none -%}{%- do outside.append(column ~ ' > ' ~ bounds['max_value']) -%}{%- endif -%}
    {%- do checks.append({
        'name': 'accepted_range(' ~ column ~ ')', 'value': column,
        'fails': column ~ ' is not null and (' ~ (outside | join(' or ') or 'false') ~ ')'}) -%}
{%- endfor -%}
{%- for column, values in accepted_values.items() -%}
    {%- set quoted = [] -%}
    {%- for value in values -%}{%- do quoted.append("'" ~ value ~ "'") -%}{%- endfor -%}
    {%- do checks.append({
        'name': 'accepted_values(' ~ column ~ ')', 'value': column,
        'fails': column ~ ' not in (' ~ (quoted | join(', ')) ~ ')'}) -%}
{%- endfor -%}
{%- for expression in expressions -%}
    {%- do checks.append({
        'name': 'expression_is_true(' ~ expression ~ ')', 'value': none,
        'fails': 'not coalesce((' ~ expression ~ '), false)'}) -%}
{%- endfor -%}
with checked as {{ materialized_cte() }} (
    select
        {%- for check in checks %}
        coalesce({{ check.fails }}, false) as _fails_{{ loop.index }},
        {%- if check.value %} cast({{ check.value }} as {{ dbt.type_string() }}){% else %} cast(null as {{ dbt.type_string() }}){% endif %} as _value_{{ loop.index }}
        {%- if not loop.last %},{% endif %}
        {%- endfor %}
    from {{ model }}
    where
        {%- for check in checks %}
        coalesce({{ check.fails }}, false){% if not loop.last %} or{% endif %}
        {%- endfor %}
)

{% for check in checks -%}
select '{{ dbt.escape_single_quotes(check.name) }}' as failed_check, _value_{{ loop.index }} as failing_value
from checked
where _fails_{{ loop.index }}
{% if not loop.last %}union all
{% endif %}
{%- endfor %}
{% endtest %}
