"""The fault suite: each test injects a fault or bad input, then checks the tables and the sync
log. Their records become RELIABILITY.md (ws_tracker_tests/reliability.py).

"Rows checked" are rows stored before the fault (or by a clean reference run) compared column by
column with the tables afterwards; "rows lost" counts those missing or changed.
"""

from __future__ import annotations

import threading
from datetime import date, timedelta

import dagster as dg
import pytest
import sqlalchemy as sa

from ws_tracker.pipeline.assets import DAILY_ASSETS, WEEKLY_ASSETS
from ws_tracker.simulator.faults import FaultPlan
from ws_tracker.warehouse.engine import make_engine
from ws_tracker.warehouse.resource import WarehouseResource
from ws_tracker_tests.e2e import start_harness, sync_instant, value_rows

DAY = date(2026, 3, 2)
# Every table a sync or a build writes (sync_logs and quarantined_rows are audit trails: they
# grow by design and are checked separately).
DATA_TABLES = ["regions", "circuits", "circuit_history", "circuit_ui_states", "circuit_stage_changes",
               "circuit_user", "unlinked_planners", "planned_units_snapshots", "circuit_aggregates",
               "circuit_snapshots", "planner_daily_aggregates", "regional_daily_aggregates",
               "planner_weekly_aggregates", "regional_weekly_aggregates"]
# Natural keys: re-running anything must never give two rows for one of these.
NATURAL_KEYS = {
    "circuits": ("job_guid",),
    "circuit_ui_states": ("circuit_id",),
    "circuit_history": ("circuit_id", "valid_from"),
    "planned_units_snapshots": ("circuit_id", "captured_at"),
    "circuit_aggregates": ("circuit_id", "aggregate_date", "is_rollup"),
    "circuit_snapshots": ("circuit_id", "snapshot_date", "snapshot_type"),
    "planner_daily_aggregates": ("planner_name", "region_id", "aggregate_date"),
    "regional_daily_aggregates": ("region_id", "aggregate_date"),
    "planner_weekly_aggregates": ("planner_name", "region_id", "week_ending"),
    "regional_weekly_aggregates": ("region_id", "week_ending"),
    "circuit_stage_changes": ("circuit_id", "changed_at", "to_stage"),
    "unlinked_planners": ("ws_username",),
}
# Columns that legitimately differ between two databases holding the same facts.
VOLATILE = {"id", "created_at", "updated_at", "recorded_at", "dagster_run_id", "circuit_id",
            "planned_units_snapshot_id", "parent_circuit_id", "region_id", "user_id",
            "linked_to_user_id", "changed_by", "first_seen_at", "last_seen_at"}


def dump(engine: sa.Engine, tables=DATA_TABLES) -> dict[str, list[tuple]]:
    """Every row of each table by id (ids included): what a failed run must leave as it was."""
    out = {}
    with engine.connect() as conn:
        for t in tables:
            out[t] = [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {t} ORDER BY id"))]
    return out


def facts(engine: sa.Engine, tables=DATA_TABLES) -> dict[str, list[tuple]]:
    """Rows without surrogate keys, run ids and timestamps of writing, sorted: comparable
    across two databases that were filled by different runs."""
    return value_rows(engine, tables, VOLATILE)


def lost(before: dict[str, list[tuple]], after: dict[str, list[tuple]]) -> tuple[int, int]:
    """(rows checked, rows lost): rows of ``before`` missing from or changed in ``after``."""
    checked = missing = 0
    for table, rows in before.items():
        remaining = {repr(r) for r in after.get(table, [])}
        checked += len(rows)
        missing += sum(1 for r in rows if repr(r) not in remaining)
    return checked, missing


def duplicates(engine: sa.Engine) -> dict[str, int]:
    out = {}
    with engine.connect() as conn:
        for table, key in NATURAL_KEYS.items():
            cols = ", ".join(key)
            out[table] = conn.execute(sa.text(
                f"SELECT count(*) FROM (SELECT {cols} FROM {table} GROUP BY {cols}"
                f" HAVING count(*) > 1) d")).scalar_one()
    return {t: n for t, n in out.items() if n}


def derived_range(db_url: str, first: date, last: date, weekly: bool = False):
    assets = WEEKLY_ASSETS if weekly else DAILY_ASSETS
    if weekly:
        first, last = first - timedelta(days=(first.weekday() + 1) % 7), last - timedelta(days=(last.weekday() + 1) % 7)
    return dg.materialize(list(assets), resources={"warehouse": WarehouseResource(database_url=db_url)},
                          tags={"dagster/asset_partition_range_start": first.isoformat(),
                                "dagster/asset_partition_range_end": last.isoformat()})


# ----------------------------------------------------------------------------- concurrency
def test_two_runs_of_the_same_partition_at_once_end_with_one_correct_copy(
        harness, engine, other_db_url, reliability):
    results = []

    def run():
        results.append(harness.run(DAY, raise_on_error=False))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert [r.success for r in results] == [True, True]
    with engine.connect() as conn:
        dump_changes = [tuple(r) for r in conn.execute(sa.text(
            "SELECT circuit_id, from_stage, to_stage, changed_at, dagster_run_id FROM circuit_stage_changes"
            " ORDER BY circuit_id, id"))]
    assert duplicates(engine) == {}, dump_changes

    reference = start_harness(other_db_url)
    try:
        assert reference.run(DAY).success
    finally:
        reference.server.stop()
    ref_engine = make_engine(other_db_url)
    try:
        want = facts(ref_engine)
    finally:
        ref_engine.dispose()
    got = facts(engine)
    for table in DATA_TABLES:
        assert got[table] == want[table], table
    checked, missing = lost(want, got)
    with engine.connect() as conn:
        logs = conn.execute(sa.text(
            "SELECT sync_type, sync_status, count(*) FROM sync_logs GROUP BY 1, 2 ORDER BY 1, 2")).all()
    assert [tuple(r) for r in logs] == [("aggregates", "completed", 2), ("circuit_list", "completed", 2)]
    reliability("two runs of the same partition at once",
                "advisory locks serialize the writes; the second run finds the first one's rows "
                "and changes nothing: the tables equal one clean run's",
                faults_injected=1, runs=3, rows_checked=checked, rows_lost=missing)


def test_rerunning_every_asset_and_backfill_leaves_no_duplicates(harness, engine, db_url, reliability):
    """The live days synced in order; then the latest day's whole pipeline and every derived
    backfill (days and weeks) run again and again: nothing is duplicated, nothing changes.
    (Re-running an older *live* day would show the simulator's world as it was that day: new
    knowledge, not a re-run.)"""
    days = [DAY, DAY + timedelta(days=1), DAY + timedelta(days=2)]
    for day in days:
        assert harness.run(day).success
    assert derived_range(db_url, days[0], days[-1]).success
    assert derived_range(db_url, days[0], days[-1], weekly=True).success
    first = dump(engine)
    runs = 5
    for _ in range(2):
        assert harness.run(days[-1]).success
        assert derived_range(db_url, days[0], days[-1]).success
        assert derived_range(db_url, days[0], days[-1], weekly=True).success
        runs += 3
    assert duplicates(engine) == {}
    after = dump(engine)
    for table in DATA_TABLES:
        assert after[table] == first[table], table  # same rows, same ids, same updated_at
    checked, missing = lost(first, after)
    reliability("the latest day's pipeline and every derived backfill re-run twice more",
                "each write compares before it writes: no duplicate natural key, no row changed",
                faults_injected=0, runs=runs, rows_checked=checked, rows_lost=missing)


# ----------------------------------------------------------------------------- WorkStudio faults
@pytest.fixture(scope="module")
def clean_day(pg_server_url, template_db):
    """The facts one clean run of DAY leaves: what a run that survived its faults must equal."""
    from ws_tracker_tests.conftest import _fresh_db

    gen = _fresh_db(pg_server_url, template_db)
    url = next(gen)
    h = start_harness(url)
    try:
        assert h.run(DAY).success
        eng = make_engine(url)
        try:
            yield facts(eng)
        finally:
            eng.dispose()
    finally:
        h.server.stop()
        next(gen, None)


def _plan(harness, *rules):
    harness.server.set_faults(FaultPlan.parse(list(rules), seed=11))


def _injected(harness) -> list[dict]:
    return harness.server.faults.injected


def _logs(engine, run_id):
    with engine.connect() as conn:
        return {r.sync_type: r for r in conn.execute(sa.text(
            "SELECT sync_type, sync_status, error_message, summary_json FROM sync_logs"
            " WHERE dagster_run_id = :r"), {"r": run_id})}


TRANSIENT = [
    ({"kind": "http_500", "protocol": "HEARTBEAT", "times": 1}, "HTTP 500"),
    ({"kind": "http_503", "view": "circuits", "filter_value": "ACTIV", "times": 2}, "HTTP 503"),
    ({"kind": "http_429", "view": "circuits", "filter_value": "QC", "times": 1, "retry_after": 1},
     "HTTP 429 with Retry-After"),
    ({"kind": "http_502", "view": "planned_units", "calls": [1]}, "HTTP 502"),
    ({"kind": "connection_reset", "view": "planned_units", "calls": [2]}, "connection reset"),
    ({"kind": "read_timeout", "view": "planned_units", "calls": [3], "seconds": 1.5}, "read timeout"),
    ({"kind": "slow", "view": "planned_units", "calls": [4, 5], "seconds": 0.3},
     "slow response (under the timeout)"),
]
RETRIED = ("retried with backoff (Retry-After honoured); the run completes and its tables equal "
           "a clean run's")
WAITED = "waited for (no retry needed); the run completes and its tables equal a clean run's"


def test_transient_faults_are_retried_and_the_run_equals_a_clean_one(harness, engine, clean_day,
                                                                      reliability):
    harness.max_attempts = 5
    harness.read_timeout = 0.5
    _plan(harness, *(rule for rule, _ in TRANSIENT))
    result = harness.run(DAY)
    assert result.success
    injected = _injected(harness)
    by_kind = {}
    for item in injected:
        by_kind[item["kind"]] = by_kind.get(item["kind"], 0) + 1
    assert set(by_kind) == {rule["kind"] for rule, _ in TRANSIENT}, by_kind
    logs = _logs(engine, result.run_id)
    assert {k: v.sync_status for k, v in logs.items()} == {"circuit_list": "completed",
                                                          "aggregates": "completed"}
    got = facts(engine)
    for table in DATA_TABLES:
        assert got[table] == clean_day[table], table
    checked, missing = lost(clean_day, got)
    for rule, label in TRANSIENT:
        reliability(label, WAITED if rule["kind"] == "slow" else RETRIED,
                    faults_injected=by_kind[rule["kind"]], runs=1, rows_checked=checked,
                    rows_lost=missing)


PERSISTENT = [
    ({"kind": "http_500", "view": "circuits"}, "HTTP 500 on every call", "HTTP 500"),
    ({"kind": "http_503", "view": "circuits"}, "HTTP 503 on every call", "HTTP 503"),
    ({"kind": "http_401"}, "401 (bad credentials)", "401"),
    ({"kind": "protocol_error", "view": "circuits", "message": "Object reference not set"},
     '{"protocol":"ERROR"} at HTTP 200', "Object reference not set"),
    ({"kind": "null_body", "view": "circuits"}, "`null` body", "null body"),
    ({"kind": "malformed_json", "view": "circuits"}, "malformed JSON", "JSON"),
    ({"kind": "truncated_json", "view": "circuits"}, "truncated JSON", "JSON"),
    ({"kind": "missing_column", "view": "circuits", "column": "VEGJOB_LENGTH"},
     "circuit view lacks a column (schema change)", "missing required columns ['VEGJOB_LENGTH']"),
    ({"kind": "renamed_column", "view": "circuits", "column": "SS_TAKENBY", "to": "SS_TAKEN_BY"},
     "circuit view renames a column (schema change)", "missing required columns ['SS_TAKENBY']"),
]


def test_persistent_faults_fail_the_run_naming_the_call_and_keep_every_row(harness, engine, reliability):
    assert harness.run(DAY).success
    before = dump(engine)
    nxt = DAY + timedelta(days=1)
    for rule, label, cause in PERSISTENT:
        _plan(harness, rule)
        result = harness.run(nxt, raise_on_error=False)
        assert not result.success, label
        injected = len(_injected(harness))
        assert injected >= 1, label
        after = dump(engine)
        checked, missing = lost(before, after)
        assert after == before, label  # nothing written, nothing lost
        log = _logs(engine, result.run_id)["circuit_list"]
        assert log.sync_status == "failed", label
        assert cause in log.error_message, (label, log.error_message)
        if rule["kind"] != "http_401":  # a 401 on the heartbeat names that call
            assert "view={A856F956-88DF-4807-90E2-7E12C25B5B32}" in log.error_message, log.error_message
        assert log.summary_json["error"]["trace_id"] == result.run_id
        outcome = ("fails the run before any write, naming the view and the missing columns"
                   if "schema" in label else
                   "retries, then fails the run with a message naming the call and the cause; "
                   "nothing stored before is touched")
        if rule["kind"] == "http_401":
            outcome = "fails at once (never retried), naming the call; nothing touched"
        reliability(label, outcome, faults_injected=injected, runs=1, rows_checked=checked,
                    rows_lost=missing)
    harness.server.clear_faults()


def test_a_work_order_that_keeps_failing_is_a_warning_and_keeps_its_old_capture(
        harness, engine, reliability):
    assert harness.run(DAY).success
    with engine.connect() as conn:
        wo = conn.execute(sa.text(
            "SELECT c.work_order FROM circuits c JOIN planned_units_snapshots s ON s.circuit_id = c.id"
            " ORDER BY c.work_order LIMIT 1")).scalar_one()
        before = {t: rows for t, rows in dump(engine, ["planned_units_snapshots"]).items()}
    _plan(harness, {"kind": "http_500", "view": "planned_units", "filter_value": wo})
    result = harness.run(DAY + timedelta(days=1), force=True)  # force: every circuit is fetched
    assert result.success
    log = _logs(engine, result.run_id)["aggregates"]
    assert log.sync_status == "warning"
    assert wo in log.error_message and "HTTP 500" in log.error_message
    failures = [i for i in log.summary_json["issues"] if i.get("type") == "work_order"]
    assert [f["item"] for f in failures] == [wo]
    after = dump(engine, ["planned_units_snapshots"])
    checked, missing = lost(before, after)
    assert missing == 0
    with engine.connect() as conn:
        fetched_others = conn.execute(sa.text(
            "SELECT count(*) FROM circuits WHERE last_planned_units_synced_at = :t"),
            {"t": sync_instant(DAY + timedelta(days=1))}).scalar_one()
    assert fetched_others > 50
    reliability("one work order fails on every call", "that work order is listed in the sync "
                "log (status warning) and keeps its last capture; every other one is synced",
                faults_injected=len(_injected(harness)), runs=2, rows_checked=checked,
                rows_lost=missing)


def test_a_changed_units_view_fails_before_any_capture_is_written(harness, engine, reliability):
    assert harness.run(DAY).success
    before = dump(engine, ["planned_units_snapshots", "circuit_aggregates"])
    _plan(harness, {"kind": "missing_column", "view": "planned_units", "column": "VEGUNIT_PERMSTAT"})
    result = harness.run(DAY + timedelta(days=1), force=True, raise_on_error=False)
    assert not result.success
    after = dump(engine, ["planned_units_snapshots", "circuit_aggregates"])
    assert after == before
    log = _logs(engine, result.run_id)["aggregates"]
    assert log.sync_status == "failed"
    assert "missing required columns ['VEGUNIT_PERMSTAT']" in log.error_message
    assert "{985AECEF-D75B-40F3-9F9B-37F21C63FF4A}" in log.error_message
    checked, missing = lost(before, after)
    reliability("planned-units view lacks a column (schema change)",
                "fails the sync before any capture is written, naming the view, the work order "
                "and the column", faults_injected=len(_injected(harness)), runs=2,
                rows_checked=checked, rows_lost=missing)


BAD_ROWS = [
    ({"kind": "wrong_type", "view": "circuits", "filter_value": "ACTIV", "column": "VEGJOB_LENGTH",
      "rows": [0, 3], "value": "twelve"}, "a value of the wrong type (circuit miles)", "bad_number"),
    ({"kind": "bad_date", "view": "circuits", "filter_value": "ACTIV", "column": "SS_EDITDATE",
      "rows": [1]}, "a date that does not parse (circuit edit date)", "bad_date"),
    ({"kind": "short_rows", "view": "circuits", "filter_value": "ACTIV", "rows": [2]},
     "a row shorter than the heading (circuit list)", "ragged_row"),
    ({"kind": "duplicate_rows", "view": "circuits", "filter_value": "ACTIV", "rows": [4]},
     "a duplicated row (circuit list)", "duplicate_circuit"),
    ({"kind": "wrong_type", "view": "planned_units", "column": "JOBVEGETATIONUNITS_NUMTREES",
      "rows": [0], "value": "many", "times": 3}, "a value of the wrong type (unit trees)", "bad_number"),
    ({"kind": "bad_date", "view": "planned_units", "column": "VEGUNIT_ASSDDATE", "rows": [1],
      "times": 3}, "a date that does not parse (unit assessed date)", "bad_date"),
    ({"kind": "short_rows", "view": "planned_units", "rows": [2], "times": 3},
     "a row shorter than the heading (planned units)", "ragged_row"),
]


def test_bad_rows_are_quarantined_with_reason_column_and_row(harness, engine, reliability):
    _plan(harness, *(rule for rule, _, _ in BAD_ROWS))
    result = harness.run(DAY)
    assert result.success
    injected = _injected(harness)
    with engine.connect() as conn:
        q = conn.execute(sa.text(
            "SELECT q.*, s.sync_type FROM quarantined_rows q JOIN sync_logs s ON s.id = q.sync_log_id"
            " WHERE q.dagster_run_id = :r"), {"r": result.run_id}).mappings().all()
        n_circuits = conn.execute(sa.text("SELECT count(*) FROM circuits")).scalar_one()
    logs = _logs(engine, result.run_id)
    for rule, label, code in BAD_ROWS:
        hits = [i for i in injected if i["rule"] == BAD_ROWS.index((rule, label, code))]
        assert hits, label
        source = "circuit_list" if rule["view"] == "circuits" else "planned_units"
        for hit in hits:
            for row in hit["rows"]:
                if code == "duplicate_circuit":
                    row += 1  # the copy follows the original
                match = [r for r in q if r["source"] == source and r["code"] == code
                         and r["filter_value"] == hit["filter_value"] and r["row_number"] == row + 1]
                assert match, (label, hit, [(r["code"], r["filter_value"], r["row_number"]) for r in q])
                m = match[0]
                assert m["reason"] and m["raw_row"] is not None
                if rule.get("column"):
                    assert m["column_name"] == rule["column"]
        reliability(label, f"quarantined (code {code}) with reason, column, row number and the raw "
                    "row; counted in the sync log summary; the rest of the listing is stored",
                    faults_injected=len(hits), runs=1, rows_checked=len(q), rows_lost=0)
    for sync_type, log in logs.items():
        mine = [r for r in q if r["sync_type"] == sync_type]
        assert log.summary_json["metrics"]["rows_quarantined"] == len(mine) > 0
        assert log.summary_json["issues_total"] >= len(mine)
    # Nothing silently dropped: every listed circuit is stored or quarantined as unreadable.
    truth = harness.world.circuits_truth()
    ragged = [r for r in q if r["source"] == "circuit_list" and r["code"] == "ragged_row"]
    assert n_circuits == len(truth) - len(ragged)
    assert logs["circuit_list"].sync_status == "warning"  # rows were rejected


# ----------------------------------------------------------------------------- secrets
def test_credentials_never_reach_logs_errors_sync_logs_or_events(harness, engine, reliability, capfd):
    from ws_tracker_tests.e2e import PASSWORD

    _plan(harness, {"kind": "protocol_error", "view": "circuits",
                    "message": f"Login failed for user with password {PASSWORD}"})
    failed = harness.run(DAY, raise_on_error=False)
    harness.server.clear_faults()
    ok = harness.run(DAY)
    assert not failed.success and ok.success
    texts = [capfd.readouterr().out, capfd.readouterr().err]
    for result in (failed, ok):
        for event in result.all_events:
            texts.append(repr(event))
    with engine.connect() as conn:
        for table in ("sync_logs", "quarantined_rows", "circuits", "planned_units_snapshots",
                      "circuit_stage_changes"):
            texts += [str(tuple(r)) for r in conn.execute(sa.text(f"SELECT * FROM {table}"))]
    blob = "\n".join(texts)
    assert "Login failed for user with password ***" in blob  # the message is there, scrubbed
    assert PASSWORD not in blob
    reliability("the password echoed in a server error", "scrubbed from the error, the sync log, "
                "the Dagster events and stdout/stderr before anything records it",
                faults_injected=1, runs=2, rows_checked=len(texts), rows_lost=0)


# ----------------------------------------------------------------------------- the database
def test_postgresql_stopped_mid_run_fails_cleanly_and_a_retry_completes(tmp_path, reliability):
    """A server of its own (the session's is shared), stopped while the planned units are being
    fetched: the run fails, nothing of it is half-written, the retry completes."""
    import time

    from ws_tracker.warehouse import embedded
    from ws_tracker.warehouse.engine import with_database
    from ws_tracker.warehouse.migrate import upgrade
    from ws_tracker.warehouse.sync_log import close_orphaned
    from ws_tracker.warehouse.engine import ensure_database

    home = tmp_path / "pg"
    home.mkdir()
    url = with_database(embedded.start(home), "ws_tracker")
    ensure_database(url)
    upgrade(url)
    h = start_harness(url)
    eng = make_engine(url)
    try:
        assert h.run(DAY).success
        before = dump(eng)
        nxt = DAY + timedelta(days=1)
        _plan(h, {"kind": "slow", "view": "planned_units", "calls": [1], "seconds": 4})
        box = []
        runner = threading.Thread(target=lambda: box.append(h.run(nxt, force=True, raise_on_error=False)))
        runner.start()
        deadline = time.monotonic() + 60
        while not _injected(h) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _injected(h), "the run never reached the planned units"
        embedded.stop(home)  # PostgreSQL goes away while the run waits on WorkStudio
        runner.join(timeout=300)
        failed = box[0]
        assert not failed.success
        step_failures = [e for e in failed.all_events if e.event_type_value == "STEP_FAILURE"]
        assert [e.step_key for e in step_failures] == ["planned_unit_captures"]
        assert "connection" in str(step_failures[0].event_specific_data.error).lower()

        # Back (possibly on another port: the URL is asked for again); nothing half-written.
        url = with_database(embedded.start(home), "ws_tracker")
        h.db_url = url
        eng.dispose()
        eng = make_engine(url)
        after = dump(eng)
        with eng.connect() as conn:
            caps = conn.execute(sa.text("SELECT count(*) FROM planned_units_snapshots"
                                        " WHERE dagster_run_id = :r"), {"r": failed.run_id}).scalar_one()
        assert caps == 0
        # Only the circuit list of the failed run, committed before the stop, moved on.
        checked, missing = lost({t: r for t, r in before.items() if t != "circuits" and
                                 t != "circuit_history" and t != "circuit_ui_states" and
                                 t != "circuit_stage_changes" and t != "unlinked_planners"
                                 and t != "circuit_user"}, after)
        assert missing == 0
        # Its sync log could not be closed with the server down: the run-status sensor (here
        # its function) closes it as failed once the database is back.
        assert close_orphaned(eng, lambda run: "FAILURE" if run == failed.run_id else None)
        h.server.clear_faults()
        retry = h.run(nxt, force=True)
        assert retry.success
        with eng.connect() as conn:
            caps = conn.execute(sa.text("SELECT count(*) FROM planned_units_snapshots"
                                        " WHERE dagster_run_id = :r"), {"r": retry.run_id}).scalar_one()
            statuses = dict(conn.execute(sa.text(
                "SELECT dagster_run_id || ':' || sync_type, sync_status FROM sync_logs"
                " WHERE dagster_run_id IN (:a, :b)"), {"a": failed.run_id, "b": retry.run_id}).all())
        assert caps > 0
        assert statuses == {f"{failed.run_id}:circuit_list": "completed",
                            f"{failed.run_id}:aggregates": "failed",
                            f"{retry.run_id}:circuit_list": "completed",
                            f"{retry.run_id}:aggregates": "completed"}
        assert duplicates(eng) == {}
        reliability("PostgreSQL stopped in the middle of a run",
                    "the run fails at its next write; its transaction never committed, so no "
                    "capture of it is visible; the sync log is closed as failed once the server "
                    "is back; a retry completes", faults_injected=1, runs=3,
                    rows_checked=checked, rows_lost=missing)
    finally:
        h.server.stop()
        eng.dispose()
        embedded.stop(home)


def test_faults_from_the_command_line(db_url, tmp_path, reliability):
    """`ws-tracker run --fault SPEC` injects into the bundled simulator; the run retries."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from ws_tracker.warehouse.engine import parse

    bin_dir = Path(sys.executable).parent
    plain = parse(db_url).set(drivername="postgresql").render_as_string(hide_password=False)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WORKSTUDIO_", "DAGSTER_", "WS_TRACKER_"))}
    env.update({"WS_TRACKER_DATABASE_URL": db_url, "DAGSTER_PG_URL": plain,
                "WS_TRACKER_HOME": str(tmp_path / "home")})
    bad = subprocess.run([str(bin_dir / "ws-tracker"), "run", "--date", "2026-03-02", "--fault",
                          "http_503:times=two"], env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "times='two' is not an integer" in bad.stderr, bad.stderr
    ok = subprocess.run([str(bin_dir / "ws-tracker"), "run", "--date", "2026-03-02", "--fault",
                         "http_503:view=planned_units,times=2", "--fault",
                         "http_429:view=circuits,filter_value=ACTIV,times=1,retry_after=1"],
                        env=env, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # Each retry is reported once per log handler; count distinct reports.
    retried = len({line[line.index("WorkStudio "):] for line in (ok.stdout + ok.stderr).splitlines()
                   if "; retrying in" in line})
    assert retried == 3  # the client reported each fault it retried: 2 x 503, 1 x 429
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            statuses = [r[0] for r in conn.execute(sa.text("SELECT sync_status FROM sync_logs"))]
            caps = conn.execute(sa.text("SELECT count(*) FROM planned_units_snapshots")).scalar_one()
    finally:
        engine.dispose()
    assert statuses == ["completed", "completed"] and caps > 0
    reliability("HTTP 503 and 429 injected from the command line (`ws-tracker run --fault`)",
                "retried; the run completes; a bad spec is refused naming the bad part (exit 2)",
                faults_injected=retried, runs=2, rows_checked=caps, rows_lost=0)
