"""The write every derived table uses: upsert on the natural key, skipping identical rows.

Rows that did not change are not rewritten (no updated_at churn, almost no WAL), and a rebuilt
row keeps its id. Table and column names come from the callers' constants, never from input;
values are always bind parameters.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa


def upsert_skip_unchanged(conn: sa.Connection, table: str, key: tuple[str, ...],
                          values: tuple[str, ...], rows: list[dict[str, Any]],
                          json_cols: tuple[str, ...] = ()) -> tuple[int, int]:
    """Insert or update ``rows`` of ``table``; returns (written, unchanged)."""
    cols = key + values
    placeholders = ", ".join(f"CAST(:{c} AS jsonb)" if c in json_cols else f":{c}" for c in cols)
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in values)
    distinct = (f"({', '.join(f'{table}.{c}' for c in values)}) IS DISTINCT FROM"
                f" ({', '.join('EXCLUDED.' + c for c in values)})")
    stmt = sa.text(
        f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({placeholders})"
        f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {sets}, updated_at = now()"
        f" WHERE {distinct} RETURNING id")
    written = unchanged = 0
    for row in rows:
        if conn.execute(stmt, row).scalar() is None:
            unchanged += 1
        else:
            written += 1
    return written, unchanged
