{#- How raw text becomes typed values. Raw files are read as text (CSV all_varchar, Parquet cast to varchar), so a
    bad value never stops the read: it becomes null here and the base model quarantines the row with a reason. -#}

{#- Trimmed text, empty string as null. DuckDB's trim() reads every character of the text (about a fifth of a base
    model's time, issue 14); text whose first byte and last character are printable ASCII ('!' to '~', bytewise
    comparisons) has no white space to trim at either end, so only other text is trimmed: the same result for every
    text (checked against trim() on every code point at either end). -#}
{% macro clean_text(column) -%}
    case
        when {{ column }} >= '!' and {{ column }} < chr(127) and substr({{ column }}, -1) >= '!'
            and substr({{ column }}, -1) < chr(127) then {{ column }}
        else nullif(trim({{ column }}), '')
    end
{%- endmacro %}

{#- The window of plausible timestamps, written once: from 1900-01-01 (inclusive) to 2200-01-01 (exclusive), in UTC.
    Every timestamp column of every entity (and marketing_spend.spend_month) is read through it: a timestamp that
    parses but lies outside is null in the typed column and the row is quarantined as timestamp_out_of_range. Why
    these years: DECISIONS.md, "Landing and staging". -#}
{% macro timestamp_window() -%}
    {{- return({'from': '1900-01-01', 'until': '2200-01-01'}) -}}
{%- endmacro %}

{#- True when a timestamp (or date) lies in the timestamp window; null when it is null. -#}
{% macro is_in_timestamp_window(timestamp) -%}
    {%- set window = timestamp_window() -%}
    ({{ timestamp }} >= timestamp '{{ window["from"] }}' and {{ timestamp }} < timestamp '{{ window["until"] }}')
{%- endmacro %}

{#- True unless the text ends in a numeric UTC offset outside -14:00..+14:00 or not of the form +hh, +hhmm, +hh:mm
    (minutes 00-59). DuckDB itself reads '+25:00', '+05:75' and '+01:00:30' without complaint. The offset is what
    follows the time of day (':mm' or ':ss[.fff]'), so a date alone ('2024-03-05') has none. -#}
{% macro has_valid_utc_offset(column) -%}
    {#- (not has_offset or has_valid_offset), with has_valid_offset tested first: every text it matches is matched
        by has_offset too, so the truth value (nulls included) is the same, and text with a valid offset (nearly all)
        runs one regular expression instead of two (issue 14) -#}
    case
        when {{ regex_contains(clean_text(column), ':\d\d?(?:\.\d*)?[+-](?:(?:0\d|1[0-3])(?::?[0-5]\d)?|14(?::?00)?)$') }}
            then true
        else not {{ regex_contains(clean_text(column), ':\d\d?(?:\.\d*)?[+-][\d:]*$') }}
    end
{%- endmacro %}

{#- Any date and time DuckDB reads as a timestamp with a valid UTC offset (see has_valid_utc_offset), as a UTC
    timestamp, whatever its year: for the checks only; typed columns use parse_utc_timestamp. -#}
{% macro read_utc_timestamp(column) -%}
    case when {{ has_valid_utc_offset(column) }}
        then {{ try_utc_timestamp(clean_text(column)) }}
    end
{%- endmacro %}

{#- Text as a UTC timestamp (its offset applied; none means UTC), or null when it does not parse. -#}
{% macro try_utc_timestamp(text) -%}
    {{ return(adapter.dispatch('try_utc_timestamp', 'loyalty')(text)) }}
{%- endmacro %}

{#- Both engines read the same texts as timestamps and dates (a one-off differential check of the two casts on thousands of
    generated texts, DECISIONS.md "Hostile input on Spark"): each engine's cast, less what only it accepts.
    DuckDB alone reads 'infinity' and an hour 24 ('2024-10-05T24:00:00Z' is the next midnight); Spark alone reads a
    year or a month alone ('2024', '2024-10'), an hour without minutes ('2024-10-05T10') and a leading '+'. So a
    timestamp or date is a year, month and day, alone or followed by a time of day with its minutes, no hour 24,
    and finite. -#}
{% macro default__try_utc_timestamp(text) -%}
    case when not contains({{ text }}, 'T24:') and not contains({{ text }}, ' 24:')
        and isfinite(try_cast({{ text }} as timestamptz))
        then (try_cast({{ text }} as timestamptz) at time zone 'UTC')
    end
{%- endmacro %}

{#- Spark's timestamp is an instant; with the session in UTC (loyalty.spark_engine) it reads and shows as UTC. -#}
{% macro spark__try_utc_timestamp(text) -%}
    case when {{ regex_contains(text, date_shape()) }} then try_cast({{ text }} as timestamp) end
{%- endmacro %}

{#- The text a date or timestamp begins with on Spark (see above). -#}
{% macro date_shape() -%}
    {{- return('^\\d{4,}-\\d\\d?-\\d\\d?($|[T ]\\d\\d?:\\d\\d)') -}}
{%- endmacro %}

{#- Text as a date (a timestamp's text reads as its day), or null; the same texts on both engines (see above). -#}
{% macro try_date(text) -%}
    {{ return(adapter.dispatch('try_date', 'loyalty')(text)) }}
{%- endmacro %}

{% macro default__try_date(text) -%}
    case when isfinite(try_cast({{ text }} as date)) then try_cast({{ text }} as date) end
{%- endmacro %}

{% macro spark__try_date(text) -%}
    case when {{ regex_contains(text, date_shape()) }} then try_cast({{ text }} as date) end
{%- endmacro %}

{#- An ISO-8601 timestamp with a UTC offset or Z, as a UTC timestamp (without time zone); null when it does not
    parse, its offset is invalid, or it lies outside the timestamp window. Text without an offset means UTC: the
    connection's TimeZone is UTC (profiles.yml), which is how DuckDB reads offset-less text. -#}
{% macro parse_utc_timestamp(column) -%}
    case when {{ is_in_timestamp_window(read_utc_timestamp(column)) }} then {{ read_utc_timestamp(column) }} end
{%- endmacro %}

{#- True when the text is a timestamp (valid offset included) outside the timestamp window: the row is quarantined
    as timestamp_out_of_range; text that is no timestamp at all is unparseable_timestamp. -#}
{% macro is_timestamp_out_of_range(column) -%}
    coalesce(not {{ is_in_timestamp_window(read_utc_timestamp(column)) }}, false)
{%- endmacro %}

{#- A month (marketing_spend.spend_month): any date in it, as the month's first day; null when it is no date or lies
    outside the timestamp window. -#}
{% macro parse_month(column) -%}
    case when {{ is_in_timestamp_window(try_date(clean_text(column))) }}
        then cast(date_trunc('month', {{ try_date(clean_text(column)) }}) as date)
    end
{%- endmacro %}

{#- True when the text is a date outside the timestamp window (timestamp_out_of_range). -#}
{% macro is_month_out_of_range(column) -%}
    coalesce(not {{ is_in_timestamp_window(try_date(clean_text(column))) }}, false)
{%- endmacro %}

{#- Bounds of plausible amounts, written once, in the amount's own currency (or units, or points), either side of 0:
      money     1,000,000,000 (10^9): every price, discount, refund, list price, marketing spend and reported
                category spend, and an order line's subtotal (quantity * unit_price)
      quantity  1,000,000 (10^6) units on one order line
      points    1,000,000,000 (10^9) loyalty points on one event
    A number beyond its bound (or too large to be stored at all, like 1e400 or 'inf') is quarantined as
    amount_out_of_range. Converted at the largest ratio of two rates in seeds/exchange_rates.csv (150 JPY / 0.79 GBP
    = 190), a money value stays below 2 * 10^11 in the reporting currency, far inside DECIMAL(18, 2) (below 10^16);
    the singular test money_bound_fits_the_money_type checks that against the seed. Why these numbers, and which
    sums could still overflow: DECISIONS.md, "Landing and staging". -#}
{% macro raw_value_bound(kind) -%}
    {%- set bounds = {'money': 1000000000, 'quantity': 1000000, 'points': 1000000000} -%}
    {{- return(bounds[kind]) -}}
{%- endmacro %}

{#- Text as a double, or null when it is no number. Both engines read the same texts as numbers (the differential
    check above): DuckDB alone reads digits grouped with '_' ('1_000'); Spark alone reads a type suffix ('1.5d',
    '2f') and digits of other scripts (Arabic-Indic, full-width). So a number is an optional sign, ASCII digits
    with an optional decimal point and exponent, or inf, infinity or nan in any case. Money and whole numbers are
    read through it too. -#}
{% macro try_number(text) -%}
    {{ return(adapter.dispatch('try_number', 'loyalty')(text)) }}
{%- endmacro %}

{% macro default__try_number(text) -%}
    case when not contains({{ text }}, '_') then try_cast({{ text }} as double) end
{%- endmacro %}

{% macro spark__try_number(text) -%}
    case when {{ regex_contains(text, '(?i)^[+-]?((\\d+\\.?\\d*|\\.\\d+)(e[+-]?\\d+)?|inf|infinity|nan)$') }}
        then try_cast({{ text }} as double)
    end
{%- endmacro %}

{#- True when the text is a number whose absolute value exceeds raw_value_bound(kind) ('inf' included). -#}
{% macro is_out_of_range(column, kind) -%}
    coalesce(abs({{ try_number(clean_text(column)) }}) > {{ raw_value_bound(kind) }}, false)
{%- endmacro %}

{#- True when the raw text is present but is not a number ('abc', 'NaN'), or with whole, not a whole number (7.5).
    A number too large to store is a number: see is_out_of_range. -#}
{% macro is_unparseable_number(column, whole=false) -%}
    {#- written for both engines: Spark's isnan(null) is false (DuckDB's is null), and its floor() of a double is a
        bigint, so a whole number is one that equals its floor or is too large (2^52 and up) to have a fraction -#}
    {%- set number = try_number(clean_text(column)) %}
    ({{ clean_text(column) }} is not null and (
        {{ number }} is null or isnan({{ number }})
        {%- if whole %}
        or (abs({{ number }}) < 4503599627370496 and {{ number }} <> floor({{ number }}))
        {%- endif %}
    ))
{%- endmacro %}

{#- Money: a decimal with two places. '12.345' rounds to 12.35; 'abc' is null. -#}
{% macro parse_money(column) -%}
    case when {{ try_number(clean_text(column)) }} is not null then try_cast({{ clean_text(column) }} as decimal(18, 2)) end
{%- endmacro %}

{#- A whole number. '7.0' is 7; '7.5' and 'seven' are null (a plain cast to integer would round 7.5 to 8). -#}
{% macro parse_integer(column) -%}
    case
        when {{ try_number(clean_text(column)) }} = floor({{ try_number(clean_text(column)) }})
            then try_cast({{ try_number(clean_text(column)) }} as bigint)
    end
{%- endmacro %}

{#- True when the raw text is present but does not parse (as opposed to empty). -#}
{% macro is_unparseable(raw_column, parsed_expression) -%}
    ({{ clean_text(raw_column) }} is not null and ({{ parsed_expression }}) is null)
{%- endmacro %}

{#- Emails are trimmed and lower-cased, then hashed with a secret key: HMAC-SHA-256 (RFC 2104),
    sha256(outer pad || sha256(inner pad || email)), as lower-case hex. The pads come from the key
    (src/loyalty/email_hashing.py) as DuckDB variables that the dbt-duckdb plugin loyalty.email_key_plugin sets
    on every connection (on Spark, session variables: loyalty.spark_engine), so the key is never in SQL text. Without them the build stops rather than store
    unkeyed hashes. Raw emails never leave the base models. -#}
{% macro hash_email(column) -%}
    {{ return(adapter.dispatch('hash_email', 'loyalty')(column)) }}
{%- endmacro %}

{% macro default__hash_email(column) -%}
    case
        when getvariable('loyalty_email_hash_inner_pad') is null or getvariable('loyalty_email_hash_outer_pad') is null
            then {{ fail_with("'the email hash key is not set on this connection (profiles.yml plugin loyalty.email_key_plugin)'") }}
        when {{ clean_text(column) }} is not null then sha256(
            getvariable('loyalty_email_hash_outer_pad')
            || unhex(sha256(getvariable('loyalty_email_hash_inner_pad') || encode(lower({{ clean_text(column) }}))))
        )
    end
{%- endmacro %}

{#- On Spark the pads are session variables that loyalty.spark_engine declares before dbt runs (a statement that
    names an undeclared variable does not run). -#}
{% macro spark__hash_email(column) -%}
    case
        when loyalty_email_hash_inner_pad is null or loyalty_email_hash_outer_pad is null
            then {{ fail_with("'the email hash key is not set in this session (loyalty.spark_engine)'") }}
        when {{ clean_text(column) }} is not null then sha2(concat(
            loyalty_email_hash_outer_pad,
            unhex(sha2(concat(loyalty_email_hash_inner_pad, encode(lower({{ clean_text(column) }}), 'UTF-8')), 256))
        ), 256)
    end
{%- endmacro %}
