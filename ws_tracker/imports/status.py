"""The status contract of ``data_imports`` (after seed 003's data-feed contract).

    processing -> queued -> transforming -> transformed
         \\           \\            \\-> failed
          `-----------`---------------> failed

- processing: the import was accepted; the file is being read, validated and staged.
- queued: staging finished (counts known); the load is dispatched.
- transforming: the loader is writing the warehouse (one transaction).
- transformed: loaded; metrics final; staging keeps only the rows that have issues.
- failed: any error; ``summary.error`` = {code, message, trace_id}; staging rows are left for
  inspection; the warehouse is as it was before the load (the load is one transaction).

A re-import of the same file starts again at processing (from any state: the importer holds
the file's advisory lock, so an import left mid-way belongs to a process that died). ``summary``
(JSONB) always holds: stage, UTC ISO-8601 timestamps of the stages reached, metrics, issues
[{type, code, message, count, examples}], error (null or {code, message, trace_id}).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

__all__ = ["STATUSES", "TERMINAL", "InvalidTransition", "set_status", "utc_iso"]

STATUSES = ("processing", "queued", "transforming", "transformed", "failed")
TERMINAL = ("transformed", "failed")
# Any state may start again at processing: a re-import of the same file, or a retry of one
# whose process died mid-way (the caller holds the file's advisory lock, so no other process
# is working on it).
ALLOWED = {
    "processing": {"processing", "queued", "failed"},
    "queued": {"processing", "transforming", "failed"},
    "transforming": {"processing", "transformed", "failed"},
    "transformed": {"processing"},
    "failed": {"processing"},
}
# The summary's timestamp key for each stage reached.
STAGE_TIMESTAMP = {
    "processing": "processing_started_at",
    "queued": "queued_at",
    "transforming": "transform_started_at",
    "transformed": "transform_finished_at",
    "failed": "failed_at",
}


class InvalidTransition(RuntimeError):
    pass


def utc_iso(at: datetime | None = None) -> str:
    at = at or datetime.now(timezone.utc)
    return at.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def set_status(conn: sa.Connection, import_id: int, status: str, *,
               summary: dict[str, Any] | None = None, at: datetime | None = None,
               **columns: Any) -> dict[str, Any]:
    """Move import ``import_id`` to ``status`` (checked against the contract), merging
    ``summary`` into its summary JSON and setting ``columns`` (counts, error_message, ...).
    Returns the new summary."""
    if status not in STATUSES:
        raise InvalidTransition(f"unknown import status {status!r}")
    row = conn.execute(sa.text("SELECT status, summary FROM data_imports WHERE id = :id"
                               " FOR UPDATE"), {"id": import_id}).one()
    if status not in ALLOWED[row.status]:
        raise InvalidTransition(f"data import {import_id}: {row.status} -> {status} is not "
                                f"allowed (allowed: {sorted(ALLOWED[row.status])})")
    merged = dict(row.summary or {})
    if status == "processing":  # a fresh start: nothing of an earlier attempt stays
        merged = {}
    merged.update(summary or {})
    merged["stage"] = status
    merged[STAGE_TIMESTAMP[status]] = utc_iso(at)
    merged.setdefault("metrics", {})
    merged.setdefault("issues", [])
    merged.setdefault("error", None)
    params = {"id": import_id, "status": status, "summary": json.dumps(merged, default=str)}
    allowed = _COLUMNS
    for name, value in columns.items():
        if name not in allowed:
            raise ValueError(f"data_imports has no settable column {name!r}")
    sql = _UPDATE_SQL
    params.update({name: columns.get(name) for name in allowed})
    params.update({f"set_{name}": name in columns for name in allowed})
    params["finished"] = status in TERMINAL
    params["started"] = status == "processing"
    conn.execute(sa.text(sql), params)
    return merged


_COLUMNS = ("total_rows", "valid_rows", "invalid_rows", "warning_rows", "unknown_unit_codes",
            "unknown_regions", "records_loaded", "error_message", "dagster_run_id")
# A fixed statement: each column is set only when its set_ flag is true.
_UPDATE_SQL = (
    "UPDATE data_imports SET status = :status, summary = CAST(:summary AS jsonb),"
    " updated_at = now(),"
    " started_at = CASE WHEN :started THEN now() ELSE started_at END,"
    " finished_at = CASE WHEN :finished THEN now() WHEN :started THEN NULL ELSE finished_at END,"
    " total_rows = CASE WHEN :set_total_rows THEN :total_rows ELSE total_rows END,"
    " valid_rows = CASE WHEN :set_valid_rows THEN :valid_rows ELSE valid_rows END,"
    " invalid_rows = CASE WHEN :set_invalid_rows THEN :invalid_rows ELSE invalid_rows END,"
    " warning_rows = CASE WHEN :set_warning_rows THEN :warning_rows ELSE warning_rows END,"
    " unknown_unit_codes = CASE WHEN :set_unknown_unit_codes THEN :unknown_unit_codes"
    "   ELSE unknown_unit_codes END,"
    " unknown_regions = CASE WHEN :set_unknown_regions THEN :unknown_regions"
    "   ELSE unknown_regions END,"
    " records_loaded = CASE WHEN :set_records_loaded THEN :records_loaded ELSE records_loaded END,"
    " error_message = CASE WHEN :set_error_message THEN :error_message ELSE error_message END,"
    " dagster_run_id = CASE WHEN :set_dagster_run_id THEN :dagster_run_id ELSE dagster_run_id END"
    " WHERE id = :id"
)
