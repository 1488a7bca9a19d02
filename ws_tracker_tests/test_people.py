"""People: ``ws-tracker users add | list | link-planner``. Linking a WorkStudio planner to a
user links the circuits it holds, marks the unlinked_planners row, re-keys the planner
aggregates already stored, and keys them to the user from then on; bad input is refused with
a clear error and stores nothing; every change leaves an audit_log row."""

from __future__ import annotations

import json
from datetime import date

import pytest
import sqlalchemy as sa

from ws_tracker_tests.e2e import start_harness

DAY = date(2026, 3, 2)  # a Monday
NEXT = date(2026, 3, 3)


@pytest.fixture(params=[True, False], ids=["units_name_usernames", "units_name_names_only"])
def h(db_url, request):
    # extra_unit_columns: units carry VEGUNIT_FRSTR_USER (the forester's DOMAIN\user); without
    # it they name the forester only, and the link goes through the circuits' VEGJOB_FORESTER.
    harness = start_harness(db_url, circuits=40, units_per_circuit=(10, 40),
                            extra_unit_columns=request.param)
    yield harness
    harness.server.stop()


def _one(conn, sql: str, **params):
    return conn.execute(sa.text(sql), params).one()


def _audit(conn) -> list[tuple]:
    return [tuple(r) for r in conn.execute(sa.text(
        "SELECT action, entity_type, entity_id, entity_key, actor FROM audit_log ORDER BY id"))]


def test_adding_a_user_links_the_planner_its_circuits_and_its_aggregates(h, engine, cli):
    assert h.run(DAY).success
    names = {p.name.lower(): p for p in h.world.planners}
    with engine.connect() as conn:
        # The planner with the most work that day, as the rollup names it (forester name).
        top = conn.execute(sa.text(
            "SELECT planner_name FROM planner_daily_aggregates GROUP BY planner_name"
            " ORDER BY sum(total_units_assessed) DESC, planner_name LIMIT 1")).scalar_one()
        planner = names[top.lower()]
        unlinked = _one(conn, "SELECT id, circuit_count, linked_to_user_id FROM unlinked_planners"
                              " WHERE ws_username = :w", w=planner.username)
        held = set(conn.execute(sa.text(
            "SELECT id FROM circuits WHERE lower(btrim(taken_by)) = lower(:w)"
            " AND deleted_at IS NULL"), {"w": planner.username}).scalars())
        mine = conn.execute(sa.text(
            "SELECT count(*) FROM planner_daily_aggregates WHERE planner_name = :n"),
            {"n": top}).scalar_one()
        others = conn.execute(sa.text(
            "SELECT count(*) FROM planner_daily_aggregates WHERE planner_name <> :n"),
            {"n": top}).scalar_one()
        assert conn.execute(sa.text(
            "SELECT count(*) FROM planner_daily_aggregates WHERE user_id IS NOT NULL")).scalar() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM circuit_user")).scalar_one() == 0
    assert unlinked.linked_to_user_id is None and unlinked.circuit_count == len(held) > 0
    assert mine > 0 and others > 0

    # The user's name is not the forester's: the link goes through the WorkStudio username.
    code, out, err = cli("users", "add", "pat@example.com", "--name", "Pat Example",
                         "--ws-username", f"  {planner.username.upper()} ", "--region", "central",
                         "--region", "LEH", "--default-region", "Harrisburg")
    assert code == 0, err
    assert "pat@example.com" in out and planner.username.upper() in out
    with engine.connect() as conn:
        user = _one(conn, "SELECT id, name, ws_username, is_ws_linked, ws_linked_at,"
                          " default_region_id, is_admin, password FROM users"
                          " WHERE email = 'pat@example.com'")
        regions = set(conn.execute(sa.text(
            "SELECT r.name FROM user_regions ur JOIN regions r ON r.id = ur.region_id"
            " WHERE ur.user_id = :u"), {"u": user.id}).scalars())
        default = conn.execute(sa.text("SELECT name FROM regions WHERE id = :r"),
                               {"r": user.default_region_id}).scalar_one()
        links = conn.execute(sa.text(
            "SELECT circuit_id, user_id, assignment_source FROM circuit_user")).all()
        linked = _one(conn, "SELECT linked_to_user_id, linked_at FROM unlinked_planners"
                            " WHERE id = :i", i=unlinked.id)
        rekeyed = conn.execute(sa.text(
            "SELECT DISTINCT user_id FROM planner_daily_aggregates WHERE planner_name = :n"),
            {"n": top}).scalars().all()
        untouched = conn.execute(sa.text(
            "SELECT count(*) FROM planner_daily_aggregates WHERE planner_name <> :n"
            " AND user_id IS NULL"), {"n": top}).scalar_one()
        audit = _audit(conn)
        link_after = conn.execute(sa.text(
            "SELECT after FROM audit_log WHERE action = 'planner.link'")).scalar_one()
    assert (user.name, user.is_ws_linked, user.is_admin) == ("Pat Example", True, False)
    assert user.ws_username == planner.username.upper()  # trimmed, spelled as given
    assert user.ws_linked_at is not None and user.password == "!"  # no local password
    assert regions == {"Central", "Lehigh", "Harrisburg"} and default == "Harrisburg"
    assert {r.circuit_id for r in links} == held
    assert {(r.user_id, r.assignment_source) for r in links} == {(user.id, "api_sync")}
    assert linked.linked_to_user_id == user.id and linked.linked_at is not None
    assert rekeyed == [user.id]
    assert untouched == others  # other planners keep user_id NULL
    assert audit == [("user.add", "user", user.id, "pat@example.com", _db_role(engine)),
                     ("planner.link", "user", user.id, planner.username.upper(), _db_role(engine))]
    assert link_after["circuits_linked"] == len(held)
    assert link_after["planner_daily_rekeyed"] == mine

    # From then on: the next day's sync and rollups key the planner to the user.
    assert h.run(NEXT).success
    with engine.connect() as conn:
        next_rows = conn.execute(sa.text(
            "SELECT DISTINCT user_id FROM planner_daily_aggregates WHERE planner_name = :n"
            " AND aggregate_date = :d"), {"n": top, "d": NEXT}).scalars().all()
        held_now = set(conn.execute(sa.text(
            "SELECT id FROM circuits WHERE lower(btrim(taken_by)) = lower(:w)"
            " AND deleted_at IS NULL"), {"w": planner.username}).scalars())
        linked_now = set(conn.execute(sa.text(
            "SELECT circuit_id FROM circuit_user WHERE user_id = :u"), {"u": user.id}).scalars())
        still_unlinked = conn.execute(sa.text(
            "SELECT count(*) FROM unlinked_planners WHERE lower(ws_username) = lower(:w)"
            " AND linked_to_user_id IS NULL"), {"w": planner.username}).scalar_one()
    assert next_rows in ([user.id], [])  # [] only if the planner did no work that day
    assert held_now <= linked_now
    assert still_unlinked == 0


def _db_role(engine) -> str:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT current_user")).scalar_one()


def _seed_planner(engine) -> dict:
    """Two circuits held by ASPLUNDH\\jdoe (one deleted), one by someone else, a capture whose
    units name the forester, and planner rows with no user yet."""
    with engine.begin() as conn:
        central = conn.execute(sa.text("SELECT id FROM regions WHERE name = 'Central'")).scalar_one()
        ids = []
        for i, (taken, deleted) in enumerate([("ASPLUNDH\\jdoe ", False), ("asplundh\\JDOE", False),
                                              ("ASPLUNDH\\jdoe", True), ("ASPLUNDH\\other", False)]):
            ids.append(conn.execute(sa.text(
                "INSERT INTO circuits (job_guid, work_order, extension, region_id, title,"
                " api_modified_date, api_status, taken_by, deleted_at) VALUES (:g, :w, '@', :r,"
                " 'T', DATE '2026-03-01', 'ACTIV', :t, CASE WHEN :d THEN now() END) RETURNING id"),
                {"g": f"{{00000000-0000-0000-0000-00000000000{i}}}", "w": f"2026-000{i}",
                 "r": central, "t": taken, "d": deleted}).scalar_one())
        conn.execute(sa.text(
            "INSERT INTO unlinked_planners (ws_username, circuit_count, first_seen_at, last_seen_at)"
            " VALUES ('ASPLUNDH\\jdoe', 2, now(), now()), ('ASPLUNDH\\other', 1, now(), now())"))
        units = [{"unit_id": 1, "forester": "John Doe ", "forester_username": "asplundh\\jdoe",
                  "assessed_date": "2026-03-02"},
                 {"unit_id": 2, "forester": "Ann Other", "forester_username": "ASPLUNDH\\other",
                  "assessed_date": "2026-03-02"}]
        conn.execute(sa.text(
            "INSERT INTO planned_units_snapshots (circuit_id, work_order, snapshot_trigger,"
            " content_hash, unit_count, captured_at, raw_json) VALUES (:c, '2026-0000',"
            " 'scheduled', 'h', 2, now(), CAST(:j AS jsonb))"), {"c": ids[0], "j": json.dumps(units)})
        for name in ("John Doe", "Ann Other"):
            conn.execute(sa.text(
                "INSERT INTO planner_daily_aggregates (planner_name, region_id, aggregate_date,"
                " total_units_assessed) VALUES (:n, :r, DATE '2026-03-02', 1)"),
                {"n": name, "r": central})
            conn.execute(sa.text(
                "INSERT INTO planner_weekly_aggregates (planner_name, region_id, week_starting,"
                " week_ending) VALUES (:n, :r, DATE '2026-03-01', DATE '2026-03-07')"),
                {"n": name, "r": central})
        conn.execute(sa.text(
            "INSERT INTO users (name, email, password) VALUES ('Jo D', 'jo@example.com', '!'),"
            " ('Boss', 'boss@example.com', '!')"))
    return {"circuits": ids}


def test_link_planner_for_an_existing_user(engine, cli):
    seeded = _seed_planner(engine)
    code, out, err = cli("users", "link-planner", "ASPLUNDH\\jdoe", "JO@example.com",
                         "--by", "boss@example.com")
    assert code == 0, err
    assert "2 circuit link(s) created" in out and "1 daily, 1 weekly" in out
    with engine.connect() as conn:
        uid = conn.execute(sa.text("SELECT id FROM users WHERE email = 'jo@example.com'")).scalar()
        boss = conn.execute(sa.text("SELECT id FROM users WHERE email = 'boss@example.com'")).scalar()
        links = set(conn.execute(sa.text("SELECT circuit_id FROM circuit_user WHERE user_id = :u"),
                                 {"u": uid}).scalars())
        daily = dict(conn.execute(sa.text(
            "SELECT planner_name, user_id FROM planner_daily_aggregates")).all())
        weekly = dict(conn.execute(sa.text(
            "SELECT planner_name, user_id FROM planner_weekly_aggregates")).all())
        planners = dict(conn.execute(sa.text(
            "SELECT ws_username, linked_to_user_id FROM unlinked_planners")).all())
        audit = conn.execute(sa.text(
            "SELECT action, actor_user_id, actor, before, after FROM audit_log")).one()
    # The deleted circuit is not linked; case and spaces of SS_TAKENBY do not matter.
    assert links == set(seeded["circuits"][:2])
    assert daily == {"John Doe": uid, "Ann Other": None}
    assert weekly == {"John Doe": uid, "Ann Other": None}
    assert planners == {"ASPLUNDH\\jdoe": uid, "ASPLUNDH\\other": None}
    assert (audit.action, audit.actor_user_id, audit.actor) == ("planner.link", boss,
                                                                 "boss@example.com")
    assert audit.before == {"ws_username": None, "is_ws_linked": False}
    assert audit.after["ws_username"] == "ASPLUNDH\\jdoe" and audit.after["circuits_linked"] == 2

    # Linking again changes nothing and writes no audit row.
    code, out, _ = cli("users", "link-planner", "asplundh\\JDOE", "jo@example.com")
    assert code == 0 and "nothing changed" in out
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM audit_log")).scalar_one() == 1
        assert conn.execute(sa.text("SELECT count(*) FROM circuit_user")).scalar_one() == 2


def _counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in ("users", "user_regions", "circuit_user", "audit_log")} | {
            "linked": conn.execute(sa.text(
                "SELECT count(*) FROM unlinked_planners WHERE linked_to_user_id IS NOT NULL")
            ).scalar_one()}


@pytest.mark.parametrize("args, message", [
    (["users", "add", "new@example.com", "--name", "N", "--region", "Atlantis"],
     "unknown region(s): 'Atlantis'"),
    (["users", "add", "new@example.com", "--name", "N", "--default-region", "Nowhere"],
     "unknown region(s): 'Nowhere'"),
    (["users", "add", "not-an-email", "--name", "N"], "not an email address: 'not-an-email'"),
    (["users", "add", "JO@example.com", "--name", "N"], "'jo@example.com' already exists"),
    (["users", "add", "new@example.com", "--name", " "], "--name must not be empty"),
    (["users", "add", "new@example.com", "--name", "N", "--ws-username", "jdoe"],
     "DOMAIN\\user: 'jdoe'"),
    (["users", "add", "new@example.com", "--name", "N", "--by", "ghost@example.com"],
     "no user with email 'ghost@example.com'"),
    (["users", "link-planner", "ASPLUNDH\\jdoe", "ghost@example.com"],
     "no user with email 'ghost@example.com'"),
    (["users", "link-planner", "jdoe", "jo@example.com"], "DOMAIN\\user: 'jdoe'"),
])
def test_bad_input_is_refused_and_stores_nothing(engine, cli, args, message):
    _seed_planner(engine)
    before = _counts(engine)
    code, out, err = cli(*args)
    assert code == 2 and message in err and out == ""
    assert _counts(engine) == before


def test_one_workstudio_identity_per_user_and_per_username(engine, cli):
    _seed_planner(engine)
    assert cli("users", "link-planner", "ASPLUNDH\\jdoe", "jo@example.com")[0] == 0
    before = _counts(engine)
    code, _, err = cli("users", "add", "sam@example.com", "--name", "Sam", "--ws-username",
                       "asplundh\\JDOE")
    assert code == 2 and "already linked to 'jo@example.com'" in err
    code, _, err = cli("users", "link-planner", "ASPLUNDH\\other", "jo@example.com")
    assert code == 2 and "already linked to WorkStudio username 'ASPLUNDH\\jdoe'" in err
    assert _counts(engine) == before


def test_users_list(engine, cli):
    _seed_planner(engine)
    assert cli("users", "add", "lee@example.com", "--name", "Lee", "--region", "Lehigh",
               "--ws-username", "ASPLUNDH\\other")[0] == 0
    code, out, err = cli("users", "list")
    assert code == 0, err
    lines = {line.split()[0]: line for line in out.splitlines()[1:-1]}
    assert set(lines) == {"boss@example.com", "jo@example.com", "lee@example.com"}
    assert "ASPLUNDH\\other" in lines["lee@example.com"] and "Lehigh" in lines["lee@example.com"]
    assert " none " in lines["lee@example.com"]  # no credentials stored
    assert out.splitlines()[-1] == "3 user(s)"


def test_users_update_changes_regions_and_is_audited(engine, cli):
    _seed_planner(engine)
    assert cli("users", "add", "lee@example.com", "--name", "Lee", "--region", "Lehigh",
               "--default-region", "Central")[0] == 0

    def state():
        with engine.connect() as conn:
            return (conn.execute(sa.text(
                "SELECT array_agg(r.name ORDER BY r.name) FROM user_regions ur JOIN regions r"
                " ON r.id = ur.region_id JOIN users u ON u.id = ur.user_id"
                " WHERE u.email = 'lee@example.com'")).scalar(),
                conn.execute(sa.text(
                    "SELECT d.name FROM users u LEFT JOIN regions d ON d.id = u.default_region_id"
                    " WHERE u.email = 'lee@example.com'")).scalar())

    assert state() == (["Central", "Lehigh"], "Central")
    code, out, err = cli("users", "update", "lee@example.com", "--region", "Lancaster",
                         "--region", "lehigh", "--by", "boss@example.com")
    assert code == 0, err
    assert state() == (["Lancaster", "Lehigh"], None)  # Central went, and with it the default
    code, out, err = cli("users", "update", "lee@example.com", "--default-region", "Harrisburg",
                         "--name", "Lee Q")
    assert code == 0, err
    assert state() == (["Harrisburg", "Lancaster", "Lehigh"], "Harrisburg")
    assert cli("users", "update", "lee@example.com", "--no-regions")[0] == 0
    assert state() == (None, None)
    code, out, _ = cli("users", "update", "lee@example.com", "--no-regions")
    assert code == 0 and "nothing changed" in out
    with engine.connect() as conn:
        audits = conn.execute(sa.text(
            "SELECT actor, before, after FROM audit_log WHERE action = 'user.update'"
            " ORDER BY id")).all()
    assert len(audits) == 3
    assert audits[0].actor == "boss@example.com"
    assert audits[0].before["regions"] == ["Central", "Lehigh"]
    assert audits[1].after["name"] == "Lee Q" and audits[2].after["regions"] == []
    before = _counts(engine)
    for args, message in [
        (["--region", "Atlantis"], "unknown region(s): 'Atlantis'"),
        ([], "nothing to update"),
        (["--region", "Lehigh", "--no-regions"], "not both"),
    ]:
        code, _, err = cli("users", "update", "lee@example.com", *args)
        assert code == 2 and message in err
    code, _, err = cli("users", "update", "ghost@example.com", "--name", "G")
    assert code == 2 and "no user with email 'ghost@example.com'" in err
    assert _counts(engine) == before
