-- One row per landed raw file (batch) of every entity, as the landing check counted it: records read, malformed
-- records, size and modification time (how a later night recognises a file it has already loaded). raw_reconciliation
-- takes raw_rows from here, counted on the files themselves.
select
    entity,
    batch,
    size_bytes,
    mtime_ns,
    raw_rows,
    malformed_records,
    is_new as is_new_tonight
from {{ source('raw', 'landed_files') }}
