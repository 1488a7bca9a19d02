"""Sensors.

- workflow_stage_sensor: circuits entering pending_permissions (by a sync or by a person) get
  their planned units captured and today's derived numbers rebuilt at once (a unit_sync run
  per circuit, sync trigger workflow_event).
- sync_log_on_run_failure / sync_log_on_run_canceled: the run-status handling; a run that
  failed or was canceled has its sync logs closed as failed at once.
- sync_log_sweeper: the safety net that closes sync logs a dead run left in "started".
"""

from __future__ import annotations

import json
from datetime import timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from ws_tracker.pipeline.jobs import unit_sync_job
from ws_tracker.pipeline.partitions import TIMEZONE
from ws_tracker.pipeline.resources import ClockResource
from ws_tracker.rules.stages import PENDING_PERMISSIONS
from ws_tracker.warehouse.resource import WarehouseResource
from ws_tracker.warehouse.sync_log import close_orphaned
from ws_tracker.warehouse.workflow import StageEntry, stage_entries

WORKFLOW_SENSOR_INTERVAL_SECONDS = 30
# With no cursor yet (the sensor was just turned on), entries recorded this long ago count.
FIRST_TICK_LOOKBACK = timedelta(hours=24)
MAX_ENTRIES_PER_TICK = 100
WORKFLOW_CHANGE_TAG = "ws_tracker/workflow_change_id"
JOB_GUID_TAG = "ws_tracker/job_guid"
_ZONE = ZoneInfo(TIMEZONE)


def workflow_run_key(entry: StageEntry) -> str:
    """Unique per entry into the stage: re-entering triggers again, a retried tick does not."""
    return f"{PENDING_PERMISSIONS}:{entry.job_guid}:{entry.changed_at.isoformat()}"


def _skip_reason(entry: StageEntry) -> str | None:
    if entry.current_stage != PENDING_PERMISSIONS:
        return f"no longer {PENDING_PERMISSIONS} (now {entry.current_stage})"
    if not entry.eligible:
        return "units are not synced for it (excluded, disabled, deleted or not ACTIV/QC/REWRK)"
    if entry.units_synced_at is not None and entry.units_synced_at >= entry.changed_at:
        # It entered the stage because of a capture just taken: its units and that day's
        # numbers are already current.
        return "units already captured at or after the change"
    return None


@dg.sensor(
    name="workflow_stage_sensor",
    job=unit_sync_job,
    minimum_interval_seconds=WORKFLOW_SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A circuit entering pending_permissions (by a sync or by `ws-tracker circuits "
    "stage`) gets its planned units captured and today's derived numbers rebuilt at once: one "
    "unit_sync run per entry, sync trigger workflow_event. Cursor: the last "
    "circuit_stage_changes id seen; run key: job GUID and the change's timestamp.",
)
def workflow_stage_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource,
                          clock: ClockResource):
    now = clock.now()
    after = int(context.cursor) if context.cursor else None
    with warehouse.get_engine().connect() as conn:
        entries = stage_entries(conn, PENDING_PERMISSIONS, after_id=after,
                                recorded_since=now - FIRST_TICK_LOOKBACK,
                                limit=MAX_ENTRIES_PER_TICK)
    if not entries:
        return dg.SensorResult(skip_reason=f"no circuit entered {PENDING_PERMISSIONS} since "
                                           f"change {after if after is not None else '(none)'}")
    latest: dict[int, StageEntry] = {}
    for entry in entries:  # a circuit that entered twice in one batch: its latest entry
        latest[entry.circuit_id] = entry
    today = now.astimezone(_ZONE).date().isoformat()
    requests, skipped = [], {}
    for entry in latest.values():
        reason = _skip_reason(entry)
        if reason:
            skipped[f"{entry.work_order}/{entry.extension}"] = reason
            continue
        requests.append(dg.RunRequest(
            run_key=workflow_run_key(entry),
            partition_key=today,
            run_config={"ops": {"planned_unit_captures": {"config": {
                "job_guids": [entry.job_guid], "trigger": "workflow_event"}}}},
            tags={WORKFLOW_CHANGE_TAG: str(entry.change_id), JOB_GUID_TAG: entry.job_guid,
                  "ws_tracker/circuit": f"{entry.work_order}/{entry.extension}",
                  "ws_tracker/stage_source": entry.source},
        ))
    if skipped:
        context.log.info(f"not triggered: {json.dumps(skipped, sort_keys=True)}")
    return dg.SensorResult(run_requests=requests, cursor=str(entries[-1].change_id),
                           skip_reason=None if requests else
                           f"{len(skipped)} entr(y/ies) need no run: {json.dumps(skipped)}"[:1000])


def _close_logs_of(context: dg.RunStatusSensorContext, warehouse: WarehouseResource,
                   status: str) -> None:
    run_id = context.dagster_run.run_id
    closed = close_orphaned(warehouse.get_engine(), lambda _run: status, run_id=run_id)
    if closed:
        context.log.warning(f"run {run_id} ended {status}: closed sync log(s) {closed} as failed")


@dg.run_failure_sensor(
    name="sync_log_on_run_failure",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When a run fails, its sync logs still 'started' are closed as failed at once "
    "(naming the run), instead of waiting for the sweeper.",
)
def sync_log_on_run_failure(context: dg.RunFailureSensorContext, warehouse: WarehouseResource):
    _close_logs_of(context, warehouse, "FAILURE")


@dg.run_status_sensor(
    name="sync_log_on_run_canceled",
    run_status=dg.DagsterRunStatus.CANCELED,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When a run is canceled, its sync logs still 'started' are closed as failed.",
)
def sync_log_on_run_canceled(context: dg.RunStatusSensorContext, warehouse: WarehouseResource):
    _close_logs_of(context, warehouse, "CANCELED")

SYNC_LOG_SWEEP_INTERVAL_SECONDS = 120


@dg.sensor(
    name="sync_log_sweeper",
    minimum_interval_seconds=SYNC_LOG_SWEEP_INTERVAL_SECONDS,
    # On by default: without it a killed run leaves a sync log "started" for ever.
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Closes sync_logs rows left 'started' by a run that died (run ended without "
    "recording an outcome, or no outcome after 6 h) as failed, naming the run.",
)
def sync_log_sweeper(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    def run_state(run_id: str):
        run = context.instance.get_run_by_id(run_id)
        return run.status.value if run is not None else None

    closed = close_orphaned(warehouse.get_engine(), run_state)
    if closed:
        context.log.warning(f"closed {len(closed)} orphaned sync log(s) as failed: {closed}")
    return dg.SkipReason(f"closed {len(closed)} orphaned sync log(s)")


SENSORS = [workflow_stage_sensor, sync_log_on_run_failure, sync_log_on_run_canceled,
           sync_log_sweeper]
