-- vw_units_daily
-- Question: how much work was planned across all circuits, day by day (units, linear feet,
--   acres, trees), and how do the units split into approved, refused and pending?
-- Grain: one row per aggregate_date that has circuit aggregates.
-- Source: circuit_aggregates, one record per circuit and day (the end-of-day rollup when a
-- day has one, else the day's row, so nothing is counted twice), over circuits that are not
-- deleted and not excluded (today's flags, as the seed's queries filter). Each day's totals
-- are cumulative as of that day (the circuits' planned units then), not work done that day.
-- Example:
--   SELECT aggregate_date, total_units, units_approved, units_pending
--   FROM vw_units_daily
--   WHERE aggregate_date >= CURRENT_DATE - 30
--   ORDER BY aggregate_date;
CREATE OR REPLACE VIEW vw_units_daily AS
WITH day_records AS (
    SELECT DISTINCT ON (ca.circuit_id, ca.aggregate_date) ca.*
    FROM circuit_aggregates ca
    JOIN circuits c ON c.id = ca.circuit_id
    WHERE c.deleted_at IS NULL
      AND c.is_excluded = false
    ORDER BY ca.circuit_id, ca.aggregate_date, ca.is_rollup DESC
)
SELECT
    aggregate_date,
    COUNT(*) AS circuits,
    SUM(total_units) AS total_units,
    SUM(total_linear_ft) AS total_linear_ft,
    SUM(total_acres) AS total_acres,
    SUM(total_trees) AS total_trees,
    SUM(units_approved) AS units_approved,
    SUM(units_refused) AS units_refused,
    SUM(units_pending) AS units_pending
FROM day_records
GROUP BY aggregate_date;
