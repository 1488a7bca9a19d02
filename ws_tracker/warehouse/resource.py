"""The warehouse as a Dagster resource: one SQLAlchemy engine per database URL and process."""

from __future__ import annotations

import threading

import dagster as dg
import sqlalchemy as sa

from ws_tracker import config
from ws_tracker.warehouse import embedded
from ws_tracker.warehouse.engine import make_engine

_ENGINES: dict[str, sa.Engine] = {}
_LOCK = threading.Lock()


def resolve_database_url(database_url: str | None = None) -> str:
    """The warehouse URL: the one given, else WS_TRACKER_DATABASE_URL, else the embedded server."""
    url = database_url or config.database_url_from_env()
    if url:
        return url
    return embedded.warehouse_url(config.home_dir())


def engine_for(url: str) -> sa.Engine:
    with _LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            engine = _ENGINES[url] = make_engine(url, pool_size=4, max_overflow=4)
        return engine


class WarehouseResource(dg.ConfigurableResource):
    """PostgreSQL holding the analysts' tables.

    ``database_url`` empty means: WS_TRACKER_DATABASE_URL, else the embedded server under
    WS_TRACKER_HOME (started on first use, at run time, never at import).
    """

    database_url: str | None = None

    def url(self) -> str:
        return resolve_database_url(self.database_url)

    def get_engine(self) -> sa.Engine:
        return engine_for(self.url())
