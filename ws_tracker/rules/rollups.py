"""Daily rollups: planner work per day and regional daily totals (business-rules.md,
"Planner work per day" and "Regional daily").

Pure: no I/O. The warehouse (ws_tracker/warehouse/rollups.py) loads the inputs and writes
the results. Units are :class:`PlannedUnit` objects or their JSON dicts (unit_to_json), read
without revalidation, as in rules/aggregates.py.

Planner work, "first unit wins":

- The input is each circuit's *latest* capture, whatever day it was taken: devices sync late,
  so work done on day D can arrive days later and a rebuild of D must pick it up.
- A unit is credited to its own forester on its assessed date. Only units assessed on the
  day count for that day; a unit without an assessed date is never credited.
- A station (per circuit: ``(circuit_id, station)``) is credited once, to the forester of its
  earliest-assessed unit (ties: lowest unit_id), on that unit's date; its span miles are that
  unit's ``span_length_m`` / 1609.344 where present. Units without a station credit none.
- The planner is the forester name, trimmed (the forester username when the unit has no
  name, ``"(unknown)"`` without either). Spellings that differ only in case are one planner,
  shown under the smallest spelling (deterministic whatever the input order).
- ``user_id`` is looked up by that name, then by the units' forester usernames, trimmed and
  case-insensitively; a planner without a user still counts, with ``user_id`` None.
- ``circuit_breakdown`` is keyed by :func:`breakdown_key`: the work order, plus
  ``"/<extension>"`` for a split, so a work order's split jobs stay apart.
- Measures follow rules/aggregates.py: VLG codes give linear_ft, VAR acres, VCT trees; an
  unknown code counts as a unit and measures nothing. Rounded after summing, half away from
  zero: feet 2 places, acres and span miles 4.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple

# round_half_up is rules/aggregates.py's half-away-from-zero rounding: the rollups must round
# exactly as the circuit aggregates (and PostgreSQL's round(numeric)) do.
from ws_tracker.rules.aggregates import UNKNOWN_PLANNER, round_half_up, unit_category
from ws_tracker.rules.circuits import MAIN_EXTENSION
from ws_tracker.rules.units import PlannedUnit

__all__ = ["METRES_PER_MILE", "STATUS_COLUMNS", "CircuitDayState", "CircuitUnits", "DayWork",
           "PlannerDay", "RegionDay", "breakdown_key", "capture_days", "planner_day_work",
           "planner_day_work_indexed", "regional_day"]

METRES_PER_MILE = 1609.344

# api_status -> the regional counter it feeds; other statuses only appear in status_breakdown.
STATUS_COLUMNS = {"ACTIV": "active_circuits", "QC": "qc_circuits", "REWRK": "rework_circuits",
                  "CLOSE": "closed_circuits"}


class CircuitUnits(NamedTuple):
    """One circuit's latest capture: a plain 4-tuple works too."""

    circuit_id: int
    work_order: str  # the circuit_breakdown key: see breakdown_key()
    region_id: int  # the circuit's region at the end of the day
    units: Sequence[PlannedUnit | Mapping[str, Any]]


@dataclass
class PlannerDay:
    planner_name: str
    region_id: int
    user_id: int | None = None
    total_units_assessed: int = 0
    total_linear_ft: float = 0.0
    total_acres: float = 0.0
    total_trees: int = 0
    stations_worked: int = 0
    span_miles: float = 0.0
    circuits_worked: int = 0
    circuit_breakdown: dict[str, dict[str, Any]] = field(default_factory=dict)


def breakdown_key(work_order: str, extension: str | None) -> str:
    """``"2026-0001"`` for the main job, ``"2026-0001/C_a"`` for a split."""
    ext = (extension or "").strip()
    return work_order if not ext or ext == MAIN_EXTENSION else f"{work_order}/{ext}"


def _field(unit: PlannedUnit | Mapping[str, Any], name: str) -> Any:
    return unit.get(name) if isinstance(unit, Mapping) else getattr(unit, name)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _assessed(unit: PlannedUnit | Mapping[str, Any]) -> date | None:
    value = _field(unit, "assessed_date")
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _measures(unit: PlannedUnit | Mapping[str, Any]) -> tuple[float, float, int]:
    _, category = unit_category(_text(_field(unit, "unit_code")))
    if category == "VLG":
        return float(_field(unit, "linear_ft") or 0.0), 0.0, 0
    if category == "VAR":
        return 0.0, float(_field(unit, "acres") or 0.0), 0
    if category == "VCT":
        return 0.0, 0.0, int(_field(unit, "trees") or 0)
    return 0.0, 0.0, 0


def _new_breakdown() -> dict[str, Any]:
    return {"units": 0, "linear_ft": 0.0, "acres": 0.0, "trees": 0, "stations": 0}


@dataclass
class _Acc:
    spellings: set[str] = field(default_factory=set)
    usernames: set[str] = field(default_factory=set)
    units: int = 0
    linear_ft: float = 0.0
    acres: float = 0.0
    trees: int = 0
    stations: int = 0
    span_m: float = 0.0
    circuits: set[int] = field(default_factory=set)
    breakdown: dict[str, dict[str, Any]] = field(default_factory=dict)


class DayWork(NamedTuple):
    """One unit's contribution to its assessed day (what planner_day_work sums)."""

    name: str | None
    username: str | None
    linear_ft: float
    acres: float
    trees: int
    first_of_station: bool  # the station's earliest unit: credits the station and its span
    span_m: float | None


def capture_days(units: Iterable[PlannedUnit | Mapping[str, Any]]) -> dict[date, list[DayWork]]:
    """A capture's units by assessed day, each reduced to what it contributes that day.

    A capture gives the same work for a day whichever day is being built, so a range of days
    (a backfill) reads and indexes each capture once instead of once per day."""
    units = list(units)
    # First unit of each station over the whole capture, not just one day's units.
    first: dict[str, tuple[date, int]] = {}
    for unit in units:
        station, assessed = _text(_field(unit, "station")), _assessed(unit)
        if station is None or assessed is None:
            continue
        cand = (assessed, int(_field(unit, "unit_id")))
        if station not in first or cand < first[station]:
            first[station] = cand
    first_ids = {uid for _, uid in first.values()}
    days: dict[date, list[DayWork]] = {}
    for unit in units:
        assessed = _assessed(unit)
        if assessed is None:
            continue
        ft, acres, trees = _measures(unit)
        span = _field(unit, "span_length_m")
        days.setdefault(assessed, []).append(DayWork(
            _text(_field(unit, "forester")), _text(_field(unit, "forester_username")), ft, acres,
            trees, int(_field(unit, "unit_id")) in first_ids,
            None if span is None else float(span)))
    return days


def planner_day_work(
    captures: Iterable[CircuitUnits | tuple[int, str, int, Sequence[Any]]],
    day: date,
    user_keys: Mapping[str, int] | None = None,
) -> dict[tuple[str, int], PlannerDay]:
    """Work done on ``day`` per (planner_name, region_id), "first unit wins" (module doc).

    ``captures``: (circuit_id, breakdown key, region_id, units) per circuit, from each
    circuit's latest capture. ``user_keys``: user name / ws_username -> user id (compared
    trimmed, case-insensitively).
    """
    return planner_day_work_indexed(
        ((cid, wo_key, region_id, capture_days(units)) for cid, wo_key, region_id, units in captures),
        day, user_keys)


def planner_day_work_indexed(
    captures: Iterable[tuple[int, str, int, Mapping[date, Sequence[DayWork]]]],
    day: date,
    user_keys: Mapping[str, int] | None = None,
) -> dict[tuple[str, int], PlannerDay]:
    """:func:`planner_day_work` from captures already indexed by :func:`capture_days`."""
    lookup = {k.strip().casefold(): v for k, v in (user_keys or {}).items()}
    acc: dict[tuple[str, int], _Acc] = {}

    for circuit_id, wo_key, region_id, days in captures:
        for work in days.get(day, ()):
            display = work.name or work.username or UNKNOWN_PLANNER
            a = acc.setdefault((display.casefold(), region_id), _Acc())
            a.spellings.add(display)
            if work.username is not None:
                a.usernames.add(work.username)
            a.units += 1
            a.linear_ft += work.linear_ft
            a.acres += work.acres
            a.trees += work.trees
            a.circuits.add(circuit_id)
            b = a.breakdown.setdefault(wo_key, _new_breakdown())
            b["units"] += 1
            b["linear_ft"] += work.linear_ft
            b["acres"] += work.acres
            b["trees"] += work.trees
            if work.first_of_station:
                a.stations += 1
                b["stations"] += 1
                if work.span_m is not None:
                    a.span_m += work.span_m

    out: dict[tuple[str, int], PlannerDay] = {}
    for (folded, region_id), a in sorted(acc.items()):
        name = min(a.spellings)
        user_id = lookup.get(folded)
        for username in sorted(a.usernames):
            if user_id is not None:
                break
            user_id = lookup.get(username.casefold())
        breakdown = {
            k: {**v, "linear_ft": round_half_up(v["linear_ft"], 2), "acres": round_half_up(v["acres"], 4)}
            for k, v in sorted(a.breakdown.items())
        }
        out[(name, region_id)] = PlannerDay(
            planner_name=name, region_id=region_id, user_id=user_id,
            total_units_assessed=a.units, total_linear_ft=round_half_up(a.linear_ft, 2),
            total_acres=round_half_up(a.acres, 4), total_trees=a.trees, stations_worked=a.stations,
            span_miles=round_half_up(a.span_m / METRES_PER_MILE, 4), circuits_worked=len(a.circuits),
            circuit_breakdown=breakdown,
        )
    return out


# ---------------------------------------------------------------------------- regional daily

@dataclass(frozen=True)
class CircuitDayState:
    """A non-deleted circuit's state at the end of the day and that day's aggregate.

    ``aggregate`` is the day's circuit_aggregates row as a mapping (total_units,
    total_linear_ft, total_acres, total_trees, units_approved, units_refused, units_pending,
    units_by_permission, unit_counts_by_type), or None when the circuit has none that day.
    """

    circuit_id: int
    region_id: int
    api_status: str
    total_miles: float = 0.0
    miles_planned: float = 0.0
    percent_complete: float = 0.0
    is_excluded: bool = False
    aggregate: Mapping[str, Any] | None = None


@dataclass
class RegionDay:
    region_id: int
    total_circuits: int = 0
    active_circuits: int = 0
    qc_circuits: int = 0
    rework_circuits: int = 0
    closed_circuits: int = 0
    excluded_circuits: int = 0
    total_miles: float = 0.0
    miles_planned: float = 0.0
    miles_remaining: float = 0.0
    avg_percent_complete: float = 0.0
    total_units: int = 0
    total_linear_ft: float = 0.0
    total_acres: float = 0.0
    total_trees: int = 0
    units_approved: int = 0
    units_refused: int = 0
    units_pending: int = 0
    active_planners: int = 0
    status_breakdown: dict[str, int] = field(default_factory=dict)
    permission_breakdown: dict[str, int] = field(default_factory=dict)
    unit_counts_by_type: dict[str, int] = field(default_factory=dict)


_SUMMED = ("total_units", "total_trees", "units_approved", "units_refused", "units_pending")


def _add_counts(target: dict[str, int], counts: Mapping[str, Any] | None) -> None:
    for k, v in (counts or {}).items():
        target[k] = target.get(k, 0) + int(v)


def regional_day(
    region_ids: Iterable[int],
    circuits: Iterable[CircuitDayState],
    planner_days: Iterable[PlannerDay] = (),
) -> dict[int, RegionDay]:
    """One row per active region (``region_ids``), zeros where it has no circuits.

    Counted circuits = the non-excluded ones; excluded ones only add to excluded_circuits.
    Circuits of other regions are ignored. Miles are summed from the circuits' state;
    miles_remaining sums max(total - planned, 0) per circuit, as circuit_aggregates does.
    avg_percent_complete is the plain mean over counted circuits (0 when none). Unit totals,
    permission_breakdown (raw status -> n, from units_by_permission) and unit_counts_by_type
    are summed from that day's circuit aggregates; active_planners is the number of distinct
    planners with work in the region that day (``planner_days``).
    """
    out = {rid: RegionDay(region_id=rid) for rid in sorted(set(region_ids))}
    pct: dict[int, float] = {rid: 0.0 for rid in out}
    ft: dict[int, float] = {rid: 0.0 for rid in out}
    acres: dict[int, float] = {rid: 0.0 for rid in out}
    miles = {rid: [0.0, 0.0, 0.0] for rid in out}
    for c in circuits:
        r = out.get(c.region_id)
        if r is None:
            continue
        if c.is_excluded:
            r.excluded_circuits += 1
            continue
        r.total_circuits += 1
        column = STATUS_COLUMNS.get(c.api_status)
        if column is not None:
            setattr(r, column, getattr(r, column) + 1)
        r.status_breakdown[c.api_status] = r.status_breakdown.get(c.api_status, 0) + 1
        total, planned = float(c.total_miles or 0), float(c.miles_planned or 0)
        m = miles[c.region_id]
        m[0] += total
        m[1] += planned
        m[2] += max(round_half_up(total - planned, 2), 0.0)
        pct[c.region_id] += float(c.percent_complete or 0)
        a = c.aggregate
        if a is not None:
            for col in _SUMMED:
                setattr(r, col, getattr(r, col) + int(a.get(col) or 0))
            ft[c.region_id] += float(a.get("total_linear_ft") or 0)
            acres[c.region_id] += float(a.get("total_acres") or 0)
            _add_counts(r.permission_breakdown, a.get("units_by_permission"))
            _add_counts(r.unit_counts_by_type, a.get("unit_counts_by_type"))

    planners: dict[int, set[str]] = {}
    for p in planner_days:
        planners.setdefault(p.region_id, set()).add(p.planner_name)

    for rid, r in out.items():
        r.total_miles, r.miles_planned, r.miles_remaining = (round_half_up(x, 2) for x in miles[rid])
        r.avg_percent_complete = round_half_up(pct[rid] / r.total_circuits, 2) if r.total_circuits else 0.0
        r.total_linear_ft = round_half_up(ft[rid], 2)
        r.total_acres = round_half_up(acres[rid], 4)
        r.active_planners = len(planners.get(rid, ()))
        r.status_breakdown = dict(sorted(r.status_breakdown.items()))
        r.permission_breakdown = dict(sorted(r.permission_breakdown.items()))
        r.unit_counts_by_type = dict(sorted(r.unit_counts_by_type.items()))
    return out
