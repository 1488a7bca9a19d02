"""Bench: rebuild a year of derived daily partitions (and its weeks) in one ranged run.

    .venv/bin/python bench/backfill_year.py [--sync-days 20] [--year-end 2026-03-31]

Starts a throwaway embedded PostgreSQL, syncs the default simulated world (about 150
circuits) on ``--sync-days`` consecutive weekdays ending at ``--year-end``, then times one
single-run backfill of the 365 days ending there with every derived daily asset, and of the
overlapping weeks. Days before the first sync have no history and build empty, so the figure
is an upper bound for the per-day cost on days with data only over the synced window; the full
bench (issue 7) syncs a whole year.

``sync_weekdays`` and ``ranged_backfill`` are reused by the suite (bench/run.py).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from ws_tracker.pipeline.assets import DAILY_ASSETS, WEEKLY_ASSETS
from ws_tracker.rules.weekly import week_starting_of
from ws_tracker.warehouse import embedded
from ws_tracker.warehouse.engine import ensure_database, with_database
from ws_tracker.warehouse.migrate import upgrade
from ws_tracker.warehouse.resource import WarehouseResource
from ws_tracker_tests.e2e import start_harness


def weekdays_ending(end: date, n: int) -> list[date]:
    """The ``n`` weekdays ending at ``end`` (inclusive), oldest first."""
    days, day = [], end
    while len(days) < n:
        if day.weekday() < 5:
            days.append(day)
        day -= timedelta(days=1)
    return list(reversed(days))


def sync_weekdays(url: str, sync_days: int, year_end: date) -> float:
    """Sync the default world into ``url`` on ``sync_days`` weekdays ending at ``year_end``
    (one daily-pipeline run each, at 17:30 New York); returns the seconds taken."""
    h = start_harness(url)
    try:
        t0 = time.perf_counter()
        for d in weekdays_ending(year_end, sync_days):
            assert h.run(d).success
        return time.perf_counter() - t0
    finally:
        h.server.stop()


def ranged_backfill(url: str, year_end: date, days: int = 365) -> tuple[float, float]:
    """One single-run backfill of the ``days`` daily partitions ending at ``year_end`` with
    every derived daily asset, then of the overlapping weeks with every weekly asset.
    Returns (daily seconds, weekly seconds)."""
    first = year_end - timedelta(days=days - 1)
    resources = {"warehouse": WarehouseResource(database_url=url)}
    t0 = time.perf_counter()
    daily = dg.materialize(DAILY_ASSETS, resources=resources, tags={
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": year_end.isoformat()})
    daily_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    weekly = dg.materialize(WEEKLY_ASSETS, resources=resources, tags={
        "dagster/asset_partition_range_start": week_starting_of(first).isoformat(),
        "dagster/asset_partition_range_end": week_starting_of(year_end).isoformat()})
    weekly_s = time.perf_counter() - t0
    assert daily.success and weekly.success
    return daily_s, weekly_s


def day_by_day(url: str, year_end: date, days: int = 365, sample_days: int = 30,
               sample_weeks: int = 6) -> dict[str, float]:
    """The same range the earlier way: one run per partition. Timing all 365 + 53 runs three
    times would take most of an hour, so ``sample_days`` daily partitions spread evenly over
    the range (empty and synced days in proportion) and ``sample_weeks`` weekly ones are run,
    one ``dg.materialize`` each, and the mean per run is multiplied by the range's count.
    Returns seconds per daily run and per weekly run and the extrapolated totals."""
    first = year_end - timedelta(days=days - 1)
    resources = {"warehouse": WarehouseResource(database_url=url)}
    step = days / sample_days
    sample = [first + timedelta(days=int(i * step + step / 2)) for i in range(sample_days)]
    t0 = time.perf_counter()
    for day in sample:
        assert dg.materialize(DAILY_ASSETS, resources=resources,
                              partition_key=day.isoformat()).success
    per_day = (time.perf_counter() - t0) / len(sample)
    weeks = sorted({week_starting_of(first) + timedelta(weeks=w)
                    for w in range(0, (week_starting_of(year_end) - week_starting_of(first)).days
                                   // 7 + 1)})
    wstep = len(weeks) / sample_weeks
    wsample = [weeks[int(i * wstep + wstep / 2)] for i in range(sample_weeks)]
    t0 = time.perf_counter()
    for week in wsample:
        assert dg.materialize(WEEKLY_ASSETS, resources=resources,
                              partition_key=week.isoformat()).success
    per_week = (time.perf_counter() - t0) / len(wsample)
    return {"per_day_s": per_day, "per_week_s": per_week, "weeks": len(weeks),
            "total_s": per_day * days + per_week * len(weeks)}


def one_process_per_run(url: str, year_end: date, days: int = 365, sample_days: int = 5,
                        sample_weeks: int = 2) -> dict[str, float]:
    """One run per partition as a deployment runs it: each run in a process of its own (what
    Dagster's run launcher starts for every run of a multi-run backfill), here
    ``ws-tracker backfill --from D --to D --select <assets>``: interpreter and code location
    start-up, instance on PostgreSQL, one run. Sampled and multiplied out like
    :func:`day_by_day`; returns seconds per daily and per weekly run and the total."""
    exe = Path(sys.executable).with_name("ws-tracker")
    env = {**os.environ, "WS_TRACKER_DATABASE_URL": url}
    env.pop("DAGSTER_PG_URL", None)
    daily = ",".join(a.key.to_user_string() for a in DAILY_ASSETS)
    weekly = ",".join(a.key.to_user_string() for a in WEEKLY_ASSETS)
    first = year_end - timedelta(days=days - 1)
    step = days / sample_days

    def run(day: date, select: str) -> None:
        subprocess.run([str(exe), "backfill", "--from", day.isoformat(), "--to", day.isoformat(),
                        "--select", select], env=env, check=True, capture_output=True)

    sample = [first + timedelta(days=int(i * step + step / 2)) for i in range(sample_days)]
    t0 = time.perf_counter()
    for day in sample:
        run(day, daily)
    per_day = (time.perf_counter() - t0) / len(sample)
    weeks = (week_starting_of(year_end) - week_starting_of(first)).days // 7 + 1
    wstep = days / sample_weeks
    wsample = [first + timedelta(days=int(i * wstep + wstep / 2)) for i in range(sample_weeks)]
    t0 = time.perf_counter()
    for day in wsample:
        run(day, weekly)
    per_week = (time.perf_counter() - t0) / len(wsample)
    return {"per_day_s": per_day, "per_week_s": per_week, "weeks": weeks,
            "total_s": per_day * days + per_week * weeks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sync-days", type=int, default=20)
    parser.add_argument("--year-end", type=date.fromisoformat, default=date(2026, 3, 31))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        url = with_database(embedded.start(home), "bench")
        ensure_database(url)
        upgrade(url)
        sync_s = sync_weekdays(url, args.sync_days, args.year_end)
        daily_s, weekly_s = ranged_backfill(url, args.year_end)
        print(f"synced {args.sync_days} weekdays in {sync_s:.1f} s")
        print(f"backfill of 365 daily partitions x {len(DAILY_ASSETS)} assets: {daily_s:.1f} s")
        print(f"backfill of the overlapping weeks x {len(WEEKLY_ASSETS)} assets: {weekly_s:.1f} s")
        embedded.stop(home)


if __name__ == "__main__":
    main()
