"""Many rows in one round trip.

psycopg 3 runs ``executemany`` in pipeline mode: every statement is sent before any result is
awaited, so N rows cost one round trip instead of N. SQLAlchemy's ``conn.execute(text, [rows])``
already uses it but cannot return rows; :func:`executemany_returning` does, in input order.
Per-row statements were most of a first sync's database time at scale (BENCHMARKS.md).
"""

from __future__ import annotations

from typing import Any, Sequence

import sqlalchemy as sa


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
