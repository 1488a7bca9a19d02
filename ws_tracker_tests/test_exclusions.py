"""``ws-tracker circuits exclude | include``: the four circuits columns, an audit_log row per
change, and rollups (planner and regional, daily and weekly), daily snapshots and reporting
views that leave an excluded circuit out and count it in excluded_circuits; including it
again gives back exactly the rows it had."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from ws_tracker.rules.rollups import breakdown_key
from ws_tracker.rules.weekly import week_starting_of
from ws_tracker.warehouse import circuit_snapshots
from ws_tracker.warehouse.rollups import build_planner_day, build_regional_day
from ws_tracker.warehouse.weekly import build_planner_week, build_regional_week
from ws_tracker_tests.e2e import start_harness

NY = ZoneInfo("America/New_York")
DAY = date(2026, 3, 2)
NEXT = date(2026, 3, 3)
REASON = "duplicate of a job in another work order"


@pytest.fixture
def h(db_url, engine):
    harness = start_harness(db_url, circuits=40, units_per_circuit=(10, 40))
    assert harness.run(DAY).success
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO users (name, email, password) VALUES"
                             " ('Boss', 'boss@example.com', '!')"))
    rebuild(engine, DAY)
    yield harness
    harness.server.stop()


def rebuild(engine, day: date) -> None:
    """What the pipeline's derived assets do for ``day`` and its week."""
    end = datetime.combine(day + timedelta(days=1), time(0), NY)
    with engine.begin() as conn:
        circuit_snapshots.build_day(conn, day, end)
        build_planner_day(conn, day, end)
        build_regional_day(conn, day, end)
        build_planner_week(conn, week_starting_of(day))
        build_regional_week(conn, week_starting_of(day))


DERIVED = ("regional_daily_aggregates", "regional_weekly_aggregates", "planner_daily_aggregates",
           "planner_weekly_aggregates", "circuit_snapshots")


def derived(engine) -> dict[str, list[str]]:
    with engine.connect() as conn:
        return {t: sorted(conn.execute(sa.text(
            f"SELECT (to_jsonb(t) - 'id' - 'updated_at' - 'created_at')::text FROM {t} t")).scalars())
            for t in DERIVED}


def _pick(engine):
    """A circuit with units, planner work that day, and a region."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT c.id, c.job_guid, c.work_order, c.extension, c.region_id, a.total_units"
            " FROM circuits c JOIN circuit_aggregates a ON a.circuit_id = c.id"
            " AND a.aggregate_date = :d WHERE a.total_units > 0 ORDER BY c.id"), {"d": DAY}).all()
        worked = {k for b in conn.execute(sa.text(
            "SELECT circuit_breakdown FROM planner_daily_aggregates WHERE aggregate_date = :d"),
            {"d": DAY}).scalars() for k in b}
    return next(r for r in rows if breakdown_key(r.work_order, r.extension) in worked)


def _regional(conn, table: str, region_id: int):
    return conn.execute(sa.text(
        f"SELECT total_circuits, excluded_circuits, total_units FROM {table}"
        " WHERE region_id = :r"), {"r": region_id}).one()


def test_exclusion_changes_every_rollup_and_is_audited(h, engine, cli):
    c = _pick(engine)
    key = breakdown_key(c.work_order, c.extension)
    before = derived(engine)
    with engine.connect() as conn:
        daily0 = _regional(conn, "regional_daily_aggregates", c.region_id)
        weekly0 = _regional(conn, "regional_weekly_aggregates", c.region_id)
        units0 = conn.execute(sa.text("SELECT total_units FROM vw_units_daily"
                                      " WHERE aggregate_date = :d"), {"d": DAY}).scalar_one()
        weekly_units0 = conn.execute(sa.text(
            "SELECT sum(total_units_assessed) FROM planner_weekly_aggregates")).scalar_one()
        credited = sum(b[key]["units"] for b in conn.execute(sa.text(
            "SELECT circuit_breakdown FROM planner_daily_aggregates WHERE aggregate_date = :d"),
            {"d": DAY}).scalars() if key in b)
    assert credited > 0

    code, out, err = cli("circuits", "exclude", c.job_guid, "--reason", f" {REASON} ",
                         "--by", "Boss@Example.com")
    assert code == 0, err
    assert c.job_guid in out and "excluded by" in out
    with engine.connect() as conn:
        row = conn.execute(sa.text(
            "SELECT c.is_excluded, c.exclusion_reason, u.email, c.excluded_at FROM circuits c"
            " JOIN users u ON u.id = c.excluded_by WHERE c.id = :c"), {"c": c.id}).one()
        audit = conn.execute(sa.text(
            "SELECT action, entity_type, entity_id, entity_key, actor, before, after, occurred_at"
            " FROM audit_log")).one()
    assert tuple(row)[:3] == (True, REASON, "boss@example.com") and row.excluded_at is not None
    assert audit[:5] == ("circuit.exclude", "circuit", c.id, c.job_guid, "Boss@Example.com")
    assert audit.before["is_excluded"] is False and audit.before["exclusion_reason"] is None
    assert audit.after["is_excluded"] is True and audit.after["exclusion_reason"] == REASON
    assert audit.occurred_at == row.excluded_at

    rebuild(engine, DAY)
    with engine.connect() as conn:
        daily1 = _regional(conn, "regional_daily_aggregates", c.region_id)
        weekly1 = _regional(conn, "regional_weekly_aggregates", c.region_id)
        breakdowns = conn.execute(sa.text(
            "SELECT circuit_breakdown FROM planner_daily_aggregates WHERE aggregate_date = :d"),
            {"d": DAY}).scalars().all()
        weekly_units = conn.execute(sa.text(
            "SELECT sum(total_units_assessed) FROM planner_weekly_aggregates")).scalar_one()
        snapshots = conn.execute(sa.text(
            "SELECT count(*) FROM circuit_snapshots WHERE circuit_id = :c AND snapshot_date = :d"),
            {"c": c.id, "d": DAY}).scalar_one()
        in_view = conn.execute(sa.text(
            "SELECT count(*) FROM vw_active_circuits_latest_aggregate WHERE circuit_id = :c"),
            {"c": c.id}).scalar_one()
        units1 = conn.execute(sa.text("SELECT total_units FROM vw_units_daily"
                                      " WHERE aggregate_date = :d"), {"d": DAY}).scalar_one()
    assert daily1 == (daily0.total_circuits - 1, daily0.excluded_circuits + 1,
                      daily0.total_units - c.total_units)
    assert weekly1 == (weekly0.total_circuits - 1, weekly0.excluded_circuits + 1,
                       weekly0.total_units - c.total_units)
    assert breakdowns and all(key not in b for b in breakdowns)
    assert weekly_units == weekly_units0 - credited
    assert snapshots == 0 and in_view == 0
    assert units1 == units0 - c.total_units

    code, out, err = cli("circuits", "include", c.job_guid, "--by", "boss@example.com")
    assert code == 0, err
    assert "included again" in out
    with engine.connect() as conn:
        row = conn.execute(sa.text(
            "SELECT is_excluded, exclusion_reason, excluded_by, excluded_at FROM circuits"
            " WHERE id = :c"), {"c": c.id}).one()
        audits = conn.execute(sa.text(
            "SELECT action, before, after FROM audit_log ORDER BY id")).all()
    assert tuple(row) == (False, None, None, None)
    assert [a.action for a in audits] == ["circuit.exclude", "circuit.include"]
    assert audits[1].before["exclusion_reason"] == REASON
    assert audits[1].before["excluded_by_email"] == "boss@example.com"
    assert audits[1].after["is_excluded"] is False
    rebuild(engine, DAY)
    assert derived(engine) == before


def test_excluding_twice_changes_nothing_and_a_sync_keeps_it(h, engine, cli):
    c = _pick(engine)
    assert cli("circuits", "exclude", c.job_guid, "--reason", REASON, "--by", "boss@example.com")[0] == 0
    # A sync keeps the exclusion (the API does not own it) and captures no units for it.
    with engine.connect() as conn:
        captures = conn.execute(sa.text("SELECT count(*) FROM planned_units_snapshots"
                                        " WHERE circuit_id = :c"), {"c": c.id}).scalar_one()
    assert h.run(NEXT, force=True).success
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT is_excluded, exclusion_reason FROM circuits"
                                    " WHERE id = :c"), {"c": c.id}).one() == (True, REASON)
        assert conn.execute(sa.text("SELECT count(*) FROM planned_units_snapshots"
                                    " WHERE circuit_id = :c"), {"c": c.id}).scalar_one() == captures
    code, out, _ = cli("circuits", "exclude", c.job_guid, "--reason", REASON, "--by",
                       "boss@example.com")
    assert code == 0 and "nothing changed" in out
    code, out, _ = cli("circuits", "exclude", c.job_guid, "--reason", "another reason", "--by",
                       "boss@example.com")
    assert code == 0 and "another reason" in out
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM audit_log")).scalar_one() == 2
        assert conn.execute(sa.text("SELECT exclusion_reason FROM circuits WHERE id = :c"),
                            {"c": c.id}).scalar_one() == "another reason"


@pytest.mark.parametrize("args, message", [
    (["exclude", "{11111111-2222-3333-4444-555555555555}", "--reason", "x", "--by",
      "boss@example.com"], "no circuit with job_guid {11111111-2222-3333-4444-555555555555}"),
    (["exclude", "9999-9999", "--reason", "x", "--by", "boss@example.com"], "no circuit 9999-9999/@"),
    (["exclude", "GUID", "--reason", "x", "--by", "ghost@example.com"],
     "no user with email 'ghost@example.com'"),
    (["exclude", "GUID", "--reason", "  ", "--by", "boss@example.com"], "--reason must say why"),
    (["include", "GUID", "--by", "ghost@example.com"], "no user with email 'ghost@example.com'"),
])
def test_bad_input_is_refused_and_changes_nothing(h, engine, cli, args, message):
    c = _pick(engine)
    args = [a.replace("GUID", c.job_guid) for a in args]
    with engine.connect() as conn:
        state = conn.execute(sa.text("SELECT to_jsonb(c)::text FROM circuits c ORDER BY id")).all()
    code, out, err = cli("circuits", *args)
    assert code == 2 and message in err and out == ""
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT to_jsonb(c)::text FROM circuits c ORDER BY id")).all() == state
        assert conn.execute(sa.text("SELECT count(*) FROM audit_log")).scalar_one() == 0
