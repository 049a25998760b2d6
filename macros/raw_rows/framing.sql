{#- The shared first step of every base model: each raw row with what the quarantine needs to decide about it.

    Raw rows arrive in batches (files, ordered by name; see src/loyalty/landing.py). Columns added to the raw
    columns (which include _batch):
      _raw             the raw row as a struct (to_json of it is kept for quarantined rows only)
      _row_hash        hash of _raw: within one key, two rows are the same row when their hashes are equal
      _record_key      the entity's key columns, trimmed, joined with '|'
      _is_key_missing  a key column is empty
      _copy_number     1 for the first copy of a row (earliest batch); 2, 3, ... for exact copies, which are
                       collapsed (counted in raw_reconciliation.collapsed_duplicates), in any batch
      _is_key_conflict the key is already taken by a different version of the row: the batch that first brings a
                       key owns it; if it brings several versions, all of them conflict; a later batch's version
                       that is not a copy of an earlier one conflicts. Rows staged on an earlier night therefore
                       never change their verdict, and a full refresh decides exactly as the nights did.

    Only keys that occur more than once need a window (few rows); every other row is decided by one aggregate over
    the keys. In an incremental run the earlier rows of the new rows' keys are read from {{ this }} as context.
    email_columns are replaced by their hash (see hash_email) before anything else, so a clear email never reaches
    the warehouse, not even in quarantined_rows.raw_row. In an entity with email columns, any other value that
    looks like an email address (an email in the wrong column, which nothing would hash) is masked as well, and
    the row flagged (_holds_email_outside: quarantined as email_outside_email_column).
-#}
{% macro frame_raw_rows(relation, key_columns, email_columns=[]) -%}
{#- the relation's columns on an engine without DuckDB's star expressions (columns(*)): a list, else none -#}
{%- set listed = listed_columns(relation) -%}
select {{ star_except(['_is_context']) }}
from (
    with landed as (
        {%- if email_columns and listed is none %}
        {%- set others = 'columns(* exclude (_batch, ' ~ (email_columns | join(', ')) ~ '))' %}
        select
            _batch,
            {%- for column in email_columns %}
            {{ hash_email(column) }} as {{ column }},
            {%- endfor %}
            case when {{ looks_like_email(others) }} then '<masked: an email address>' else {{ others }} end,
            {{ looks_like_email("concat_ws(' ', *" ~ others ~ ")") }} as _holds_email_outside
        from {{ relation }}
        {%- elif email_columns %}
        {%- set others = listed | reject('in', ['_batch'] + email_columns) | list %}
        select
            _batch,
            {%- for column in email_columns %}
            {{ hash_email(column) }} as {{ column }},
            {%- endfor %}
            {%- for column in others %}
            case when {{ looks_like_email(column) }} then '<masked: an email address>' else {{ column }} end
                as {{ column }},
            {%- endfor %}
            {{ looks_like_email("concat_ws(' ', " ~ (others | join(', ')) ~ ")") }} as _holds_email_outside
        from {{ relation }}
        {%- else %}
        select *, false as _holds_email_outside
        from {{ relation }}
        {%- endif %}
    ),

    keyed as (
        select
            landed.*,
            {%- if listed is none %}
            struct_pack(*columns(* exclude (_batch, _holds_email_outside))) as _raw,
            {%- else %}
            {{ row_struct(email_columns + (listed | reject('in', ['_batch'] + email_columns) | list)) }} as _raw,
            {%- endif %}
            ({% for key in key_columns %}{{ clean_text(key) }} is null{% if not loop.last %} or {% endif %}{% endfor %})
                as _is_key_missing,
            concat_ws('|', {% for key in key_columns %}coalesce({{ clean_text(key) }}, ''){% if not loop.last %}, {% endif %}{% endfor %})
                as _record_key
        from landed
    ),

    all_rows as (
        select *, {{ row_hash('_raw') }} as _row_hash, false as _is_context
        from keyed
        {%- if incremental_run() %}
        union all by name
        select
            _batch,
            _record_key,
            _row_hash,
            _quarantine_reason = 'missing_key' as _is_key_missing,
            true as _is_context
        from {{ this }}
        where _record_key in (select _record_key from keyed)
        {%- endif %}
    ),

    repeated_keys as (
        select _record_key
        from all_rows
        group by _record_key
        having count(*) > 1
    ),

    repeated as (
        select
            *,
            row_number() over (partition by _record_key, _row_hash order by _batch, _is_context desc) as _copy_number,
            min(_batch) over (partition by _record_key, _row_hash) as _first_batch,
            min(_batch) over (partition by _record_key) as _owner_batch
        from all_rows
        semi join repeated_keys using (_record_key)
    ),

    versions as (
        select _record_key, count(distinct _row_hash) as _owner_versions
        from repeated
        where _batch = _owner_batch
        group by _record_key
    )

    select all_rows.*, 1 as _copy_number, false as _is_key_conflict
    from all_rows
    anti join repeated_keys using (_record_key)

    -- both branches: all_rows' columns, _copy_number, _is_key_conflict (in this order)
    union all

    select
        {{ star_except(['_owner_batch', '_first_batch'], 'repeated') }},
        -- a copy has the verdict of its first copy
        not repeated._is_key_missing
            and (repeated._first_batch > repeated._owner_batch or versions._owner_versions > 1) as _is_key_conflict
    from repeated
    inner join versions using (_record_key)
) as framed
where not _is_context
{%- endmacro %}

{#- Text that looks like an email address: something@domain.tld with no space around the @ (a quoted local part
    such as "a, b"@x.org included). contains() first: the regular expression runs only on text holding an @. -#}
{% macro looks_like_email(text) -%}
    coalesce(contains({{ text }}, '@') and {{ regex_contains(text, '[^\s@]@[^\s@]+\.[^\s@]') }}, false)
{%- endmacro %}

{#- The framing columns a base model carries from frame_raw_rows into its checks. -#}
{% macro framing_columns() -%}
    _holds_email_outside,
    _is_key_missing,
    _is_key_conflict,
    {{ raw_row_columns() }}
{%- endmacro %}

{#- The framing columns every base model outputs after its typed columns (optionally qualified). -#}
{% macro raw_row_columns(relation=none) -%}
    {%- set prefix = relation ~ '.' if relation else '' -%}
    {{ prefix }}_batch,
    {{ prefix }}_record_key,
    {{ prefix }}_row_hash,
    {{ prefix }}_copy_number,
    {{ prefix }}_raw
{%- endmacro %}

{#- The unique key of a base model's rows (a batch may hold exact copies: they differ in _copy_number). -#}
{% macro base_unique_key() -%}
    {{ return(['_batch', '_record_key', '_row_hash', '_copy_number']) }}
{%- endmacro %}
