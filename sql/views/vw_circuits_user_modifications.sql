-- vw_circuits_user_modifications
-- Question: which circuits have fields a person edited (kept safe from normal syncs), which
--   fields, when, and by whom?
-- Grain: one row per circuit with a non-empty user_modified_fields.
-- The seed's common query "Find circuits with user modifications" as a view, but with a LEFT
-- JOIN on users: an edit whose user is unknown or was deleted still shows (modified_by NULL),
-- where the seed's inner join would hide it. Like the seed, deleted and excluded circuits
-- are not filtered out. user_modified_fields is
--   {"field": {"modified_at": ..., "modified_by": user id, "original_value": ...}, ...}.
-- Example:
--   SELECT work_order, title, modified_by, last_user_modified_at,
--          user_modified_fields -> 'title' ->> 'original_value' AS original_title
--   FROM vw_circuits_user_modifications
--   ORDER BY last_user_modified_at DESC;
CREATE OR REPLACE VIEW vw_circuits_user_modifications AS
SELECT
    c.id AS circuit_id,
    c.work_order,
    c.extension,
    c.title,
    c.user_modified_fields,
    c.last_user_modified_at,
    c.last_user_modified_by,
    u.name AS modified_by
FROM circuits c
LEFT JOIN users u ON c.last_user_modified_by = u.id
WHERE c.user_modified_fields IS NOT NULL
  AND c.user_modified_fields != '{}'::jsonb;
