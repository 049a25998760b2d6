{{ config(
    materialized=incremental_materialization(),
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{% if incremental_run() %}delete from {{ this }} where batch in (select batch from {{ source('raw', 'landed_files') }} where is_new){% endif %}"
) }}
-- Every CSV record that cannot be read, as the landing check found it (one row per record, with its reason; the text
-- only of records without an '@'). An incremental night's landing check reads only the batches it has not loaded
-- (and the small entities' files, which are read every night): the records of the batches read tonight replace
-- theirs, those of earlier batches stay.
select
    entity,
    batch,
    line_number,
    reason,
    error,
    record_text
from {{ source('raw', 'malformed_records') }}
