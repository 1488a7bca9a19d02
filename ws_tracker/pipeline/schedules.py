"""Weekday schedules (America/New_York) for the circuit-list and planned-unit syncs.

- activ_circuit_sync_schedule: Mon-Fri 04:30 and 16:30, circuit_sync for ACTIV circuits.
- weekly_circuit_sync_schedule: Mondays 04:30, circuit_sync for QC, REWRK and CLOSE circuits.
- unit_sync_schedule: Mon-Fri 05:30 and 17:30, unit_sync for the partition of the local date.

All schedules are defined with Dagster's default status, STOPPED: an operator turns them on
in the UI (or with `dagster schedule start`), so a fresh deployment never hits WorkStudio on
its own. Cron strings are evaluated in `execution_timezone`, so the wall-clock times hold
across DST changes; the partition key comes from the scheduled tick converted to local time,
never from timedelta arithmetic. Each RunRequest carries the tag `ws_tracker/schedule_slot`
("04:30", "16:30", ...) so the UI shows which slot launched it. No run_key is set: one tick
already launches at most one run per RunRequest.
"""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import dagster as dg

from ws_tracker.pipeline.jobs import (
    circuit_sync_job,
    daily_snapshot_job,
    derived_daily_job,
    derived_weekly_job,
    unit_sync_job,
)
from ws_tracker.pipeline.partitions import TIMEZONE
from ws_tracker.rules.weekly import week_starting_of

SCHEDULE_SLOT_TAG = "ws_tracker/schedule_slot"

ACTIV_CIRCUIT_SYNC_CRON = "30 4,16 * * 1-5"
WEEKLY_CIRCUIT_SYNC_CRON = "30 4 * * 1"
UNIT_SYNC_CRON = "30 5,17 * * 1-5"
DAILY_SNAPSHOT_CRON = "0 5 * * 1-5"
TRAILING_REBUILD_CRON = "0 6 * * 1-5"
TRAILING_DAYS = 7
WEEKLY_ROLLUP_CRON = "30 6 * * 1-5"

ACTIV_STATUSES = ["ACTIV"]
WEEKLY_STATUSES = ["QC", "REWRK", "CLOSE"]

_ZONE = ZoneInfo(TIMEZONE)


def local_tick_time(context: dg.ScheduleEvaluationContext) -> datetime.datetime:
    """The tick's scheduled execution time as an aware datetime in America/New_York.

    The daemon passes an aware datetime; a naive one is refused rather than silently read
    in the host's local zone.
    """
    scheduled = context.scheduled_execution_time
    if scheduled.tzinfo is None or scheduled.utcoffset() is None:
        raise ValueError(
            f"scheduled_execution_time must be timezone-aware, got naive {scheduled!r}"
        )
    return scheduled.astimezone(_ZONE)


def _slot_tags(local: datetime.datetime) -> dict[str, str]:
    return {SCHEDULE_SLOT_TAG: local.strftime("%H:%M")}


def _circuit_sync_request(
    context: dg.ScheduleEvaluationContext, statuses: list[str]
) -> dg.RunRequest:
    local = local_tick_time(context)
    return dg.RunRequest(
        run_config={"ops": {"circuits": {"config": {"statuses": list(statuses)}}}},
        tags=_slot_tags(local),
    )


@dg.schedule(
    cron_schedule=ACTIV_CIRCUIT_SYNC_CRON,
    execution_timezone=TIMEZONE,
    job=circuit_sync_job,
    description="Weekdays 04:30 and 16:30 America/New_York: sync the ACTIV circuit list.",
)
def activ_circuit_sync_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    return _circuit_sync_request(context, ACTIV_STATUSES)


@dg.schedule(
    cron_schedule=WEEKLY_CIRCUIT_SYNC_CRON,
    execution_timezone=TIMEZONE,
    job=circuit_sync_job,
    description="Mondays 04:30 America/New_York: sync the QC, REWRK and CLOSE circuit lists.",
)
def weekly_circuit_sync_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    return _circuit_sync_request(context, WEEKLY_STATUSES)


@dg.schedule(
    cron_schedule=UNIT_SYNC_CRON,
    execution_timezone=TIMEZONE,
    job=unit_sync_job,
    description="Weekdays 05:30 and 17:30 America/New_York: capture planned units and rebuild "
    "the aggregates of the local date's partition.",
)
def unit_sync_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    local = local_tick_time(context)
    return dg.RunRequest(partition_key=local.date().isoformat(), tags=_slot_tags(local))


@dg.schedule(
    cron_schedule=DAILY_SNAPSHOT_CRON,
    execution_timezone=TIMEZONE,
    job=daily_snapshot_job,
    description="Weekdays 05:00 America/New_York, after the 04:30 circuit sync: rebuild the "
    "local date's circuit_aggregates and daily circuit_snapshots from PostgreSQL.",
)
def daily_snapshot_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    local = local_tick_time(context)
    return dg.RunRequest(partition_key=local.date().isoformat(), tags=_slot_tags(local))


@dg.schedule(
    cron_schedule=TRAILING_REBUILD_CRON,
    execution_timezone=TIMEZONE,
    job=derived_daily_job,
    description="Weekdays 06:00 America/New_York: rebuild the derived numbers of the last 7 "
    "days in one run. Field devices sync late: work done on a day can arrive days later, and "
    "planner work is credited to the day it was done.",
)
def trailing_rebuild_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    local = local_tick_time(context)
    first = local.date() - datetime.timedelta(days=TRAILING_DAYS - 1)  # calendar days, not hours
    return dg.RunRequest(tags={
        **_slot_tags(local),
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": local.date().isoformat(),
    })


@dg.schedule(
    cron_schedule=WEEKLY_ROLLUP_CRON,
    execution_timezone=TIMEZONE,
    job=derived_weekly_job,
    description="Weekdays 06:30 America/New_York, after the trailing daily rebuild: rebuild the "
    "previous and the current week's planner and regional rollups in one run.",
)
def weekly_rollup_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    local = local_tick_time(context)
    current = week_starting_of(local.date())
    return dg.RunRequest(tags={
        **_slot_tags(local),
        "dagster/asset_partition_range_start": (current - datetime.timedelta(days=7)).isoformat(),
        "dagster/asset_partition_range_end": current.isoformat(),
    })


SCHEDULES = [
    activ_circuit_sync_schedule,
    weekly_circuit_sync_schedule,
    daily_snapshot_schedule,
    unit_sync_schedule,
    trailing_rebuild_schedule,
    weekly_rollup_schedule,
]
