"""The weekday schedules: what each tick requests, and when the ticks fall across DST.

Pure tests, no database. Ticks are evaluated through ScheduleDefinition.evaluate_tick with a
repository, as the daemon does, so partition keys are checked against the job's partitions at
the tick's time. The tick times come from Dagster's own cron iterator, and the expected times
are written as local wall-clock times, so a wrong cron string, time zone or DST handling fails.

2026 DST changes in America/New_York: spring forward Sunday 2026-03-08 (EST -05:00 -> EDT
-04:00), fall back Sunday 2026-11-01 (EDT -04:00 -> EST -05:00).
"""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from dagster._utils.schedules import cron_string_iterator

from ws_tracker.pipeline.assets import ASSETS
from ws_tracker.pipeline.jobs import JOBS
from ws_tracker.pipeline.resources import ClockResource
from ws_tracker.pipeline.schedules import (
    SCHEDULE_SLOT_TAG,
    SCHEDULES,
    activ_circuit_sync_schedule,
    daily_snapshot_schedule,
    trailing_rebuild_schedule,
    unit_sync_schedule,
    weekly_circuit_sync_schedule,
    weekly_rollup_schedule,
)
from ws_tracker.warehouse.resource import WarehouseResource
from ws_tracker.workstudio.resource import WorkStudioResource

NY = ZoneInfo("America/New_York")
UTC = datetime.timezone.utc
EST = datetime.timedelta(hours=-5)
EDT = datetime.timedelta(hours=-4)

SPRING_FORWARD = datetime.date(2026, 3, 8)
FALL_BACK = datetime.date(2026, 11, 1)

WEEKDAYS = {0, 1, 2, 3, 4}  # date.weekday(): Monday=0
MONDAY = {0}


def utc(*args: int) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=UTC)


@pytest.fixture(scope="module")
def repo():
    defs = dg.Definitions(
        assets=ASSETS,
        jobs=JOBS,
        schedules=SCHEDULES,
        # Placeholders: loading the definitions opens no connection.
        resources={
            "workstudio": WorkStudioResource(
                base_url="http://workstudio.invalid", username="u", password="p"
            ),
            "warehouse": WarehouseResource(),
            "clock": ClockResource(),
        },
    )
    return defs.get_repository_def()


def evaluate(schedule: dg.ScheduleDefinition, when: datetime.datetime, repo) -> dg.RunRequest:
    context = dg.build_schedule_context(scheduled_execution_time=when, repository_def=repo)
    data = schedule.evaluate_tick(context)
    assert data.skip_message is None
    assert data.run_requests is not None and len(data.run_requests) == 1
    return data.run_requests[0]


def statuses(request: dg.RunRequest) -> list[str]:
    return request.run_config["ops"]["circuits"]["config"]["statuses"]


# --------------------------------------------------------------------------- definitions


def test_schedules_load_into_definitions_and_target_the_right_jobs(repo):
    assert {s.name for s in repo.schedule_defs} == {
        "activ_circuit_sync_schedule",
        "weekly_circuit_sync_schedule",
        "unit_sync_schedule",
        "daily_snapshot_schedule",
        "trailing_rebuild_schedule",
        "weekly_rollup_schedule",
    }
    expected = {
        "daily_snapshot_schedule": ("daily_snapshots", "0 5 * * 1-5"),
        "trailing_rebuild_schedule": ("derived_daily", "0 6 * * 1-5"),
        "weekly_rollup_schedule": ("derived_weekly", "30 6 * * 1-5"),
        "activ_circuit_sync_schedule": ("circuit_sync", "30 4,16 * * 1-5"),
        "weekly_circuit_sync_schedule": ("circuit_sync", "30 4 * * 1"),
        "unit_sync_schedule": ("unit_sync", "30 5,17 * * 1-5"),
    }
    for name, (job_name, cron) in expected.items():
        schedule = repo.get_schedule_def(name)
        assert schedule.job_name == job_name
        assert repo.get_job(job_name).name == job_name
        assert schedule.cron_schedule == cron
        assert schedule.execution_timezone == "America/New_York"
        # Operators turn schedules on; a fresh deployment launches nothing by itself.
        assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert repo.get_job("unit_sync").partitions_def is not None
    assert repo.get_job("circuit_sync").partitions_def is None


@pytest.mark.parametrize(
    "schedule, expected",
    [
        (activ_circuit_sync_schedule, ["ACTIV"]),
        (weekly_circuit_sync_schedule, ["QC", "REWRK", "CLOSE"]),
    ],
)
def test_circuit_sync_run_config_is_valid_for_the_job(repo, schedule, expected):
    request = evaluate(schedule, utc(2026, 3, 9, 8, 30), repo)
    assert statuses(request) == expected
    # The run config matches CircuitSyncConfig of the circuits asset.
    dg.validate_run_config(repo.get_job("circuit_sync"), request.run_config)
    with pytest.raises(dg.DagsterInvalidConfigError):
        dg.validate_run_config(
            repo.get_job("circuit_sync"),
            {"ops": {"circuits": {"config": {"statuses": "ACTIV"}}}},
        )


# --------------------------------------------------------------------------- single ticks

# (instant in UTC, expected local slot). 04:30 local = 09:30 UTC in EST, 08:30 UTC in EDT.
ACTIV_TICKS = [
    (utc(2026, 3, 6, 9, 30), "04:30"),  # Friday before spring forward, EST
    (utc(2026, 3, 6, 21, 30), "16:30"),
    (utc(2026, 3, 9, 8, 30), "04:30"),  # Monday after spring forward, EDT
    (utc(2026, 3, 9, 20, 30), "16:30"),
    (utc(2026, 10, 30, 8, 30), "04:30"),  # Friday before fall back, EDT
    (utc(2026, 10, 30, 20, 30), "16:30"),
    (utc(2026, 11, 2, 9, 30), "04:30"),  # Monday after fall back, EST
    (utc(2026, 11, 2, 21, 30), "16:30"),
]


@pytest.mark.parametrize("when, slot", ACTIV_TICKS)
def test_activ_circuit_sync_request(repo, when, slot):
    request = evaluate(activ_circuit_sync_schedule, when, repo)
    assert statuses(request) == ["ACTIV"]
    assert request.tags[SCHEDULE_SLOT_TAG] == slot
    assert request.tags["dagster/schedule_name"] == "activ_circuit_sync_schedule"
    assert request.partition_key is None
    assert request.run_key is None


@pytest.mark.parametrize(
    "when", [utc(2026, 3, 9, 8, 30), utc(2026, 11, 2, 9, 30)], ids=["march-edt", "november-est"]
)
def test_weekly_circuit_sync_request(repo, when):
    request = evaluate(weekly_circuit_sync_schedule, when, repo)
    assert statuses(request) == ["QC", "REWRK", "CLOSE"]
    assert request.tags[SCHEDULE_SLOT_TAG] == "04:30"
    assert request.partition_key is None
    assert request.run_key is None


# 05:30 local = 10:30 UTC in EST, 09:30 UTC in EDT; 17:30 local = 22:30 / 21:30 UTC.
UNIT_TICKS = [
    (utc(2026, 3, 6, 10, 30), "2026-03-06", "05:30"),
    (utc(2026, 3, 6, 22, 30), "2026-03-06", "17:30"),
    (utc(2026, 3, 9, 9, 30), "2026-03-09", "05:30"),
    (utc(2026, 3, 9, 21, 30), "2026-03-09", "17:30"),
    (utc(2026, 10, 30, 9, 30), "2026-10-30", "05:30"),
    (utc(2026, 10, 30, 21, 30), "2026-10-30", "17:30"),
    (utc(2026, 11, 2, 10, 30), "2026-11-02", "05:30"),
    (utc(2026, 11, 2, 22, 30), "2026-11-02", "17:30"),
]


@pytest.mark.parametrize("when, partition_key, slot", UNIT_TICKS)
def test_unit_sync_request(repo, when, partition_key, slot):
    request = evaluate(unit_sync_schedule, when, repo)
    assert request.partition_key == partition_key
    # evaluate_tick resolved the key against unit_sync's partitions at the tick's time.
    assert request.tags["dagster/partition"] == partition_key
    assert request.tags[SCHEDULE_SLOT_TAG] == slot
    assert request.run_key is None
    # The daemon hands the tick over in the execution time zone: same request.
    local = evaluate(unit_sync_schedule, when.astimezone(NY), repo)
    assert (local.partition_key, local.tags[SCHEDULE_SLOT_TAG]) == (partition_key, slot)


def test_unit_sync_partition_is_the_local_date_not_the_utc_date(repo):
    # 21:30 EST on Monday 2026-11-02 is already Tuesday 02:30 in UTC.
    request = evaluate(unit_sync_schedule, utc(2026, 11, 3, 2, 30), repo)
    assert request.partition_key == "2026-11-02"
    assert request.tags[SCHEDULE_SLOT_TAG] == "21:30"


def test_naive_scheduled_time_is_refused():
    naive = datetime.datetime(2026, 3, 9, 5, 30)
    context = dg.build_schedule_context(scheduled_execution_time=naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        unit_sync_schedule(context)


# --------------------------------------------------------------------------- tick enumeration


def expected_ticks(
    first: datetime.date, last: datetime.date, days: set[int], slots: list[tuple[int, int]]
) -> list[datetime.datetime]:
    """Local wall-clock ticks on the given weekdays, built per calendar date (no timedelta
    arithmetic on instants)."""
    ticks = []
    day = first
    while day <= last:
        if day.weekday() in days:
            for hour, minute in slots:
                ticks.append(
                    datetime.datetime(day.year, day.month, day.day, hour, minute, tzinfo=NY)
                )
        day += datetime.timedelta(days=1)
    return ticks


def dagster_ticks(
    schedule: dg.ScheduleDefinition, first: datetime.date, last: datetime.date
) -> list[datetime.datetime]:
    """Dagster's own tick times of the schedule from `first` 00:00 to before `last + 1` 00:00
    local time."""
    start = datetime.datetime(first.year, first.month, first.day, tzinfo=NY)
    after = last + datetime.timedelta(days=1)
    end = datetime.datetime(after.year, after.month, after.day, tzinfo=NY)
    ticks = []
    for tick in cron_string_iterator(
        start.timestamp(), schedule.cron_schedule, schedule.execution_timezone
    ):
        if tick.timestamp() >= end.timestamp():
            break
        ticks.append(tick)
    return ticks


# Monday before to Friday after each change: two full work weeks around the DST weekend.
DST_WEEKS = {
    "spring-forward": (datetime.date(2026, 3, 2), datetime.date(2026, 3, 13), EST, EDT),
    "fall-back": (datetime.date(2026, 10, 26), datetime.date(2026, 11, 6), EDT, EST),
}
SCHEDULE_TIMES = {
    "activ": (activ_circuit_sync_schedule, WEEKDAYS, [(4, 30), (16, 30)]),
    "weekly": (weekly_circuit_sync_schedule, MONDAY, [(4, 30)]),
    "unit": (unit_sync_schedule, WEEKDAYS, [(5, 30), (17, 30)]),
    "snapshot": (daily_snapshot_schedule, WEEKDAYS, [(5, 0)]),
}


@pytest.mark.parametrize("week", DST_WEEKS, ids=list(DST_WEEKS))
@pytest.mark.parametrize("which", SCHEDULE_TIMES, ids=list(SCHEDULE_TIMES))
def test_ticks_across_dst_week(repo, week, which):
    first, last, offset_before, offset_after = DST_WEEKS[week]
    schedule, days, slots = SCHEDULE_TIMES[which]
    change = SPRING_FORWARD if week == "spring-forward" else FALL_BACK

    ticks = dagster_ticks(schedule, first, last)
    expected = expected_ticks(first, last, days, slots)

    # Same instants, in order: none skipped, none doubled, none extra.
    assert [t.timestamp() for t in ticks] == [e.timestamp() for e in expected]
    assert len({t.timestamp() for t in ticks}) == len(ticks)
    assert len(ticks) == len(expected) > 0

    wall_clock = {f"{h:02d}:{m:02d}" for h, m in slots}
    offsets = set()
    for tick in ticks:
        local = tick.astimezone(NY)
        assert local.weekday() in days
        assert local.strftime("%H:%M") in wall_clock
        # The UTC offset follows the DST change, the wall-clock time does not.
        assert local.utcoffset() == (offset_before if local.date() < change else offset_after)
        offsets.add(local.utcoffset())

        request = evaluate(schedule, tick.astimezone(UTC), repo)
        assert request.tags[SCHEDULE_SLOT_TAG] == local.strftime("%H:%M")
        if schedule in (unit_sync_schedule, daily_snapshot_schedule):
            assert request.partition_key == local.date().isoformat()
        else:
            assert request.partition_key is None
    assert offsets == {offset_before, offset_after}
    # Nothing on the DST weekend itself.
    assert all(t.astimezone(NY).date() != change for t in ticks)


def test_tick_counts_in_dst_weeks():
    # Each window is ten weekdays, two of them Mondays.
    for week, mondays in [
        ("spring-forward", ["2026-03-02", "2026-03-09"]),
        ("fall-back", ["2026-10-26", "2026-11-02"]),
    ]:
        first, last, _, _ = DST_WEEKS[week]
        assert len(dagster_ticks(activ_circuit_sync_schedule, first, last)) == 20
        assert len(dagster_ticks(unit_sync_schedule, first, last)) == 20
        assert len(dagster_ticks(daily_snapshot_schedule, first, last)) == 10
        weekly = dagster_ticks(weekly_circuit_sync_schedule, first, last)
        assert [t.astimezone(NY).date().isoformat() for t in weekly] == mondays


@pytest.mark.parametrize("when, first, last", [
    # Monday after spring-forward, 06:00 EDT: the seven local days ending that Monday.
    (utc(2026, 3, 9, 10, 0), "2026-03-03", "2026-03-09"),
    # Monday after fall-back, 06:00 EST (11:00 UTC): the range spans the 25-hour day.
    (utc(2026, 11, 2, 11, 0), "2026-10-27", "2026-11-02"),
])
def test_trailing_rebuild_requests_the_last_seven_local_days(repo, when, first, last):
    request = evaluate(trailing_rebuild_schedule, when, repo)
    assert request.tags["dagster/asset_partition_range_start"] == first
    assert request.tags["dagster/asset_partition_range_end"] == last
    assert request.tags[SCHEDULE_SLOT_TAG] == "06:00"
    assert request.partition_key is None


@pytest.mark.parametrize("when, first, last", [
    (utc(2026, 3, 9, 10, 30), "2026-03-01", "2026-03-08"),  # Monday after spring-forward
    (utc(2026, 3, 13, 10, 30), "2026-03-01", "2026-03-08"),  # that Friday
    (utc(2026, 11, 2, 11, 30), "2026-10-25", "2026-11-01"),  # Monday after fall-back
])
def test_weekly_rollup_requests_previous_and_current_week(repo, when, first, last):
    request = evaluate(weekly_rollup_schedule, when, repo)
    assert request.tags["dagster/asset_partition_range_start"] == first
    assert request.tags["dagster/asset_partition_range_end"] == last
    assert datetime.date.fromisoformat(first).weekday() == 6  # Sundays


def test_every_asset_says_how_stale_it_may_get_on_a_weekday(repo):
    graph = repo.asset_graph
    for key in graph.get_all_asset_keys():
        policy = graph.get(key).freshness_policy
        assert policy is not None, key
        assert policy.timezone == "America/New_York" and policy.deadline_cron.endswith("1-5"), key
