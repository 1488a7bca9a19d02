"""The production topology at work: the UI shows our asset graph, the daemon launches
scheduled runs, and a backfill launched through the UI's GraphQL API rebuilds the derived days
exactly as a one-by-one build does.

One topology (code location server, dagster-daemon, dagster-webserver, Dagster storage in
PostgreSQL; see ws_tracker_tests/topology.py) is shared by the tests of this module: starting
one costs several seconds of two cores. The UI smoke test runs first and only reads (it opens
pages), so it sees the topology as fresh as when it had one of its own, and the daemon tests
see nothing it did.

The UI smoke test opens the webserver in headless Chromium (Debian's ``chromium`` package,
driven by Playwright) and looks for the asset graph with our assets. It skips, saying why,
when Chromium or the ``playwright`` package is missing; ``.ci/run`` installs Chromium so it
runs in CI. Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import defaultdict
from datetime import date, timedelta

import dagster as dg
import pytest
import sqlalchemy as sa

from ws_tracker.pipeline.assets import ASSETS, DAILY_ASSETS
from ws_tracker.pipeline.jobs import CIRCUIT_SYNC_TAG
from ws_tracker.pipeline.schedules import SCHEDULE_SLOT_TAG
from ws_tracker.warehouse.resource import WarehouseResource
from ws_tracker_tests.daemon_location import EVERY_MINUTE_SCHEDULE
from ws_tracker_tests.e2e import Harness, value_rows
from ws_tracker_tests.topology import (  # noqa: F401 - `topology` is a fixture
    LOCATION_NAME,
    REPOSITORY_NAME,
    TERMINAL_RUN_STATUSES,
    expect_type,
    topology,
)

SCHEDULE_TIMEOUT = 150  # a tick at the next minute boundary, the queue, the run itself
BACKFILL_TIMEOUT = 180  # the backfill daemon works every 30 s: request, run, complete
# How often the tests look again while they wait for the daemon (a GraphQL query each time:
# cheap). The waits themselves are the daemon's: its intervals, the minute boundary, the runs.
POLL_S = 0.5

START_SCHEDULE = """
mutation StartSchedule($selector: ScheduleSelector!) {
  startSchedule(scheduleSelector: $selector) {
    __typename
    ... on ScheduleStateResult { scheduleState { id status } }
    ... on Error { message }
    ... on PythonError { stack }
  }
}
"""

STOP_SCHEDULE = """
mutation StopSchedule($id: String!) {
  stopRunningSchedule(id: $id) {
    __typename
    ... on ScheduleStateResult { scheduleState { id status } }
    ... on Error { message }
    ... on PythonError { stack }
  }
}
"""

LAUNCH_BACKFILL = """
mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
    ... on PythonError { stack }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidStepError { invalidStepKey }
  }
}
"""

BACKFILL_STATUS = """
query Backfill($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    __typename
    ... on PartitionBackfill {
      id
      status
      numPartitions
      partitionNames
      assetSelection { path }
      error { message stack }
      runs { runId status tags { key value } }
    }
    ... on Error { message }
    ... on PythonError { stack }
  }
}
"""

# --------------------------------------------------------------------------- the UI

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]
UI_TIMEOUT_S = 120  # all pages together, first paint included, on a busy two-core machine


def _groups() -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for asset in ASSETS:
        groups[asset.group_names_by_key[asset.key]].append(asset.key.to_user_string())
    return dict(groups)


GROUPS = _groups()  # {"workstudio": ["circuits", ...], "derived": [...]}


def _browser_or_skip() -> str:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the `playwright` package is not installed (pip install '.[test]')")
    path = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
    if not path:
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium; "
                    ".ci/run installs it)")
    return path


def test_ui_shows_the_asset_graph_with_our_assets(topology, tmp_path):
    """The first test of the module (it only reads): the webserver, opened in headless
    Chromium, shows the asset graph with our assets."""
    chromium = _browser_or_skip()
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
    from playwright.sync_api import sync_playwright

    with topology.diagnose(), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            console_errors: list[str] = []
            page.on("console",
                    lambda m: console_errors.append(m.text) if m.type == "error" else None)
            deadline = time.monotonic() + UI_TIMEOUT_S
            missing: dict[str, list[str]] = {}

            def expect_nodes(path: str, texts, where: str, screenshot: str) -> None:
                """Open ``path``; every text must become visible (else it is listed in
                ``missing`` under ``where``); a screenshot either way."""
                page.goto(f"{topology.webserver_url}{path}", wait_until="domcontentloaded")
                try:
                    for text in texts:
                        left_ms = max(1_000, int((deadline - time.monotonic()) * 1000))
                        try:
                            page.get_by_text(text, exact=True).first.wait_for(
                                state="visible", timeout=left_ms)
                        except PlaywrightTimeoutError:
                            missing.setdefault(where, []).append(text)
                finally:
                    page.screenshot(path=str(tmp_path / screenshot))

            # The global asset lineage: our two groups, collapsed (one node each).
            expect_nodes("/asset-groups", GROUPS, "global lineage", "global_lineage.png")
            for group, names in GROUPS.items():
                # The group's lineage page: the asset graph of that group, every asset a node
                # (the global lineage page starts with groups collapsed).
                expect_nodes(f"/locations/{LOCATION_NAME}/asset-groups/{group}", names, group,
                             f"asset_graph_{group}.png")
            assert not missing, (f"the asset graph lacks {missing}; screenshots in {tmp_path}; "
                                 f"console errors: {console_errors[:10]}")
        finally:
            browser.close()


# --------------------------------------------------------------------------- schedules


def test_daemon_launches_a_scheduled_sync_that_writes_its_sync_log(topology):
    """Turn a schedule on the way the UI does; the daemon ticks, queues and launches a real
    circuit_sync run in its own process, which syncs the simulator into the warehouse."""
    selector = {"repositoryLocationName": LOCATION_NAME, "repositoryName": REPOSITORY_NAME,
                "scheduleName": EVERY_MINUTE_SCHEDULE}
    tags = {"dagster/schedule_name": EVERY_MINUTE_SCHEDULE}
    with topology.diagnose():
        assert topology.runs(tags=tags) == []
        started = expect_type(topology.gql.post(START_SCHEDULE, {"selector": selector})
                              ["startSchedule"], "ScheduleStateResult", "startSchedule")
        state = started["scheduleState"]
        assert state["status"] == "RUNNING"
        try:
            deadline = time.monotonic() + SCHEDULE_TIMEOUT
            run = None
            while time.monotonic() < deadline:
                topology.check_alive()
                launched = topology.runs(tags=tags)
                if launched:
                    # The first run the daemon launched from the schedule.
                    first = min(launched, key=lambda r: r["startTime"] or float("inf"))
                    if first["status"] in TERMINAL_RUN_STATUSES:
                        run = first
                        break
                time.sleep(POLL_S)
            assert run is not None, (
                f"no finished run from {EVERY_MINUTE_SCHEDULE} within {SCHEDULE_TIMEOUT} s; "
                f"runs: {topology.runs(tags=tags)}")
        finally:
            stopped = expect_type(topology.gql.post(STOP_SCHEDULE, {"id": state["id"]})
                                  ["stopRunningSchedule"], "ScheduleStateResult",
                                  "stopRunningSchedule")
            assert stopped["scheduleState"]["status"] == "STOPPED"
            # A tick may have launched another run meanwhile: let it end before other tests.
            topology.wait_for_runs_to_settle(tags)

        run_id = run["runId"]
        assert run["status"] == "SUCCESS", topology.run_errors(run_id)
        assert run["jobName"] == "circuit_sync"
        run_tags = {t["key"]: t["value"] for t in run["tags"]}
        assert run_tags[CIRCUIT_SYNC_TAG] == "1"  # the run-queue limit applies to it
        assert run_tags[SCHEDULE_SLOT_TAG]  # the schedule's own RunRequest, evaluated by the daemon

        engine = topology.warehouse_engine()
        try:
            with engine.connect() as conn:
                logs = conn.execute(sa.text(
                    "SELECT * FROM sync_logs WHERE dagster_run_id = :r"), {"r": run_id}).all()
                assert len(logs) == 1, logs
                log = logs[0]
                assert log.sync_type == "circuit_list"
                assert log.sync_status == "completed", (log.error_message, log.summary_json)
                assert log.sync_trigger == "scheduled"  # derived from the daemon's run tags
                assert log.api_status_filter == "ACTIV"
                assert log.completed_at is not None and log.completed_at >= log.started_at
                assert log.circuits_processed > 0
                assert log.summary_json["stage"] == "completed"
                # The circuits were written by that run, in its own process.
                seen = conn.execute(sa.text(
                    "SELECT count(*) FROM circuits WHERE last_synced_at >= :t"),
                    {"t": log.started_at - timedelta(seconds=1)}).scalar_one()
                assert 0 < seen <= log.circuits_processed
                assert conn.execute(sa.text(
                    "SELECT count(*) FROM circuits WHERE api_status = 'ACTIV'")).scalar_one() > 0
        finally:
            engine.dispose()


# --------------------------------------------------------------------------- backfills

SEED_DAYS = [date(2026, 3, 2) + timedelta(days=i) for i in range(3)]  # Monday..Wednesday
DERIVED_TABLES = {  # table -> its date column; deleted in this order (no FKs between them)
    "circuit_snapshots": "snapshot_date",
    "regional_daily_aggregates": "aggregate_date",
    "planner_daily_aggregates": "aggregate_date",
    "circuit_aggregates": "aggregate_date",
}
# Columns that legitimately differ between two builds of the same rows.
VOLATILE = {"id", "created_at", "updated_at"}


def _rows(engine: sa.Engine) -> dict[str, list[tuple]]:
    """Every value column of every derived table, sorted: what two builds must agree on."""
    return value_rows(engine, DERIVED_TABLES, VOLATILE)


def _days_built(engine: sa.Engine) -> dict[str, list[str]]:
    with engine.connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT DISTINCT {col}::text FROM {t} ORDER BY 1"))
                .scalars().all() for t, col in DERIVED_TABLES.items()}


def _clear_derived(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for table in DERIVED_TABLES:
            conn.execute(sa.text(f"DELETE FROM {table}"))


def _wait_for_backfill(topology, backfill_id: str) -> dict:
    deadline = time.monotonic() + BACKFILL_TIMEOUT
    while True:
        topology.check_alive()
        backfill = expect_type(
            topology.gql.post(BACKFILL_STATUS, {"backfillId": backfill_id})
            ["partitionBackfillOrError"], "PartitionBackfill", f"backfill {backfill_id}")
        status = backfill["status"]
        if status in ("COMPLETED", "COMPLETED_SUCCESS"):
            return backfill
        if status in ("FAILED", "COMPLETED_FAILED", "CANCELED", "CANCELING", "FAILING"):
            errors = "\n".join(f"run {r['runId']} {r['status']}:\n{topology.run_errors(r['runId'])}"
                               for r in backfill["runs"] if r["status"] != "SUCCESS")
            pytest.fail(f"backfill {backfill_id} ended {status}: {backfill['error']}\n{errors}")
        if time.monotonic() > deadline:
            pytest.fail(f"backfill {backfill_id} still {status} after {BACKFILL_TIMEOUT} s; "
                        f"runs: {backfill['runs']}")
        time.sleep(POLL_S)


def test_graphql_backfill_of_derived_days_matches_a_one_by_one_build(topology):
    """A range of days of the four derived daily assets, launched as the UI launches it
    (launchPartitionBackfill), run by the daemon, equals the same days built one at a time."""
    engine = topology.warehouse_engine()
    try:
        with topology.diagnose():
            # Stored history for three days, synced from the simulator as the live system would.
            harness = Harness(topology.simulator, topology.world, topology.warehouse_url)
            for day in SEED_DAYS:
                assert harness.run(day, trigger="manual").success
            # The backfill must build the days itself: nothing derived is left from the seeding.
            _clear_derived(engine)
            assert all(v == [] for v in _days_built(engine).values())

            keys = [d.isoformat() for d in SEED_DAYS]
            asset_keys = [{"path": a.key.path} for a in DAILY_ASSETS]
            launched = expect_type(topology.gql.post(LAUNCH_BACKFILL, {"backfillParams": {
                "assetSelection": asset_keys,
                "partitionNames": keys,
                "fromFailure": False,
                "title": "test: derived days",
            }})["launchPartitionBackfill"], "LaunchBackfillSuccess", "launchPartitionBackfill")
            backfill = _wait_for_backfill(topology, launched["backfillId"])

            assert sorted(backfill["partitionNames"]) == keys
            assert sorted(tuple(a["path"]) for a in backfill["assetSelection"]) == sorted(
                tuple(a.key.path) for a in DAILY_ASSETS)
            runs = backfill["runs"]
            assert runs and all(r["status"] == "SUCCESS" for r in runs), runs
            # Single-run backfill policy: the whole range of the four assets is one run.
            assert len(runs) == 1, runs
            tags = {t["key"]: t["value"] for t in runs[0]["tags"]}
            assert tags["dagster/backfill"] == launched["backfillId"]
            assert (tags["dagster/asset_partition_range_start"],
                    tags["dagster/asset_partition_range_end"]) == (keys[0], keys[-1])

            built = _days_built(engine)
            for table in ("circuit_aggregates", "circuit_snapshots", "regional_daily_aggregates"):
                assert built[table] == keys, (table, built[table])
            assert built["planner_daily_aggregates"], "no planner work on any of the days"
            by_backfill = _rows(engine)

        # The same days, one materialization per day, in-process, from a clean slate.
        _clear_derived(engine)
        resources = {"warehouse": WarehouseResource(database_url=topology.warehouse_url)}
        for day in reversed(SEED_DAYS):  # order must not matter
            assert dg.materialize(DAILY_ASSETS, partition_key=day.isoformat(),
                                  resources=resources).success
        one_by_one = _rows(engine)
        for table in DERIVED_TABLES:
            assert by_backfill[table] == one_by_one[table], table
            assert by_backfill[table], table
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- workflow sensor

SENSOR_TIMEOUT = 180  # a sensor tick (every 30 s), the queue, the unit_sync run itself


def test_workflow_stage_sensor_launches_a_unit_sync_that_writes_its_sync_log(topology):
    """A person puts a circuit into pending_permissions; the daemon's workflow_stage_sensor
    (on by default) launches a unit_sync run for it, which captures its units and writes a
    sync log with trigger workflow_event."""
    from datetime import datetime, timezone

    from ws_tracker.pipeline.sensors import JOB_GUID_TAG, WORKFLOW_CHANGE_TAG
    from ws_tracker.warehouse.workflow import set_stage

    harness = Harness(topology.simulator, topology.world, topology.warehouse_url)
    assert harness.run(SEED_DAYS[0]).success
    engine = topology.warehouse_engine()
    try:
        with engine.connect() as conn:
            guid, wo, ext = conn.execute(sa.text(
                "SELECT c.job_guid, c.work_order, coalesce(c.extension, '@') FROM circuits c"
                " JOIN circuit_ui_states u ON u.circuit_id = c.id WHERE c.api_status = 'ACTIV'"
                " AND u.workflow_stage = 'active' AND NOT c.is_excluded ORDER BY c.id LIMIT 1")).one()
        set_at = datetime.now(timezone.utc)
        with engine.begin() as conn:
            change = set_stage(conn, f"{wo}/{ext}", "pending_permissions", at=set_at)
        tags = {JOB_GUID_TAG: guid}
        deadline = time.monotonic() + SENSOR_TIMEOUT
        run = None
        while time.monotonic() < deadline:
            topology.check_alive()
            launched = topology.runs(tags=tags)
            if launched and launched[0]["status"] in TERMINAL_RUN_STATUSES:
                run = launched[0]
                break
            time.sleep(POLL_S)
        assert run is not None, f"no finished sensor run within {SENSOR_TIMEOUT} s: {launched}"
        run_id = run["runId"]
        assert run["status"] == "SUCCESS", topology.run_errors(run_id)
        assert run["jobName"] == "unit_sync"
        run_tags = {t["key"]: t["value"] for t in run["tags"]}
        assert run_tags["dagster/sensor_name"] == "workflow_stage_sensor"
        assert run_tags[WORKFLOW_CHANGE_TAG] == str(change.change_id)
        assert run_tags["dagster/run_key"] == f"pending_permissions:{guid}:{set_at.isoformat()}"
        with engine.connect() as conn:
            log = conn.execute(sa.text(
                "SELECT * FROM sync_logs WHERE dagster_run_id = :r"), {"r": run_id}).one()
            synced = conn.execute(sa.text(
                "SELECT last_planned_units_synced_at FROM circuits WHERE job_guid = :g"),
                {"g": guid}).scalar_one()
        assert (log.sync_type, log.sync_status, log.sync_trigger) == (
            "aggregates", "completed", "workflow_event")
        assert log.summary_json["metrics"]["circuits_processed"] == 1
        assert synced >= set_at  # its units were fetched by that run, at once
        # (That the next tick asks for nothing is shown tick by tick in test_workflow.py; the
        # run key above would also make Dagster drop a repeated request.)
        assert len(topology.runs(tags=tags)) == 1
    finally:
        engine.dispose()
