{#- The shared first step of every base model: each raw row with what the quarantine needs to decide about it.

    Columns added to the raw columns:
      _raw_row         the whole raw row as JSON text (kept in quarantined_rows so a user sees exactly what arrived)
      _row_hash        md5 of _raw_row: two rows are exact duplicates when their hashes are equal
      _record_key      the entity's key columns, trimmed, joined with '|'
      _copy_number     1 for the first copy of a row; 2, 3, ... for exact duplicates (collapsed, counted in
                       raw_reconciliation.collapsed_duplicates)
      _is_key_missing  a key column is empty
      _is_key_conflict the key appears on rows whose content differs (every version is quarantined)
    email_columns are replaced by their hash (see hash_email) before anything else, so a clear email never reaches
    the warehouse, not even in quarantined_rows.raw_row.
-#}
{% macro frame_raw_rows(relation, key_columns, email_columns=[]) -%}
select
    keyed.*,
    row_number() over (partition by _row_hash) as _copy_number,
    (not _is_key_missing and min(_row_hash) over by_key <> max(_row_hash) over by_key) as _is_key_conflict
from (
    select
        raw_rows.*,
        md5(_raw_row) as _row_hash,
        ({% for key in key_columns %}{{ clean_text(key) }} is null{% if not loop.last %} or {% endif %}{% endfor %})
            as _is_key_missing,
        concat_ws('|', {% for key in key_columns %}coalesce({{ clean_text(key) }}, ''){% if not loop.last %}, {% endif %}{% endfor %})
            as _record_key
    from (
        select raw.*, cast(to_json(raw) as varchar) as _raw_row
        from (
            select *{% if email_columns %} replace (
                {%- for column in email_columns %}{{ hash_email(column) }} as {{ column }}{% if not loop.last %}, {% endif %}{% endfor -%}
            ){% endif %}
            from {{ relation }}
        ) as raw
    ) as raw_rows
) as keyed
window by_key as (partition by _record_key)
{%- endmacro %}

{#- The framing columns a base model carries from frame_raw_rows into its checks. -#}
{% macro framing_columns() -%}
    _is_key_missing,
    _is_key_conflict,
    {{ raw_row_columns() }}
{%- endmacro %}

{#- The framing columns every base model outputs after its typed columns (optionally qualified). -#}
{% macro raw_row_columns(relation=none) -%}
    {%- set prefix = relation ~ '.' if relation else '' -%}
    {{ prefix }}_record_key,
    {{ prefix }}_copy_number,
    {{ prefix }}_raw_row
{%- endmacro %}

{#- The first two reasons of every base model: the key is missing, or its versions conflict. -#}
{% macro key_reasons(relation) -%}
        when {{ relation }}._is_key_missing then 'missing_key'
        when {{ relation }}._is_key_conflict then 'conflicting_duplicate_key'
{%- endmacro %}

{#- A staging model: the trusted rows of its base model (first copy of each row, no quarantine reason). -#}
{% macro staged_rows(base_model) -%}
select * exclude (_quarantine_reason, _record_key, _copy_number, _raw_row)
from {{ ref(base_model) }}
where _copy_number = 1 and _quarantine_reason is null
{%- endmacro %}

{#- A base model's last step: the raw row as JSON is kept only where the row is quarantined (quarantined_rows
    reads it); trusted rows are their typed columns, so the raw text is not stored twice. -#}
{% macro keep_raw_row_of_quarantined(verdict) -%}
select * replace (case when _quarantine_reason is not null then _raw_row end as _raw_row)
from {{ verdict }}
{%- endmacro %}
