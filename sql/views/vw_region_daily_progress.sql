-- vw_region_daily_progress
-- Question: how did each region stand at the end of each day: circuits by status, miles
--   planned and remaining, average completion, units and permissions?
-- Grain: one row per region and aggregate_date (regional_daily_aggregates, with the region's
-- name and code). The rollup counts non-deleted, non-excluded circuits (business rules,
-- "Regional daily"). Empty until the regional rollups have run.
-- Example:
--   SELECT aggregate_date, region_name, active_circuits, miles_planned, miles_remaining
--   FROM vw_region_daily_progress
--   WHERE aggregate_date >= CURRENT_DATE - 14
--   ORDER BY region_name, aggregate_date;
CREATE OR REPLACE VIEW vw_region_daily_progress AS
SELECT
    d.region_id,
    r.name AS region_name,
    r.code AS region_code,
    d.aggregate_date,
    d.total_circuits,
    d.active_circuits,
    d.qc_circuits,
    d.rework_circuits,
    d.closed_circuits,
    d.excluded_circuits,
    d.total_miles,
    d.miles_planned,
    d.miles_remaining,
    d.avg_percent_complete,
    d.total_units,
    d.total_linear_ft,
    d.total_acres,
    d.total_trees,
    d.units_approved,
    d.units_refused,
    d.units_pending,
    d.active_planners,
    d.status_breakdown,
    d.permission_breakdown,
    d.unit_counts_by_type,
    d.updated_at
FROM regional_daily_aggregates d
JOIN regions r ON r.id = d.region_id;
