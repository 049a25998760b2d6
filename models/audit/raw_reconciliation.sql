-- Proof that no raw row is lost: for each entity, raw_rows = staged_rows + quarantined_rows + collapsed_duplicates
-- (tested). raw_rows is counted on the raw files themselves by the landing check (landed_batches: the records the
-- file reader accepts plus the malformed records it set aside), not on a model derived from them.
{% for entity in raw_entities() %}
select
    '{{ entity }}' as entity,
    (
        select coalesce(sum(raw_rows + malformed_records), 0) from {{ ref('landed_batches') }}
        where entity = '{{ entity }}'
    ) as raw_rows,
    (select count(*) from {{ ref('stg_loyalty__' ~ entity) }}) as staged_rows,
    (
        select count(*) from {{ ref('quarantined_rows') }}
        where entity = '{{ entity }}'
    ) as quarantined_rows,
    (
        select count(*) from {{ ref('base_loyalty__' ~ entity) }}
        where _copy_number > 1
    ) as collapsed_duplicates
{% if not loop.last %}union all{% endif %}
{% endfor %}
