{#- How raw text becomes typed values. Raw files are read as text (CSV all_varchar, Parquet cast to varchar), so a
    bad value never stops the read: it becomes null here and the base model quarantines the row with a reason. -#}

{#- Trimmed text, empty string as null. -#}
{% macro clean_text(column) -%}
    nullif(trim({{ column }}), '')
{%- endmacro %}

{#- An ISO-8601 timestamp with a UTC offset or Z, as a UTC timestamp (without time zone). Text without an offset
    means UTC: the connection's TimeZone is UTC (profiles.yml), which is how DuckDB reads offset-less text. -#}
{% macro parse_utc_timestamp(column) -%}
    (try_cast({{ clean_text(column) }} as timestamptz) at time zone 'UTC')
{%- endmacro %}

{#- Money: a decimal with two places. '12.345' rounds to 12.35; 'abc' is null. -#}
{% macro parse_money(column) -%}
    try_cast({{ clean_text(column) }} as decimal(18, 2))
{%- endmacro %}

{#- A whole number. '7.0' is 7; '7.5' and 'seven' are null (a plain cast to integer would round 7.5 to 8). -#}
{% macro parse_integer(column) -%}
    case
        when try_cast({{ clean_text(column) }} as double) = floor(try_cast({{ clean_text(column) }} as double))
            then try_cast(try_cast({{ clean_text(column) }} as double) as bigint)
    end
{%- endmacro %}

{#- True when the raw text is present but does not parse (as opposed to empty). -#}
{% macro is_unparseable(raw_column, parsed_expression) -%}
    ({{ clean_text(raw_column) }} is not null and ({{ parsed_expression }}) is null)
{%- endmacro %}

{#- Emails are trimmed and lower-cased, then hashed with a secret key: HMAC-SHA-256 (RFC 2104),
    sha256(outer pad || sha256(inner pad || email)), as lower-case hex. The pads come from the key
    (src/loyalty/email_hashing.py) as DuckDB variables that the dbt-duckdb plugin loyalty.email_key_plugin sets
    on every connection, so the key is never in SQL text. Without them the build stops rather than store
    unkeyed hashes. Raw emails never leave the base models. -#}
{% macro hash_email(column) -%}
    case
        when getvariable('loyalty_email_hash_inner_pad') is null or getvariable('loyalty_email_hash_outer_pad') is null
            then error('the email hash key is not set on this connection (profiles.yml plugin loyalty.email_key_plugin)')
        when {{ clean_text(column) }} is not null then sha256(
            getvariable('loyalty_email_hash_outer_pad')
            || unhex(sha256(getvariable('loyalty_email_hash_inner_pad') || encode(lower({{ clean_text(column) }}))))
        )
    end
{%- endmacro %}
