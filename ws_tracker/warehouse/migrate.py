"""Programmatic Alembic: migrate the warehouse schema from code, no alembic.ini needed.

    from ws_tracker.warehouse.migrate import upgrade
    upgrade("postgresql://user:pw@host/ws_tracker")

Why in code: the CLI, the Dagster resources and the test fixtures all migrate the same way,
and nothing depends on the current directory or an ini file being shipped.

- Our version table is ``ws_tracker_alembic_version``. Dagster's storage keeps its own
  ``alembic_version``; the two must never collide, even when both live in one database.
- ``upgrade`` and ``downgrade`` hold a session-level PostgreSQL advisory lock (fixed key,
  ``LOCK_KEY``) for their whole run, so two processes migrating the same database at once
  serialize: the second waits, then finds the schema at head and does nothing. It also
  serializes threads of one process, which matters because Alembic's ``op`` and ``context``
  are process-global proxies (two unserialized upgrades in threads trample each other).
- Each run is a single transaction (PostgreSQL has transactional DDL): a failed migration
  leaves the schema as it was.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.pool import NullPool

from ws_tracker.warehouse.engine import make_engine, redact

VERSION_TABLE = "ws_tracker_alembic_version"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Fixed advisory-lock key for "migrating the WS-Tracker warehouse" (any bigint works; this one
# is the first 8 bytes of sha256(b"ws_tracker.migrate") read as a signed integer, so it is
# unlikely to clash with another application's key on a shared server).
LOCK_KEY = -5_807_739_462_025_755_065


class MigrationError(RuntimeError):
    pass


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("version_table", VERSION_TABLE)
    return cfg


def heads() -> list[str]:
    """The head revision(s) of our migration scripts (one, unless someone branched)."""
    return sorted(ScriptDirectory.from_config(_config()).get_heads())


def current(url: str) -> str | None:
    """The database's current revision, or None for an unmigrated (or fully downgraded) one.

    Several heads (only after a branch) come back joined by ", ".
    """
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
            revs = sorted(ctx.get_current_heads())
    finally:
        engine.dispose()
    return ", ".join(revs) if revs else None


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision`` (default: head). Safe to re-run."""
    _locked(url, lambda cfg: command.upgrade(cfg, revision), f"upgrade to {revision}")


def downgrade(url: str, revision: str) -> None:
    """Migrate the database at ``url`` down to ``revision`` ("base" drops everything of ours)."""
    _locked(url, lambda cfg: command.downgrade(cfg, revision), f"downgrade to {revision}")


def _locked(url: str, action, what: str) -> None:
    # NullPool: the connection really closes at the end, so the session lock can never outlive
    # this call inside a pooled connection, whatever happens.
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": LOCK_KEY})
            # End the implicit transaction: the lock is session-level and stays held, and
            # Alembic must start (and commit) its own transaction on this connection.
            conn.commit()
            try:
                cfg = _config()
                cfg.attributes["connection"] = conn
                action(cfg)
                if conn.in_transaction():
                    conn.commit()
            except Exception as exc:
                if conn.in_transaction():
                    conn.rollback()
                raise MigrationError(f"{what} failed on {redact(url)}: {exc}") from exc
            finally:
                try:
                    if conn.in_transaction():
                        conn.rollback()
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
                    conn.commit()
                except Exception:  # connection broken: closing it releases the lock anyway
                    pass
    finally:
        engine.dispose()
