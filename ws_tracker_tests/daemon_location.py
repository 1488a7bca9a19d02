"""A test-only code location: our real definitions plus one schedule that fires every minute.

The real schedules fire at 04:30 and later, New York time, so a test that wants to watch the
daemon launch a run cannot wait for them. This adds one schedule built exactly like
``activ_circuit_sync_schedule`` (same job, same run request, same time zone) but on
``* * * * *``. Loaded by ws_tracker_tests/topology.py as ``dagster api grpc -m
ws_tracker_tests.daemon_location``; never part of the production code location.
"""

from __future__ import annotations

import dagster as dg

from ws_tracker.definitions import build_definitions
from ws_tracker.pipeline.jobs import circuit_sync_job
from ws_tracker.pipeline.partitions import TIMEZONE
from ws_tracker.pipeline.schedules import ACTIV_STATUSES, _circuit_sync_request

EVERY_MINUTE_SCHEDULE = "every_minute_circuit_sync_schedule"


@dg.schedule(
    name=EVERY_MINUTE_SCHEDULE,
    cron_schedule="* * * * *",
    execution_timezone=TIMEZONE,
    job=circuit_sync_job,
    description="TEST ONLY: activ_circuit_sync_schedule's run request, every minute.",
)
def every_minute_circuit_sync_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    return _circuit_sync_request(context, ACTIV_STATUSES)


# One Definitions object at module scope (Dagster refuses two): the real ones plus the schedule.
defs = dg.Definitions.merge(build_definitions(),
                            dg.Definitions(schedules=[every_minute_circuit_sync_schedule]))
