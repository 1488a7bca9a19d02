"""The sync layer with the simulator advancing day by day: incremental captures (counted at
the simulator), snapshot triggers, a person's edits, and sync logs a dead run left behind."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import dagster as dg
import pytest
import sqlalchemy as sa

from ws_tracker.pipeline.sensors import sync_log_sweeper
from ws_tracker.warehouse.edits import EditError, parse_assignments, record_edit
from ws_tracker.warehouse.resource import WarehouseResource
from ws_tracker.workstudio.protocol import PLANNED_UNITS_VIEW
from ws_tracker_tests.e2e import NY, sync_instant

DAY = date(2026, 3, 2)  # a Monday
UNIT_STATUSES = ("ACTIV", "QC", "REWRK")


def _unit_calls(h) -> int:
    return h.server.stats()["requests"]["GETVIEWDATA"].get(PLANNED_UNITS_VIEW, 0)


def test_steady_state_sync_fetches_only_changed_circuits(harness, engine):
    assert harness.run(DAY).success
    first = _unit_calls(harness)
    truth0 = {c["job_guid"]: c for c in harness.world.circuits_truth()}
    wos0 = {c["work_order"] for c in truth0.values() if c["status"] in UNIT_STATUSES}
    assert first == len(wos0), "the first sync fetches every work order once (splits included)"

    # The next morning (12 h later): only circuits WorkStudio changed since, or new ones.
    at0 = sync_instant(DAY)
    harness.server.reset_stats()
    next_morning = datetime(2026, 3, 3, 5, 30, tzinfo=at0.tzinfo)
    harness.world.set_clock(next_morning)
    truth1 = {c["job_guid"]: c for c in harness.world.circuits_truth()}
    due = {c["work_order"] for g, c in truth1.items() if c["status"] in UNIT_STATUSES and (
        g not in truth0 or truth0[g]["status"] not in UNIT_STATUSES
        or c["edit_time"] > at0 or c["version"] != truth0[g]["version"])}
    assert 0 < len(due) < len(wos0), "the world changes some circuits overnight, not all"

    result = harness.run(next_morning.astimezone(NY).date(), at=next_morning)
    assert result.success
    assert _unit_calls(harness) == len(due)
    with engine.connect() as conn:
        log = conn.execute(sa.text(
            "SELECT summary_json FROM sync_logs WHERE context_json->>'asset' = 'planned_unit_captures'"
            " ORDER BY id DESC LIMIT 1")).scalar_one()
    assert log["metrics"]["circuits_processed"] >= len(due)


def test_unchanged_circuits_are_reverified_once_a_week_a_fifth_per_weekday(harness, engine):
    monday = DAY
    assert harness.run(monday).success
    eligible_sql = ("SELECT job_guid, last_planned_units_synced_at FROM circuits WHERE deleted_at IS NULL"
                    " AND api_status IN ('ACTIV', 'QC', 'REWRK') AND NOT is_excluded")
    day, prev_at = monday, sync_instant(monday)
    for _ in range(5):  # Tuesday .. next Monday, at 17:30
        day += timedelta(days=3 if day.weekday() == 4 else 1)
        at = sync_instant(day)
        truth_before = {c["job_guid"]: c for c in harness.world.circuits_truth()}
        harness.world.set_clock(at)
        truth = {c["job_guid"]: c for c in harness.world.circuits_truth()}
        changed_wos = {c["work_order"] for g, c in truth.items() if c["status"] in UNIT_STATUSES and (
            g not in truth_before or c["edit_time"] > prev_at
            or c["version"] != truth_before[g]["version"] or truth_before[g]["status"] != c["status"])}
        harness.server.reset_stats()
        assert harness.run(day).success
        with engine.connect() as conn:
            todays = conn.execute(sa.text(eligible_sql + " AND id % 5 = :d"),
                                  {"d": day.weekday()}).all()
        calls = _unit_calls(harness)
        # On top of the changes: at most today's fifth (circuits.id % 5 = New York weekday).
        assert calls - len(changed_wos) <= len(todays), (day, calls, len(changed_wos))
        prev_at = at
    # Five weekdays later every eligible circuit has been fetched since the first sync.
    with engine.connect() as conn:
        stale = [r.job_guid for r in conn.execute(sa.text(eligible_sql))
                 if r.last_planned_units_synced_at <= sync_instant(monday)]
    assert stale == []


def test_force_fetches_every_circuit_again(harness):
    assert harness.run(DAY).success
    harness.server.reset_stats()
    assert harness.run(DAY).success
    assert _unit_calls(harness) == 0, "nothing changed at the same instant: nothing fetched"
    assert harness.run(DAY, force=True).success
    wos = {c["work_order"] for c in harness.world.circuits_truth()}  # CLOSE too when forced
    assert _unit_calls(harness) == len(wos)


def test_triggers_fire_when_status_or_percent_cross(harness, engine):
    day = DAY
    for _ in range(12):  # two and a half working weeks
        assert harness.run(day).success
        day += timedelta(days=3 if day.weekday() == 4 else 1)
    with engine.connect() as conn:
        caps = conn.execute(sa.text(
            "SELECT circuit_id, captured_at, snapshot_trigger, api_status, percent_complete"
            " FROM planned_units_snapshots ORDER BY circuit_id, captured_at")).all()
    seen = {}
    fired = {"status_to_qc": 0, "milestone_50": 0, "milestone_100": 0}
    for cap in caps:
        prev = seen.get(cap.circuit_id)
        seen[cap.circuit_id] = cap
        if prev is None:
            assert cap.snapshot_trigger == "scheduled"
            continue
        if cap.api_status == "QC" and prev.api_status != "QC":
            want = "status_to_qc"
        elif prev.percent_complete < 100 <= cap.percent_complete:
            want = "milestone_100"
        elif prev.percent_complete < 50 <= cap.percent_complete:
            want = "milestone_50"
        else:
            want = "scheduled"
        assert cap.snapshot_trigger == want, (cap, prev)
        if want in fired:
            fired[want] += 1
    assert fired["status_to_qc"] >= 1 and fired["milestone_50"] >= 1, fired


def test_person_edits_are_recorded_in_the_seed_shape(harness, engine):
    assert harness.run(DAY).success
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO users (name, email, password) VALUES ('Ann Editor', 'ann@example.com', '!')"))
        guid, title, miles = conn.execute(sa.text(
            "SELECT job_guid, title, total_miles FROM circuits WHERE api_status = 'ACTIV' ORDER BY id LIMIT 1")).one()
        at = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)
        record_edit(conn, guid.strip("{}").lower(), parse_assignments(["title=Renamed", "total_miles=99.5"]),
                    by_email="ANN@example.com", at=at)
        record_edit(conn, guid, {"title": "Renamed again"}, by_email=None, at=at + timedelta(hours=1))
    with engine.connect() as conn:
        row = conn.execute(sa.text(
            "SELECT c.title, c.total_miles, c.user_modified_fields, c.last_user_modified_at, u.email"
            " FROM circuits c LEFT JOIN users u ON u.id = c.last_user_modified_by"
            " WHERE c.job_guid = :g"), {"g": guid}).one()
        uid = conn.execute(sa.text("SELECT id FROM users WHERE email = 'ann@example.com'")).scalar()
    assert row.title == "Renamed again" and float(row.total_miles) == 99.5
    marks = row.user_modified_fields
    assert marks["title"]["original_value"] == title  # the API value, kept across edits
    assert marks["title"]["modified_by"] is None and marks["total_miles"]["modified_by"] == uid
    assert marks["total_miles"]["original_value"] == float(miles)
    assert row.last_user_modified_at == at + timedelta(hours=1)

    # A normal sync keeps both; a forced one restores the API's values and clears the marks.
    assert harness.run(DAY).success
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT title FROM circuits WHERE job_guid = :g"), {"g": guid}).scalar() \
            == "Renamed again"
    assert harness.run(DAY, force=True).success
    with engine.connect() as conn:
        t, m, marks = conn.execute(sa.text(
            "SELECT title, total_miles, user_modified_fields FROM circuits WHERE job_guid = :g"), {"g": guid}).one()
    assert (t, m, marks) == (title, miles, None)


@pytest.mark.parametrize("assignments, message", [
    (["colour=red"], "cannot be edited"),
    (["title"], "expected FIELD=VALUE"),
    (["total_miles=lots"], "total_miles='lots': not a number"),
    (["start_date=2026-02-30"], "not a date"),
    (["region=Atlantis"], "no such region"),
])
def test_bad_edits_name_what_is_wrong(harness, engine, assignments, message):
    assert harness.run(DAY).success
    with engine.begin() as conn:
        guid = conn.execute(sa.text("SELECT job_guid FROM circuits LIMIT 1")).scalar()
        with pytest.raises(EditError, match=message):
            record_edit(conn, guid, parse_assignments(assignments), at=datetime.now(timezone.utc))
    with engine.begin() as conn:
        with pytest.raises(EditError, match="no circuit"):
            record_edit(conn, "{00000000-0000-0000-0000-000000000000}", {"title": "x"}, at=datetime.now(timezone.utc))
        with pytest.raises(EditError, match="no user"):
            record_edit(conn, guid, {"title": "x"}, by_email="nobody@example.com", at=datetime.now(timezone.utc))


def test_sweeper_closes_logs_of_dead_runs(db_url, engine):
    instance = dg.DagsterInstance.ephemeral()

    @dg.asset
    def boom():
        raise RuntimeError("killed")

    @dg.asset
    def fine():
        return 1

    failed = dg.materialize([boom], instance=instance, raise_on_error=False).run_id
    ok = dg.materialize([fine], instance=instance).run_id
    now = datetime.now(timezone.utc)
    rows = [("started", failed, now), ("started", ok, now), ("started", "in-flight-run", now),
            ("started", None, now - timedelta(hours=7)), ("completed", failed, now)]
    with engine.begin() as conn:
        for status, run_id, started in rows:
            conn.execute(sa.text(
                "INSERT INTO sync_logs (sync_type, sync_status, sync_trigger, started_at, dagster_run_id)"
                " VALUES ('circuit_list', :s, 'scheduled', :t, :r)"), {"s": status, "t": started, "r": run_id})

    context = dg.build_sensor_context(instance=instance,
                                      resources={"warehouse": WarehouseResource(database_url=db_url)})
    result = sync_log_sweeper(context)
    assert isinstance(result, dg.SkipReason) and "closed 3" in result.skip_message
    with engine.connect() as conn:
        got = conn.execute(sa.text(
            "SELECT sync_status, error_details, summary_json FROM sync_logs ORDER BY id")).all()
    assert [g.sync_status for g in got] == ["failed", "failed", "started", "failed", "completed"]
    assert got[0].error_details["trace_id"] == failed and "FAILURE" in got[0].error_details["message"]
    assert got[0].summary_json["stage"] == "failed"
    # Evaluating again closes nothing more.
    assert "closed 0" in sync_log_sweeper(context).skip_message
    json.dumps([g.summary_json for g in got])  # summaries stay valid JSON


def test_bounded_in_order_keeps_order_and_never_runs_ahead_of_the_window():
    """The capture fetches run ahead of the writes by at most ``window``: their results never
    pile up in memory, whatever the number of work orders."""
    from concurrent.futures import ThreadPoolExecutor

    from ws_tracker.pipeline.assets import bounded_in_order

    submitted: list[int] = []

    def fetch(n):
        submitted.append(n)
        return n * n

    consumed = []
    with ThreadPoolExecutor(max_workers=3) as pool:
        for item, future in bounded_in_order(pool, fetch, list(range(50)), window=4):
            # Submitted but not yet consumed: never more than the window.
            assert len(submitted) - len(consumed) <= 4
            consumed.append(item)
            assert future.result() == item * item
    assert consumed == list(range(50))


def test_store_captures_copies_new_captures_and_replaces_one_at_the_same_instant(engine):
    from ws_tracker.rules.circuits import transform_circuit_rows
    from ws_tracker.rules.units import PlannedUnit, content_hash
    from ws_tracker.warehouse.captures import CircuitToCapture, store_captures
    from ws_tracker.warehouse.circuit_sync import sync_circuits

    at = datetime(2026, 3, 2, 22, 30, tzinfo=timezone.utc)
    rows = [{"SS_JOBGUID": f"{{{n}1111111-1111-1111-1111-111111111111}}", "SS_WO": f"2026-000{n}",
             "SS_EXT": "@", "WSREQ_STATUS": "ACTIV", "REGION": "Lehigh", "VEGJOB_PRCENT": 40}
            for n in (1, 2, 3)]
    records, _ = transform_circuit_rows(rows)
    with engine.begin() as conn:
        ids = list(sync_circuits(conn, records, observed_at=at).circuit_ids.values())
    todo = {cid: CircuitToCapture(cid, "g", f"wo{cid}", "@", "ACTIV", 40.0) for cid in ids}

    def units(n, code="SPM"):
        return [PlannedUnit(unit_id=i, unit_code=code) for i in range(1, n + 1)]

    with engine.begin() as conn:  # all new: one COPY
        first = store_captures(conn, {ids[0]: units(2), ids[1]: units(3)}, todo, captured_at=at)
    # The same instant again (a retried run with a frozen clock): the first circuit's content
    # changed and replaces its capture, the second is unchanged, the third is new (COPY).
    with engine.begin() as conn:
        again = store_captures(conn, {ids[0]: units(2, "BRUSH"), ids[1]: units(3),
                                      ids[2]: units(4)}, todo, captured_at=at)
    with engine.connect() as conn:
        stored = {r.circuit_id: r for r in conn.execute(sa.text(
            "SELECT id, circuit_id, content_hash, unit_count, jsonb_array_length(raw_json) AS n"
            " FROM planned_units_snapshots"))}
    assert set(stored) == set(ids), "one capture per circuit at that instant"
    assert (first.stored, again.stored, again.unchanged) == (2, 2, 1)
    assert again.snapshot_ids == {ids[0]: stored[ids[0]].id, ids[2]: stored[ids[2]].id}
    assert first.snapshot_ids[ids[0]] == stored[ids[0]].id, "replaced in place, same id"
    assert stored[ids[0]].content_hash == content_hash(units(2, "BRUSH"))
    assert [(stored[i].unit_count, stored[i].n) for i in ids] == [(2, 2), (3, 3), (4, 4)]
