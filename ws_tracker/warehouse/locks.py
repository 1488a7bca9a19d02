"""Transaction-level advisory locks: two writers of the same thing take turns.

The run queue already keeps two syncs of a kind apart when Dagster's daemon launches them,
but people also run `ws-tracker run`, in-process materializations and two backfills of the
same range at once. These locks make the database itself serialize them, so concurrent runs
end with one correct copy (each writer compares before it writes, so the second one finds the
first one's rows and changes nothing). They are released at commit or rollback, so a killed
run never leaves one behind.

Keys are ``hashtext`` of a readable name; PostgreSQL shows them in ``pg_locks`` (objid).
"""

from __future__ import annotations

import sqlalchemy as sa

# The live layer: circuit syncs and planned-unit captures (they update the same circuits rows
# and both re-derive workflow stages, so one lock for both keeps the lock order fixed:
# live writes -> workflow stages).
LIVE_WRITES = "ws_tracker:live_writes"


def lock(conn: sa.Connection, name: str) -> None:
    """Wait for, then hold until the end of ``conn``'s transaction, the lock called ``name``."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})


def partition_lock_name(asset: str, partition_key: str) -> str:
    return f"ws_tracker:build:{asset}:{partition_key}"
