"""circuit_snapshots (snapshot_type daily) for one day, from history and that day's aggregates.

Every non-deleted, non-excluded circuit whose API state at the end of the day (circuit_history)
is not CLOSE gets one row: its state that day and that day's circuit_aggregates totals, with
the type and planner breakdowns in metrics_json. Set-based SQL, one statement per step, in
the caller's transaction: an upsert that skips identical rows, then a delete of the day's daily
rows for circuits that no longer qualify. Rebuilding a day gives the same rows (same ids).

workflow_stage is the stage the circuit had at the end of the day (its latest
circuit_stage_changes row before then). For days before stage changes were recorded, it is the
circuit's UI stage when its API status that day is still its current one, else the stage that
status maps to. Known approximation (no history kept for it yet): is_excluded is today's flag.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa

_VALUE_COLS = ("miles_planned", "percent_complete", "api_status", "workflow_stage", "total_units",
               "total_linear_ft", "total_acres", "total_trees", "units_approved", "units_refused",
               "units_pending", "metrics_json")

_SELECT = """
SELECT c.id AS circuit_id, 'daily' AS snapshot_type, CAST(:d AS date) AS snapshot_date,
       h.miles_planned, h.percent_complete, h.api_status,
       coalesce(
           (SELECT s.to_stage FROM circuit_stage_changes s
            WHERE s.circuit_id = c.id AND s.changed_at < :end ORDER BY s.changed_at DESC, s.id DESC
            LIMIT 1),
           CASE WHEN u.workflow_stage IS NOT NULL AND c.api_status = h.api_status THEN u.workflow_stage
                ELSE CASE h.api_status WHEN 'QC' THEN 'qc' WHEN 'REWRK' THEN 'rework'
                                       WHEN 'CLOSE' THEN 'closed' ELSE 'active' END END)
           AS workflow_stage,
       a.total_units, a.total_linear_ft, a.total_acres, a.total_trees,
       a.units_approved, a.units_refused, a.units_pending,
       jsonb_build_object(
           'total_miles', h.total_miles,
           'miles_remaining', greatest(h.total_miles - h.miles_planned, 0),
           'unit_counts_by_type', coalesce(a.unit_counts_by_type, '{}'::jsonb),
           'linear_ft_by_type', coalesce(a.linear_ft_by_type, '{}'::jsonb),
           'acres_by_type', coalesce(a.acres_by_type, '{}'::jsonb),
           'units_by_permission', coalesce(a.units_by_permission, '{}'::jsonb),
           'planner_distribution', coalesce(a.planner_distribution, '{}'::jsonb),
           'planned_units_snapshot_id', a.planned_units_snapshot_id) AS metrics_json
FROM circuits c
JOIN LATERAL (SELECT * FROM circuit_history h WHERE h.circuit_id = c.id AND h.valid_from < :end
              ORDER BY h.valid_from DESC LIMIT 1) h ON true
LEFT JOIN circuit_aggregates a ON a.circuit_id = c.id AND a.aggregate_date = :d AND NOT a.is_rollup
LEFT JOIN circuit_ui_states u ON u.circuit_id = c.id
WHERE c.deleted_at IS NULL AND NOT c.is_excluded AND h.api_status <> 'CLOSE'
"""


@dataclass
class SnapshotResult:
    day: date
    circuits: int = 0
    written: int = 0
    removed: int = 0

    def counts(self) -> dict[str, int]:
        return {"snapshots": self.circuits, "snapshots_written": self.written,
                "snapshots_removed": self.removed}


def build_day(conn: sa.Connection, day: date, window_end: datetime) -> SnapshotResult:
    """Rebuild the daily circuit_snapshots of ``day`` (window_end = end of the day, exclusive)."""
    result = SnapshotResult(day=day)
    params = {"d": day, "end": window_end}
    cols = ("circuit_id", "snapshot_type", "snapshot_date") + _VALUE_COLS
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in _VALUE_COLS)
    distinct = (f"({', '.join('circuit_snapshots.' + c for c in _VALUE_COLS)}) IS DISTINCT FROM"
                f" ({', '.join('EXCLUDED.' + c for c in _VALUE_COLS)})")
    result.written = conn.execute(sa.text(
        f"INSERT INTO circuit_snapshots ({', '.join(cols)}) {_SELECT}"
        f" ON CONFLICT (circuit_id, snapshot_type, snapshot_date) DO UPDATE SET {sets},"
        f" updated_at = now() WHERE {distinct}"), params).rowcount
    result.removed = conn.execute(sa.text(
        f"DELETE FROM circuit_snapshots s WHERE s.snapshot_type = 'daily' AND s.snapshot_date = :d"
        f" AND s.circuit_id NOT IN (SELECT q.circuit_id FROM ({_SELECT}) q)"), params).rowcount
    result.circuits = conn.execute(sa.text(
        "SELECT count(*) FROM circuit_snapshots WHERE snapshot_type = 'daily' AND snapshot_date = :d"),
        {"d": day}).scalar_one()
    return result
