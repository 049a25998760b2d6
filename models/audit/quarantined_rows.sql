-- Every raw row that could not be trusted, with the entity, its key, the raw row as it arrived and why.
-- Exact duplicate copies are not here: they are collapsed (see raw_reconciliation.collapsed_duplicates).
{% for entity in raw_entities() %}
select
    '{{ entity }}' as entity,
    _record_key as record_key,
    _quarantine_reason as reason_code,
    _raw_row as raw_row
from {{ ref('base_loyalty__' ~ entity) }}
where _copy_number = 1 and _quarantine_reason is not null
{% if not loop.last %}union all{% endif %}
{% endfor %}
