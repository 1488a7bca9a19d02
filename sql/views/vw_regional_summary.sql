-- vw_regional_summary
-- Question: per active region, how many circuits are active or in QC, how many miles do
--   they cover, how many are planned, and how complete are they on average (today)?
-- Grain: one row per active region (regions.is_active), also regions without circuits.
-- The seed's common query "Get regional summary" as a view, plus region_id, region_code and
-- sort_order (order by sort_order for the seed's order). Counts only circuits that are not
-- deleted and not excluded; sums and the average are NULL for a region without circuits.
-- Example:
--   SELECT region_name, active_circuits, qc_circuits, miles_planned, total_miles
--   FROM vw_regional_summary
--   ORDER BY sort_order;
CREATE OR REPLACE VIEW vw_regional_summary AS
SELECT
    r.id AS region_id,
    r.code AS region_code,
    r.sort_order,
    r.name AS region_name,
    COUNT(CASE WHEN c.api_status = 'ACTIV' THEN 1 END) AS active_circuits,
    COUNT(CASE WHEN c.api_status = 'QC' THEN 1 END) AS qc_circuits,
    SUM(c.total_miles) AS total_miles,
    SUM(c.miles_planned) AS miles_planned,
    AVG(c.percent_complete) AS avg_completion
FROM regions r
LEFT JOIN circuits c ON c.region_id = r.id
    AND c.deleted_at IS NULL
    AND c.is_excluded = false
WHERE r.is_active = true
GROUP BY r.id, r.code, r.sort_order, r.name;
