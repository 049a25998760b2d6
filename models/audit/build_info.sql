-- One row: how this warehouse was built. The nightly flow reads build_fingerprint from the published warehouse to
-- decide whether tonight may build on it incrementally (same project, seeds, settings and engine) or must rebuild.
select
    '{{ night_value("build_fingerprint", "") }}' as build_fingerprint,
    '{{ night_value("build_mode", "full") }}' as build_mode,
    {{ as_of_date() }} as as_of_date,
    '{{ var("reporting_timezone") }}' as reporting_timezone,
    '{{ var("reporting_currency") }}' as reporting_currency,
    '{{ dbt_version }}' as dbt_version,
    '{{ target.type }}' as engine,
    cast(version() as {{ dbt.type_string() }}) as engine_version,
    {{ utc_now() }} as built_at
