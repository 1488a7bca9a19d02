-- vw_sync_history
-- Question: which syncs ran, when, how long did they take, what did they process, and which
--   failed and why (with the Dagster run to look up)?
-- Grain: one row per sync_logs row (one per sync run), all of them: filter by time yourself.
-- duration_seconds is as the sync recorded it (NULL while a sync is still "started").
-- region_name is set when the sync was limited to one region.
-- Example (the seed's "Get sync history"):
--   SELECT sync_type, sync_status, sync_trigger, started_at, duration_seconds,
--          circuits_processed, error_message, dagster_run_id
--   FROM vw_sync_history
--   WHERE started_at >= now() - INTERVAL '7 days'
--   ORDER BY started_at DESC;
CREATE OR REPLACE VIEW vw_sync_history AS
SELECT
    s.id AS sync_log_id,
    s.sync_type,
    s.sync_status,
    s.sync_trigger,
    s.region_id,
    r.name AS region_name,
    s.api_status_filter,
    s.started_at,
    s.completed_at,
    s.duration_seconds,
    s.circuits_processed,
    s.circuits_created,
    s.circuits_updated,
    s.aggregates_created,
    s.error_message,
    s.dagster_run_id,
    s.triggered_by,
    s.summary_json
FROM sync_logs s
LEFT JOIN regions r ON r.id = s.region_id;
