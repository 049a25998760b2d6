-- Trusted engagement_events rows: typed, normalised, deduplicated. Rows failing a check are in audit.quarantined_rows.
{{ staged_rows('base_loyalty__engagement_events') }}
