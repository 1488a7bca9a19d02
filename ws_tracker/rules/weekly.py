"""Weekly rollups from the daily ones (business-rules.md, "Weeks").

Pure: no I/O. The warehouse (ws_tracker/warehouse/weekly.py) loads the daily rows and writes
the results.

- A week runs Sunday to Saturday; ``week_ending`` is the Saturday (= week_starting + 6).
- Planner week, per (planner_name, region_id), from planner_daily_aggregates rows of the week:
  days_worked = distinct days with a row (the daily build writes a row only for a day with at
  least one credited unit, so a row is a day with work); the work columns are the sums of the
  days; circuits_worked = the distinct circuit_breakdown keys over the week (a circuit worked
  on three days counts once); user_id = the latest non-null of the days; miles_delta = the sum
  over those circuits of (miles planned at week end - at week start), as given by the caller
  per breakdown key; met_weekly_target = miles_delta >= target (default 6.5).
  daily_breakdown = {ISO date: {units, linear_ft, acres, trees, stations, circuits}} per day
  worked, copied from that day's row.
- Regional week, per region with at least one regional_daily_aggregates row in the week: the
  state (counts by status, excluded, miles, completion, unit totals, status_breakdown) is the
  one of the LAST day of the week with a row (the Saturday when it was built; else the latest
  earlier day: the pipeline builds weekdays only). active_planners = distinct planners with
  work in the region during the week (not the last day's, which is usually 0). units_added =
  the sum of the week's planner daily units in the region (every day, with or without a
  regional row). miles_delta = week-end miles_planned - the baseline (the caller gives the
  region's latest regional daily miles_planned before week_starting; 0 when there is none).
  daily_breakdown = {ISO date: {circuits_active, miles_planned, units_added}} for each day of
  the week with a regional row (circuits_active = that day's active_circuits, i.e. ACTIV).

Numbers stay Decimal (the daily columns are NUMERIC) and are quantized half-up to the target
columns' scales, as the daily builders do; JSON values are plain ints and floats.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from ws_tracker.rules.decoding import to_decimal

__all__ = ["DEFAULT_TARGET_MILES", "REGIONAL_STATE_COLUMNS", "PlannerDayRow", "PlannerWeek",
           "RegionWeek", "planner_week", "regional_week", "week_bounds", "week_starting_of"]

DEFAULT_TARGET_MILES = 6.5
_SUNDAY = 6  # date.weekday()

# Regional columns copied from the week-end daily row (active_planners is the week's own).
REGIONAL_STATE_COLUMNS = ("total_circuits", "active_circuits", "qc_circuits", "rework_circuits",
                          "closed_circuits", "excluded_circuits", "total_miles", "miles_planned",
                          "miles_remaining", "avg_percent_complete", "total_units",
                          "total_linear_ft", "total_acres", "total_trees", "units_approved",
                          "units_refused", "units_pending")
# NUMERIC scales of the weekly columns (same as the daily ones).
SCALE = {"total_linear_ft": 2, "total_acres": 4, "span_miles": 4, "miles_delta": 2,
         "total_miles": 2, "miles_planned": 2, "miles_remaining": 2, "avg_percent_complete": 2}


def week_bounds(week_starting: date) -> tuple[date, date]:
    """(week_starting, week_ending): raises ValueError unless ``week_starting`` is a Sunday."""
    if isinstance(week_starting, datetime) or not isinstance(week_starting, date):
        raise ValueError(f"week_starting must be a date, got {week_starting!r}")
    if week_starting.weekday() != _SUNDAY:
        raise ValueError(f"week_starting must be a Sunday, got {week_starting.isoformat()}"
                         f" ({week_starting.strftime('%A')})")
    return week_starting, week_starting + timedelta(days=6)


def week_starting_of(day: date) -> date:
    """The Sunday on or before ``day``: the start of the week that contains it."""
    return day - timedelta(days=(day.weekday() + 1) % 7)


dec = to_decimal  # Decimal of a NUMERIC/float/int value, quantized half-up when ``places``


def _num(value: Decimal) -> float:
    return float(value) + 0.0  # -0.0 -> 0.0


# ------------------------------------------------------------------------------------ planners

@dataclass(frozen=True)
class PlannerDayRow:
    """One planner_daily_aggregates row (the columns the weekly rollups read)."""

    planner_name: str
    region_id: int
    aggregate_date: date
    user_id: int | None = None
    circuits_worked: int = 0
    total_units_assessed: int = 0
    total_linear_ft: Decimal | float = 0
    total_acres: Decimal | float = 0
    total_trees: int = 0
    stations_worked: int = 0
    span_miles: Decimal | float = 0
    circuit_breakdown: Mapping[str, Any] | None = None


@dataclass
class PlannerWeek:
    planner_name: str
    region_id: int
    user_id: int | None = None
    days_worked: int = 0
    circuits_worked: int = 0
    total_units_assessed: int = 0
    total_linear_ft: Decimal = Decimal(0)
    total_acres: Decimal = Decimal(0)
    total_trees: int = 0
    stations_worked: int = 0
    span_miles: Decimal = Decimal(0)
    miles_delta: Decimal = Decimal(0)
    met_weekly_target: bool = False
    daily_breakdown: dict[str, dict[str, Any]] = field(default_factory=dict)
    circuit_keys: frozenset[str] = frozenset()  # not stored: the week's circuit_breakdown keys


def planner_week(
    week_starting: date,
    rows: Iterable[PlannerDayRow],
    miles_delta_by_key: Mapping[str, Decimal | float] | None = None,
    target_miles: float = DEFAULT_TARGET_MILES,
) -> dict[tuple[str, int], PlannerWeek]:
    """Planner weeks from the week's planner daily rows (rows of other days are ignored).

    ``miles_delta_by_key``: circuit_breakdown key -> that circuit's miles planned at week end
    minus at week start (a key not in it counts 0).
    """
    start, end = week_bounds(week_starting)
    deltas = miles_delta_by_key or {}
    target = dec(target_miles)
    groups: dict[tuple[str, int], list[PlannerDayRow]] = {}
    for r in rows:
        if start <= r.aggregate_date <= end:
            groups.setdefault((r.planner_name, r.region_id), []).append(r)

    out: dict[tuple[str, int], PlannerWeek] = {}
    for key, days in sorted(groups.items()):
        days.sort(key=lambda r: r.aggregate_date)
        if len({r.aggregate_date for r in days}) != len(days):
            raise ValueError(f"two daily rows for {key} on one day")
        user_id = next((r.user_id for r in reversed(days) if r.user_id is not None), None)
        keys = frozenset(k for r in days for k in (r.circuit_breakdown or {}))
        miles = dec(sum((dec(deltas.get(k)) for k in keys), Decimal(0)), SCALE["miles_delta"])
        out[key] = PlannerWeek(
            planner_name=key[0], region_id=key[1], user_id=user_id, days_worked=len(days),
            circuits_worked=len(keys),
            total_units_assessed=sum(int(r.total_units_assessed or 0) for r in days),
            total_linear_ft=dec(sum((dec(r.total_linear_ft) for r in days), Decimal(0)), 2),
            total_acres=dec(sum((dec(r.total_acres) for r in days), Decimal(0)), 4),
            total_trees=sum(int(r.total_trees or 0) for r in days),
            stations_worked=sum(int(r.stations_worked or 0) for r in days),
            span_miles=dec(sum((dec(r.span_miles) for r in days), Decimal(0)), 4),
            miles_delta=miles, met_weekly_target=miles >= target,
            daily_breakdown={r.aggregate_date.isoformat(): {
                "units": int(r.total_units_assessed or 0),
                "linear_ft": _num(dec(r.total_linear_ft, 2)),
                "acres": _num(dec(r.total_acres, 4)),
                "trees": int(r.total_trees or 0),
                "stations": int(r.stations_worked or 0),
                "circuits": int(r.circuits_worked or 0),
            } for r in days},
            circuit_keys=keys,
        )
    return out


# ------------------------------------------------------------------------------------ regions

@dataclass
class RegionWeek:
    region_id: int
    end_date: date  # the day whose regional row gives the week-end state
    state: dict[str, Any] = field(default_factory=dict)  # REGIONAL_STATE_COLUMNS
    active_planners: int = 0
    units_added: int = 0
    miles_delta: Decimal = Decimal(0)
    status_breakdown: dict[str, int] = field(default_factory=dict)
    daily_breakdown: dict[str, dict[str, Any]] = field(default_factory=dict)


def regional_week(
    week_starting: date,
    region_ids: Iterable[int],
    daily_rows: Iterable[Mapping[str, Any]],
    planner_rows: Iterable[PlannerDayRow] = (),
    baseline_miles: Mapping[int, Decimal | float] | None = None,
) -> dict[int, RegionWeek]:
    """Regional weeks for ``region_ids`` (the active regions) that have a daily row in the week.

    ``daily_rows``: regional_daily_aggregates rows as mappings (region_id, aggregate_date,
    the REGIONAL_STATE_COLUMNS, status_breakdown); rows of other days or regions are ignored.
    ``planner_rows``: planner daily rows (for units_added and active_planners).
    ``baseline_miles``: region -> miles_planned at the end of the previous week (missing = 0).
    """
    start, end = week_bounds(week_starting)
    wanted = set(region_ids)
    days: dict[int, dict[date, Mapping[str, Any]]] = {}
    for r in daily_rows:
        if r["region_id"] in wanted and start <= r["aggregate_date"] <= end:
            per_region = days.setdefault(r["region_id"], {})
            if r["aggregate_date"] in per_region:
                raise ValueError(f"two regional rows for region {r['region_id']} on {r['aggregate_date']}")
            per_region[r["aggregate_date"]] = r
    units: dict[tuple[int, date], int] = {}
    planners: dict[int, set[str]] = {}
    for p in planner_rows:
        if start <= p.aggregate_date <= end:
            k = (p.region_id, p.aggregate_date)
            units[k] = units.get(k, 0) + int(p.total_units_assessed or 0)
            planners.setdefault(p.region_id, set()).add(p.planner_name)
    baseline = baseline_miles or {}

    out: dict[int, RegionWeek] = {}
    for rid in sorted(days):
        rows = days[rid]
        last = rows[max(rows)]
        state = {c: dec(last[c], SCALE[c]) if c in SCALE else int(last[c] or 0)
                 for c in REGIONAL_STATE_COLUMNS}
        out[rid] = RegionWeek(
            region_id=rid, end_date=max(rows), state=state,
            active_planners=len(planners.get(rid, ())),
            units_added=sum(n for (r, _), n in units.items() if r == rid),
            miles_delta=dec(state["miles_planned"] - dec(baseline.get(rid)), SCALE["miles_delta"]),
            status_breakdown={k: int(v) for k, v in sorted((last["status_breakdown"] or {}).items())},
            daily_breakdown={d.isoformat(): {
                "circuits_active": int(rows[d]["active_circuits"] or 0),
                "miles_planned": _num(dec(rows[d]["miles_planned"], 2)),
                "units_added": units.get((rid, d), 0),
            } for d in sorted(rows)},
        )
    return out
