"""Bad rows a sync received, kept in quarantined_rows (see migration 0006).

Written in its own transaction, before the sync writes its data: whatever happens to the rest
of the run, the rows it could not use are on record with the reason, column and row number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable

import sqlalchemy as sa

from ws_tracker.rules.errors import RowIssue

_DROPPED = ("SS_JOBBOUNDS", "SSUNITS_GEOMETRY", "SS_SKETCHBOUNDS")  # geometry: not worth keeping
_MAX_TEXT = 1000


@dataclass(frozen=True)
class Batch:
    """The rows of one response and the issues found in them."""

    source: str          # circuit_list | planned_units
    view_guid: str | None
    filter_value: str | None
    rows: dict[int, Any]    # 1-based row number in the response -> the row as received
    issues: list[RowIssue]


def _no_nul(value: Any) -> Any:
    # NUL cannot be stored in PostgreSQL text or jsonb: written as the 4 characters \x00.
    if isinstance(value, str):
        return value.replace("\x00", "\\x00")
    if isinstance(value, list):
        return [_no_nul(v) for v in value]
    if isinstance(value, dict):
        return {_no_nul(k): _no_nul(v) for k, v in value.items()}
    return value


def _raw(row: Any) -> str | None:
    if row is None:
        return None
    if isinstance(row, dict):
        row = {k: v for k, v in row.items() if k not in _DROPPED}
    return json.dumps(_no_nul(row), default=str)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return _no_nul(str(value))[:_MAX_TEXT]


def quarantine(engine: sa.Engine, batches: Iterable[Batch], *, sync_log_id: int | None,
               run_id: str | None) -> int:
    """Store every row-level issue with its raw row; returns how many were stored."""
    params = []
    for b in batches:
        for issue in b.issues:
            n = issue.row_number
            row = b.rows.get(n) if n is not None else None
            params.append({
                "log": sync_log_id, "run": run_id, "src": b.source, "view": b.view_guid,
                "fv": _text(b.filter_value), "n": n, "col": _text(issue.column),
                "val": _text(issue.value), "reason": _text(issue.reason), "sev": issue.severity,
                "code": issue.code, "key": _text(issue.key), "raw": _raw(row),
            })
    if not params:
        return 0
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO quarantined_rows (sync_log_id, dagster_run_id, source, view_guid,"
            " filter_value, row_number, column_name, value, reason, severity, code, row_key, raw_row)"
            " VALUES (:log, :run, :src, :view, :fv, :n, :col, :val, :reason, :sev, :code, :key,"
            " CAST(:raw AS jsonb))"), params)
    return len(params)
