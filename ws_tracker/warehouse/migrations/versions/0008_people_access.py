"""People, an audit trail, and region-scoped read access for analysts (issue 9).

Revision ID: 0008_people_access
Revises: 0007_data_imports

Tables and columns
- ``users.is_admin``: an admin's analyst login sees every region.
- ``audit_log``: one row per change a person makes to what the project owns (people, planner
  links, credentials, circuit exclusions, analyst access): who (``actor_user_id`` and the
  ``actor`` text: the --by email, else the database role), when, what (``action``,
  ``entity_type``/``entity_id``/``entity_key``), ``before`` and ``after`` (JSONB, never a
  secret). Append-only by convention: the commands only INSERT into it.
- ``analyst_logins``: PostgreSQL login name -> the user whose regions it may read.

Row-level security (RLS)
- Group roles (cluster-wide, created only when missing and never dropped, as 0004 does):
  ``ws_tracker_analyst`` (0004: SELECT on every table and view) and
  ``ws_tracker_region_scoped`` (NOLOGIN, no privileges): a login that is a member of the
  latter is region-limited in every database of the server. ``ws-tracker access grant`` makes
  a login a member of both; a login a DBA puts only into ws_tracker_analyst (0004's model)
  keeps reading everything.
- ``ws_tracker_analyst_regions(login)`` (SECURITY DEFINER, owned by the migrating role): NULL
  = every region (not a region-limited login, or its user is_admin); else the array of the
  user's region ids from user_regions, empty when the login has no user here or the user has
  no region (sees nothing). It answers only for the session's own role (or one the session
  user is a member of), so a login cannot ask about another login's regions. A session whose
  login is region-limited stays limited whatever role it switches to (SET ROLE to the group is
  refused on PostgreSQL 16+ anyway; on older servers this is what holds).
- Each covered table gets RLS ENABLEd (not FORCEd: the owner, i.e. the pipeline, keeps full
  access) and two permissive policies: ``ws_tracker_analyst_scope`` (FOR SELECT TO
  ws_tracker_analyst) with the region predicate below, and ``ws_tracker_not_analyst`` (FOR ALL
  TO PUBLIC) that is true for any role that is not a member of ws_tracker_analyst, so a
  pipeline role that is not the owner is not affected either. The function is called inside
  a scalar sub-select, which PostgreSQL evaluates once per query (an InitPlan).
- Covered: circuits and regions (by region), every table with a ``circuit_id`` column (by
  the circuit's current region, through circuits, whose own policy applies), every other table
  with a ``region_id`` column (planner and regional aggregates, user_regions, sync_logs: a
  sync of all regions has region_id NULL and is hidden from a limited login),
  unlinked_planners (a planner holding a visible circuit), audit_log (rows about visible
  circuits), analyst_logins (the login's own row); quarantined_rows, data_imports and
  import_staging_rows (raw rows of every region) are for unrestricted logins only.
  The circuit_id / region_id tables are found in the catalog when this revision runs, so the
  tables of earlier revisions (0007's too) are all covered; ws_tracker_tests/test_access.py
  fails if a later table with such a column is left without a policy.
- Every view in schema public is switched to ``security_invoker = true`` (PostgreSQL 15+), so
  a view reads its tables with the caller's rights and the caller's policies.
- Nothing is granted beyond SELECT: the analyst group still has no write privilege (0004).

Downgrade removes the policies, RLS, the function, the tables and the column, and resets the
views; the roles stay (other databases on the server may use them).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP

revision: str = "0008_people_access"
down_revision: str | Sequence[str] | None = "0007_data_imports"
branch_labels = None
depends_on = None

TSTZ = TIMESTAMP(timezone=True)
NOW = sa.text("now()")
ANALYST = "ws_tracker_analyst"
SCOPED = "ws_tracker_region_scoped"
SCOPE_POLICY = "ws_tracker_analyst_scope"
OPEN_POLICY = "ws_tracker_not_analyst"
FUNCTION = "ws_tracker_analyst_regions"

_CREATE_SCOPED_ROLE = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ws_tracker_region_scoped') THEN
        BEGIN
            CREATE ROLE ws_tracker_region_scoped NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- created meanwhile by the migration of another database on this server
        END;
    END IF;
END
$$
"""

_CREATE_FUNCTION = """
CREATE FUNCTION ws_tracker_analyst_regions(p_login name) RETURNS bigint[]
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
SELECT CASE
    WHEN NOT pg_has_role(session_user, p_login, 'MEMBER') THEN '{}'::bigint[]
    WHEN NOT pg_has_role(p_login, 'ws_tracker_region_scoped', 'MEMBER')
         AND NOT (pg_has_role(session_user, 'ws_tracker_region_scoped', 'MEMBER')
                  AND NOT s.rolsuper) THEN NULL
    WHEN EXISTS (SELECT 1 FROM analyst_logins a JOIN users u ON u.id = a.user_id
                 WHERE a.login = p_login AND u.is_admin) THEN NULL
    ELSE coalesce((SELECT array_agg(ur.region_id ORDER BY ur.region_id)
                   FROM analyst_logins a JOIN user_regions ur ON ur.user_id = a.user_id
                   WHERE a.login = p_login), '{}'::bigint[])
END
FROM pg_roles s WHERE s.rolname = session_user
$$
"""

_FUNCTION_GRANTS = (
    "REVOKE ALL ON FUNCTION ws_tracker_analyst_regions(name) FROM PUBLIC",
    "GRANT EXECUTE ON FUNCTION ws_tracker_analyst_regions(name) TO ws_tracker_analyst",
)

# The region predicates. ALL_REGIONS: the login is not limited. REGIONS: the array.
ALL_REGIONS = "(SELECT ws_tracker_analyst_regions(current_user)) IS NULL"
# CAST: "= ANY (sub-select)" would compare with the rows of a set, not an array's elements.
REGIONS = "CAST((SELECT ws_tracker_analyst_regions(current_user)) AS bigint[])"
VISIBLE_CIRCUITS = f"(SELECT vc.id FROM circuits vc WHERE vc.region_id = ANY ({REGIONS}))"

BY_REGION = f"{ALL_REGIONS} OR region_id = ANY ({REGIONS})"
BY_CIRCUIT = f"{ALL_REGIONS} OR circuit_id IN {VISIBLE_CIRCUITS}"

# Tables whose predicate is not the plain circuit_id / region_id one.
SPECIAL: dict[str, str] = {
    "regions": f"{ALL_REGIONS} OR id = ANY ({REGIONS})",
    "circuits": BY_REGION,
    "unlinked_planners": (
        f"{ALL_REGIONS} OR EXISTS (SELECT 1 FROM circuits pc WHERE pc.region_id = ANY ({REGIONS})"
        " AND lower(btrim(pc.taken_by)) = lower(btrim(unlinked_planners.ws_username)))"
    ),
    "audit_log": f"{ALL_REGIONS} OR (entity_type = 'circuit' AND entity_id IN {VISIBLE_CIRCUITS})",
    "analyst_logins": f"{ALL_REGIONS} OR login = current_user",
    # Diagnostics and import files hold raw rows of every region's circuits: unrestricted
    # logins only.
    "quarantined_rows": ALL_REGIONS,
    "data_imports": ALL_REGIONS,
    "import_staging_rows": ALL_REGIONS,
}
# In a sub-select: evaluated once per query, not once per row.
NOT_ANALYST = "(SELECT NOT pg_has_role(current_user, 'ws_tracker_analyst', 'MEMBER'))"


def _run(sql: str) -> None:
    # Sent as is: no parameters, so neither SQLAlchemy nor psycopg parses the text.
    op.get_bind().exec_driver_sql(sql, execution_options={"no_parameters": True})


def _quote(name: str) -> str:
    return op.get_bind().dialect.identifier_preparer.quote(name)


def _tables_with(column: str) -> set[str]:
    return set(op.get_bind().execute(sa.text(
        "SELECT c.table_name FROM information_schema.columns c"
        " JOIN information_schema.tables t ON t.table_schema = c.table_schema"
        "  AND t.table_name = c.table_name"
        " WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'"
        "  AND c.column_name = :col"), {"col": column}).scalars())


def covered_tables() -> dict[str, str]:
    """Table -> the predicate of its analyst policy."""
    out = {t: BY_REGION for t in _tables_with("region_id")}
    out.update({t: BY_CIRCUIT for t in _tables_with("circuit_id")})
    existing = _tables_with("id")
    out.update({t: p for t, p in SPECIAL.items() if t in existing})
    return out


def _views() -> list[str]:
    return sorted(op.get_bind().execute(sa.text(
        "SELECT viewname FROM pg_views WHERE schemaname = 'public'")).scalars())


def upgrade() -> None:
    op.add_column("users", sa.Column("is_admin", sa.Boolean, nullable=False,
                                     server_default=sa.text("false")))

    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
        sa.Column("occurred_at", TSTZ, nullable=False, server_default=NOW),
        sa.Column("actor_user_id", sa.BigInteger, nullable=True),
        sa.Column("actor", sa.String, nullable=False),
        sa.Column("action", sa.String(50), nullable=False),
        sa.Column("entity_type", sa.String(30), nullable=False),
        sa.Column("entity_id", sa.BigInteger, nullable=True),
        sa.Column("entity_key", sa.String, nullable=True),
        sa.Column("before", JSONB, nullable=True),
        sa.Column("after", JSONB, nullable=True),
        sa.ForeignKeyConstraint(["actor_user_id"], ["users.id"], ondelete="SET NULL",
                                name="audit_log_actor_user_id_foreign"),
    )
    op.create_index("audit_log_entity_type_entity_id_index", "audit_log",
                    ["entity_type", "entity_id"])
    op.create_index("audit_log_occurred_at_index", "audit_log", ["occurred_at"])

    op.create_table(
        "analyst_logins",
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
        sa.Column("login", sa.String(63), nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("granted_by", sa.BigInteger, nullable=True),
        sa.Column("granted_at", TSTZ, nullable=False, server_default=NOW),
        sa.Column("created_at", TSTZ, nullable=True, server_default=NOW),
        sa.Column("updated_at", TSTZ, nullable=True, server_default=NOW),
        sa.UniqueConstraint("login", name="analyst_logins_login_unique"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE",
                                name="analyst_logins_user_id_foreign"),
        sa.ForeignKeyConstraint(["granted_by"], ["users.id"], ondelete="SET NULL",
                                name="analyst_logins_granted_by_foreign"),
    )
    op.create_index("analyst_logins_user_id_index", "analyst_logins", ["user_id"])

    _run(_CREATE_SCOPED_ROLE)
    _run(_CREATE_FUNCTION)
    for sql in _FUNCTION_GRANTS:
        _run(sql)
    for table, predicate in sorted(covered_tables().items()):
        t = _quote(table)
        _run(f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY")
        _run(f"CREATE POLICY {SCOPE_POLICY} ON {t} AS PERMISSIVE FOR SELECT TO {ANALYST}"
             f" USING ({predicate})")
        _run(f"CREATE POLICY {OPEN_POLICY} ON {t} AS PERMISSIVE FOR ALL TO PUBLIC"
             f" USING ({NOT_ANALYST}) WITH CHECK ({NOT_ANALYST})")
    for view in _views():
        _run(f"ALTER VIEW {_quote(view)} SET (security_invoker = true)")


def downgrade() -> None:
    for view in _views():
        _run(f"ALTER VIEW {_quote(view)} RESET (security_invoker)")
    tables = sorted(op.get_bind().execute(sa.text(
        "SELECT DISTINCT tablename FROM pg_policies WHERE schemaname = 'public'"
        " AND policyname IN (:a, :b)"), {"a": SCOPE_POLICY, "b": OPEN_POLICY}).scalars())
    for table in tables:
        t = _quote(table)
        _run(f"DROP POLICY IF EXISTS {SCOPE_POLICY} ON {t}")
        _run(f"DROP POLICY IF EXISTS {OPEN_POLICY} ON {t}")
        _run(f"ALTER TABLE {t} DISABLE ROW LEVEL SECURITY")
    _run("DROP FUNCTION ws_tracker_analyst_regions(name)")
    op.drop_table("analyst_logins")
    op.drop_table("audit_log")
    op.drop_column("users", "is_admin")
