"""Benchmark "backfill": bench/backfill_year.py's ranged year backfill, in the suite.

The sync and the timed backfill are backfill_year.py's own functions. The synced database is
built once and used as a template: each repetition backfills a fresh copy of it, so every
repetition writes the same rows (a re-run of a built range writes nothing and would be
faster than the real thing).
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date

from backfill_year import ranged_backfill, sync_weekdays
from suite import Context, Figure, Floor, benchmark

YEAR_END = date(2026, 3, 31)


@benchmark(
    "backfill", "Backfill: a year of derived partitions",
    measures=(
        "bench/backfill_year.py in the suite: sync the default world (~150 circuits) on the "
        "weekdays ending 2026-03-31, then ONE ranged single-run backfill of the 365 daily "
        "partitions x 4 derived daily assets, and of the overlapping weeks x 2 weekly assets. "
        "The day-by-day comparison (one run per day) is not measured yet."),
    figures=[
        Figure("sync_days", "weekdays synced before the backfill (setup, not timed)", "days"),
        Figure("days", "daily partitions in the range", "days"),
        Figure("daily_s", "ranged backfill, daily assets", "s"),
        Figure("weekly_s", "ranged backfill, weekly assets", "s"),
        Figure("total_s", "ranged backfill, daily + weekly", "s"),
    ],
    floors=[
        Floor("total_s", "<=", 300.0, "a year of derived partitions rebuilds in <= 5 minutes"),
        Floor("day_by_day_ratio", ">=", 10.0, ">= 10x faster than one run per day",
              measured=False),
    ],
)
@contextmanager
def backfill(ctx: Context):
    sync_days, days = (3, 30) if ctx.quick else (20, 365)
    template = ctx.fresh_database()
    sync_s = sync_weekdays(template, sync_days, YEAR_END)
    ctx.note(f"Setup (untimed): {sync_days} weekdays synced in {sync_s:.1f} s. Only those days "
             "hold history; the days before them build empty, so the year's figure is a lower "
             "bound for a year that was synced every weekday (the full suite of issue 7 will "
             "sync a whole year).")
    if days != 365:
        ctx.note(f"Quick mode: {days} days, not a year; the floor is for 365.")

    def measure() -> dict[str, float]:
        url = ctx.clone_database(template)
        try:
            daily_s, weekly_s = ranged_backfill(url, YEAR_END, days=days)
        finally:
            ctx.drop_database(url)
        return {"sync_days": sync_days, "days": days, "daily_s": daily_s,
                "weekly_s": weekly_s, "total_s": daily_s + weekly_s}

    yield measure
    ctx.drop_database(template)
