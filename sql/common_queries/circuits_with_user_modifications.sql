SELECT
    c.work_order,
    c.title,
    c.user_modified_fields,
    c.last_user_modified_at,
    u.name as modified_by
FROM circuits c
JOIN users u ON c.last_user_modified_by = u.id
WHERE c.user_modified_fields IS NOT NULL
  AND c.user_modified_fields != '{}'::jsonb
ORDER BY c.last_user_modified_at DESC;
