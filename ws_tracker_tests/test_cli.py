"""The ``ws-tracker`` command as a user runs it: a separate process, real PostgreSQL storage
for Dagster given as a plain postgresql:// URL, the simulator started by the command itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from ws_tracker.simulator.server import SimulatorServer
from ws_tracker.simulator.world import World
from ws_tracker.warehouse.engine import make_engine, parse
from ws_tracker_tests.e2e import dump_tables

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CLEAN_ENV = ("WS_TRACKER_DATABASE_URL", "DAGSTER_PG_URL", "DAGSTER_HOME", "WORKSTUDIO_BASE_URL",
             "WORKSTUDIO_USERNAME", "WORKSTUDIO_PASSWORD", "WS_TRACKER_HOME")


def cli(args: list[str], env: dict[str, str], timeout: int = 240) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    full.update(env)
    return subprocess.run([str(BIN / "ws-tracker"), *args], env=full, capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)


def test_run_with_postgres_dagster_storage_from_a_plain_url(db_url, empty_db_url, tmp_path):
    plain = parse(empty_db_url).set(drivername="postgresql").render_as_string(hide_password=False)
    assert plain.startswith("postgresql://")
    env = {"WS_TRACKER_DATABASE_URL": db_url, "DAGSTER_PG_URL": plain,
           "WS_TRACKER_HOME": str(tmp_path / "home")}
    first = cli(["run", "--date", "2026-03-02"], env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "succeeded (partition 2026-03-02)" in first.stdout
    assert "bundled, started by this command" in first.stdout

    dagster = make_engine(empty_db_url)
    try:
        with dagster.connect() as conn:
            runs = conn.execute(sa.text("SELECT status FROM runs")).scalars().all()
            mats = conn.execute(sa.text(
                "SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'")).scalar()
    finally:
        dagster.dispose()
    assert runs == ["SUCCESS"]
    assert mats == 6  # the two live assets and the four daily ones for 2026-03-02

    warehouse = make_engine(db_url)
    try:
        tables = ["circuits", "circuit_history", "planned_units_snapshots", "circuit_aggregates",
                  "circuit_snapshots"]
        before = dump_tables(warehouse, tables)
        assert all(before[t] for t in tables)
        second = cli(["run", "--date", "2026-03-02"], env)
        assert second.returncode == 0, second.stdout + second.stderr
        assert dump_tables(warehouse, tables) == before
    finally:
        warehouse.dispose()


def test_run_exits_non_zero_and_names_the_cause_without_the_secret(db_url, tmp_path):
    secret = "Not-The-Right-Pa55word"
    with SimulatorServer(World(), accounts={"ASPLUNDH\\someone": "right"}) as server:
        server.start()
        env = {"WS_TRACKER_DATABASE_URL": db_url, "WS_TRACKER_HOME": str(tmp_path),
               "WORKSTUDIO_BASE_URL": server.base_url, "WORKSTUDIO_USERNAME": "ASPLUNDH\\someone",
               "WORKSTUDIO_PASSWORD": secret}
        proc = cli(["run", "--date", "2026-03-02"], env)
    assert proc.returncode == 1
    out = proc.stdout + proc.stderr
    assert "FAILED circuits" in out and "401" in out
    assert secret not in out


def test_db_commands(db_url, tmp_path):
    env = {"WS_TRACKER_DATABASE_URL": db_url, "WS_TRACKER_HOME": str(tmp_path)}
    url = cli(["db", "url"], env)
    assert url.returncode == 0 and url.stdout.strip().startswith("postgresql://")
    migrate = cli(["db", "migrate"], env)
    assert migrate.returncode == 0, migrate.stderr
    assert "migrated" in migrate.stdout
    bad = cli(["run", "--date", "2026-02-30"], env)
    assert bad.returncode == 2 and "not a date" in bad.stderr


def test_definitions_validate(empty_db_url):
    # From the repository root, so dagster reads the repository's dagster.yaml (PostgreSQL).
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    env["DAGSTER_PG_URL"] = parse(empty_db_url).set(drivername="postgresql").render_as_string(
        hide_password=False)
    proc = subprocess.run([str(BIN / "dagster"), "definitions", "validate", "-m", "ws_tracker.definitions"],
                          capture_output=True, text=True, timeout=240, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_simulator_serve_speaks_the_protocol_on_loopback(tmp_path):
    import socket

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(BIN / "ws-tracker"), "simulator", "serve", "--port", str(port),
                             "--date", "2026-03-02"], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in line
        auth = ("ASPLUNDH\\wstracker", "wstracker-sim")
        ok = httpx.post(f"http://127.0.0.1:{port}/DDOProtocol/HEARTBEAT", auth=auth, timeout=10)
        assert ok.json() == {"protocol": "OK"}
        denied = httpx.post(f"http://127.0.0.1:{port}/DDOProtocol/HEARTBEAT", auth=(auth[0], "x"), timeout=10)
        assert denied.status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)
