-- vw_planner_daily_progress
-- Question: what did each planner do on each day, in each region: units assessed, feet,
--   acres, trees, stations, span miles, on which circuits?
-- Grain: one row per planner, region and day (planner_daily_aggregates). Work done that day,
-- not cumulative totals. user_id, user_name and user_email are set when the planner matches
-- a user; planners without a user still appear (those three NULL), under planner_name.
-- circuit_breakdown is {work_order or "work_order/extension": {...}, ...}.
-- Empty until the planner rollups have run.
-- Example:
--   SELECT aggregate_date, planner_name, user_email, region_name, total_units_assessed,
--          span_miles
--   FROM vw_planner_daily_progress
--   WHERE aggregate_date >= CURRENT_DATE - 7
--   ORDER BY aggregate_date, planner_name;
CREATE OR REPLACE VIEW vw_planner_daily_progress AS
SELECT
    p.planner_name,
    p.user_id,
    u.name AS user_name,
    u.email AS user_email,
    p.region_id,
    r.name AS region_name,
    r.code AS region_code,
    p.aggregate_date,
    p.circuits_worked,
    p.total_units_assessed,
    p.total_linear_ft,
    p.total_acres,
    p.total_trees,
    p.stations_worked,
    p.span_miles,
    p.circuit_breakdown,
    p.updated_at
FROM planner_daily_aggregates p
JOIN regions r ON r.id = p.region_id
LEFT JOIN users u ON u.id = p.user_id;
