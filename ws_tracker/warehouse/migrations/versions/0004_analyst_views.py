"""Analyst layer: reporting views (vw_*) and the read-only role ws_tracker_analyst.

Revision ID: 0004_analyst_views
Revises: 0003_units_synced_version
Create Date: 2026-01-21

Views
- Each view's SQL is embedded here, byte for byte the text of sql/views/<name>.sql (header
  comment included). A migration is a frozen snapshot and must not read files that later
  change; ws_tracker_tests/test_analyst_sql.py asserts the files and this revision hold the
  same text, so the two never drift. Changing a view later = edit the file AND ship a new
  revision that embeds the new text (CREATE OR REPLACE VIEW), never edit this one.
- The SQL is sent with exec_driver_sql and no parameters: PostgreSQL receives it unchanged
  (no bind-parameter or percent parsing by SQLAlchemy or psycopg).
- Downgrade drops the views without CASCADE: a user's own view built on ours makes the
  downgrade fail loudly instead of silently dropping someone's work.

Role ws_tracker_analyst (read-only, NOLOGIN: people get their own LOGIN roles IN ROLE it)
- Roles are cluster-wide and several databases may share a server, so it is created only if
  missing (DO block on pg_roles; a concurrent creation by another database's migration is
  tolerated). Creating it needs CREATEROLE; a DBA may pre-create it instead, then this
  revision only grants. An existing role is left as it is.
- In THIS database: CONNECT on the database, USAGE on schema public, SELECT on every table
  and view in public, and default privileges so tables/views the migrating role creates
  later are readable too. (Default privileges apply to objects created by the role that ran
  this revision; objects created by another role need that role's own ALTER DEFAULT
  PRIVILEGES.)
- Withheld on purpose: secrets are not analytics. user_ws_credentials (encrypted WorkStudio
  logins) gets no SELECT, and users is readable column by column except password,
  remember_token, two_factor_secret and two_factor_recovery_codes (so "SELECT * FROM users"
  is refused; list the columns, or use the views, which run with their owner's rights and
  expose names and emails only).
- No CREATE anywhere: the role is never granted CREATE, and since PostgreSQL 15 the public
  schema no longer grants CREATE to PUBLIC (the embedded server is 18), so nothing is
  revoked from PUBLIC here (that would affect every other role). On a server older than 15,
  a DBA should run REVOKE CREATE ON SCHEMA public FROM PUBLIC. PUBLIC's default TEMP on the
  database is left alone (temporary tables are harmless for analysts and vanish at logout).
  The tests assert the role cannot create a table.
- Downgrade revokes exactly what upgrade granted in this database but does NOT drop the
  role: other databases on the server may use it (and DROP ROLE would fail while any of them
  holds a privilege for it). A DBA drops it once no database needs it.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004_analyst_views"
down_revision: str | Sequence[str] | None = "0003_units_synced_version"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLE = "ws_tracker_analyst"

# users columns the analyst may read (all but the secrets); keep in step with 0001's users.
USERS_READABLE_COLUMNS = (
    "id", "name", "email", "email_verified_at", "two_factor_confirmed_at",
    "ws_credentials_fail_count", "ws_credentials_last_used_at", "ws_credentials_failed_at",
    "ws_user_guid", "ws_username", "is_ws_linked", "ws_linked_at", "default_region_id",
    "created_at", "updated_at",
)
SECRET_TABLES = ("users", "user_ws_credentials")

# (view name, SQL): the text of sql/views/<name>.sql, in creation order.
VIEWS: tuple[tuple[str, str], ...] = (
    ("vw_active_circuits_latest_aggregate", """\
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
"""),
    ("vw_regional_summary", """\
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
"""),
    ("vw_sync_history", """\
-- vw_sync_history
-- Question: which syncs ran, when, how long did they take, what did they process, and which
--   failed and why (with the Dagster run to look up)?
-- Grain: one row per sync_logs row (one per sync run), all of them: filter by time yourself.
-- duration_seconds is as the sync recorded it (NULL while a sync is still "started").
-- region_name is set when the sync was limited to one region.
-- Example (the seed's "Get sync history"):
--   SELECT sync_type, sync_status, sync_trigger, started_at, duration_seconds,
--          circuits_processed, error_message, dagster_run_id
--   FROM vw_sync_history
--   WHERE started_at >= now() - INTERVAL '7 days'
--   ORDER BY started_at DESC;
CREATE OR REPLACE VIEW vw_sync_history AS
SELECT
    s.id AS sync_log_id,
    s.sync_type,
    s.sync_status,
    s.sync_trigger,
    s.region_id,
    r.name AS region_name,
    s.api_status_filter,
    s.started_at,
    s.completed_at,
    s.duration_seconds,
    s.circuits_processed,
    s.circuits_created,
    s.circuits_updated,
    s.aggregates_created,
    s.error_message,
    s.dagster_run_id,
    s.triggered_by,
    s.summary_json
FROM sync_logs s
LEFT JOIN regions r ON r.id = s.region_id;
"""),
    ("vw_circuits_user_modifications", """\
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
"""),
    ("vw_region_daily_progress", """\
-- vw_region_daily_progress
-- Question: how did each region stand at the end of each day: circuits by status, miles
--   planned and remaining, average completion, units and permissions?
-- Grain: one row per region and aggregate_date (regional_daily_aggregates, with the region's
-- name and code). The rollup counts non-deleted, non-excluded circuits (business rules,
-- "Regional daily"). Empty until the regional rollups have run.
-- Example:
--   SELECT aggregate_date, region_name, active_circuits, miles_planned, miles_remaining
--   FROM vw_region_daily_progress
--   WHERE aggregate_date >= CURRENT_DATE - 14
--   ORDER BY region_name, aggregate_date;
CREATE OR REPLACE VIEW vw_region_daily_progress AS
SELECT
    d.region_id,
    r.name AS region_name,
    r.code AS region_code,
    d.aggregate_date,
    d.total_circuits,
    d.active_circuits,
    d.qc_circuits,
    d.rework_circuits,
    d.closed_circuits,
    d.excluded_circuits,
    d.total_miles,
    d.miles_planned,
    d.miles_remaining,
    d.avg_percent_complete,
    d.total_units,
    d.total_linear_ft,
    d.total_acres,
    d.total_trees,
    d.units_approved,
    d.units_refused,
    d.units_pending,
    d.active_planners,
    d.status_breakdown,
    d.permission_breakdown,
    d.unit_counts_by_type,
    d.updated_at
FROM regional_daily_aggregates d
JOIN regions r ON r.id = d.region_id;
"""),
    ("vw_region_weekly_progress", """\
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
"""),
    ("vw_planner_daily_progress", """\
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
"""),
    ("vw_planner_weekly_progress", """\
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
"""),
    ("vw_units_daily", """\
-- vw_units_daily
-- Question: how much work was planned across all circuits, day by day (units, linear feet,
--   acres, trees), and how do the units split into approved, refused and pending?
-- Grain: one row per aggregate_date that has circuit aggregates.
-- Source: circuit_aggregates, one record per circuit and day (the end-of-day rollup when a
-- day has one, else the day's row, so nothing is counted twice), over circuits that are not
-- deleted and not excluded (today's flags, as the seed's queries filter). Each day's totals
-- are cumulative as of that day (the circuits' planned units then), not work done that day.
-- Example:
--   SELECT aggregate_date, total_units, units_approved, units_pending
--   FROM vw_units_daily
--   WHERE aggregate_date >= CURRENT_DATE - 30
--   ORDER BY aggregate_date;
CREATE OR REPLACE VIEW vw_units_daily AS
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
    SUM(total_units) AS total_units,
    SUM(total_linear_ft) AS total_linear_ft,
    SUM(total_acres) AS total_acres,
    SUM(total_trees) AS total_trees,
    SUM(units_approved) AS units_approved,
    SUM(units_refused) AS units_refused,
    SUM(units_pending) AS units_pending
FROM day_records
GROUP BY aggregate_date;
"""),
    ("vw_miles_daily", """\
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
"""),
    ("vw_permissions_daily", """\
-- vw_permissions_daily
-- Question: how many planned units are in each landowner permission status (Approved,
--   Refused, Pending, No Contact, ...), day by day, across all circuits?
-- Grain: one row per aggregate_date and permission_status (the raw WorkStudio status; an
-- empty status is counted as "Pending"). circuits = circuits with units in that status.
-- Source: the units_by_permission jsonb of circuit_aggregates ({"Approved": 12, ...}), one
-- record per circuit and day (the end-of-day rollup when a day has one, else the day's row),
-- over circuits that are not deleted and not excluded (today's flags). A record without
-- units_by_permission (or not a json object) contributes nothing.
-- Example:
--   SELECT aggregate_date, permission_status, units
--   FROM vw_permissions_daily
--   WHERE aggregate_date = CURRENT_DATE - 1
--   ORDER BY units DESC;
CREATE OR REPLACE VIEW vw_permissions_daily AS
WITH day_records AS (
    SELECT DISTINCT ON (ca.circuit_id, ca.aggregate_date) ca.*
    FROM circuit_aggregates ca
    JOIN circuits c ON c.id = ca.circuit_id
    WHERE c.deleted_at IS NULL
      AND c.is_excluded = false
    ORDER BY ca.circuit_id, ca.aggregate_date, ca.is_rollup DESC
)
SELECT
    d.aggregate_date,
    p.permission_status,
    COUNT(*) AS circuits,
    SUM(p.units::integer) AS units
FROM day_records d
CROSS JOIN LATERAL jsonb_each_text(
    CASE WHEN jsonb_typeof(d.units_by_permission) = 'object'
         THEN d.units_by_permission
         ELSE '{}'::jsonb
    END
) AS p(permission_status, units)
GROUP BY d.aggregate_date, p.permission_status;
"""),
    ("vw_region_units_daily", """\
-- vw_region_units_daily
-- Question: per region, day by day: how many circuits, units, feet, acres, trees, how many
--   units approved, refused and pending, and how many miles planned and remaining?
-- Grain: one row per region and aggregate_date that has circuit aggregates.
-- Source: circuit_aggregates joined with circuits (the circuit's current region), one record
-- per circuit and day (the end-of-day rollup when a day has one, else the day's row), over
-- circuits that are not deleted and not excluded (today's flags). Computed live from the
-- circuit aggregates, so it is there even before the regional rollups run.
-- Example:
--   SELECT aggregate_date, region_name, total_units, units_approved, miles_planned
--   FROM vw_region_units_daily
--   WHERE aggregate_date >= CURRENT_DATE - 30
--   ORDER BY region_name, aggregate_date;
CREATE OR REPLACE VIEW vw_region_units_daily AS
WITH day_records AS (
    SELECT DISTINCT ON (ca.circuit_id, ca.aggregate_date) ca.*, c.region_id
    FROM circuit_aggregates ca
    JOIN circuits c ON c.id = ca.circuit_id
    WHERE c.deleted_at IS NULL
      AND c.is_excluded = false
    ORDER BY ca.circuit_id, ca.aggregate_date, ca.is_rollup DESC
)
SELECT
    d.region_id,
    r.name AS region_name,
    r.code AS region_code,
    d.aggregate_date,
    COUNT(*) AS circuits,
    SUM(d.total_units) AS total_units,
    SUM(d.total_linear_ft) AS total_linear_ft,
    SUM(d.total_acres) AS total_acres,
    SUM(d.total_trees) AS total_trees,
    SUM(d.units_approved) AS units_approved,
    SUM(d.units_refused) AS units_refused,
    SUM(d.units_pending) AS units_pending,
    SUM(d.total_miles) AS total_miles,
    SUM(d.miles_planned) AS miles_planned,
    SUM(d.miles_remaining) AS miles_remaining
FROM day_records d
JOIN regions r ON r.id = d.region_id
GROUP BY d.region_id, r.name, r.code, d.aggregate_date;
"""),
    ("vw_circuit_status_daily", """\
-- vw_circuit_status_daily
-- Question: how many circuits were in each API status (ACTIV, QC, REWRK, ...) on each day,
--   and how many miles were planned and units counted in each?
-- Grain: one row per snapshot_date and api_status (the circuit's status that day).
-- Source: circuit_snapshots with snapshot_type 'daily' (taken for every non-deleted,
-- non-excluded, non-CLOSE circuit, so CLOSE rarely appears), over circuits that are not
-- deleted and not excluded today (as the seed's queries filter).
-- Example:
--   SELECT snapshot_date, api_status, circuits
--   FROM vw_circuit_status_daily
--   WHERE snapshot_date >= CURRENT_DATE - 30
--   ORDER BY snapshot_date, api_status;
CREATE OR REPLACE VIEW vw_circuit_status_daily AS
SELECT
    s.snapshot_date,
    s.api_status,
    COUNT(*) AS circuits,
    SUM(s.miles_planned) AS miles_planned,
    SUM(s.total_units) AS total_units
FROM circuit_snapshots s
JOIN circuits c ON c.id = s.circuit_id
WHERE s.snapshot_type = 'daily'
  AND c.deleted_at IS NULL
  AND c.is_excluded = false
GROUP BY s.snapshot_date, s.api_status;
"""),
)

_CREATE_ROLE = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ws_tracker_analyst') THEN
        BEGIN
            CREATE ROLE ws_tracker_analyst NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- created meanwhile by the migration of another database on this server
        END;
    END IF;
END
$$
"""

# GRANT .. ON DATABASE takes a name, not an expression: build it from current_database().
_DATABASE_PRIVILEGE = """
DO $$
BEGIN
    EXECUTE '{verb} CONNECT ON DATABASE ' || quote_ident(current_database())
        || ' {direction} ws_tracker_analyst';
END
$$
"""

_GRANTS = (
    _DATABASE_PRIVILEGE.format(verb="GRANT", direction="TO"),
    "GRANT USAGE ON SCHEMA public TO ws_tracker_analyst",
    "GRANT SELECT ON ALL TABLES IN SCHEMA public TO ws_tracker_analyst",
    f"REVOKE SELECT ON {', '.join(SECRET_TABLES)} FROM ws_tracker_analyst",
    f"GRANT SELECT ({', '.join(USERS_READABLE_COLUMNS)}) ON users TO ws_tracker_analyst",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO ws_tracker_analyst",
)

_REVOKES = (
    "ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT ON TABLES FROM ws_tracker_analyst",
    # Revoking a table privilege also revokes its column privileges (users' column grant).
    "REVOKE SELECT ON ALL TABLES IN SCHEMA public FROM ws_tracker_analyst",
    "REVOKE USAGE ON SCHEMA public FROM ws_tracker_analyst",
    _DATABASE_PRIVILEGE.format(verb="REVOKE", direction="FROM"),
)


def _run(sql: str) -> None:
    # Sent as is: no parameters, so neither SQLAlchemy nor psycopg parses the text.
    op.get_bind().exec_driver_sql(sql, execution_options={"no_parameters": True})


def upgrade() -> None:
    _run(_CREATE_ROLE)
    for _name, sql in VIEWS:
        _run(sql)
    for sql in _GRANTS:  # after the views: SELECT ON ALL TABLES covers them
        _run(sql)


def downgrade() -> None:
    for name, _sql in reversed(VIEWS):
        _run(f"DROP VIEW {name}")
    for sql in _REVOKES:
        _run(sql)
