{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key=['batch', 'line_number'],
    on_schema_change='fail') }}
-- Every CSV record that does not split into its file's fields, as the landing check found it (one row per record,
-- email-like text masked). A night's landing check reads only that night's new batches, so the records of earlier
-- batches are kept here.
select
    entity,
    batch,
    line_number,
    error,
    record_text
from {{ source('raw', 'malformed_records') }}
