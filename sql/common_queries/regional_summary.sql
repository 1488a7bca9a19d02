SELECT
    r.name as region_name,
    COUNT(CASE WHEN c.api_status = 'ACTIV' THEN 1 END) as active_circuits,
    COUNT(CASE WHEN c.api_status = 'QC' THEN 1 END) as qc_circuits,
    SUM(c.total_miles) as total_miles,
    SUM(c.miles_planned) as miles_planned,
    AVG(c.percent_complete) as avg_completion
FROM regions r
LEFT JOIN circuits c ON c.region_id = r.id
    AND c.deleted_at IS NULL
    AND c.is_excluded = false
WHERE r.is_active = true
GROUP BY r.id, r.name
ORDER BY r.sort_order;
