"""Many rows in one statement, or in one round trip.

New rows go in by COPY (:func:`copy_rows`; ids taken first with :func:`reserve_ids` when
other rows must refer to them): no per-row statement, values formatted by psycopg's C code,
rows streamed as they are built. Changes to stored rows (:func:`update_rows`) send every row
as one JSON parameter that the server expands with ``json_populate_recordset(NULL::table,
...)``: one statement whatever the row count, each value typed by the table's own column
types, and no per-row work in psycopg (which adapts each parameter of each row in Python,
and quotes each element of a text array with a regex). At a 5,000-circuit first sync this
took the circuit writes from about 2.2 s to about 1 s (BENCHMARKS.md, writes).

:func:`executemany_returning` is kept for statements that are neither: psycopg 3 runs
``executemany`` in pipeline mode (every statement sent before any result is awaited), and
this returns each statement's row, in input order.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Iterable, Sequence
from uuid import UUID

import sqlalchemy as sa

__all__ = ["copy_rows", "executemany_returning", "reserve_ids", "rows_json", "update_rows"]


def _default(value: Any) -> Any:
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, (Decimal, UUID)):
        return str(value)  # a JSON string is read by the column type's own input function
    raise TypeError(f"cannot send a {type(value).__name__} value as a row field: {value!r}")


def rows_json(rows: Iterable[dict[str, Any]]) -> str:
    """Rows as one JSON array (dates/times ISO-8601, Decimals as text); NaN is refused."""
    return json.dumps(list(rows), default=_default, allow_nan=False, separators=(",", ":"))


_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


def _names(*names: str) -> None:
    """Table and column names are formatted into the SQL text: they come from the code's
    constants, and anything else is refused here (values always travel as parameters)."""
    for name in names:
        if not _IDENTIFIER.fullmatch(name):
            raise ValueError(f"not a plain SQL identifier: {name!r}")


def _expand(table: str) -> str:
    return f"json_populate_recordset(NULL::{table}, CAST(:rows AS json))"


def update_rows(conn: sa.Connection, table: str, key: str, columns: Sequence[str],
                rows: Sequence[dict[str, Any]], *, also: str = "") -> int:
    """UPDATE ``table`` SET ``columns`` from ``rows`` (dicts with ``key`` and the columns)
    matched on ``key``, in one statement; ``also`` adds assignments (``updated_at = now()``,
    a code constant). Returns the number of rows updated."""
    if not rows:
        return 0
    _names(table, key, *columns)
    sets = ", ".join(f"{c} = r.{c}" for c in columns) + (f", {also}" if also else "")
    sql = (f"UPDATE {table} AS t SET {sets} FROM {_expand(table)} AS r"
           f" WHERE t.{key} = r.{key}")
    return conn.execute(sa.text(sql), {"rows": rows_json(rows)}).rowcount


def reserve_ids(conn: sa.Connection, table: str, n: int) -> list[int]:
    """``n`` new ids from ``table``'s id sequence, ascending: for rows written by
    :func:`copy_rows`, which returns nothing. Sequences are never rolled back: a failed
    transaction leaves a gap in the ids, as a failed INSERT does."""
    if n <= 0:
        return []
    # One row holding an array, not n rows: fetching 10,000 rows one by one costs more
    # than the server's work.
    return sorted(conn.execute(
        sa.text("SELECT array_agg(nextval(pg_get_serial_sequence(:t, 'id')))"
                " FROM generate_series(1, :n)"),
        {"t": table, "n": n}).scalar_one())


def copy_rows(conn: sa.Connection, table: str, columns: Sequence[str],
              rows: Iterable[Sequence[Any]]) -> int:
    """COPY ``rows`` (tuples in ``columns`` order; JSON columns as JSON text) into ``table``
    inside ``conn``'s transaction; the number of rows. The fastest way in for many new rows:
    no per-row statement, values formatted by psycopg's C code, and each row streamed to the
    server as soon as it is built, so the server stores one while the next is built."""
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        return 0  # nothing to write: no COPY round trip
    _names(table, *columns)
    n = 1
    with conn.connection.driver_connection.cursor() as cur:
        with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            copy.write_row(first)
            for row in rows:
                copy.write_row(row)
                n += 1
    return n


def executemany_returning(conn: sa.Connection, sql: str, rows: Sequence[dict[str, Any]]
                          ) -> list[tuple]:
    """Run ``sql`` (psycopg ``%(name)s`` placeholders, one ``RETURNING`` row per statement) for
    every row, pipelined, inside ``conn``'s transaction; the returned rows in input order."""
    if not rows:
        return []
    out: list[tuple] = []
    with conn.connection.driver_connection.cursor() as cur:
        cur.executemany(sql, rows, returning=True)
        for _ in rows:
            out.append(cur.fetchone())
            cur.nextset()
    return out
