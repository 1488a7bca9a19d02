-- vw_permissions_daily
-- Question: how many planned units are in each landowner permission status (Approved,
--   Refused, Pending, No Contact, ...), day by day, across all circuits?
-- Grain: one row per aggregate_date and permission_status (the raw WorkStudio status; an
-- empty status is counted as "Pending"). circuits = circuits with units in that status.
-- Source: the units_by_permission jsonb of circuit_aggregates ({"Approved": 12, ...}), one
-- record per circuit and day (the end-of-day rollup when a day has one, else the day's row),
-- over circuits that are not deleted and not excluded (today's flags). A record without
-- units_by_permission (or not a json object) contributes nothing.
-- Example:
--   SELECT aggregate_date, permission_status, units
--   FROM vw_permissions_daily
--   WHERE aggregate_date = CURRENT_DATE - 1
--   ORDER BY units DESC;
CREATE OR REPLACE VIEW vw_permissions_daily AS
WITH day_records AS (
    SELECT DISTINCT ON (ca.circuit_id, ca.aggregate_date) ca.*
    FROM circuit_aggregates ca
    JOIN circuits c ON c.id = ca.circuit_id
    WHERE c.deleted_at IS NULL
      AND c.is_excluded = false
    ORDER BY ca.circuit_id, ca.aggregate_date, ca.is_rollup DESC
)
SELECT
    d.aggregate_date,
    p.permission_status,
    COUNT(*) AS circuits,
    SUM(p.units::integer) AS units
FROM day_records d
CROSS JOIN LATERAL jsonb_each_text(
    CASE WHEN jsonb_typeof(d.units_by_permission) = 'object'
         THEN d.units_by_permission
         ELSE '{}'::jsonb
    END
) AS p(permission_status, units)
GROUP BY d.aggregate_date, p.permission_status;
