"""Staging: the data_imports record of a file, and its rows written to import_staging_rows.

Rows are written with COPY (psycopg 3 ``cursor.copy``) in batches of ``BATCH_ROWS``, each
batch committed: memory holds one batch, whatever the size of the file, and a failure while
staging leaves the rows staged so far for inspection.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from ws_tracker.imports.validation import ValidatedRow

__all__ = ["BATCH_ROWS", "ImportRecord", "StagingWriter", "open_import"]

BATCH_ROWS = 5_000

_COPY = ("COPY import_staging_rows (data_import_id, row_number, line_number, row_key, unit_id,"
         " valid, raw_row, normalised, issues) FROM STDIN")


@dataclass(frozen=True)
class ImportRecord:
    id: int
    reimport: bool  # this file (kind + content hash) was imported before
    previous_status: str | None
    previous_as_of: date | None
    previous_captured_at: datetime | None


def open_import(conn: sa.Connection, *, kind: str, file_name: str, file_path: str | None,
                file_size: int, content_hash: str, as_of: date | None,
                captured_at: datetime | None, imported_by: str | None, source: str,
                run_id: str | None) -> ImportRecord:
    """The data_imports row of this file, created or (a re-import) reused; status untouched.

    The caller moves it to processing. Who: ``imported_by`` as given (an email, an OS user,
    ``sensor:...``), and ``imported_by_user_id`` where it is a user's email."""
    before = conn.execute(
        sa.text("SELECT id, status, as_of_date, captured_at FROM data_imports WHERE kind = :k"
                " AND content_hash = :h FOR UPDATE"), {"k": kind, "h": content_hash}).first()
    user_id = None
    if imported_by:
        user_id = conn.execute(sa.text("SELECT id FROM users WHERE lower(email) = lower(:e)"),
                               {"e": imported_by}).scalar()
    params = {"k": kind, "name": file_name, "path": file_path, "size": file_size,
              "h": content_hash, "as_of": as_of, "at": captured_at, "by": imported_by,
              "uid": user_id, "src": source, "run": run_id}
    if before is None:
        new_id = conn.execute(sa.text(
            "INSERT INTO data_imports (status, kind, file_name, file_path, file_size,"
            " content_hash, as_of_date, captured_at, imported_by, imported_by_user_id, source,"
            " dagster_run_id) VALUES ('processing', :k, :name, :path, :size, :h, :as_of, :at,"
            " :by, :uid, :src, :run) RETURNING id"), params).scalar_one()
        return ImportRecord(new_id, False, None, None, None)
    conn.execute(sa.text(
        "UPDATE data_imports SET file_name = :name, file_path = :path, file_size = :size,"
        " as_of_date = :as_of, captured_at = :at, imported_by = :by, imported_by_user_id = :uid,"
        " source = :src, dagster_run_id = :run, error_message = NULL, updated_at = now()"
        " WHERE id = :id"), {**params, "id": before.id})
    return ImportRecord(before.id, True, before.status, before.as_of_date, before.captured_at)


def clear_staging(conn: sa.Connection, import_id: int) -> int:
    """Drop the staged rows of an earlier attempt at this file."""
    return conn.execute(sa.text("DELETE FROM import_staging_rows WHERE data_import_id = :id"),
                        {"id": import_id}).rowcount


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, allow_nan=False)


class StagingWriter:
    """Buffers validated rows and COPYs them in batches, each in its own transaction."""

    def __init__(self, engine: sa.Engine, import_id: int, batch_rows: int = BATCH_ROWS) -> None:
        self.engine = engine
        self.import_id = import_id
        self.batch_rows = batch_rows
        self.buffer: list[tuple] = []
        self.written = 0
        self.batches = 0

    def add(self, row: ValidatedRow) -> None:
        raw = row.raw
        try:
            raw_text = _dumps(raw)
        except ValueError:  # NaN cannot appear in CSV text; defensive for callers' dicts
            raw_text = _dumps({k: str(v) for k, v in raw.items()})
        self.buffer.append((
            self.import_id, row.row_number, row.line_number, row.row_key, row.unit_id, row.valid,
            raw_text, None if row.normalised is None else _dumps(row.normalised),
            _dumps(row.issues)))
        if len(self.buffer) >= self.batch_rows:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        with self.engine.begin() as conn:
            dbapi = conn.connection.driver_connection
            with dbapi.cursor() as cur, cur.copy(_COPY) as copy:
                for record in self.buffer:
                    copy.write_row(record)
        self.written += len(self.buffer)
        self.batches += 1
        self.buffer.clear()
