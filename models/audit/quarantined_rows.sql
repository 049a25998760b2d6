-- Every raw row that could not be trusted, with the entity, the batch (file) it came in, its key, the raw row as it
-- arrived and why. Exact duplicate copies are not here: they are collapsed (raw_reconciliation.collapsed_duplicates).
-- CSV records that cannot even be read come from the landing check (base_loyalty__malformed_records).
select
    entity,
    batch,
    'line ' || cast(line_number as {{ dbt.type_string() }}) as record_key,
    reason as reason_code,
    {{ row_json(row_struct(['line_number', 'error', 'record_text'])) }} as raw_row
from {{ ref('base_loyalty__malformed_records') }}

union all
{% for entity in raw_entities() %}
select
    '{{ entity }}' as entity,
    _batch as batch,
    _record_key as record_key,
    _quarantine_reason as reason_code,
    _raw_row as raw_row
from {{ ref('base_loyalty__' ~ entity) }}
where _copy_number = 1 and _quarantine_reason is not null
{% if not loop.last %}union all{% endif %}
{% endfor %}
