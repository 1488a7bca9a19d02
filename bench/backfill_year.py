"""Bench: rebuild a year of derived daily partitions (and its weeks) in one ranged run.

    .venv/bin/python bench/backfill_year.py [--sync-days 20] [--year-end 2026-03-31]

Starts a throwaway embedded PostgreSQL, syncs the default simulated world (about 150
circuits) on ``--sync-days`` consecutive weekdays ending at ``--year-end``, then times one
single-run backfill of the 365 days ending there with every derived daily asset, and of the
overlapping weeks. Days before the first sync have no history and build empty, so the figure
is an upper bound for the per-day cost on days with data only over the synced window; the full
bench (issue 7) syncs a whole year.
"""

from __future__ import annotations

import argparse
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
        h = start_harness(url)
        days, day = [], args.year_end
        while len(days) < args.sync_days:
            if day.weekday() < 5:
                days.append(day)
            day -= timedelta(days=1)
        t0 = time.perf_counter()
        for d in reversed(days):
            assert h.run(d).success
        sync_s = time.perf_counter() - t0
        h.server.stop()

        first = args.year_end - timedelta(days=364)
        resources = {"warehouse": WarehouseResource(database_url=url)}
        t0 = time.perf_counter()
        daily = dg.materialize(DAILY_ASSETS, resources=resources, tags={
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": args.year_end.isoformat()})
        daily_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        weekly = dg.materialize(WEEKLY_ASSETS, resources=resources, tags={
            "dagster/asset_partition_range_start": week_starting_of(first).isoformat(),
            "dagster/asset_partition_range_end": week_starting_of(args.year_end).isoformat()})
        weekly_s = time.perf_counter() - t0
        assert daily.success and weekly.success
        print(f"synced {len(days)} weekdays in {sync_s:.1f} s")
        print(f"backfill of 365 daily partitions x {len(DAILY_ASSETS)} assets: {daily_s:.1f} s")
        print(f"backfill of the overlapping weeks x {len(WEEKLY_ASSETS)} assets: {weekly_s:.1f} s")
        embedded.stop(home)


if __name__ == "__main__":
    main()
