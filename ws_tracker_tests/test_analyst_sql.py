"""The analyst layer (migration 0004_analyst_views): the sql/views files, the views they
create, their numbers on hand-inserted rows, and the read-only role ws_tracker_analyst.

Expected values are hand-computed from the rows inserted here (see ``data``), never read back
from the views themselves.
"""

from __future__ import annotations

import importlib.util
import re
import secrets
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from ws_tracker.warehouse import migrate
from ws_tracker.warehouse.engine import make_engine, parse, with_database

REPO = Path(__file__).resolve().parents[1]
VIEWS_DIR = REPO / "sql" / "views"
QUERIES_DIR = REPO / "sql" / "common_queries"
MIGRATION_FILE = (
    REPO / "ws_tracker" / "warehouse" / "migrations" / "versions" / "0004_analyst_views.py"
)
REVISION = "0004_analyst_views"
ROLE = "ws_tracker_analyst"

EXPECTED_VIEWS = {
    "vw_active_circuits_latest_aggregate",
    "vw_regional_summary",
    "vw_sync_history",
    "vw_circuits_user_modifications",
    "vw_region_daily_progress",
    "vw_region_weekly_progress",
    "vw_planner_daily_progress",
    "vw_planner_weekly_progress",
    "vw_units_daily",
    "vw_miles_daily",
    "vw_permissions_daily",
    "vw_region_units_daily",
    "vw_circuit_status_daily",
}

D4, D5 = date(2026, 1, 4), date(2026, 1, 5)


def _migration():
    spec = importlib.util.spec_from_file_location("migration_0004", MIGRATION_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _norm(text: str) -> str:
    return " ".join(text.split())


def _admin_exec(server_url: str, sql: str) -> None:
    eng = make_engine(with_database(server_url, "postgres"), isolation_level="AUTOCOMMIT",
                      poolclass=NullPool)
    try:
        with eng.connect() as conn:
            conn.execute(sa.text(sql))
    finally:
        eng.dispose()


# ------------------------------------------------------------------------------ the files

def test_migration_follows_0003_in_the_single_chain():
    m = _migration()
    assert m.revision == REVISION
    assert m.down_revision == "0003_units_synced_version"
    assert len(migrate.heads()) == 1


def test_view_files_equal_the_migration_text():
    files = {p.stem: p.read_text() for p in VIEWS_DIR.glob("*.sql")}
    embedded = dict(_migration().VIEWS)
    assert set(files) == EXPECTED_VIEWS
    assert set(embedded) == EXPECTED_VIEWS
    for name in sorted(EXPECTED_VIEWS):
        assert _norm(files[name]) == _norm(embedded[name]), f"{name}: file and migration differ"


@pytest.mark.parametrize("name", sorted(EXPECTED_VIEWS))
def test_view_file_is_one_documented_view(name):
    text = (VIEWS_DIR / f"{name}.sql").read_text()
    statements = re.findall(r"CREATE\s+OR\s+REPLACE\s+VIEW\s+(\w+)\s+AS", text, re.I)
    assert statements == [name]
    header = text[: text.index("CREATE OR REPLACE VIEW")]
    assert all(line.startswith("--") for line in header.splitlines()), "header is comments"
    assert "-- Question:" in header and "-- Grain:" in header and "-- Example" in header
    example = header[header.index("-- Example"):]
    assert f"FROM {name}" in example
    # one statement: the body has a single semicolon, at its end
    body = text[len(header):]
    assert body.rstrip().endswith(";") and body.count(";") == 1


def test_view_files_run_standalone(engine):
    # CREATE OR REPLACE with the file's own text, byte for byte, on a migrated database.
    with engine.begin() as conn:
        for path in sorted(VIEWS_DIR.glob("*.sql")):
            conn.exec_driver_sql(path.read_text())


# ------------------------------------------------------------------------------ existence

def _public_views(conn) -> set[str]:
    return set(conn.execute(sa.text(
        "SELECT viewname FROM pg_views WHERE schemaname = 'public'")).scalars())


def test_every_view_exists_after_migration(engine):
    with engine.connect() as conn:
        assert _public_views(conn) == EXPECTED_VIEWS


EMPTY_ROWS = {name: 0 for name in EXPECTED_VIEWS} | {"vw_regional_summary": 7}


@pytest.mark.parametrize("name", sorted(EXPECTED_VIEWS))
def test_every_view_selects_on_an_empty_database(engine, name):
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT * FROM {name}")).all()
    # Only the seeded regions exist: the regional summary lists each active one.
    assert len(rows) == EMPTY_ROWS[name]


# ------------------------------------------------------------------------------ data

@pytest.fixture
def data(engine):
    """Six circuits, their aggregates, snapshots, sync logs and one row of each rollup table.

    A  2025-0001 @  CEN ACTIV 10/4 mi 40 %  edited by Derek
    B  2025-0002 A  CEN ACTIV  6/3 mi 50 %  edited, no user recorded
    C  2025-0003 @  LAN QC     5/5 mi 100 %
    D  2025-0004 @  CEN ACTIV  excluded
    E  2025-0005 @  LAN ACTIV  deleted
    F  2025-0006 @  LAN ACTIV  no aggregates, user_modified_fields = {}
    plus an inactive region RET.
    """
    with engine.begin() as conn:
        region = {c: i for c, i in conn.execute(sa.text("SELECT code, id FROM regions"))}
        region["RET"] = conn.execute(sa.text(
            "INSERT INTO regions (name, code, sort_order, is_active) "
            "VALUES ('Retired', 'RET', 99, false) RETURNING id")).scalar_one()
        uid = conn.execute(sa.text(
            "INSERT INTO users (name, email, password) "
            "VALUES ('Derek Cinicola', 'derek@example.com', 'x') RETURNING id")).scalar_one()
        ins = sa.text(
            "INSERT INTO circuits (job_guid, work_order, extension, region_id, title, "
            "api_modified_date, api_status, total_miles, miles_planned, percent_complete, "
            "is_excluded, deleted_at, user_modified_fields, last_user_modified_at, "
            "last_user_modified_by) VALUES (:g, :wo, :ext, :r, :t, DATE '2026-01-05', :s, "
            ":tm, :mp, :pc, :x, CAST(:del AS timestamptz), CAST(:umf AS jsonb), "
            "CAST(:lma AS timestamptz), :lmb) RETURNING id")
        edit = '{"title": {"modified_at": "2026-01-15T10:30:00Z", "modified_by": %s, ' \
               '"original_value": "OLD TITLE"}}'
        rows = {
            "A": ("{G-A}", "2025-0001", "@", "CEN", "LINE A", "ACTIV", 10, 4, 40, False, None,
                  edit % uid, "2026-01-15T10:30:00Z", uid),
            "B": ("{G-B}", "2025-0002", "A", "CEN", "LINE B", "ACTIV", 6, 3, 50, False, None,
                  edit % 999, "2026-01-16T08:00:00Z", None),
            "C": ("{G-C}", "2025-0003", "@", "LAN", "LINE C", "QC", 5, 5, 100, False, None,
                  None, None, None),
            "D": ("{G-D}", "2025-0004", "@", "CEN", "LINE D", "ACTIV", 8, 2, 25, True, None,
                  None, None, None),
            "E": ("{G-E}", "2025-0005", "@", "LAN", "LINE E", "ACTIV", 7, 1, 10, False,
                  "2026-01-05T12:00:00Z", None, None, None),
            "F": ("{G-F}", "2025-0006", "@", "LAN", "LINE F", "ACTIV", 2, 0, 0, False, None,
                  "{}", None, None),
        }
        cid = {}
        for key, (g, wo, ext, r, t, s, tm, mp, pc, x, dl, umf, lma, lmb) in rows.items():
            cid[key] = conn.execute(ins, {
                "g": g, "wo": wo, "ext": ext, "r": region[r], "t": t, "s": s, "tm": tm,
                "mp": mp, "pc": pc, "x": x, "del": dl, "umf": umf, "lma": lma, "lmb": lmb,
            }).scalar_one()

        agg = sa.text(
            "INSERT INTO circuit_aggregates (circuit_id, aggregate_date, is_rollup, total_miles, "
            "miles_planned, miles_remaining, total_units, total_linear_ft, total_acres, "
            "total_trees, units_approved, units_refused, units_pending, units_by_permission) "
            "VALUES (:c, :d, false, :tm, :mp, :mr, :u, :lf, :ac, :tr, :ap, :rf, :pe, "
            "CAST(:ubp AS jsonb))")
        aggregates = [
            # circuit, day, miles (total, planned, remaining), units, lf, acres, trees,
            # approved, refused, pending, units_by_permission
            ("A", D4, 10, 3, 7, 10, "100.50", "1.25", 2, 4, 1, 5,
             '{"Approved": 4, "Refused": 1, "Pending": 5}'),
            ("A", D5, 10, 4, 6, 12, "120", "1.5", 3, 6, 1, 5,
             '{"Approved": 6, "Refused": 1, "Pending": 5}'),
            ("B", D5, 6, 3, 3, 3, "30", "0", 0, 1, 0, 2, '{"Approved": 1, "Pending": 2}'),
            ("C", D4, 5, 5, 0, 7, "0", "2", 1, 7, 0, 0, '"not an object"'),
            ("C", D5, 5, 5, 0, 7, "0", "2", 1, 7, 0, 0, '{"Approved": 7, "No Contact": 0}'),
            ("D", D5, 8, 2, 6, 100, "1000", "10", 10, 100, 0, 0, '{"Approved": 100}'),
            ("E", D5, 7, 1, 6, 1000, "9000", "90", 90, 0, 0, 1000, '{"Pending": 1000}'),
        ]
        for c, d, tm, mp, mr, u, lf, ac, tr, ap, rf, pe, ubp in aggregates:
            conn.execute(agg, {"c": cid[c], "d": d, "tm": tm, "mp": mp, "mr": mr, "u": u,
                               "lf": Decimal(lf), "ac": Decimal(ac), "tr": tr, "ap": ap,
                               "rf": rf, "pe": pe, "ubp": ubp})

        snap = sa.text(
            "INSERT INTO circuit_snapshots (circuit_id, snapshot_type, snapshot_date, "
            "api_status, miles_planned, total_units) VALUES (:c, :t, :d, :s, :mp, :u)")
        for c, t, d, s, mp, u in [
            ("A", "daily", D4, "ACTIV", 3, 10), ("C", "daily", D4, "QC", 5, 7),
            ("A", "daily", D5, "ACTIV", 4, 12), ("B", "daily", D5, "ACTIV", 3, 3),
            ("C", "daily", D5, "QC", 5, 7), ("D", "daily", D5, "ACTIV", 2, 100),
            ("E", "daily", D5, "ACTIV", 1, 1000), ("A", "status_change", D5, "ACTIV", 4, 12),
        ]:
            conn.execute(snap, {"c": cid[c], "t": t, "d": d, "s": s, "mp": mp, "u": u})

        conn.execute(sa.text(
            "INSERT INTO sync_logs (sync_type, sync_status, sync_trigger, region_id, started_at, "
            "completed_at, duration_seconds, circuits_processed, error_message, dagster_run_id) "
            "VALUES ('full', 'completed', 'scheduled', NULL, now() - INTERVAL '1 hour', "
            "now() - INTERVAL '1 hour' + INTERVAL '12 seconds', 12, 6, NULL, 'run-1'), "
            "('circuit_list', 'failed', 'manual', :lan, now() - INTERVAL '10 days', "
            "now() - INTERVAL '10 days', 3, 0, 'boom', 'run-2'), "
            "('aggregates', 'started', 'workflow_event', NULL, now(), NULL, NULL, NULL, NULL, "
            "'run-3')"), {"lan": region["LAN"]})

        conn.execute(sa.text(
            "INSERT INTO regional_daily_aggregates (region_id, aggregate_date, active_circuits, "
            "miles_planned) VALUES (:r, :d, 2, 7)"), {"r": region["CEN"], "d": D5})
        conn.execute(sa.text(
            "INSERT INTO regional_weekly_aggregates (region_id, week_starting, week_ending, "
            "units_added) VALUES (:r, DATE '2026-01-04', DATE '2026-01-10', 5)"),
            {"r": region["CEN"]})
        conn.execute(sa.text(
            "INSERT INTO planner_daily_aggregates (user_id, planner_name, region_id, "
            "aggregate_date, total_units_assessed) VALUES (:u, 'Derek Cinicola', :r, :d, 9), "
            "(NULL, 'Paul Longenecker', :r, :d, 4)"), {"u": uid, "r": region["CEN"], "d": D5})
        conn.execute(sa.text(
            "INSERT INTO planner_weekly_aggregates (user_id, planner_name, region_id, "
            "week_starting, week_ending, days_worked, miles_delta, met_weekly_target) "
            "VALUES (:u, 'Derek Cinicola', :r, DATE '2026-01-04', DATE '2026-01-10', 3, 7, "
            "true)"), {"u": uid, "r": region["CEN"]})
    return {"cid": cid, "uid": uid, "region": region}


DATA_ROWS = {
    "vw_active_circuits_latest_aggregate": 3,  # A, B, F
    "vw_regional_summary": 7,  # the inactive region is left out
    "vw_sync_history": 3,
    "vw_circuits_user_modifications": 2,  # A and B (B without a user)
    "vw_region_daily_progress": 1,
    "vw_region_weekly_progress": 1,
    "vw_planner_daily_progress": 2,
    "vw_planner_weekly_progress": 1,
    "vw_units_daily": 2,
    "vw_miles_daily": 2,
    "vw_permissions_daily": 7,  # D4: 3 statuses; D5: 4
    "vw_region_units_daily": 4,
    "vw_circuit_status_daily": 4,
}


@pytest.mark.parametrize("name", sorted(EXPECTED_VIEWS))
def test_every_view_selects_on_hand_inserted_rows(engine, data, name):
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT * FROM {name}")).all()
    assert len(rows) == DATA_ROWS[name]


def _seed(conn, name):
    # exec_driver_sql: the seed's file goes to PostgreSQL byte for byte
    return [tuple(r) for r in conn.exec_driver_sql((QUERIES_DIR / name).read_text())]


def test_active_circuits_view_matches_the_seed_query(engine, data):
    with engine.connect() as conn:
        seed = _seed(conn, "active_circuits_latest_aggregate.sql")
        view = [tuple(r) for r in conn.execute(sa.text(
            "SELECT work_order, title, percent_complete, total_miles, miles_planned, "
            "total_units, units_approved, aggregate_date "
            "FROM vw_active_circuits_latest_aggregate ORDER BY work_order"))]
        extra = conn.execute(sa.text(
            "SELECT work_order, job_guid, extension, region_name, circuit_id "
            "FROM vw_active_circuits_latest_aggregate ORDER BY work_order")).all()
    assert view == seed
    assert [(r[0], r[5], r[6], r[7]) for r in view] == [
        ("2025-0001", 12, 6, D5),  # latest of two days
        ("2025-0002", 3, 1, D5),
        ("2025-0006", None, None, None),  # no aggregate: kept
    ]
    assert [tuple(r)[:4] for r in extra] == [
        ("2025-0001", "{G-A}", "@", "Central"),
        ("2025-0002", "{G-B}", "A", "Central"),
        ("2025-0006", "{G-F}", "@", "Lancaster"),
    ]
    assert extra[0].circuit_id == data["cid"]["A"]


def test_active_circuits_view_prefers_the_rollup_on_a_tied_day(engine, data):
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO circuit_aggregates (circuit_id, aggregate_date, is_rollup, total_miles, "
            "miles_planned, miles_remaining, total_units, units_approved) "
            "VALUES (:c, :d, true, 10, 4, 6, 13, 7)"), {"c": data["cid"]["A"], "d": D5})
    with engine.connect() as conn:
        row = conn.execute(sa.text(
            "SELECT total_units, units_approved FROM vw_active_circuits_latest_aggregate "
            "WHERE work_order = '2025-0001'")).one()
    assert tuple(row) == (13, 7)


def test_regional_summary_view_matches_the_seed_query(engine, data):
    with engine.connect() as conn:
        seed = _seed(conn, "regional_summary.sql")
        view = [tuple(r) for r in conn.execute(sa.text(
            "SELECT region_name, active_circuits, qc_circuits, total_miles, miles_planned, "
            "avg_completion FROM vw_regional_summary ORDER BY sort_order"))]
        codes = conn.execute(sa.text(
            "SELECT region_code FROM vw_regional_summary ORDER BY sort_order")).scalars().all()
    assert view == seed
    assert len(view) == 7 and "RET" not in codes
    central, lancaster = view[0], view[1]
    # CEN: A, B active (D excluded); LAN: F active, C in QC (E deleted)
    assert central == ("Central", 2, 0, Decimal("16.00"), Decimal("7.00"), Decimal(45))
    assert lancaster == ("Lancaster", 1, 1, Decimal("7.00"), Decimal("5.00"), Decimal(50))
    assert view[2] == ("Lehigh", 0, 0, None, None, None)


def test_sync_history_view_lists_every_log_and_matches_the_seed_window(engine, data):
    with engine.connect() as conn:
        seed = _seed(conn, "sync_history.sql")
        windowed = [tuple(r) for r in conn.execute(sa.text(
            "SELECT sync_type, sync_status, sync_trigger, started_at, duration_seconds, "
            "circuits_processed, circuits_created, circuits_updated, error_message "
            "FROM vw_sync_history WHERE started_at >= NOW() - INTERVAL '7 days' "
            "ORDER BY started_at DESC"))]
        everything = conn.execute(sa.text(
            "SELECT sync_status, sync_trigger, duration_seconds, error_message, dagster_run_id, "
            "region_name FROM vw_sync_history ORDER BY started_at DESC")).all()
    assert windowed == seed and len(seed) == 2
    assert [tuple(r) for r in everything] == [
        ("started", "workflow_event", None, None, "run-3", None),
        ("completed", "scheduled", 12, None, "run-1", None),
        ("failed", "manual", 3, "boom", "run-2", "Lancaster"),  # older than 7 days: kept
    ]


def test_user_modifications_view_keeps_edits_without_a_user(engine, data):
    with engine.connect() as conn:
        seed = _seed(conn, "circuits_with_user_modifications.sql")
        view = conn.execute(sa.text(
            "SELECT work_order, title, user_modified_fields, last_user_modified_at, "
            "modified_by FROM vw_circuits_user_modifications "
            "ORDER BY last_user_modified_at DESC")).all()
    view = [tuple(r) for r in view]
    assert [(r[0], r[4]) for r in view] == [("2025-0002", None), ("2025-0001", "Derek Cinicola")]
    # the seed's inner join hides B; otherwise the rows are the same
    assert [r for r in view if r[4] is not None] == seed
    assert [r[0] for r in seed] == ["2025-0001"]


# ------------------------------------------------------------------------------ KPI numbers

def test_units_daily(engine, data):
    sql = sa.text(
        "SELECT aggregate_date, circuits, total_units, total_linear_ft, total_acres, total_trees, "
        "units_approved, units_refused, units_pending FROM vw_units_daily ORDER BY 1")
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sql)]
    # D and E (excluded, deleted) never count.
    assert rows == [
        (D4, 2, 17, Decimal("100.50"), Decimal("3.2500"), 3, 11, 1, 5),  # A + C
        (D5, 3, 22, Decimal("150.00"), Decimal("3.5000"), 4, 14, 1, 7),  # A + B + C
    ]
    # A second record for A on D5, the end-of-day rollup: it replaces A's row, not adds to it.
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO circuit_aggregates (circuit_id, aggregate_date, is_rollup, total_miles, "
            "miles_planned, miles_remaining, total_units, total_linear_ft, total_acres, "
            "total_trees, units_approved, units_refused, units_pending) "
            "VALUES (:c, :d, true, 10, 5, 5, 13, 125, 1.5, 3, 7, 1, 5)"),
            {"c": data["cid"]["A"], "d": D5})
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sql)]
    assert rows[1] == (D5, 3, 23, Decimal("155.00"), Decimal("3.5000"), 4, 15, 1, 7)


def test_miles_daily(engine, data):
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sa.text(
            "SELECT aggregate_date, circuits, total_miles, miles_planned, miles_remaining, "
            "percent_planned FROM vw_miles_daily ORDER BY 1"))]
    assert rows == [
        (D4, 2, Decimal("15.00"), Decimal("8.00"), Decimal("7.00"), Decimal("53.33")),
        (D5, 3, Decimal("21.00"), Decimal("12.00"), Decimal("9.00"), Decimal("57.14")),
    ]


def test_permissions_daily(engine, data):
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sa.text(
            "SELECT aggregate_date, permission_status, circuits, units "
            "FROM vw_permissions_daily ORDER BY 1, 2"))]
    assert rows == [
        # C's D4 record is not a json object: it adds nothing (and breaks nothing)
        (D4, "Approved", 1, 4), (D4, "Pending", 1, 5), (D4, "Refused", 1, 1),
        (D5, "Approved", 3, 14), (D5, "No Contact", 1, 0), (D5, "Pending", 2, 7),
        (D5, "Refused", 1, 1),
    ]


def test_region_units_daily(engine, data):
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sa.text(
            "SELECT region_code, region_name, aggregate_date, circuits, total_units, "
            "total_linear_ft, units_approved, units_pending, total_miles, miles_planned, "
            "miles_remaining FROM vw_region_units_daily ORDER BY 1, 3"))]
    assert rows == [
        ("CEN", "Central", D4, 1, 10, Decimal("100.50"), 4, 5, Decimal("10.00"),
         Decimal("3.00"), Decimal("7.00")),
        ("CEN", "Central", D5, 2, 15, Decimal("150.00"), 7, 7, Decimal("16.00"),
         Decimal("7.00"), Decimal("9.00")),
        ("LAN", "Lancaster", D4, 1, 7, Decimal("0.00"), 7, 0, Decimal("5.00"),
         Decimal("5.00"), Decimal("0.00")),
        ("LAN", "Lancaster", D5, 1, 7, Decimal("0.00"), 7, 0, Decimal("5.00"),
         Decimal("5.00"), Decimal("0.00")),
    ]


def test_circuit_status_daily(engine, data):
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sa.text(
            "SELECT snapshot_date, api_status, circuits, miles_planned, total_units "
            "FROM vw_circuit_status_daily ORDER BY 1, 2"))]
    # daily snapshots only (A's status_change is ignored); D and E left out
    assert rows == [
        (D4, "ACTIV", 1, Decimal("3.00"), 10), (D4, "QC", 1, Decimal("5.00"), 7),
        (D5, "ACTIV", 2, Decimal("7.00"), 15), (D5, "QC", 1, Decimal("5.00"), 7),
    ]


def test_progress_views_name_regions_and_users(engine, data):
    with engine.connect() as conn:
        daily = conn.execute(sa.text(
            "SELECT region_name, region_code, aggregate_date, active_circuits, miles_planned "
            "FROM vw_region_daily_progress")).all()
        weekly = conn.execute(sa.text(
            "SELECT region_name, week_starting, week_ending, units_added "
            "FROM vw_region_weekly_progress")).all()
        planners = conn.execute(sa.text(
            "SELECT planner_name, user_id, user_name, user_email, region_name, "
            "total_units_assessed FROM vw_planner_daily_progress ORDER BY planner_name")).all()
        planner_weeks = conn.execute(sa.text(
            "SELECT planner_name, user_email, region_code, days_worked, miles_delta, "
            "met_weekly_target FROM vw_planner_weekly_progress")).all()
    assert [tuple(r) for r in daily] == [("Central", "CEN", D5, 2, Decimal("7.00"))]
    assert [tuple(r) for r in weekly] == [("Central", D4, date(2026, 1, 10), 5)]
    assert [tuple(r) for r in planners] == [
        ("Derek Cinicola", data["uid"], "Derek Cinicola", "derek@example.com", "Central", 9),
        ("Paul Longenecker", None, None, None, "Central", 4),  # no user: still listed
    ]
    assert [tuple(r) for r in planner_weeks] == [
        ("Derek Cinicola", "derek@example.com", "CEN", 3, Decimal("7.00"), True)
    ]


# ------------------------------------------------------------------------------ the role

@pytest.fixture
def analyst_url(pg_server_url, db_url):
    """A throwaway LOGIN role IN ROLE ws_tracker_analyst, and db_url as that role."""
    name = f"test_analyst_{uuid.uuid4().hex[:10]}"
    password = secrets.token_hex(16)  # works with trust (embedded) and password auth alike
    _admin_exec(pg_server_url,
                f"CREATE ROLE {name} LOGIN PASSWORD '{password}' IN ROLE {ROLE}")
    try:
        yield parse(db_url).set(username=name, password=password).render_as_string(
            hide_password=False)
    finally:
        _admin_exec(pg_server_url, f"DROP ROLE IF EXISTS {name}")


@pytest.fixture
def analyst(analyst_url):
    eng = make_engine(analyst_url, poolclass=NullPool)
    yield eng
    eng.dispose()


def _denied(exc: BaseException) -> bool:
    return getattr(getattr(exc, "orig", None), "sqlstate", None) == "42501"


def _table_names(engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars())


SECRET_TABLES = {"user_ws_credentials", "users"}  # users: readable column by column


def test_analyst_role_is_nologin_and_unprivileged(engine):
    with engine.connect() as conn:
        role = conn.execute(sa.text(
            "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolinherit, "
            "rolbypassrls FROM pg_roles WHERE rolname = :r"), {"r": ROLE}).one()
        assert tuple(role) == (False, False, False, False, True, False)
        # PostgreSQL 15+ no longer grants CREATE on schema public to PUBLIC; the migration
        # relies on that instead of revoking from PUBLIC.
        assert int(conn.execute(sa.text("SHOW server_version_num")).scalar_one()) >= 150000
        assert conn.execute(sa.text(
            "SELECT has_schema_privilege(:r, 'public', 'USAGE'), "
            "has_schema_privilege(:r, 'public', 'CREATE'), "
            "has_database_privilege(:r, current_database(), 'CONNECT'), "
            "has_database_privilege(:r, current_database(), 'CREATE')"), {"r": ROLE}
        ).one() == (True, False, True, False)


def test_analyst_selects_every_table_and_view(engine, data, analyst):
    tables = _table_names(engine)
    assert {"circuits", "circuit_aggregates", "sync_logs", "regions"} <= tables
    with analyst.connect() as conn:
        assert conn.execute(sa.text("SELECT current_user")).scalar_one().startswith(
            "test_analyst_")
        for name in sorted(tables - SECRET_TABLES):
            conn.execute(sa.text(f"SELECT * FROM {name} LIMIT 1")).all()
        for name in sorted(EXPECTED_VIEWS):
            conn.execute(sa.text(f"SELECT * FROM {name}")).all()
        assert conn.execute(sa.text(
            "SELECT count(*) FROM vw_active_circuits_latest_aggregate")).scalar_one() == 3
        # views show planner names and emails without opening the users table
        assert conn.execute(sa.text(
            "SELECT user_email FROM vw_planner_daily_progress WHERE user_id IS NOT NULL")
        ).scalar_one() == "derek@example.com"
        assert conn.execute(sa.text("SELECT name, email FROM users")).one() == (
            "Derek Cinicola", "derek@example.com")


@pytest.mark.parametrize("sql", [
    "SELECT password FROM users",
    "SELECT two_factor_secret FROM users",
    "SELECT * FROM users",
    "SELECT * FROM user_ws_credentials",
])
def test_analyst_cannot_read_secrets(engine, analyst, sql):
    with analyst.connect() as conn:
        with pytest.raises(sa.exc.ProgrammingError) as err:
            conn.execute(sa.text(sql))
    assert _denied(err.value), err.value


WRITES = [
    "INSERT INTO regions (name, code) VALUES ('X', 'X')",
    "UPDATE circuits SET title = 'changed'",
    "DELETE FROM sync_logs",
    "TRUNCATE circuit_aggregates",
    "CREATE TABLE analyst_scratch (id int)",
    "CREATE VIEW analyst_scratch_v AS SELECT 1 AS x",
    "CREATE TABLE public.analyst_scratch (id int)",
]


@pytest.mark.parametrize("sql", WRITES)
def test_analyst_cannot_write(engine, data, analyst, sql):
    with analyst.connect() as conn:
        with pytest.raises(sa.exc.ProgrammingError) as err:
            conn.execute(sa.text(sql))
        conn.rollback()
    assert _denied(err.value), err.value
    with engine.connect() as conn:  # nothing changed
        assert conn.execute(sa.text(
            "SELECT count(*) FROM circuits WHERE title = 'changed'")).scalar_one() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM sync_logs")).scalar_one() == 3
        assert conn.execute(sa.text("SELECT count(*) FROM circuit_aggregates")).scalar_one() == 7
        assert conn.execute(sa.text(
            "SELECT count(*) FROM regions WHERE code = 'X'")).scalar_one() == 0
        assert conn.execute(sa.text(
            "SELECT count(*) FROM pg_class WHERE relname LIKE 'analyst_scratch%'")
        ).scalar_one() == 0


def test_tables_created_later_are_readable_by_default(engine, analyst):
    # ALTER DEFAULT PRIVILEGES: a table the migrating role creates after 0004 is readable.
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE later_table (id int)"))
        conn.execute(sa.text("INSERT INTO later_table VALUES (1)"))
        conn.execute(sa.text("CREATE VIEW later_view AS SELECT id FROM later_table"))
    with analyst.connect() as conn:
        assert conn.execute(sa.text("SELECT id FROM later_table")).scalar_one() == 1
        assert conn.execute(sa.text("SELECT id FROM later_view")).scalar_one() == 1
        with pytest.raises(sa.exc.ProgrammingError) as err:
            conn.execute(sa.text("INSERT INTO later_table VALUES (2)"))
    assert _denied(err.value)


def _analyst_grants(conn) -> dict:
    """Every trace of ws_tracker_analyst in this database's ACLs."""
    return {
        "database": conn.execute(sa.text(
            "SELECT coalesce(datacl::text, '') FROM pg_database "
            "WHERE datname = current_database()")).scalar_one(),
        "schema": conn.execute(sa.text(
            "SELECT coalesce(nspacl::text, '') FROM pg_namespace WHERE nspname = 'public'")
        ).scalar_one(),
        "relations": sorted(conn.execute(sa.text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relacl::text LIKE '%ws_tracker_analyst=%'"
        )).scalars()),
        "columns": sorted(conn.execute(sa.text(
            "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "WHERE c.relname = 'users' AND a.attacl::text LIKE '%ws_tracker_analyst=%'"
        )).scalars()),
        "defaults": conn.execute(sa.text(
            "SELECT count(*) FROM pg_default_acl "
            "WHERE defaclacl::text LIKE '%ws_tracker_analyst=%'")).scalar_one(),
    }


def test_upgrade_grants_and_downgrade_revokes_them(empty_db_url):
    migrate.upgrade(empty_db_url)
    eng = make_engine(empty_db_url, poolclass=NullPool)
    try:
        with eng.connect() as conn:
            granted = _analyst_grants(conn)
            tables = _table_names(eng)
        assert "ws_tracker_analyst=c/" in granted["database"]  # CONNECT on this database
        assert "ws_tracker_analyst=U/" in granted["schema"]  # USAGE, never C (CREATE)
        assert set(granted["relations"]) == (tables - SECRET_TABLES) | EXPECTED_VIEWS
        assert "password" not in granted["columns"] and {"id", "name", "email"} <= set(
            granted["columns"])
        assert granted["defaults"] == 1

        migrate.downgrade(empty_db_url, "0003_units_synced_version")
        assert migrate.current(empty_db_url) == "0003_units_synced_version"
        with eng.connect() as conn:
            assert _public_views(conn) == set()
            revoked = _analyst_grants(conn)
            # the cluster-wide role stays (other databases may use it)
            assert conn.execute(sa.text(
                "SELECT count(*) FROM pg_roles WHERE rolname = :r"), {"r": ROLE}).scalar() == 1
        assert "ws_tracker_analyst" not in revoked["database"]
        assert "ws_tracker_analyst" not in revoked["schema"]
        assert revoked["relations"] == [] and revoked["columns"] == []
        assert revoked["defaults"] == 0

        migrate.upgrade(empty_db_url)  # the role exists now: created-if-missing path
        with eng.connect() as conn:
            assert _analyst_grants(conn) == granted
            assert _public_views(conn) == EXPECTED_VIEWS
    finally:
        eng.dispose()
