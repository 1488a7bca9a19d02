"""Workflow stages (derived, set by a person, recorded), the workflow-stage sensor tick by tick,
the run-status sensors, and the events listeners receive (NOTIFY ws_tracker_events)."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import psycopg
import pytest
import sqlalchemy as sa

from ws_tracker.pipeline.assets import DAILY_ASSETS, planned_unit_captures
from ws_tracker.pipeline.resources import ClockResource
from ws_tracker.pipeline.sensors import (
    JOB_GUID_TAG,
    WORKFLOW_CHANGE_TAG,
    sync_log_on_run_failure,
    workflow_stage_sensor,
)
from ws_tracker.rules.circuits import transform_circuit_rows
from ws_tracker.rules.stages import check_stage, decide_stage, derived_stage, pending_units
from ws_tracker.rules.units import PlannedUnit
from ws_tracker.warehouse.captures import CircuitToCapture, store_captures
from ws_tracker.warehouse.circuit_sync import sync_circuits
from ws_tracker.warehouse.engine import parse
from ws_tracker.warehouse.events import CHANNEL, EVENT_KINDS, encode, notify, payload
from ws_tracker.warehouse.resource import WarehouseResource
from ws_tracker.warehouse.sync_log import SyncLog
from ws_tracker.warehouse.workflow import StageError, set_stage
from ws_tracker.workstudio.resource import WorkStudioResource
from ws_tracker_tests.e2e import PASSWORD, USER

T0 = datetime(2026, 3, 2, 22, 30, tzinfo=timezone.utc)  # 17:30 New York
G1 = "{11111111-1111-1111-1111-111111111111}"
G2 = "{22222222-2222-2222-2222-222222222222}"
BIN = Path(sys.executable).parent


# ----------------------------------------------------------------------------- the rule
@pytest.mark.parametrize("status, percent, pending, stage", [
    ("ACTIV", 100, 3, "pending_permissions"),
    ("ACTIV", 100.5, 1, "pending_permissions"),
    ("ACTIV", 99.99, 3, "active"),      # not fully planned yet
    ("ACTIV", 100, 0, "active"),        # nothing waits for a permission
    ("ACTIV", None, 3, "active"),
    ("QC", 100, 3, "qc"),               # only an ACTIV circuit waits for permissions
    ("REWRK", 100, 3, "rework"),
    ("CLOSE", 100, 3, "closed"),
])
def test_derived_stage(status, percent, pending, stage):
    assert derived_stage(status, percent, pending) == stage


def test_pending_units_counts_empty_null_and_pending_only():
    assert pending_units(["", None, " pending ", "PENDING", "Approved", "Refused", "No Contact"]) == 4


def test_a_persons_stage_wins_until_the_api_status_changes():
    kept = decide_stage("qc", "person", "ACTIV", "ACTIV", "active")
    assert (kept.stage, kept.source, kept.changed, kept.rewrite) == ("qc", "person", False, False)
    moved = decide_stage("qc", "person", "ACTIV", "REWRK", "rework")
    assert (moved.stage, moved.source, moved.changed) == ("rework", "api", True)
    # The status moved to the stage the person had already chosen: no change, but the API owns it.
    same = decide_stage("qc", "person", "ACTIV", "QC", "qc")
    assert (same.stage, same.source, same.changed, same.rewrite) == ("qc", "api", False, True)
    new = decide_stage(None, None, None, "ACTIV", "active")
    assert (new.stage, new.changed) == ("active", True)
    assert check_stage(" Pending-Permissions ") == "pending_permissions"
    with pytest.raises(ValueError, match="unknown stage 'approved'"):
        check_stage("approved")


# ----------------------------------------------------------------------------- warehouse
def _row(guid, wo="2026-0001", ext="@", status="ACTIV", percent=100):
    return {"SS_JOBGUID": guid, "SS_WO": wo, "SS_EXT": ext, "SS_TITLE": f"LINE {wo}",
            "WSREQ_STATUS": status, "REGION": "Lehigh", "VEGJOB_LENGTH": 10.0,
            "VEGJOB_LENGTHCOMP": percent / 10, "VEGJOB_PRCENT": percent,
            "SS_TAKENBY": "ASPLUNDH\\jdoe", "SS_EDITDATE": "/Date(2026-03-02T12:00:00.000Z)/"}


def _sync(engine, rows, at):
    records, issues = transform_circuit_rows(rows)
    assert not [i for i in issues if i.severity == "error"]
    with engine.begin() as conn:
        return sync_circuits(conn, records, observed_at=at)


def _capture(engine, guid, permissions, at):
    with engine.begin() as conn:
        c = conn.execute(sa.text("SELECT id, work_order, coalesce(extension, '@') AS ext,"
                                 " api_status, percent_complete FROM circuits WHERE job_guid = :g"),
                         {"g": guid}).one()
        todo = CircuitToCapture(c.id, guid, c.work_order, c.ext, c.api_status, float(c.percent_complete))
        units = [PlannedUnit(unit_id=i + 1, unit_code="SPM", permission_status=p)
                 for i, p in enumerate(permissions)]
        return store_captures(conn, {c.id: units}, {c.id: todo}, captured_at=at)


def _stage(engine, guid):
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT u.workflow_stage, u.stage_source, u.stage_changed_at, u.stage_changed_by,"
            " u.stage_api_status FROM circuit_ui_states u JOIN circuits c ON c.id = u.circuit_id"
            " WHERE c.job_guid = :g"), {"g": guid}).one()


def _changes(engine, guid=None):
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT s.id, c.job_guid, s.from_stage, s.to_stage, s.source, s.changed_at, s.changed_by"
            " FROM circuit_stage_changes s JOIN circuits c ON c.id = s.circuit_id"
            " WHERE CAST(:g AS varchar) IS NULL OR c.job_guid = :g ORDER BY s.id"), {"g": guid}).all()


def _add_user(engine, email="ann@example.com"):
    with engine.begin() as conn:
        return conn.execute(sa.text(
            "INSERT INTO users (name, email, password) VALUES ('Ann', :e, 'x') RETURNING id"),
            {"e": email}).scalar_one()


def test_pending_permissions_follows_captures_and_percent(engine):
    _sync(engine, [_row(G1, percent=90)], T0)
    assert _stage(engine, G1).workflow_stage == "active"
    _capture(engine, G1, ["Approved", "", "Pending"], T0)
    assert _stage(engine, G1).workflow_stage == "active"  # 90 %: not fully planned

    t1 = T0 + timedelta(hours=12)
    result = _sync(engine, [_row(G1, percent=100)], t1)  # fully planned, units still pending
    assert [(c.from_stage, c.to_stage, c.source) for c in result.stage_changes] == [
        ("active", "pending_permissions", "api")]
    st = _stage(engine, G1)
    assert (st.workflow_stage, st.stage_source, st.stage_changed_at) == ("pending_permissions", "api", t1)

    t2 = t1 + timedelta(hours=12)
    cap = _capture(engine, G1, ["Approved", "Approved", "Refused"], t2)  # every permission answered
    assert [(c.from_stage, c.to_stage) for c in cap.stage_changes] == [("pending_permissions", "active")]
    assert [(r.from_stage, r.to_stage, r.changed_at) for r in _changes(engine, G1)] == [
        (None, "active", T0), ("active", "pending_permissions", t1), ("pending_permissions", "active", t2)]


def test_a_stage_set_by_a_person_is_kept_by_syncs_until_the_status_moves(engine):
    uid = _add_user(engine)
    _sync(engine, [_row(G1, percent=40)], T0)
    at = T0 + timedelta(hours=1)
    with engine.begin() as conn:
        change = set_stage(conn, "2026-0001", "qc", by_email="ANN@example.com", at=at)
    assert (change.from_stage, change.to_stage, change.source, change.changed_by) == (
        "active", "qc", "person", "ANN@example.com")
    st = _stage(engine, G1)
    assert (st.workflow_stage, st.stage_source, st.stage_changed_at, st.stage_changed_by,
            st.stage_api_status) == ("qc", "person", at, uid, "ACTIV")

    _sync(engine, [_row(G1, percent=60)], T0 + timedelta(hours=12))  # same status: kept
    assert _stage(engine, G1).workflow_stage == "qc"
    t3 = T0 + timedelta(hours=24)
    result = _sync(engine, [_row(G1, status="REWRK", percent=60)], t3)  # status moved: API wins
    assert [(c.from_stage, c.to_stage, c.source) for c in result.stage_changes] == [("qc", "rework", "api")]
    st = _stage(engine, G1)
    assert (st.workflow_stage, st.stage_source, st.stage_changed_at, st.stage_changed_by) == (
        "rework", "api", t3, None)
    rows = _changes(engine, G1)
    assert [(r.to_stage, r.source, r.changed_by) for r in rows] == [
        ("active", "api", None), ("qc", "person", uid), ("rework", "api", None)]


def test_stage_errors_name_what_was_wrong(engine):
    _sync(engine, [_row(G1), _row(G2, ext="C_a")], T0)
    with engine.begin() as conn:
        with pytest.raises(StageError, match=r"no circuit 2026-0001/C_b; its jobs are: @, C_a"):
            set_stage(conn, "2026-0001/C_b", "qc", at=T0)
        with pytest.raises(StageError, match="unknown stage 'done'"):
            set_stage(conn, "2026-0001", "done", at=T0)
        with pytest.raises(StageError, match="no user with email 'nobody@example.com'"):
            set_stage(conn, "2026-0001", "qc", by_email="nobody@example.com", at=T0)
        # By GUID, and the split by WORK_ORDER/EXTENSION.
        assert set_stage(conn, G2.lower(), "rework", at=T0).job_guid == G2
        assert set_stage(conn, "2026-0001/C_a", "qc", at=T0).from_stage == "rework"


def test_circuits_stage_command(db_url, engine):
    uid = _add_user(engine)
    _sync(engine, [_row(G1, percent=40)], T0)
    env = {**os.environ, "WS_TRACKER_DATABASE_URL": db_url}
    ok = subprocess.run([str(BIN / "ws-tracker"), "circuits", "stage", "2026-0001",
                         "pending_permissions", "--by", "ann@example.com"],
                        env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "2026-0001/@" in ok.stdout and "active -> pending_permissions by ann@example.com" in ok.stdout
    st = _stage(engine, G1)
    assert (st.workflow_stage, st.stage_source, st.stage_changed_by) == ("pending_permissions", "person", uid)
    bad = subprocess.run([str(BIN / "ws-tracker"), "circuits", "stage", "2099-0001", "qc"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "no circuit 2099-0001/@" in bad.stderr


# ----------------------------------------------------------------------------- the sensor
def _tick(db_url, cursor, now):
    context = dg.build_sensor_context(
        cursor=cursor,
        resources={"warehouse": WarehouseResource(database_url=db_url),
                   "clock": ClockResource(frozen_at=now.isoformat())})
    result = workflow_stage_sensor(context)
    return result.run_requests or [], result.cursor, result


def test_workflow_sensor_ticks(db_url, engine):
    _sync(engine, [_row(G1, percent=100), _row(G2, wo="2026-0002", percent=100)], T0)
    _capture(engine, G1, ["Approved"], T0)  # answered: stays active
    _capture(engine, G2, ["Approved"], T0)

    requests, cursor, _ = _tick(db_url, None, T0 + timedelta(minutes=1))
    assert requests == [] and cursor is None  # nothing entered the stage

    # A person puts G1 into pending_permissions.
    t1 = T0 + timedelta(minutes=5)
    with engine.begin() as conn:
        change = set_stage(conn, "2026-0001", "pending_permissions", at=t1)
    requests, cursor, _ = _tick(db_url, None, t1 + timedelta(seconds=30))
    assert cursor == str(change.change_id)
    assert len(requests) == 1
    req = requests[0]
    assert req.run_key == f"pending_permissions:{G1}:{t1.isoformat()}"
    assert req.partition_key == "2026-03-02"  # today in New York at the tick
    assert req.run_config == {"ops": {"planned_unit_captures": {"config": {
        "job_guids": [G1], "trigger": "workflow_event"}}}}
    assert req.tags[WORKFLOW_CHANGE_TAG] == str(change.change_id) and req.tags[JOB_GUID_TAG] == G1

    # The next tick, from the new cursor: nothing twice.
    again, cursor2, result = _tick(db_url, cursor, t1 + timedelta(minutes=1))
    assert again == [] and cursor2 is None and "no circuit entered" in result.skip_reason.skip_message

    # Leaving and re-entering the stage triggers again, with the new change's timestamp.
    t2, t3 = t1 + timedelta(minutes=10), t1 + timedelta(minutes=20)
    with engine.begin() as conn:
        set_stage(conn, "2026-0001", "active", at=t2)
        reentry = set_stage(conn, "2026-0001", "pending_permissions", at=t3)
    requests, cursor3, _ = _tick(db_url, cursor, t3 + timedelta(seconds=30))
    assert [r.run_key for r in requests] == [f"pending_permissions:{G1}:{t3.isoformat()}"]
    assert cursor3 == str(reentry.change_id)

    # An entry caused by a capture (units already current) needs no run; the cursor moves on.
    t4 = t3 + timedelta(hours=1)
    cap = _capture(engine, G2, ["Approved", ""], t4)
    assert [c.to_stage for c in cap.stage_changes] == ["pending_permissions"]
    requests, cursor4, result = _tick(db_url, cursor3, t4 + timedelta(seconds=30))
    assert requests == [] and cursor4 == str(cap.stage_changes[0].change_id)
    assert "units already captured" in result.skip_reason.skip_message

    # An entry the circuit has already left by the tick: no run either.
    t5 = t4 + timedelta(hours=1)
    with engine.begin() as conn:
        set_stage(conn, "2026-0001", "active", at=t5)
        gone = set_stage(conn, "2026-0001", "pending_permissions", at=t5 + timedelta(seconds=1))
        set_stage(conn, "2026-0001", "qc", at=t5 + timedelta(seconds=2))
    requests, cursor5, result = _tick(db_url, cursor4, t5 + timedelta(seconds=30))
    assert requests == [] and cursor5 == str(gone.change_id) and "no longer" in result.skip_reason.skip_message


def test_first_tick_looks_back_a_day_only(db_url, engine):
    _sync(engine, [_row(G1, percent=100)], T0)
    with engine.begin() as conn:
        set_stage(conn, "2026-0001", "pending_permissions", at=T0)
        conn.execute(sa.text("UPDATE circuit_stage_changes SET recorded_at = now() - interval '25 hours'"))
    requests, cursor, _ = _tick(db_url, None, datetime.now(timezone.utc))
    assert requests == [] and cursor is None


def test_a_sensor_run_captures_its_circuit_at_once(harness, engine, db_url):
    """The run the sensor asks for, executed: the circuit's units are captured even though
    nothing changed in WorkStudio, with sync trigger workflow_event, and the day rebuilt."""
    from ws_tracker_tests.e2e import sync_instant

    day = T0.date()
    assert harness.run(day).success
    with engine.connect() as conn:
        guid, wo, ext = conn.execute(sa.text(
            "SELECT c.job_guid, c.work_order, coalesce(c.extension, '@') FROM circuits c"
            " JOIN circuit_ui_states u ON u.circuit_id = c.id"
            " WHERE c.api_status = 'ACTIV' AND u.workflow_stage = 'active' ORDER BY c.id LIMIT 1")).one()
    at = sync_instant(day) + timedelta(minutes=20)
    with engine.begin() as conn:
        set_stage(conn, f"{wo}/{ext}", "pending_permissions", at=at)
    tick = at + timedelta(minutes=1)
    requests, _, _ = _tick(db_url, None, tick)
    assert [r.tags[JOB_GUID_TAG] for r in requests] == [guid]
    req = requests[0]

    harness.world.set_clock(tick)
    resources = {
        "workstudio": WorkStudioResource(base_url=harness.server.base_url, username=USER,
                                         password=PASSWORD, requests_per_second=1000.0),
        "warehouse": WarehouseResource(database_url=db_url),
        "clock": ClockResource(frozen_at=tick.isoformat()),
    }
    result = dg.materialize([planned_unit_captures, *DAILY_ASSETS], partition_key=req.partition_key,
                            run_config=req.run_config, resources=resources,
                            tags={**req.tags, "dagster/sensor_name": "workflow_stage_sensor"})
    assert result.success
    with engine.connect() as conn:
        log = conn.execute(sa.text(
            "SELECT sync_trigger, sync_status, summary_json FROM sync_logs WHERE dagster_run_id = :r"),
            {"r": result.run_id}).one()
        caps = conn.execute(sa.text(
            "SELECT c.job_guid, s.snapshot_trigger FROM planned_units_snapshots s"
            " JOIN circuits c ON c.id = s.circuit_id WHERE s.dagster_run_id = :r"), {"r": result.run_id}).all()
        synced = conn.execute(sa.text(
            "SELECT last_planned_units_synced_at FROM circuits WHERE job_guid = :g"), {"g": guid}).scalar()
        agg_run = conn.execute(sa.text(
            "SELECT count(*) FROM circuit_aggregates a JOIN circuits c ON c.id = a.circuit_id"
            " WHERE c.job_guid = :g AND a.aggregate_date = :d"), {"g": guid, "d": day}).scalar()
    assert (log.sync_trigger, log.sync_status) == ("workflow_event", "completed")
    # Only that circuit was fetched; its units did not change, so no new capture row is needed,
    # but the fetch is recorded.
    assert log.summary_json["metrics"]["circuits_processed"] == 1
    assert all(g == guid and t == "workflow_event" for g, t in caps)
    assert synced == tick and agg_run == 1


def test_run_failure_sensor_closes_the_runs_sync_logs(db_url, engine):
    @dg.asset
    def boom():
        raise RuntimeError("kaput")

    instance = dg.DagsterInstance.ephemeral()
    failed = dg.materialize([boom], instance=instance, raise_on_error=False)
    log = SyncLog(engine, "aggregates", "manual", run_id=failed.run_id).start()
    other = SyncLog(engine, "aggregates", "manual", run_id="another-run").start()
    run = instance.get_run_by_id(failed.run_id)
    failure_event = next(e for e in failed.all_events if e.event_type_value == "PIPELINE_FAILURE")
    context = dg.build_run_status_sensor_context(
        sensor_name="sync_log_on_run_failure", dagster_instance=instance, dagster_run=run,
        dagster_event=failure_event, resources={"warehouse": WarehouseResource(database_url=db_url)},
    ).for_run_failure()
    sync_log_on_run_failure(context)
    with engine.connect() as conn:
        got = dict(conn.execute(sa.text("SELECT id, sync_status FROM sync_logs")).all())
        message = conn.execute(sa.text("SELECT error_message FROM sync_logs WHERE id = :i"),
                               {"i": log.id}).scalar()
    assert got == {log.id: "failed", other.id: "started"}
    assert "FAILURE" in message


# ----------------------------------------------------------------------------- events
def _listen(db_url):
    url = parse(db_url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = psycopg.connect(url, autocommit=True)
    conn.execute(f"LISTEN {CHANNEL}")
    return conn


def _drain(conn) -> list[dict]:
    out = []
    select.select([conn.fileno()], [], [], 0.5)
    for note in conn.notifies(timeout=0.5, stop_after=None):
        assert note.channel == CHANNEL
        out.append(json.loads(note.payload))
    return out


def test_notify_sends_each_payload_as_encoded_in_order(engine, db_url):
    """One statement for many events: each notification is exactly encode()'s text (compact,
    escapes kept), in the order given, a too-long message cut; nothing arrives before commit."""
    at = datetime(2026, 3, 4, 22, 30, tzinfo=timezone.utc)
    events = [payload("circuit_updated", at, change="updated", circuit_id=i,
                      work_order=f"WO-{i}", title='quote " back\\ slash ünï \u2028 tab\t')
              for i in range(300)]
    events.append(payload("sync_failed", at, sync_log_id=1, message="x" * 9000))
    listener = _listen(db_url)
    try:
        with engine.begin() as conn:
            notify(conn, events)
            assert list(listener.notifies(timeout=0.2, stop_after=1)) == []
        select.select([listener.fileno()], [], [], 2)
        got = [n.payload for n in listener.notifies(timeout=1, stop_after=len(events))]
    finally:
        listener.close()
    assert got == [encode(e) for e in events]
    assert json.loads(got[-1])["truncated"] is True and len(got[-1].encode()) < 7900
    assert json.loads(got[0])["title"] == events[0]["title"]


REQUIRED = {
    "sync_started": {"sync_log_id", "sync_type", "sync_trigger", "dagster_run_id"},
    "sync_completed": {"sync_log_id", "sync_type", "status", "metrics", "issues_total", "dagster_run_id"},
    "sync_failed": {"sync_log_id", "status", "error_code", "message", "dagster_run_id"},
    "circuit_updated": {"change", "circuit_id", "job_guid", "work_order", "extension", "api_status",
                        "fields", "dagster_run_id"},
    "planned_units_synced": {"circuit_id", "snapshot_id", "work_order", "extension", "unit_count",
                             "content_hash", "snapshot_trigger", "dagster_run_id"},
    "workflow_changed": {"change_id", "circuit_id", "job_guid", "work_order", "extension",
                         "from_stage", "to_stage", "source", "api_status", "changed_by",
                         "dagster_run_id"},
}


def test_listeners_receive_the_documented_payloads(harness, engine, db_url):
    assert set(REQUIRED) == set(EVENT_KINDS)
    listener = _listen(db_url)
    try:
        result = harness.run(T0.date())
        assert result.success
        events = _drain(listener)
        kinds = {e["event"] for e in events}
        assert kinds == {"sync_started", "sync_completed", "circuit_updated",
                         "planned_units_synced", "workflow_changed"}
        for e in events:
            assert e["version"] == 1 and e["at"].endswith("Z")
            assert REQUIRED[e["event"]] <= set(e), (e["event"], set(e))
        with engine.connect() as conn:
            n_circuits = conn.execute(sa.text("SELECT count(*) FROM circuits")).scalar()
            n_caps = conn.execute(sa.text("SELECT count(*) FROM planned_units_snapshots")).scalar()
            n_changes = conn.execute(sa.text("SELECT count(*) FROM circuit_stage_changes")).scalar()
        count = {k: sum(1 for e in events if e["event"] == k) for k in kinds}
        # One per circuit created, per capture stored, per stage change, and per sync (two syncs).
        assert count == {"sync_started": 2, "sync_completed": 2, "circuit_updated": n_circuits,
                         "planned_units_synced": n_caps, "workflow_changed": n_changes}
        assert all(e["dagster_run_id"] == result.run_id for e in events)

        # The same events are Dagster events of the run (one observation per kind and step).
        observed = {}
        for ev in result.get_asset_observation_events():
            md = ev.asset_observation_data.asset_observation.metadata
            observed[md["event"].value] = observed.get(md["event"].value, 0) + md["count"].value
        assert observed == count

        # A failed sync is announced too, after its failure is stored.
        harness.password = "wrong"
        failed = harness.run(T0.date() + timedelta(days=1), raise_on_error=False)
        assert not failed.success
        events = _drain(listener)
        fails = [e for e in events if e["event"] == "sync_failed"]
        assert fails and fails[0]["error_code"] == "WorkStudioAuthError"
        assert "wrong" not in json.dumps(events)
    finally:
        listener.close()


def test_a_person_setting_a_stage_is_announced(engine, db_url):
    _sync(engine, [_row(G1, percent=50)], T0)
    listener = _listen(db_url)
    try:
        with engine.begin() as conn:
            change = set_stage(conn, "2026-0001", "qc", at=T0)
        with engine.begin() as conn:  # rolled back: never announced
            set_stage(conn, "2026-0001", "rework", at=T0)
            conn.rollback()
        events = _drain(listener)
    finally:
        listener.close()
    assert events == [{"event": "workflow_changed", "version": 1, "at": "2026-03-02T22:30:00Z",
                       "change_id": change.change_id, "circuit_id": change.circuit_id,
                       "job_guid": G1, "work_order": "2026-0001", "extension": "@",
                       "from_stage": "active", "to_stage": "qc", "source": "person",
                       "api_status": "ACTIV", "changed_by": None, "dagster_run_id": None}]


def test_daily_snapshots_keep_each_days_stage(engine):
    """A rebuilt past day shows the stage the circuit had that day, not today's."""
    from ws_tracker.warehouse.circuit_snapshots import build_day

    _sync(engine, [_row(G1, percent=100)], T0)
    _capture(engine, G1, ["", "Approved"], T0)                         # day 1: pending_permissions
    _capture(engine, G1, ["Approved", "Approved"], T0 + timedelta(days=1))  # day 2: active
    stages = {}
    for offset in (0, 1):
        day = T0.date() + timedelta(days=offset)
        end = datetime(day.year, day.month, day.day, 5, 0, tzinfo=timezone.utc) + timedelta(days=1)
        with engine.begin() as conn:
            build_day(conn, day, end)
            stages[offset] = conn.execute(sa.text(
                "SELECT workflow_stage FROM circuit_snapshots WHERE snapshot_date = :d"), {"d": day}).scalar()
    assert stages == {0: "pending_permissions", 1: "active"}
