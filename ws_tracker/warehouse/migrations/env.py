"""Alembic environment for the WS-Tracker warehouse.

Normally driven by ws_tracker.warehouse.migrate, which passes an open connection (holding the
migration advisory lock) in ``config.attributes["connection"]``. Without one, it connects to
the ``sqlalchemy.url`` main option itself (psycopg 3, like the rest of our code).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.pool import NullPool

config = context.config

# Never "alembic_version": Dagster's storage uses that name for its own migrations.
VERSION_TABLE = config.get_main_option("version_table") or "ws_tracker_alembic_version"

# No ORM metadata: migrations are written by hand (autogenerate is not used).
target_metadata = None


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        version_table=VERSION_TABLE,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_with(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_with(connection)
        return
    from ws_tracker.warehouse.engine import make_engine

    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection given and no sqlalchemy.url configured")
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            _run_with(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
