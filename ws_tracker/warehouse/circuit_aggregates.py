"""circuit_aggregates for one day, recomputed from stored captures and history (no API call).

For day D: each non-deleted circuit that has a state valid at the end of D (circuit_history)
and a capture taken before the end of D gets one row, computed from its latest such capture.
The write is an upsert on (circuit_id, aggregate_date, is_rollup) that skips identical rows,
plus a delete of rows for circuits that no longer qualify: rebuilding a day gives the same
rows with the same ids, and a partial day is never visible (one transaction).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from ws_tracker.rules.aggregates import circuit_aggregate
from ws_tracker.rules.decoding import to_decimal as q
from ws_tracker.warehouse.upsert import upsert_skip_unchanged

# is_rollup stays false: one row per circuit per day is the day's record. The column is kept
# for the seed's unique key (circuit_id, aggregate_date, is_rollup); see README.
IS_ROLLUP = False

_JSON_COLS = ("unit_counts_by_type", "linear_ft_by_type", "acres_by_type", "planner_distribution",
              "units_by_permission")
_VALUE_COLS = ("planned_units_snapshot_id", "total_miles", "miles_planned", "miles_remaining",
               "total_units", "total_linear_ft", "total_acres", "total_trees", "units_approved",
               "units_refused", "units_pending") + _JSON_COLS


@dataclass
class AggregateResult:
    day: date
    circuits: int = 0
    written: int = 0
    unchanged: int = 0
    removed: int = 0
    total_units: int = 0

    def counts(self) -> dict[str, int]:
        return {"aggregates_created": self.written, "aggregates_unchanged": self.unchanged,
                "aggregates_removed": self.removed, "circuits_aggregated": self.circuits,
                "total_units": self.total_units}


def planner_keys(conn: sa.Connection) -> dict[str, int]:
    """Planner name / WorkStudio username -> user id, the same matching (planner links
    included) as the planner rollups use (``rollups.user_keys``), so a circuit's
    planner_distribution and the planner aggregates name the same people."""
    from ws_tracker.warehouse.rollups import user_keys

    return user_keys(conn)


def build_day(conn: sa.Connection, day: date, window_end: datetime,
              cache: dict[int, dict[str, Any]] | None = None) -> AggregateResult:
    """Rebuild circuit_aggregates for ``day`` (window_end = end of the day, exclusive)."""
    result = AggregateResult(day=day)
    cache = {} if cache is None else cache
    keys = planner_keys(conn)
    rows = conn.execute(
        sa.text(
            "SELECT c.id AS circuit_id, h.total_miles, h.miles_planned, s.id AS snapshot_id,"
            " s.raw_json FROM circuits c"
            " JOIN LATERAL (SELECT total_miles, miles_planned FROM circuit_history h"
            "   WHERE h.circuit_id = c.id AND h.valid_from < :end"
            "   ORDER BY h.valid_from DESC LIMIT 1) h ON true"
            " JOIN LATERAL (SELECT id, raw_json FROM planned_units_snapshots s"
            "   WHERE s.circuit_id = c.id AND s.captured_at < :end"
            "   ORDER BY s.captured_at DESC LIMIT 1) s ON true"
            " WHERE c.deleted_at IS NULL ORDER BY c.id"
        ),
        {"end": window_end},
    ).all()
    params = []
    for r in rows:
        agg = cache.get(r.snapshot_id)
        if agg is None:
            # The same capture gives the same aggregate on every day: compute it once per run.
            agg = cache[r.snapshot_id] = circuit_aggregate(r.raw_json, planner_keys=keys)
        total = q(float(r.total_miles), 2)
        planned = q(float(r.miles_planned), 2)
        params.append({
            "circuit_id": r.circuit_id, "aggregate_date": day, "is_rollup": IS_ROLLUP,
            "planned_units_snapshot_id": r.snapshot_id,
            "total_miles": total, "miles_planned": planned,
            "miles_remaining": max(total - planned, q(0, 2)),
            "total_units": agg["total_units"], "total_linear_ft": q(agg["total_linear_ft"], 2),
            "total_acres": q(agg["total_acres"], 4), "total_trees": agg["total_trees"],
            "units_approved": agg["units_approved"], "units_refused": agg["units_refused"],
            "units_pending": agg["units_pending"],
            **{c: json.dumps(agg[c], sort_keys=True) for c in _JSON_COLS},
        })
        result.total_units += agg["total_units"]
    result.circuits = len(params)
    result.written, result.unchanged = upsert_skip_unchanged(
        conn, "circuit_aggregates", ("circuit_id", "aggregate_date", "is_rollup"), _VALUE_COLS,
        params, _JSON_COLS)
    result.removed = conn.execute(
        sa.text("DELETE FROM circuit_aggregates WHERE aggregate_date = :d AND is_rollup = :r"
                " AND NOT (circuit_id = ANY(:ids))"),
        {"d": day, "r": IS_ROLLUP, "ids": [p["circuit_id"] for p in params]},
    ).rowcount
    return result
