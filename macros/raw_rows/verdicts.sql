{#- The verdict on each raw row, after framing (framing.sql): the reasons every base model checks first, rows
    held back for a reference and checked again, the raw text kept for the quarantine, and the trusted rows a
    staging model publishes. -#}

{#- The first reasons of every base model: an email outside the email column (its values are masked, key
    included), the key is missing, or its versions conflict. -#}
{% macro key_reasons(relation) -%}
        when {{ relation }}._holds_email_outside then 'email_outside_email_column'
        when {{ relation }}._is_key_missing then 'missing_key'
        when {{ relation }}._is_key_conflict then 'conflicting_duplicate_key'
{%- endmacro %}

{#- In an incremental base model's checks: the rows an earlier night held back for one of the reference `reasons`
    (unknown customer, order or product), to be checked again tonight against what is staged now. Their own
    checks passed then and do not change; only the reference is looked up again. Nothing on a full build. -#}
{% macro held_for_reference(reasons) -%}
    {%- if incremental_run() %}
    union all by name
    select
        * exclude (_quarantine_reason, _raw_row, _built_as_of),
        _raw_row as _held_raw_row
    from {{ this }}
    where _quarantine_reason in ({% for r in reasons %}'{{ r }}'{% if not loop.last %}, {% endif %}{% endfor %})
    {%- endif %}
{%- endmacro %}

{#- A base model's last step: the raw row as JSON text is kept only where the first copy of a row is quarantined
    (quarantined_rows reads it); trusted rows are their typed columns, so the raw text is not stored twice. The
    struct is turned into text only for those few rows. With held (incremental base models), rows checked again
    from an earlier night keep the JSON they were stored with. -#}
{% macro keep_raw_row_of_quarantined(verdict, held=false) -%}
{%- set held_rows = held and incremental_run() -%}
select
    {{ star_except(['_raw'] + (['_held_raw_row'] if held_rows else [])) }},
    case when _quarantine_reason is not null and _copy_number = 1
        then {% if held_rows %}coalesce(_held_raw_row, {{ raw_row_json('_raw') }}){% else %}{{ raw_row_json('_raw') }}{% endif %}
    end as _raw_row,
    {{ built_as_of() }} as _built_as_of
from {{ verdict }}
{%- endmacro %}

{#- A raw row as JSON text for the quarantine. Email columns are already hashed; any other string (value or column
    name) holding an '@' is masked, because it may be an email in the wrong column, which nothing hashed. -#}
{% macro raw_row_json(raw) -%}
    {{ regex_replace_all(row_json(raw), '"(?:[^"\\\\]|\\\\.)*@(?:[^"\\\\]|\\\\.)*"', "'\"<masked: holds @>\"'") }}
{%- endmacro %}

{#- A staging model: the trusted rows of its base model (first copy of each row, no quarantine reason), without
    the base model's hidden columns. tonight_rows (macros/tonight.sql) reads the same rows from the base table. -#}
{% macro staged_rows(base_model) -%}
select {{ star_except(staged_hidden_columns()) }}
from {{ ref(base_model) }}
where {{ staged_filter() }}
{%- endmacro %}

{#- The columns of a base model that its staging view hides. -#}
{% macro staged_hidden_columns() -%}
    {{ return(['_quarantine_reason', '_batch', '_record_key', '_row_hash', '_copy_number', '_raw_row', '_built_as_of']) }}
{%- endmacro %}

{#- The rows of a base model that its staging view keeps: the first copy of each row, with no quarantine reason. -#}
{% macro staged_filter() -%}
    {{ return('_copy_number = 1 and _quarantine_reason is null') }}
{%- endmacro %}

{#- True when `column` is a key of the staged rows `staged` (a CTE or relation with the one column `key`); false
    when it is not, or is null (as a left join that finds nothing). Written as an IN over the staged keys, which
    DuckDB runs as a mark join built on the staged keys: the left join it replaces was built on the raw rows side
    (DuckDB's estimate of the framed raw rows is a few dozen), hashing millions of wide rows, the raw row struct
    included, to probe them with the staged keys (issue 14). The staged keys are unique (their staging tests), so
    the result is the same, row for row. -#}
{% macro is_staged_key(column, staged, key) -%}
    coalesce({{ column }} in (select {{ key }} from {{ staged }}), false)
{%- endmacro %}
