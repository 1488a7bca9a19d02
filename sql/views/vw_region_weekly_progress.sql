-- vw_region_weekly_progress
-- Question: how did each region end each week (Sunday to Saturday), and how much was added
--   during the week (units, miles planned)?
-- Grain: one row per region and week (week_ending is the Saturday; regional_weekly_aggregates
-- with the region's name and code). Totals are as of the week's end; daily_breakdown is
--   {"YYYY-MM-DD": {"circuits_active": n, "miles_planned": x, "units_added": n}, ...}.
-- Empty until the weekly rollups have run.
-- Example:
--   SELECT week_ending, region_name, active_circuits, miles_planned, miles_delta, units_added
--   FROM vw_region_weekly_progress
--   ORDER BY week_ending DESC, region_name;
CREATE OR REPLACE VIEW vw_region_weekly_progress AS
SELECT
    w.region_id,
    r.name AS region_name,
    r.code AS region_code,
    w.week_starting,
    w.week_ending,
    w.total_circuits,
    w.active_circuits,
    w.qc_circuits,
    w.rework_circuits,
    w.closed_circuits,
    w.excluded_circuits,
    w.total_miles,
    w.miles_planned,
    w.miles_remaining,
    w.avg_percent_complete,
    w.total_units,
    w.total_linear_ft,
    w.total_acres,
    w.total_trees,
    w.units_approved,
    w.units_refused,
    w.units_pending,
    w.active_planners,
    w.units_added,
    w.miles_delta,
    w.daily_breakdown,
    w.status_breakdown,
    w.updated_at
FROM regional_weekly_aggregates w
JOIN regions r ON r.id = w.region_id;
