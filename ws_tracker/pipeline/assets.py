"""The first slice of the asset graph: circuits -> planned_unit_captures -> circuit_aggregates.

Only the two live assets talk to WorkStudio; circuit_aggregates is computed from what
PostgreSQL holds, so any past day rebuilds without an API call. Each asset writes its data in
one transaction; its sync_logs row is written beside it so a failure is recorded too.
"""

# No ``from __future__ import annotations`` here: Dagster reads the Config annotations at
# definition time and cannot resolve them as strings.
from collections import defaultdict, deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Optional
import warnings

import dagster as dg
import sqlalchemy as sa

from ws_tracker.pipeline.events import log_events
from ws_tracker.pipeline.partitions import daily_partitions, weekly_partitions
from ws_tracker.pipeline.resources import ClockResource
from ws_tracker.rules.circuits import CircuitRecord, transform_circuit_rows
from ws_tracker.rules.errors import WorkStudioAuthError, WorkStudioError, WorkStudioSchemaError
from ws_tracker.rules.units import PlannedUnit, normalise_units
from ws_tracker.warehouse.captures import (
    UNIT_SYNC_STATUSES,
    CaptureResult,
    CircuitToCapture,
    circuits_needing_units,
    store_captures,
)
from ws_tracker.warehouse.circuit_aggregates import build_day
from ws_tracker.warehouse.circuit_snapshots import build_day as build_snapshots
from ws_tracker.warehouse.circuit_sync import sync_circuits
from ws_tracker.warehouse.rollups import build_planner_day, build_regional_day
from ws_tracker.warehouse.weekly import build_planner_week, build_regional_week
from ws_tracker.warehouse.locks import lock, partition_lock_name
from ws_tracker.warehouse.quarantine import Batch, quarantine
from ws_tracker.warehouse.resource import WarehouseResource
from ws_tracker.warehouse.sync_log import SyncLog
from ws_tracker.workstudio.client import WorkStudioClient
from ws_tracker.workstudio.protocol import CIRCUIT_LIST_VIEW, PLANNED_UNITS_VIEW, SYNCED_STATUSES
from ws_tracker.workstudio.resource import WorkStudioResource

# BackfillPolicy is marked beta in Dagster 1.13; we rely on it deliberately (single-run ranges).
warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*backfill_policy.*")

OWNERS = ["team:data-engineering"]


def weekday_freshness(deadline_cron: str, within_hours: float) -> dg.FreshnessPolicy:
    """Fresh when materialized within ``within_hours`` before each weekday deadline (New York).

    After seed 004's TTL per entity: the live circuit list may be half a day old, planned units
    likewise, and the derived numbers must follow their inputs within the hour.
    """
    return dg.FreshnessPolicy.cron(deadline_cron=deadline_cron,
                                   lower_bound_delta=timedelta(hours=within_hours),
                                   timezone="America/New_York")


# Deadlines an hour or so after each schedule slot (see schedules.py).
CIRCUITS_FRESHNESS = weekday_freshness("0 6,18 * * 1-5", 2)  # syncs 04:30 / 16:30
UNITS_FRESHNESS = weekday_freshness("30 6,18 * * 1-5", 1.5)  # syncs 05:30 / 17:30
DAILY_FRESHNESS = weekday_freshness("0 7,19 * * 1-5", 2)  # built with the unit syncs, 06:00
WEEKLY_FRESHNESS = weekday_freshness("0 7 * * 1-5", 1)  # 06:30
WORKSTUDIO_GROUP = "workstudio"
DERIVED_GROUP = "derived"
SYNC_TRIGGERS = ("scheduled", "manual", "workflow_event")


class CircuitSyncConfig(dg.Config):
    statuses: list[str] = list(SYNCED_STATUSES)
    force: bool = False
    # None: derived from how Dagster launched the run (schedule, sensor, or a person).
    trigger: Optional[str] = None
    # Sync as this user (email) with their stored WorkStudio credentials: views are scoped
    # server-side by the caller's groups. None: the system credentials from the environment.
    run_as: Optional[str] = None


class CaptureConfig(dg.Config):
    force: bool = False
    trigger: Optional[str] = None
    run_as: Optional[str] = None
    job_guids: Optional[list[str]] = None  # only these circuits (workflow events)


def run_trigger(context: dg.AssetExecutionContext, configured: Optional[str] = None) -> str:
    """sync_logs.sync_trigger: the configured one, else how Dagster launched the run."""
    if configured:
        if configured not in SYNC_TRIGGERS:
            raise ValueError(f"trigger must be one of {SYNC_TRIGGERS}, not {configured!r}")
        return configured
    tags = context.run.tags
    if "dagster/schedule_name" in tags:
        return "scheduled"
    if "dagster/sensor_name" in tags:
        return "workflow_event"
    return "manual"


@contextmanager
def workstudio_session(workstudio: WorkStudioResource, warehouse_engine: sa.Engine,
                       run_as: Optional[str]) -> Iterator[tuple[WorkStudioClient, tuple[str, ...]]]:
    """A client with the system credentials, or with ``run_as``'s stored ones.

    Yields (client, secrets to scrub). A 401 with a user's credentials marks them failed
    (is_valid false, fail counts, failed_at) before the error fails the run.
    """
    from ws_tracker.warehouse import credentials as creds_store

    user = None
    if run_as:
        with warehouse_engine.connect() as conn:
            user = creds_store.load_user_credentials(conn, run_as)
        client = workstudio.get_client(username=user.username, password=user.password.reveal())
        secrets = (user.password.reveal(), workstudio.password)
    else:
        client = workstudio.get_client()
        secrets = (workstudio.password,)
    try:
        with client:
            yield client, secrets
    except WorkStudioAuthError:
        if user is not None:
            creds_store.record_auth_failure(warehouse_engine, user.user_id)
        raise
    if user is not None:
        creds_store.record_auth_success(warehouse_engine, user.user_id)


# Concurrency pools (dagster.yaml `concurrency: pools:`, granularity run, limit 1): at most one
# run holding each live asset is in progress, however it was launched: a job with the run-queue
# tags, or a person materializing the asset from the UI's asset graph (a run without them).
CIRCUIT_SYNC_POOL = "ws_tracker_circuit_sync"
UNIT_SYNC_POOL = "ws_tracker_unit_sync"

# A capture run writes its units in batches of this many circuits, or fewer when their units
# reach CAPTURE_BATCH_UNITS: memory holds two batches (one being written, one filling) plus the
# fetches in flight, whatever the size of the tenant or of its jobs (BENCHMARKS.md, e2e_10x).
CAPTURE_BATCH_CIRCUITS = 200
CAPTURE_BATCH_UNITS = 20_000


def bounded_in_order(pool, fn, items: list, *, window: int):
    """Yield ``(item, future)`` in ``items`` order, with at most ``window`` submitted and not yet
    consumed: the fetches run ahead of the writes by a bounded amount, so their results never
    pile up in memory. A future is dropped once yielded."""
    queue: deque = deque()
    it = iter(items)
    for item in it:
        queue.append((item, pool.submit(fn, item)))
        if len(queue) >= window:
            break
    while queue:
        item, future = queue.popleft()
        yield item, future
        nxt = next(it, _END)  # the consumer is done with ``item``: one more may start
        if nxt is not _END:
            queue.append((nxt, pool.submit(fn, nxt)))


_END = object()


def _issues(row_issues) -> list[dict]:
    return [i.to_dict() if hasattr(i, "to_dict") else dict(i) for i in row_issues]


@dg.asset(
    pool=CIRCUIT_SYNC_POOL,
    group_name=WORKSTUDIO_GROUP,
    kinds={"postgres"},
    owners=OWNERS,
    freshness_policy=CIRCUITS_FRESHNESS,
    description="Circuits (WorkStudio jobs) of the synced statuses, upserted by job_guid, with "
    "their API history (circuit_history), UI states, regions and planner links.",
)
def circuits(
    context: dg.AssetExecutionContext,
    config: CircuitSyncConfig,
    workstudio: WorkStudioResource,
    warehouse: WarehouseResource,
    clock: ClockResource,
) -> dg.MaterializeResult:
    engine = warehouse.get_engine()
    now = clock.now()
    log = SyncLog(engine, "circuit_list", run_trigger(context, config.trigger),
                  ",".join(config.statuses), run_id=context.run_id,
                  secrets=(workstudio.password,),
                  context={"asset": "circuits", "force": config.force, "run_as": config.run_as,
                           "observed_at": now.isoformat()}).start()
    log_events(context, log.events)
    try:
        records: dict[str, CircuitRecord] = {}
        issues: list[dict] = []
        batches: list[Batch] = []
        with workstudio_session(workstudio, engine, config.run_as) as (client, secrets):
            log.secrets = secrets
            client.heartbeat()
            for status in config.statuses:
                dataset = client.circuits_by_status(status)
                recs, row_issues = transform_circuit_rows(dataset.rows)
                row_issues = dataset.rejected + dataset.renumber(row_issues)
                issues += [{**i, "status": status} for i in _issues(row_issues)]
                if row_issues:
                    batches.append(Batch("circuit_list", CIRCUIT_LIST_VIEW, status,
                                         dataset.raw_rows(), row_issues))
                for rec in recs:  # a circuit moving between two listings: the later one wins
                    records[rec.job_guid] = rec
                context.log.info(f"{status}: {len(recs)} circuits listed")
        # Bad rows are on record before anything else is written.
        quarantined = quarantine(engine, batches, sync_log_id=log.id, run_id=context.run_id)
        with engine.begin() as conn:
            result = sync_circuits(conn, list(records.values()), observed_at=now,
                                   force=config.force, run_id=context.run_id)
    except Exception as exc:
        log.fail(exc)
        log_events(context, log.events[1:])
        raise
    status = log.complete({**result.counts(), "rows_quarantined": quarantined},
                          issues=issues + result.issues)
    log_events(context, [*result.events, *(c.event() for c in result.stage_changes),
                         *log.events[1:]])
    for region in result.regions_created:
        context.log.warning(f"new region created: {region!r}")
    return dg.MaterializeResult(metadata={
        **{k: dg.MetadataValue.int(v) for k, v in result.counts().items()},
        "row_issues": dg.MetadataValue.int(len(issues)),
        "rows_quarantined": dg.MetadataValue.int(quarantined),
        "sync_status": status,
        "sync_log_id": dg.MetadataValue.int(log.id),
    })


@dg.asset(
    pool=UNIT_SYNC_POOL,
    group_name=WORKSTUDIO_GROUP,
    kinds={"postgres"},
    owners=OWNERS,
    freshness_policy=UNITS_FRESHNESS,
    deps=[circuits],
    description="Planned-unit captures (planned_units_snapshots): normalised units per circuit, "
    "stored when their content hash changes. The raw layer every derived number replays.",
)
def planned_unit_captures(
    context: dg.AssetExecutionContext,
    config: CaptureConfig,
    workstudio: WorkStudioResource,
    warehouse: WarehouseResource,
    clock: ClockResource,
) -> dg.MaterializeResult:
    engine = warehouse.get_engine()
    now = clock.now()
    trigger = run_trigger(context, config.trigger)
    log = SyncLog(engine, "aggregates", trigger, ",".join(UNIT_SYNC_STATUSES),
                  run_id=context.run_id, secrets=(workstudio.password,),
                  context={"asset": "planned_unit_captures", "force": config.force,
                           "run_as": config.run_as, "job_guids": config.job_guids,
                           "observed_at": now.isoformat()}).start()
    log_events(context, log.events)
    issues: list[dict] = []
    failures: list[dict] = []
    try:
        with engine.connect() as conn:
            todo = circuits_needing_units(conn, now, force=config.force, job_guids=config.job_guids,
                                          workflow_event=trigger == "workflow_event")
        by_wo: dict[str, list[CircuitToCapture]] = defaultdict(list)
        for c in todo:
            by_wo[c.work_order].append(c)
        context.log.info(f"{len(todo)} circuits in {len(by_wo)} work orders need their units")

        with engine.connect() as conn:
            known_jobs: dict[str, set[str]] = defaultdict(set)
            for wo, ext in conn.execute(
                sa.text("SELECT work_order, coalesce(extension, '@') FROM circuits"
                        " WHERE work_order = ANY(:w)"), {"w": list(by_wo)}):
                known_jobs[wo].add(ext)
        todo_by_id = {c.id: c for c in todo}
        pending: dict[int, list[PlannedUnit]] = {}  # fetched, not yet written
        pending_bad: list[Batch] = []  # bad rows of those fetches, not yet on record
        processed = pending_units = 0
        # One transaction for the whole step (a failure leaves no capture of this run), written
        # in batches as the fetches come in: only a batch of circuits' units is ever in memory.
        with workstudio_session(workstudio, engine, config.run_as) as (client, secrets), \
                engine.begin() as conn:
            log.secrets = secrets

            def fetch(work_order: str):
                # One call per work order covers its main job and its splits (SS_EXT).
                dataset = client.planned_units(work_order)
                units_by_ext, row_issues = normalise_units(dataset.rows)
                row_issues = dataset.rejected + dataset.renumber(row_issues)
                if not row_issues:
                    return units_by_ext, row_issues, None
                # Keep only the rows the issues name: they wait for their batch to be written.
                named = {i.row_number for i in row_issues}
                return units_by_ext, row_issues, {n: row for n, row in dataset.raw_rows().items()
                                                  if n in named}

            def write(batch: dict[int, list[PlannedUnit]], bad: list[Batch]):
                # Bad rows go on record in their own transaction before the units of the same
                # responses are written: one transaction per batch, not one per response (a
                # commit each was most of the step's time at scale: BENCHMARKS.md, profile).
                stored_bad = quarantine(engine, bad, sync_log_id=log.id, run_id=context.run_id)
                return stored_bad, store_captures(conn, batch, todo_by_id, captured_at=now,
                                                  run_trigger=trigger, run_id=context.run_id)

            writer = _BatchWriter(write)

            def flush() -> None:
                if pending or pending_bad:
                    writer.submit(dict(pending), list(pending_bad))
                    pending.clear()
                    pending_bad.clear()

            def on_failure() -> None:
                writer.abandon()
                quarantine(engine, pending_bad, sync_log_id=log.id, run_id=context.run_id)

            # Bounded concurrency (resource setting) under the client's rate limit.
            with ThreadPoolExecutor(max_workers=workstudio.concurrency()) as pool, writer, \
                    _on_failure(on_failure, context.log):
                for wo, future in bounded_in_order(pool, fetch, list(by_wo),
                                                   window=2 * workstudio.concurrency()):
                    try:
                        units_by_ext, row_issues, raw = future.result()
                    except (WorkStudioAuthError, WorkStudioSchemaError):
                        # Bad credentials or a changed view fail the whole sync, before any
                        # capture is committed; every other work order would fail alike.
                        raise
                    except WorkStudioError as exc:
                        failures.append({"item": wo, "type": "work_order", "code": type(exc).__name__,
                                         "message": str(exc)})
                        context.log.warning(f"work order {wo}: {exc}")
                        continue
                    if row_issues:
                        issues += [{**i, "work_order": wo} for i in _issues(row_issues)]
                        pending_bad.append(Batch("planned_units", PLANNED_UNITS_VIEW, wo, raw,
                                                 row_issues))
                    jobs = {c.extension: c for c in by_wo[wo]}
                    for ext, units in units_by_ext.items():
                        if ext not in known_jobs.get(wo, set()):
                            # Units of a job we have no circuit for: say so, never drop silently.
                            issues.append({"type": "row", "code": "unknown_job", "severity": "warning",
                                           "work_order": wo, "column": "SS_EXT", "value": ext,
                                           "message": f"{len(units)} units of {wo}/{ext}: no such "
                                                      "circuit listed; not captured"})
                    for ext, job in jobs.items():
                        pending[job.id] = units_by_ext.get(ext, [])
                        pending_units += len(pending[job.id])
                        processed += 1
                    if (len(pending) >= CAPTURE_BATCH_CIRCUITS
                            or pending_units >= CAPTURE_BATCH_UNITS):
                        flush()
                        pending_units = 0
                flush()
                writer.wait()
            result, quarantined = writer.result, writer.quarantined
    except Exception as exc:
        log.fail(exc)
        log_events(context, log.events[1:])
        raise
    counts = {"circuits_processed": processed, **result.counts(),
              "work_orders_failed": len(failures), "rows_quarantined": quarantined}
    status = log.complete(counts, issues=issues, failures=failures)
    log_events(context, [*result.events, *(c.event() for c in result.stage_changes),
                         *log.events[1:]])
    return dg.MaterializeResult(metadata={
        **{k: dg.MetadataValue.int(v) for k, v in counts.items()},
        "sync_status": status,
        "sync_log_id": dg.MetadataValue.int(log.id),
    })


class _BatchWriter:
    """Writes capture batches on one background thread, one batch at a time, while the fetch
    threads go on with the next batch: the database's time overlaps the API's instead of
    adding to it. At most two batches are in memory (one being written, one filling).
    ``write(batch, bad_rows) -> (rows_quarantined, CaptureResult)`` runs on the writer thread;
    a failed write is raised by the next ``submit`` or ``wait``."""

    def __init__(self, write) -> None:
        self._write = write
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="capture-writer")
        self._future = None
        self.result = CaptureResult()
        self.quarantined = 0

    def __enter__(self) -> "_BatchWriter":
        return self

    def __exit__(self, *exc) -> None:
        self._pool.shutdown(wait=True)

    def submit(self, batch, bad) -> None:
        self.wait()
        self._future = self._pool.submit(self._write, batch, bad)

    def wait(self) -> None:
        future, self._future = self._future, None
        if future is not None:
            quarantined, result = future.result()
            self.quarantined += quarantined
            self.result.merge(result)

    def abandon(self) -> None:
        """After a failure elsewhere: let the write in progress end; its own error, if any,
        is dropped (the first failure is the one reported)."""
        future, self._future = self._future, None
        if future is not None:
            future.exception()


@contextmanager
def _on_failure(action, log):
    """Run ``action`` when the block raises, then re-raise the block's exception (an exception
    of ``action`` itself is logged, never allowed to hide the first one)."""
    try:
        yield
    except BaseException:
        try:
            action()
        except Exception as exc:  # e.g. the database went away: the first error matters more
            log.warning(f"could not record the bad rows received before the failure: {exc}")
        raise


def _build_partitions(context: dg.AssetExecutionContext, build, day_of, unit: str
                      ) -> dg.MaterializeResult:
    """Run ``build(conn, *day_of(key))`` for every partition key of the run.

    One partition or a whole range (single-run backfills): each partition is its own
    transaction, idempotent, so one that fails leaves those before it built and a re-run
    converges. Per-partition counts go into the metadata, totals as numbers the UI plots.
    """
    engine = context.resources.warehouse.get_engine()
    totals: dict[str, int] = {}
    per_key: dict[str, dict[str, int]] = {}
    asset = context.asset_key.to_user_string()
    for key in context.partition_keys:
        with engine.begin() as conn:
            # Two runs building the same partition at once take turns (one correct copy).
            lock(conn, partition_lock_name(asset, key))
            counts = build(conn, *day_of(key))
        per_key[key] = counts
        for name, value in counts.items():
            totals[name] = totals.get(name, 0) + value
    context.log.info(f"{context.asset_key.to_user_string()}: built {len(per_key)} {unit}(s), {totals}")
    return dg.MaterializeResult(metadata={
        **{k: dg.MetadataValue.int(v) for k, v in totals.items()},
        f"{unit}s": dg.MetadataValue.int(len(per_key)),
        f"per_{unit}": dg.MetadataValue.json(per_key),
    })


def _day_window(key: str) -> tuple[date, datetime]:
    # DST days are 23 h / 25 h: the window comes from the partitions definition, never from
    # start + timedelta(days=1).
    window = daily_partitions.time_window_for_partition_key(key)
    return window.start.date(), window.end


def _derived_asset(name: str, partitions_def, deps: list, description: str, freshness,
                   config_type=None):
    """The shape every derived asset shares: PostgreSQL in, PostgreSQL out, no API call,
    single-run backfills. The decorated function returns ``build(conn, *partition)``."""
    def decorate(make_build):
        daily = partitions_def is daily_partitions

        @dg.asset(name=name, group_name=DERIVED_GROUP, kinds={"postgres"}, owners=OWNERS,
                  freshness_policy=freshness, partitions_def=partitions_def,
                  backfill_policy=dg.BackfillPolicy.single_run(), deps=deps,
                  required_resource_keys={"warehouse"}, description=description)
        def _asset(context: dg.AssetExecutionContext, config: config_type or dg.Config):
            build = make_build(context, config)
            if daily:
                return _build_partitions(context, build, _day_window, "day")
            return _build_partitions(context, build, lambda k: (date.fromisoformat(k),), "week")

        return _asset
    return decorate


@_derived_asset(
    "circuit_aggregates", daily_partitions, [planned_unit_captures, circuits],
    "Per circuit per day: unit totals, permissions, per-type and per-planner breakdowns from "
    "the latest capture as of that day, miles from the circuit's state that day.",
    DAILY_FRESHNESS)
def circuit_aggregates(context, config):
    cache: dict = {}  # capture id -> aggregate: a capture gives the same numbers every day

    def build(conn, day, end):
        result = build_day(conn, day, end, cache)
        # A derived build, not a sync: it writes no sync log of its own (a year's backfill
        # would bury the sync history). Built in the same run as a planned-unit sync, it fills
        # that sync's aggregates_created.
        conn.execute(sa.text(
            "UPDATE sync_logs SET aggregates_created = coalesce(aggregates_created, 0) + :n,"
            " updated_at = now() WHERE dagster_run_id = :run AND sync_type = 'aggregates'"),
            {"n": result.written, "run": context.run_id})
        return result.counts()

    return build


@_derived_asset(
    "circuit_snapshots", daily_partitions, [circuit_aggregates, circuits],
    "Daily circuit snapshots: every non-closed, non-excluded circuit's state as of that day "
    "(circuit_history) with that day's aggregate totals; breakdowns in metrics_json.",
    DAILY_FRESHNESS)
def circuit_snapshots(context, config):
    return lambda conn, day, end: build_snapshots(conn, day, end).counts()


@_derived_asset(
    "planner_daily_aggregates", daily_partitions, [planned_unit_captures, circuits],
    "Work each planner did that day (first unit wins per station), per region: units, feet, "
    "acres, trees, stations, span miles, circuits worked. From each circuit's latest capture, "
    "so work synced late lands on the day it was done; trailing_rebuild_schedule rebuilds the "
    "last 7 days to pick it up.",
    DAILY_FRESHNESS)
def planner_daily_aggregates(context, config):
    cache: dict = {}  # capture id -> its units by day: read once per run, not once per day
    return lambda conn, day, end: build_planner_day(conn, day, end, cache).counts()


@_derived_asset(
    "regional_daily_aggregates", daily_partitions, [circuit_aggregates, circuits],
    "Per active region and day, over non-deleted, non-excluded circuits: counts by status, "
    "miles, average completion, unit totals from that day's circuit_aggregates.",
    DAILY_FRESHNESS)
def regional_daily_aggregates(context, config):
    cache: dict = {}  # as planner_daily_aggregates'
    return lambda conn, day, end: build_regional_day(conn, day, end, cache).counts()


class WeeklyTargetConfig(dg.Config):
    # business-rules.md: met_weekly_target = miles_delta >= 6.5, configurable.
    target_miles: float = 6.5


@_derived_asset(
    "planner_weekly_aggregates", weekly_partitions,
    [planner_daily_aggregates, circuit_snapshots],
    "Per planner, region and week (Sunday-Saturday, week_ending = Saturday): days worked, sums "
    "of the daily work, miles_delta from snapshots, met_weekly_target.",
    WEEKLY_FRESHNESS, WeeklyTargetConfig)
def planner_weekly_aggregates(context, config):
    return lambda conn, week: build_planner_week(conn, week,
                                                 target_miles=config.target_miles).counts()


@_derived_asset(
    "regional_weekly_aggregates", weekly_partitions,
    [regional_daily_aggregates, planner_daily_aggregates],
    "Per region and week: counts by status at week end, excluded circuits, miles, units added, "
    "and a daily_breakdown {date: {circuits_active, miles_planned, units_added}}.",
    WEEKLY_FRESHNESS)
def regional_weekly_aggregates(context, config):
    return lambda conn, week: build_regional_week(conn, week).counts()


DAILY_ASSETS = [circuit_aggregates, circuit_snapshots, planner_daily_aggregates,
                regional_daily_aggregates]
WEEKLY_ASSETS = [planner_weekly_aggregates, regional_weekly_aggregates]
ASSETS = [circuits, planned_unit_captures, *DAILY_ASSETS, *WEEKLY_ASSETS]
