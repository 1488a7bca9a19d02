-- vw_circuit_status_daily
-- Question: how many circuits were in each API status (ACTIV, QC, REWRK, ...) on each day,
--   and how many miles were planned and units counted in each?
-- Grain: one row per snapshot_date and api_status (the circuit's status that day).
-- Source: circuit_snapshots with snapshot_type 'daily' (taken for every non-deleted,
-- non-excluded, non-CLOSE circuit, so CLOSE rarely appears), over circuits that are not
-- deleted and not excluded today (as the seed's queries filter).
-- Example:
--   SELECT snapshot_date, api_status, circuits
--   FROM vw_circuit_status_daily
--   WHERE snapshot_date >= CURRENT_DATE - 30
--   ORDER BY snapshot_date, api_status;
CREATE OR REPLACE VIEW vw_circuit_status_daily AS
SELECT
    s.snapshot_date,
    s.api_status,
    COUNT(*) AS circuits,
    SUM(s.miles_planned) AS miles_planned,
    SUM(s.total_units) AS total_units
FROM circuit_snapshots s
JOIN circuits c ON c.id = s.circuit_id
WHERE s.snapshot_type = 'daily'
  AND c.deleted_at IS NULL
  AND c.is_excluded = false
GROUP BY s.snapshot_date, s.api_status;
