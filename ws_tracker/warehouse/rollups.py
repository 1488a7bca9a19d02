"""planner_daily_aggregates and regional_daily_aggregates for one day (rules/rollups.py).

Both builds read stored rows only (no API call) and rewrite exactly one day in the caller's
transaction: an upsert on the natural key that skips identical rows, then a delete of that
day's rows that are no longer produced. Rebuilding a day gives the same rows with the same ids.

Which circuits: non-deleted and non-excluded (``circuits.deleted_at`` / ``is_excluded``, today's
flags: neither has history). Excluded circuits are left out of every rollup and counted in
regional ``excluded_circuits``. A circuit's region and state for day D are those of its
circuit_history version valid at the end of D (the latest with valid_from < window_end); a
circuit with no history at all falls back to its circuits row.

Planner source: each circuit's LATEST capture that exists, full stop, not the latest as of
window_end: field devices sync late, so work assessed on D can arrive days later, and
rebuilding D must pick it up (business-rules.md, "Planner work per day"). So a planner day is
only final once late syncs have landed; rebuild recent days (e.g. a trailing week) each run.

Regional unit totals come from that day's circuit_aggregates: build those first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa

from ws_tracker.rules.rollups import (
    CircuitDayState,
    PlannerDay,
    breakdown_key,
    capture_days,
    planner_day_work_indexed,
    regional_day,
)
from ws_tracker.rules.decoding import to_decimal as q
from ws_tracker.warehouse.upsert import upsert_skip_unchanged

# The circuit's state at the end of the day: its history version valid then, else (no history
# at all) its circuits row. Circuits whose history starts after the day did not exist yet.
_CIRCUIT_DAY_SQL = """
SELECT c.id, c.is_excluded, coalesce(h.region_id, c.region_id) AS region_id,
       coalesce(h.api_status, c.api_status) AS api_status,
       coalesce(h.total_miles, c.total_miles) AS total_miles,
       coalesce(h.miles_planned, c.miles_planned) AS miles_planned,
       coalesce(h.percent_complete, c.percent_complete) AS percent_complete,
       a.id AS aggregate_id, a.total_units, a.total_linear_ft, a.total_acres, a.total_trees,
       a.units_approved, a.units_refused, a.units_pending, a.units_by_permission,
       a.unit_counts_by_type
FROM circuits c
LEFT JOIN LATERAL (SELECT * FROM circuit_history h WHERE h.circuit_id = c.id AND h.valid_from < :end
                   ORDER BY h.valid_from DESC LIMIT 1) h ON true
LEFT JOIN circuit_aggregates a ON a.circuit_id = c.id AND a.aggregate_date = :d AND NOT a.is_rollup
WHERE c.deleted_at IS NULL
  AND (h.id IS NOT NULL OR NOT EXISTS (SELECT 1 FROM circuit_history x WHERE x.circuit_id = c.id))
ORDER BY c.id
"""
_AGGREGATE_COLS = ("total_units", "total_linear_ft", "total_acres", "total_trees", "units_approved",
                   "units_refused", "units_pending", "units_by_permission", "unit_counts_by_type")

_PLANNER_JSON = ("circuit_breakdown",)
_PLANNER_VALUES = ("user_id", "circuits_worked", "total_units_assessed", "total_linear_ft",
                   "total_acres", "total_trees", "stations_worked", "span_miles") + _PLANNER_JSON
_REGIONAL_JSON = ("status_breakdown", "permission_breakdown", "unit_counts_by_type")
_REGIONAL_VALUES = ("total_circuits", "active_circuits", "qc_circuits", "rework_circuits",
                    "closed_circuits", "excluded_circuits", "total_miles", "miles_planned",
                    "miles_remaining", "avg_percent_complete", "total_units", "total_linear_ft",
                    "total_acres", "total_trees", "units_approved", "units_refused",
                    "units_pending", "active_planners") + _REGIONAL_JSON
# NUMERIC scales of the target columns: values are quantized so unchanged rows compare equal.
_SCALE = {"total_linear_ft": 2, "total_acres": 4, "span_miles": 4, "total_miles": 2,
          "miles_planned": 2, "miles_remaining": 2, "avg_percent_complete": 2}


@dataclass
class RollupResult:
    day: date
    table: str
    rows: int = 0
    written: int = 0
    unchanged: int = 0
    removed: int = 0
    total_units: int = 0

    def counts(self) -> dict[str, int]:
        prefix = "planner" if self.table == "planner_daily_aggregates" else "regional"
        return {f"{prefix}_rows": self.rows, f"{prefix}_written": self.written,
                f"{prefix}_unchanged": self.unchanged, f"{prefix}_removed": self.removed,
                f"{prefix}_units": self.total_units}


def user_keys(conn: sa.Connection) -> dict[str, int]:
    """Lower-cased user name and ws_username -> user id (a name match beats a username one;
    among equals the lowest id wins).

    Weakest of all: the forester name (VEGJOB_FORESTER) of the circuits a linked planner takes
    (SS_TAKENBY = the user's ws_username). Units without VEGUNIT_FRSTR_USER name their forester
    only by that display name, so this is what keys a linked planner's rows to the user when
    the user's own name is spelled differently (``ws-tracker users link-planner``)."""
    keys: dict[str, int] = {}
    for r in conn.execute(sa.text(
            "SELECT DISTINCT u.id, lower(btrim(c.api_data_json ->> 'VEGJOB_FORESTER')) AS name"
            " FROM users u JOIN circuits c ON lower(btrim(c.taken_by)) = lower(btrim(u.ws_username))"
            " WHERE coalesce(btrim(c.api_data_json ->> 'VEGJOB_FORESTER'), '') <> ''"
            " ORDER BY u.id DESC")):
        keys[r.name] = r.id
    rows = conn.execute(sa.text("SELECT id, name, ws_username FROM users ORDER BY id DESC")).all()
    for r in rows:
        if r.ws_username and r.ws_username.strip():
            keys[r.ws_username.strip().lower()] = r.id
    for r in rows:
        if r.name and r.name.strip():
            keys[r.name.strip().lower()] = r.id
    return keys


def planner_days(conn: sa.Connection, day: date, window_end: datetime,
                 cache: dict[int, dict] | None = None) -> dict[tuple[str, int], PlannerDay]:
    """Planner work of ``day`` from each non-excluded circuit's latest capture (module doc).

    ``cache``: capture id -> its units by day (rules.rollups.capture_days), kept across the
    days of one run: a backfill reads and indexes each capture once, not once per day."""
    cache = {} if cache is None else cache
    # Only circuits whose latest capture holds a unit assessed that day can have work then
    # (a station credited on D has its first unit on D): jsonb containment filters the rest.
    rows = conn.execute(sa.text(
        "SELECT c.id, c.work_order, c.extension, coalesce(h.region_id, c.region_id) AS region_id,"
        " s.id AS snapshot_id FROM circuits c"
        " JOIN LATERAL (SELECT id, raw_json FROM planned_units_snapshots s WHERE s.circuit_id = c.id"
        "   ORDER BY s.captured_at DESC LIMIT 1) s ON true"
        " LEFT JOIN LATERAL (SELECT region_id FROM circuit_history h WHERE h.circuit_id = c.id"
        "   AND h.valid_from < :end ORDER BY h.valid_from DESC LIMIT 1) h ON true"
        " WHERE c.deleted_at IS NULL AND NOT c.is_excluded"
        "   AND s.raw_json @> CAST(:probe AS jsonb) ORDER BY c.id"),
        {"end": window_end, "probe": json.dumps([{"assessed_date": day.isoformat()}])},
    ).all()
    missing = [r.snapshot_id for r in rows if r.snapshot_id not in cache]
    if missing:
        for snapshot_id, units in conn.execute(sa.text(
                "SELECT id, raw_json FROM planned_units_snapshots WHERE id = ANY(:ids)"),
                {"ids": missing}):
            cache[snapshot_id] = capture_days(units)
    captures = [(r.id, breakdown_key(r.work_order, r.extension), r.region_id, cache[r.snapshot_id])
                for r in rows]
    return planner_day_work_indexed(captures, day, user_keys(conn))


def _upsert(conn: sa.Connection, table: str, key: tuple[str, ...], values: tuple[str, ...],
            json_cols: tuple[str, ...], params: list[dict], result: RollupResult) -> None:
    result.written, result.unchanged = upsert_skip_unchanged(conn, table, key, values, params,
                                                             json_cols)
    result.rows = len(params)


def _params(obj, day: date, names: tuple[str, ...], json_cols: tuple[str, ...]) -> dict:
    out = {"aggregate_date": day}
    for n in names:
        v = getattr(obj, n)
        if n in json_cols:
            v = json.dumps(v, sort_keys=True)
        elif n in _SCALE:
            v = q(v, _SCALE[n])
        out[n] = v
    return out


def build_planner_day(conn: sa.Connection, day: date, window_end: datetime,
                      cache: dict[int, dict] | None = None) -> RollupResult:
    """Rebuild planner_daily_aggregates of ``day`` (window_end = end of the day, exclusive);
    ``cache`` as in :func:`planner_days`."""
    result = RollupResult(day=day, table="planner_daily_aggregates")
    work = planner_days(conn, day, window_end, cache)
    params = [_params(p, day, ("planner_name", "region_id") + _PLANNER_VALUES, _PLANNER_JSON)
              for p in work.values()]
    result.total_units = sum(p.total_units_assessed for p in work.values())
    _upsert(conn, "planner_daily_aggregates", ("planner_name", "region_id", "aggregate_date"),
            _PLANNER_VALUES, _PLANNER_JSON, params, result)
    result.removed = conn.execute(sa.text(
        "DELETE FROM planner_daily_aggregates WHERE aggregate_date = :d AND (planner_name, region_id)"
        " NOT IN (SELECT * FROM unnest(CAST(:names AS varchar[]), CAST(:regions AS bigint[])))"),
        {"d": day, "names": [p["planner_name"] for p in params],
         "regions": [p["region_id"] for p in params]}).rowcount
    return result


def circuit_day_states(conn: sa.Connection, day: date, window_end: datetime) -> list[CircuitDayState]:
    """Every non-deleted circuit existing at the end of ``day``, with that day's aggregate."""
    rows = conn.execute(sa.text(_CIRCUIT_DAY_SQL), {"d": day, "end": window_end}).all()
    return [
        CircuitDayState(
            circuit_id=r.id, region_id=r.region_id, api_status=r.api_status,
            total_miles=float(r.total_miles), miles_planned=float(r.miles_planned),
            percent_complete=float(r.percent_complete), is_excluded=r.is_excluded,
            aggregate=None if r.aggregate_id is None else {c: getattr(r, c) for c in _AGGREGATE_COLS},
        )
        for r in rows
    ]


def build_regional_day(conn: sa.Connection, day: date, window_end: datetime,
                       cache: dict[int, dict] | None = None) -> RollupResult:
    """Rebuild regional_daily_aggregates of ``day``: one row per active region; ``cache`` as
    in :func:`planner_days`."""
    result = RollupResult(day=day, table="regional_daily_aggregates")
    regions = conn.execute(sa.text("SELECT id FROM regions WHERE is_active ORDER BY id")).scalars().all()
    out = regional_day(regions, circuit_day_states(conn, day, window_end),
                       planner_days(conn, day, window_end, cache).values())
    params = [_params(r, day, ("region_id",) + _REGIONAL_VALUES, _REGIONAL_JSON) for r in out.values()]
    result.total_units = sum(r.total_units for r in out.values())
    _upsert(conn, "regional_daily_aggregates", ("region_id", "aggregate_date"), _REGIONAL_VALUES,
            _REGIONAL_JSON, params, result)
    result.removed = conn.execute(sa.text(
        "DELETE FROM regional_daily_aggregates WHERE aggregate_date = :d AND NOT (region_id = ANY(:ids))"),
        {"d": day, "ids": [p["region_id"] for p in params]}).rowcount
    return result
