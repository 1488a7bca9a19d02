SELECT
    sync_type,
    sync_status,
    sync_trigger,
    started_at,
    duration_seconds,
    circuits_processed,
    circuits_created,
    circuits_updated,
    error_message
FROM sync_logs
WHERE started_at >= NOW() - INTERVAL '7 days'
ORDER BY started_at DESC;
