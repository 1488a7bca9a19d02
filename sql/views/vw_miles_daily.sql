-- vw_miles_daily
-- Question: how many circuit miles exist, how many are planned and how many remain, day by
--   day, across all circuits?
-- Grain: one row per aggregate_date that has circuit aggregates.
-- Source: circuit_aggregates, one record per circuit and day (the end-of-day rollup when a
-- day has one, else the day's row), over circuits that are not deleted and not excluded
-- (today's flags). percent_planned = 100 * miles_planned / total_miles, 2 decimals (NULL
-- when total_miles is 0).
-- Example:
--   SELECT aggregate_date, miles_planned, miles_remaining, percent_planned
--   FROM vw_miles_daily
--   WHERE aggregate_date >= CURRENT_DATE - 30
--   ORDER BY aggregate_date;
CREATE OR REPLACE VIEW vw_miles_daily AS
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
    SUM(total_miles) AS total_miles,
    SUM(miles_planned) AS miles_planned,
    SUM(miles_remaining) AS miles_remaining,
    ROUND(100 * SUM(miles_planned) / NULLIF(SUM(total_miles), 0), 2) AS percent_planned
FROM day_records
GROUP BY aggregate_date;
