"""Sensors: the safety net that closes sync logs a dead run left in "started"."""

from __future__ import annotations

import dagster as dg

from ws_tracker.warehouse.resource import WarehouseResource
from ws_tracker.warehouse.sync_log import close_orphaned

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


SENSORS = [sync_log_sweeper]
