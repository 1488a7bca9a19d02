"""planner_weekly_aggregates and regional_weekly_aggregates for one week (rules/weekly.py).

Computed only from the daily tables already stored (planner_daily_aggregates,
regional_daily_aggregates, circuit_snapshots, circuits): never from the API. So a week is as
final as its days: rebuild it after its days are rebuilt (late-synced work lands in the
planner days through the trailing daily rebuild).

Each build rewrites exactly one week (Sunday ``week_starting`` .. Saturday ``week_ending``;
ValueError for a non-Sunday) in the caller's transaction: an upsert on the natural key
(planner_name, region_id, week_ending) / (region_id, week_ending) that skips identical rows,
then a delete of that week's rows that are no longer produced. Rebuilding gives the same rows
with the same ids; rows of other weeks are never touched.

Planner miles_delta, per circuit the planner worked that week (its circuit_breakdown keys:
"2026-0001" = the work order's "@" job, "2026-0001/C_a" = that split, as
rules.rollups.breakdown_key builds them; when several circuits share a key the non-deleted
ones are used, the deleted ones only when no other has it): miles_planned of the circuit's
latest DAILY circuit_snapshot on or before week_ending minus that of its latest daily snapshot
before week_starting, 0 when it has none before the week (a circuit new that week counts all
its planned miles). Snapshots of other types (status_change, manual) are ignored. The planner's
miles_delta is the sum over its circuits, so planners sharing a circuit each get its whole
delta; it can be negative (miles planned can go down on rework). A circuit without any
snapshot by week end contributes 0.

Regional: only active regions (regions.is_active) with at least one regional daily row in the
week get a row; the week-end state is that of the last day of the week with a row (usually the
Saturday; the pipeline only builds weekdays, so in practice the Friday). miles_delta is against
the region's latest regional daily row before week_starting (0 when there is none: the first
week counts everything planned so far). units_added counts every day's planner units in the
region, also a day without a regional row, which then has no daily_breakdown entry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import sqlalchemy as sa

from ws_tracker.rules.rollups import breakdown_key
from ws_tracker.rules.weekly import (
    DEFAULT_TARGET_MILES,
    REGIONAL_STATE_COLUMNS,
    PlannerDayRow,
    planner_week,
    regional_week,
    week_bounds,
)
from ws_tracker.warehouse.upsert import upsert_skip_unchanged

__all__ = ["WeeklyResult", "build_planner_week", "build_regional_week", "circuit_miles_deltas",
           "planner_day_rows"]

_PLANNER_JSON = ("daily_breakdown",)
_PLANNER_VALUES = ("week_starting", "user_id", "days_worked", "circuits_worked",
                   "total_units_assessed", "total_linear_ft", "total_acres", "total_trees",
                   "stations_worked", "span_miles", "miles_delta", "met_weekly_target") + _PLANNER_JSON
_REGIONAL_JSON = ("daily_breakdown", "status_breakdown")
_REGIONAL_VALUES = ("week_starting",) + REGIONAL_STATE_COLUMNS + (
    "active_planners", "units_added", "miles_delta") + _REGIONAL_JSON


@dataclass
class WeeklyResult:
    week_starting: date
    week_ending: date
    table: str
    rows: int = 0
    written: int = 0
    unchanged: int = 0
    removed: int = 0
    units: int = 0  # planner: units assessed in the week; regional: units_added
    met_target: int = 0  # planner rows with met_weekly_target

    def counts(self) -> dict[str, int]:
        prefix = "planner_weekly" if self.table == "planner_weekly_aggregates" else "regional_weekly"
        out = {f"{prefix}_rows": self.rows, f"{prefix}_written": self.written,
               f"{prefix}_unchanged": self.unchanged, f"{prefix}_removed": self.removed,
               f"{prefix}_units": self.units}
        if prefix == "planner_weekly":
            out["planner_weekly_met_target"] = self.met_target
        return out


def _upsert(conn: sa.Connection, table: str, key: tuple[str, ...], values: tuple[str, ...],
            json_cols: tuple[str, ...], params: list[dict], result: WeeklyResult) -> None:
    result.written, result.unchanged = upsert_skip_unchanged(conn, table, key, values, params,
                                                             json_cols)
    result.rows = len(params)


def planner_day_rows(conn: sa.Connection, first: date, last: date) -> list[PlannerDayRow]:
    """planner_daily_aggregates rows of ``first`` .. ``last`` (inclusive)."""
    rows = conn.execute(sa.text(
        "SELECT planner_name, region_id, aggregate_date, user_id, circuits_worked,"
        " total_units_assessed, total_linear_ft, total_acres, total_trees, stations_worked,"
        " span_miles, circuit_breakdown FROM planner_daily_aggregates"
        " WHERE aggregate_date BETWEEN :a AND :b ORDER BY planner_name, region_id, aggregate_date"),
        {"a": first, "b": last}).all()
    return [PlannerDayRow(**r._mapping) for r in rows]


def circuit_miles_deltas(conn: sa.Connection, keys: set[str], week_starting: date
                         ) -> dict[str, Decimal]:
    """circuit_breakdown key -> miles planned at week end minus at week start (module doc)."""
    start, end = week_bounds(week_starting)
    if not keys:
        return {}
    work_orders = sorted({k.split("/", 1)[0] for k in keys})
    circuits = conn.execute(sa.text(
        "SELECT id, work_order, extension, deleted_at IS NOT NULL AS deleted FROM circuits"
        " WHERE work_order = ANY(:wos) ORDER BY id"), {"wos": work_orders}).all()
    by_key: dict[str, list[tuple[int, bool]]] = {}
    for c in circuits:
        k = breakdown_key(c.work_order, c.extension)
        if k in keys:
            by_key.setdefault(k, []).append((c.id, c.deleted))
    ids: dict[str, list[int]] = {}
    for k, found in by_key.items():
        live = [cid for cid, deleted in found if not deleted]
        ids[k] = live or [cid for cid, _ in found]
    all_ids = sorted({cid for v in ids.values() for cid in v})
    miles = {r.id: Decimal(r.end_miles or 0) - Decimal(r.start_miles or 0) for r in conn.execute(sa.text(
        "SELECT c.id,"
        " (SELECT s.miles_planned FROM circuit_snapshots s WHERE s.circuit_id = c.id"
        "   AND s.snapshot_type = 'daily' AND s.snapshot_date <= :we AND s.miles_planned IS NOT NULL"
        "   ORDER BY s.snapshot_date DESC LIMIT 1) AS end_miles,"
        " (SELECT s.miles_planned FROM circuit_snapshots s WHERE s.circuit_id = c.id"
        "   AND s.snapshot_type = 'daily' AND s.snapshot_date < :ws AND s.miles_planned IS NOT NULL"
        "   ORDER BY s.snapshot_date DESC LIMIT 1) AS start_miles"
        " FROM unnest(CAST(:ids AS bigint[])) AS c(id)"), {"ids": all_ids, "ws": start, "we": end})}
    return {k: sum((miles[cid] for cid in v), Decimal(0)) for k, v in ids.items()}


def _value(v):
    return json.dumps(v, sort_keys=True) if isinstance(v, dict) else v


def build_planner_week(conn: sa.Connection, week_starting: date, *,
                       target_miles: float = DEFAULT_TARGET_MILES) -> WeeklyResult:
    """Rebuild planner_weekly_aggregates of the week starting on Sunday ``week_starting``."""
    start, end = week_bounds(week_starting)
    result = WeeklyResult(week_starting=start, week_ending=end, table="planner_weekly_aggregates")
    rows = planner_day_rows(conn, start, end)
    keys = {k for r in rows for k in (r.circuit_breakdown or {})}
    weeks = planner_week(start, rows, circuit_miles_deltas(conn, keys, start), target_miles)
    params = [{"planner_name": w.planner_name, "region_id": w.region_id, "week_ending": end,
               **{c: _value(getattr(w, c, None)) for c in _PLANNER_VALUES if c != "week_starting"},
               "week_starting": start}
              for w in weeks.values()]
    result.units = sum(w.total_units_assessed for w in weeks.values())
    result.met_target = sum(w.met_weekly_target for w in weeks.values())
    _upsert(conn, "planner_weekly_aggregates", ("planner_name", "region_id", "week_ending"),
            _PLANNER_VALUES, _PLANNER_JSON, params, result)
    result.removed = conn.execute(sa.text(
        "DELETE FROM planner_weekly_aggregates WHERE week_ending = :we AND (planner_name, region_id)"
        " NOT IN (SELECT * FROM unnest(CAST(:names AS varchar[]), CAST(:regions AS bigint[])))"),
        {"we": end, "names": [p["planner_name"] for p in params],
         "regions": [p["region_id"] for p in params]}).rowcount
    return result


def build_regional_week(conn: sa.Connection, week_starting: date) -> WeeklyResult:
    """Rebuild regional_weekly_aggregates of the week starting on Sunday ``week_starting``."""
    start, end = week_bounds(week_starting)
    result = WeeklyResult(week_starting=start, week_ending=end, table="regional_weekly_aggregates")
    regions = conn.execute(sa.text("SELECT id FROM regions WHERE is_active ORDER BY id")).scalars().all()
    daily = [r._mapping for r in conn.execute(sa.text(
        f"SELECT region_id, aggregate_date, {', '.join(REGIONAL_STATE_COLUMNS)}, status_breakdown"
        " FROM regional_daily_aggregates WHERE aggregate_date BETWEEN :a AND :b"
        " ORDER BY region_id, aggregate_date"), {"a": start, "b": end})]
    baseline = dict(conn.execute(sa.text(
        "SELECT DISTINCT ON (region_id) region_id, miles_planned FROM regional_daily_aggregates"
        " WHERE aggregate_date < :ws ORDER BY region_id, aggregate_date DESC"), {"ws": start}).all())
    weeks = regional_week(start, regions, daily, planner_day_rows(conn, start, end), baseline)
    params = [{"region_id": w.region_id, "week_ending": end, "week_starting": start, **w.state,
               "active_planners": w.active_planners, "units_added": w.units_added,
               "miles_delta": w.miles_delta, "daily_breakdown": _value(w.daily_breakdown),
               "status_breakdown": _value(w.status_breakdown)}
              for w in weeks.values()]
    result.units = sum(w.units_added for w in weeks.values())
    _upsert(conn, "regional_weekly_aggregates", ("region_id", "week_ending"), _REGIONAL_VALUES,
            _REGIONAL_JSON, params, result)
    result.removed = conn.execute(sa.text(
        "DELETE FROM regional_weekly_aggregates WHERE week_ending = :we AND NOT (region_id = ANY(:ids))"),
        {"we": end, "ids": [p["region_id"] for p in params]}).rowcount
    return result
