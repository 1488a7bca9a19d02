-- vw_planner_weekly_progress
-- Question: per planner, region and week (Sunday to Saturday): how many days worked, how
--   much assessed, how many miles planned during the week, and was the weekly target met?
-- Grain: one row per planner, region and week (planner_weekly_aggregates; week_ending is the
-- Saturday). miles_delta = miles planned at week end minus at week start over the planner's
-- circuits; met_weekly_target = miles_delta reached the target. user_id, user_name and
-- user_email are set when the planner matches a user, else NULL.
-- Empty until the planner rollups have run.
-- Example:
--   SELECT week_ending, planner_name, user_email, days_worked, miles_delta, met_weekly_target
--   FROM vw_planner_weekly_progress
--   ORDER BY week_ending DESC, planner_name;
CREATE OR REPLACE VIEW vw_planner_weekly_progress AS
SELECT
    p.planner_name,
    p.user_id,
    u.name AS user_name,
    u.email AS user_email,
    p.region_id,
    r.name AS region_name,
    r.code AS region_code,
    p.week_starting,
    p.week_ending,
    p.days_worked,
    p.circuits_worked,
    p.total_units_assessed,
    p.total_linear_ft,
    p.total_acres,
    p.total_trees,
    p.stations_worked,
    p.span_miles,
    p.miles_delta,
    p.met_weekly_target,
    p.daily_breakdown,
    p.updated_at
FROM planner_weekly_aggregates p
JOIN regions r ON r.id = p.region_id
LEFT JOIN users u ON u.id = p.user_id;
