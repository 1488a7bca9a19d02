-- vw_region_units_daily
-- Question: per region, day by day: how many circuits, units, feet, acres, trees, how many
--   units approved, refused and pending, and how many miles planned and remaining?
-- Grain: one row per region and aggregate_date that has circuit aggregates.
-- Source: circuit_aggregates joined with circuits (the circuit's current region), one record
-- per circuit and day (the end-of-day rollup when a day has one, else the day's row), over
-- circuits that are not deleted and not excluded (today's flags). Computed live from the
-- circuit aggregates, so it is there even before the regional rollups run.
-- Example:
--   SELECT aggregate_date, region_name, total_units, units_approved, miles_planned
--   FROM vw_region_units_daily
--   WHERE aggregate_date >= CURRENT_DATE - 30
--   ORDER BY region_name, aggregate_date;
CREATE OR REPLACE VIEW vw_region_units_daily AS
WITH day_records AS (
    SELECT DISTINCT ON (ca.circuit_id, ca.aggregate_date) ca.*, c.region_id
    FROM circuit_aggregates ca
    JOIN circuits c ON c.id = ca.circuit_id
    WHERE c.deleted_at IS NULL
      AND c.is_excluded = false
    ORDER BY ca.circuit_id, ca.aggregate_date, ca.is_rollup DESC
)
SELECT
    d.region_id,
    r.name AS region_name,
    r.code AS region_code,
    d.aggregate_date,
    COUNT(*) AS circuits,
    SUM(d.total_units) AS total_units,
    SUM(d.total_linear_ft) AS total_linear_ft,
    SUM(d.total_acres) AS total_acres,
    SUM(d.total_trees) AS total_trees,
    SUM(d.units_approved) AS units_approved,
    SUM(d.units_refused) AS units_refused,
    SUM(d.units_pending) AS units_pending,
    SUM(d.total_miles) AS total_miles,
    SUM(d.miles_planned) AS miles_planned,
    SUM(d.miles_remaining) AS miles_remaining
FROM day_records d
JOIN regions r ON r.id = d.region_id
GROUP BY d.region_id, r.name, r.code, d.aggregate_date;
