"""Region-scoped access (migration 0008, ``ws-tracker access grant | revoke | list``).

A login granted for a user connects for real and, in every table and view it can read, sees
exactly the rows of the user's regions: the expected rows are what the owner sees after
deleting every other region's rows (in a transaction that is rolled back). It cannot write,
cannot step out with SET ROLE, and cannot ask about another login. An admin sees everything,
a user without regions sees no regional row, a revoked login cannot connect."""

from __future__ import annotations

import secrets
import uuid
from collections import Counter
from datetime import date
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from ws_tracker.rules.weekly import week_starting_of
from ws_tracker.warehouse.engine import make_engine, parse
from ws_tracker.warehouse.weekly import build_planner_week, build_regional_week
from ws_tracker_tests.conftest import _admin_exec
from ws_tracker_tests.e2e import start_harness

NY = ZoneInfo("America/New_York")
DAY = date(2026, 3, 2)
GROUP = "ws_tracker_analyst"


@pytest.fixture
def logins(pg_server_url):
    """Unique login names for this test (roles are cluster-wide); dropped afterwards."""
    made: list[str] = []

    def new(prefix: str = "analyst") -> str:
        made.append(f"wst_{prefix}_{uuid.uuid4().hex[:8]}")
        return made[-1]

    yield new
    for name in made:
        _admin_exec(pg_server_url, f'DROP ROLE IF EXISTS "{name}"')


@pytest.fixture
def data(db_url, engine, cli):
    """A simulated day over several regions, weekly rollups, people, a planner link, an
    exclusion, a quarantined row: rows in every table an analyst may read."""
    h = start_harness(db_url, circuits=40, units_per_circuit=(10, 30))
    try:
        assert h.run(DAY).success
    finally:
        h.server.stop()
    with engine.begin() as conn:
        build_planner_week(conn, week_starting_of(DAY))
        build_regional_week(conn, week_starting_of(DAY))
        regions = conn.execute(sa.text(
            "SELECT r.name FROM circuits c JOIN regions r ON r.id = c.region_id"
            " GROUP BY r.name ORDER BY count(*) DESC, r.name")).scalars().all()
        taken = conn.execute(sa.text(
            "SELECT taken_by FROM circuits c JOIN regions r ON r.id = c.region_id"
            " WHERE r.name = :r AND taken_by IS NOT NULL ORDER BY c.id LIMIT 1"),
            {"r": regions[0]}).scalar_one()
        guids = [conn.execute(sa.text(
            "SELECT c.job_guid FROM circuits c JOIN regions r ON r.id = c.region_id"
            " WHERE r.name = :r ORDER BY c.id LIMIT 1"), {"r": name}).scalar_one()
            for name in (regions[0], regions[2])]
        conn.execute(sa.text(
            "INSERT INTO quarantined_rows (source, reason, severity, code) VALUES"
            " ('circuit_list', 'test', 'warning', 'test')"))
        # Planner rows and a circuit link outside Ann's regions, whatever the simulated day did.
        far = conn.execute(sa.text("SELECT id FROM regions WHERE name = :r"),
                           {"r": regions[3]}).scalar_one()
        conn.execute(sa.text(
            "INSERT INTO planner_daily_aggregates (planner_name, region_id, aggregate_date)"
            " VALUES ('Far Away', :r, :d)"), {"r": far, "d": DAY})
        conn.execute(sa.text(
            "INSERT INTO planner_weekly_aggregates (planner_name, region_id, week_starting,"
            " week_ending) VALUES ('Far Away', :r, :s, :s + 6)"),
            {"r": far, "s": week_starting_of(DAY)})
    assert len(regions) >= 4
    assert cli("users", "add", "boss@example.com", "--name", "Boss")[0] == 0
    assert cli("users", "add", "ann@example.com", "--name", "Ann", "--region", regions[0],
               "--region", regions[1], "--ws-username", taken.strip())[0] == 0
    assert cli("users", "add", "nora@example.com", "--name", "Nora")[0] == 0
    for guid in (guids[0], guids[-1]):  # one circuit in Ann's first region, one elsewhere
        assert cli("circuits", "exclude", guid, "--reason", "test", "--by",
                   "boss@example.com")[0] == 0
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO circuit_user (circuit_id, user_id, assignment_source) SELECT c.id, u.id,"
            " 'manual' FROM circuits c, users u WHERE c.job_guid = :g AND u.email = 'boss@example.com'"),
            {"g": guids[-1]})
    with engine.connect() as conn:
        ids = conn.execute(sa.text("SELECT id FROM regions WHERE name IN (:a, :b)"),
                           {"a": regions[0], "b": regions[1]}).scalars().all()
    return {"regions": regions, "ann_regions": sorted(ids)}


def _grant(cli, email: str, login: str, *extra: str) -> str:
    password = secrets.token_urlsafe(18)
    code, out, err = cli("access", "grant", email, "--login", login, *extra, "--by",
                         "boss@example.com", stdin=password + "\n")
    assert code == 0, err
    assert password not in out + err
    return password


def _login_engine(db_url: str, login: str, password: str) -> sa.Engine:
    url = parse(db_url).set(username=login, password=password).render_as_string(
        hide_password=False)
    return make_engine(url, poolclass=NullPool)


def _readable(engine, login: str) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(sa.text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'm', 'p')"
            " AND has_table_privilege(:l, c.oid, 'SELECT')"), {"l": login}).scalars())


def _rows(conn, relations) -> dict[str, Counter]:
    return {r: Counter(conn.execute(sa.text(f'SELECT x::text FROM "{r}" x')).scalars())
            for r in relations}


def _columns(conn, column: str) -> set[str]:
    return set(conn.execute(sa.text(
        "SELECT c.table_name FROM information_schema.columns c JOIN information_schema.tables t"
        " USING (table_schema, table_name) WHERE c.table_schema = 'public'"
        " AND t.table_type = 'BASE TABLE' AND c.column_name = :c"), {"c": column}).scalars())


def expected(engine, region_ids: list[int] | None, login: str, relations) -> dict[str, Counter]:
    """What the owner sees once every row outside ``region_ids`` is gone (None: all rows)."""
    with engine.connect() as conn:
        tx = conn.begin()
        try:
            if region_ids is not None:
                r = {"r": region_ids, "l": login}
                visible = "(SELECT id FROM circuits WHERE region_id = ANY(:r))"
                conn.execute(sa.text(
                    "DELETE FROM audit_log WHERE NOT (entity_type = 'circuit' AND entity_id IN"
                    f" {visible})"), r)
                conn.execute(sa.text(
                    "DELETE FROM unlinked_planners p WHERE NOT EXISTS (SELECT 1 FROM circuits c"
                    " WHERE c.region_id = ANY(:r)"
                    " AND lower(btrim(c.taken_by)) = lower(btrim(p.ws_username)))"), r)
                for t in ("quarantined_rows", "import_staging_rows", "data_imports"):
                    conn.execute(sa.text(f"DELETE FROM {t}"))
                conn.execute(sa.text("DELETE FROM analyst_logins WHERE login <> :l"), r)
                by_circuit = _columns(conn, "circuit_id")
                for t in sorted(by_circuit):
                    conn.execute(sa.text(f'DELETE FROM "{t}" WHERE circuit_id NOT IN {visible}'), r)
                for t in sorted(_columns(conn, "region_id") - by_circuit - {"circuits"}):
                    conn.execute(sa.text(
                        f'DELETE FROM "{t}" WHERE region_id IS NULL OR NOT region_id = ANY(:r)'), r)
                conn.execute(sa.text("DELETE FROM circuits WHERE NOT region_id = ANY(:r)"), r)
                conn.execute(sa.text("DELETE FROM regions WHERE NOT id = ANY(:r)"), r)
            return _rows(conn, relations)
        finally:
            tx.rollback()


def _denied(exc: BaseException) -> bool:
    return getattr(getattr(exc, "orig", None), "sqlstate", None) == "42501"


WRITES = [
    "UPDATE circuits SET title = 'changed'",
    "DELETE FROM planner_daily_aggregates",
    "INSERT INTO regions (name, code) VALUES ('X', 'X')",
    "INSERT INTO analyst_logins (login, user_id) VALUES ('x', 1)",
    "INSERT INTO user_regions (user_id, region_id) VALUES (1, 1)",
    "DELETE FROM audit_log",
    "UPDATE users SET is_admin = true",
    "TRUNCATE circuit_aggregates",
    "SET ROLE ws_tracker_analyst",
    "CREATE TABLE scratch (id int)",
]


def test_a_region_limited_login_sees_only_its_regions_and_cannot_write(
        db_url, engine, data, cli, logins, pg_server_url):
    login = logins()
    password = _grant(cli, "ann@example.com", login)
    relations = _readable(engine, login)
    with engine.connect() as conn:
        views = set(conn.execute(sa.text(
            "SELECT viewname FROM pg_views WHERE schemaname = 'public'")).scalars())
    assert {"circuits", "regions", "planner_daily_aggregates", "audit_log"} <= set(relations)
    assert views <= set(relations) and "user_ws_credentials" not in relations
    want = expected(engine, data["ann_regions"], login, relations)
    everything = expected(engine, None, login, relations)

    ann = _login_engine(db_url, login, password)
    try:
        with ann.connect() as conn:
            assert conn.execute(sa.text("SELECT current_user")).scalar_one() == login
            seen = _rows(conn, relations)
            assert conn.execute(sa.text("SELECT ws_tracker_analyst_regions(current_user)")
                                ).scalar_one() == data["ann_regions"]
            # Another role's regions are not for this login to ask about.
            assert conn.execute(sa.text("SELECT ws_tracker_analyst_regions('postgres')")
                                ).scalar_one() == []
        for sql in WRITES:
            with ann.connect() as conn:
                with pytest.raises(sa.exc.ProgrammingError) as err:
                    conn.execute(sa.text(sql))
                assert _denied(err.value), (sql, err.value)
    finally:
        ann.dispose()
    for relation in relations:
        assert seen[relation] == want[relation], relation
    # The test means something: the login sees some but not all of the regional rows.
    for relation in ("circuits", "circuit_aggregates", "circuit_history", "planned_units_snapshots",
                     "circuit_snapshots", "planner_daily_aggregates", "regional_daily_aggregates",
                     "regional_weekly_aggregates", "regions", "vw_regional_summary",
                     "vw_region_units_daily", "vw_active_circuits_latest_aggregate",
                     "circuit_user", "unlinked_planners", "audit_log"):
        assert 0 < sum(seen[relation].values()) < sum(everything[relation].values()), relation
    assert sum(seen["quarantined_rows"].values()) == 0 < sum(everything["quarantined_rows"].values())
    assert sum(seen["vw_units_daily"].values()) > 0 and seen["vw_units_daily"] != everything["vw_units_daily"]
    # Nothing changed for the owner.
    assert expected(engine, None, login, relations) == everything

    # Defence in depth (what holds on PostgreSQL < 16, where the membership cannot be granted
    # WITH SET FALSE): a limited session that does get to SET ROLE to the group sees nothing.
    _admin_exec(pg_server_url, f'GRANT {GROUP} TO "{login}" WITH SET TRUE')
    ann = _login_engine(db_url, login, password)
    try:
        with ann.connect() as conn:
            conn.execute(sa.text(f"SET ROLE {GROUP}"))
            assert conn.execute(sa.text("SELECT current_user")).scalar_one() == GROUP
            assert conn.execute(sa.text("SELECT count(*) FROM circuits")).scalar_one() == 0
            assert conn.execute(sa.text("SELECT count(*) FROM vw_regional_summary")).scalar_one() == 0
    finally:
        ann.dispose()

    # Changing the user's regions changes what the login sees, at once.
    assert cli("users", "update", "ann@example.com", "--region", data["regions"][3])[0] == 0
    with engine.connect() as conn:
        far = conn.execute(sa.text(
            "SELECT count(*) FROM circuits c JOIN regions r ON r.id = c.region_id"
            " WHERE r.name = :r"), {"r": data["regions"][3]}).scalar_one()
    ann = _login_engine(db_url, login, password)
    try:
        with ann.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM circuits")).scalar_one() == far > 0
            assert conn.execute(sa.text("SELECT name FROM regions")).scalars().all() == [
                data["regions"][3]]
    finally:
        ann.dispose()


def test_admin_sees_all_no_region_sees_nothing_and_revoke_ends_access(
        db_url, engine, data, cli, logins):
    admin, nobody = logins("admin"), logins("nobody")
    admin_pw = _grant(cli, "boss@example.com", admin, "--admin")
    nobody_pw = _grant(cli, "nora@example.com", nobody)
    relations = _readable(engine, admin)
    everything = expected(engine, None, admin, relations)
    for login, password, want in (
            (admin, admin_pw, everything),
            (nobody, nobody_pw, expected(engine, [], nobody, relations))):
        eng = _login_engine(db_url, login, password)
        try:
            with eng.connect() as conn:
                assert _rows(conn, relations) == want, login
        finally:
            eng.dispose()
    nothing = expected(engine, [], nobody, relations)
    assert sum(nothing["circuits"].values()) == 0 and sum(nothing["vw_regional_summary"].values()) == 0
    assert sum(nothing["unit_types"].values()) > 0  # reference tables are not regional

    code, out, err = cli("access", "list")
    assert code == 0, err
    lines = {line.split()[0]: line for line in out.splitlines()[1:-1]}
    assert "(all)" in lines[admin] and "(none)" in lines[nobody]

    code, out, err = cli("access", "revoke", "nora@example.com", "--by", "boss@example.com")
    assert code == 0, err
    assert nobody in out
    eng = _login_engine(db_url, nobody, nobody_pw)
    try:
        with pytest.raises(sa.exc.OperationalError) as err:
            eng.connect()
        assert "not permitted to log in" in str(err.value)
    finally:
        eng.dispose()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT pg_has_role(:l, :g, 'MEMBER')"),
                            {"l": nobody, "g": GROUP}).scalar_one() is False
        assert conn.execute(sa.text("SELECT count(*) FROM analyst_logins WHERE login = :l"),
                            {"l": nobody}).scalar_one() == 0
        audit = conn.execute(sa.text(
            "SELECT action, entity_key, actor FROM audit_log WHERE action LIKE 'access.%'"
            " ORDER BY id")).all()
        admin_flag = conn.execute(sa.text(
            "SELECT is_admin FROM users WHERE email = 'boss@example.com'")).scalar_one()
        texts = conn.execute(sa.text("SELECT before::text || after::text FROM audit_log")).scalars()
        assert not any(p in (t or "") for t in texts for p in (admin_pw, nobody_pw))
    assert [tuple(a) for a in audit] == [("access.grant", admin, "boss@example.com"),
                                         ("access.grant", nobody, "boss@example.com"),
                                         ("access.revoke", nobody, "boss@example.com")]
    assert admin_flag is True

    # Granting again re-enables the login.
    nobody_pw = _grant(cli, "nora@example.com", nobody)
    eng = _login_engine(db_url, nobody, nobody_pw)
    try:
        with eng.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM circuits")).scalar_one() == 0
    finally:
        eng.dispose()


def test_bad_grants_are_refused_and_change_nothing(engine, data, cli, logins, pg_server_url):
    taken, other = logins(), logins("dba")
    _grant(cli, "ann@example.com", taken)
    _admin_exec(pg_server_url, f'CREATE ROLE "{other}" NOLOGIN')

    def state():
        with engine.connect() as conn:
            return (conn.execute(sa.text("SELECT count(*) FROM analyst_logins")).scalar_one(),
                    conn.execute(sa.text("SELECT count(*) FROM audit_log")).scalar_one(),
                    conn.execute(sa.text("SELECT count(*) FROM pg_roles")).scalar_one(),
                    conn.execute(sa.text("SELECT pg_has_role(:o, :g, 'MEMBER')"),
                                 {"o": other, "g": GROUP}).scalar_one())

    before = state()
    for args, message in [
        (["grant", "ann@example.com", "--login", "Bad-Name"], "login name invalid: 'Bad-Name'"),
        (["grant", "ann@example.com", "--login", "pg_reader"], "login name invalid: 'pg_reader' is reserved"),
        (["grant", "ann@example.com", "--login", "postgres"], "login name invalid: 'postgres' is reserved"),
        (["grant", "ann@example.com", "--login", other], "is not a ws-tracker analyst login"),
        (["grant", "ghost@example.com", "--login", "wst_ghost"], "no user with email 'ghost@example.com'"),
        (["grant", "nora@example.com", "--login", taken], "is granted to 'ann@example.com'"),
        (["grant", "ann@example.com", "--login", "wst_x", "--by", "ghost@example.com"],
         "no user with email 'ghost@example.com'"),
        (["revoke", "nora@example.com"], "has no analyst login to revoke"),
        (["revoke", "ann@example.com", "--login", "wst_not_hers"], "is not an analyst login of"),
    ]:
        code, out, err = cli("access", *args)
        assert code == 2 and message in err and out == "", (args, err)
    assert state() == before


def test_every_regional_table_has_a_policy_and_every_view_runs_as_the_caller(engine):
    with engine.connect() as conn:
        regional = _columns(conn, "circuit_id") | _columns(conn, "region_id") | {"regions"}
        protected = dict(conn.execute(sa.text(
            "SELECT c.relname, c.relrowsecurity AND NOT c.relforcerowsecurity FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind = 'r'")).all())
        policies = set(conn.execute(sa.text(
            "SELECT tablename FROM pg_policies WHERE schemaname = 'public'"
            " AND policyname = 'ws_tracker_analyst_scope' AND :g = ANY(roles)"
            " AND cmd = 'SELECT'"), {"g": GROUP}).scalars())
        views = dict(conn.execute(sa.text(
            "SELECT c.relname, coalesce('security_invoker=true' = ANY(c.reloptions), false)"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind = 'v'")).all())
        group_writes = conn.execute(sa.text(
            "SELECT count(*) FROM information_schema.role_table_grants WHERE grantee = :g"
            " AND privilege_type <> 'SELECT'"), {"g": GROUP}).scalar_one()
    assert {"circuits", "circuit_aggregates", "planner_weekly_aggregates", "sync_logs",
            "user_regions", "circuit_stage_changes"} <= regional
    missing = {t for t in regional if not protected.get(t)} | (regional - policies)
    assert missing == set(), "regional tables without RLS (enabled, not forced) or policy"
    assert {"unlinked_planners", "audit_log", "analyst_logins", "quarantined_rows",
            "data_imports", "import_staging_rows"} <= policies
    assert views and all(views.values()), views
    assert group_writes == 0
