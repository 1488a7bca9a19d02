SELECT
    c.work_order,
    c.title,
    c.percent_complete,
    c.total_miles,
    c.miles_planned,
    ca.total_units,
    ca.units_approved,
    ca.aggregate_date
FROM circuits c
LEFT JOIN LATERAL (
    SELECT *
    FROM circuit_aggregates
    WHERE circuit_id = c.id
    ORDER BY aggregate_date DESC
    LIMIT 1
) ca ON true
WHERE c.api_status = 'ACTIV'
  AND c.deleted_at IS NULL
  AND c.is_excluded = false
ORDER BY c.work_order;
