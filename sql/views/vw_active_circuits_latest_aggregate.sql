-- vw_active_circuits_latest_aggregate
-- Question: which circuits are active right now, and what did their latest aggregate say
--   (units planned, units approved, as of which day)?
-- Grain: one row per active circuit (api_status ACTIV, not deleted, not excluded).
-- The seed's common query "Get active circuits with latest aggregate" as a view, plus
-- circuit_id, job_guid, extension and the region. A circuit without any aggregate is kept
-- (aggregate columns NULL). Latest = greatest aggregate_date; should a day hold both an
-- intraday row and an end-of-day rollup, the rollup wins (the seed's query picks either).
-- Views carry no ORDER BY: order in your own query.
-- Example:
--   SELECT work_order, extension, region_name, percent_complete, total_units, aggregate_date
--   FROM vw_active_circuits_latest_aggregate
--   WHERE region_name = 'Lancaster'
--   ORDER BY work_order;
CREATE OR REPLACE VIEW vw_active_circuits_latest_aggregate AS
SELECT
    c.id AS circuit_id,
    c.job_guid,
    c.work_order,
    c.extension,
    c.region_id,
    r.name AS region_name,
    c.title,
    c.percent_complete,
    c.total_miles,
    c.miles_planned,
    ca.total_units,
    ca.units_approved,
    ca.aggregate_date
FROM circuits c
JOIN regions r ON r.id = c.region_id
LEFT JOIN LATERAL (
    SELECT *
    FROM circuit_aggregates
    WHERE circuit_id = c.id
    ORDER BY aggregate_date DESC, is_rollup DESC
    LIMIT 1
) ca ON true
WHERE c.api_status = 'ACTIV'
  AND c.deleted_at IS NULL
  AND c.is_excluded = false;
