"""Syncing as a chosen user with stored, encrypted credentials; a 401 marks them failed; no
secret reaches any output a run produces."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from ws_tracker.simulator.server import SimulatorServer
from ws_tracker.simulator.world import World
from ws_tracker.warehouse import credentials
from ws_tracker.warehouse.engine import make_engine, parse
from ws_tracker_tests.e2e import PASSWORD, start_harness

DAY = date(2026, 3, 2)
LEHIGH_USER = "ASPLUNDH\\lehigh.planner"
LEHIGH_PASSWORD = "Leh1gh-Only-Pa55"
REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@pytest.fixture
def key(monkeypatch):
    value = credentials.new_key()
    monkeypatch.setenv(credentials.ENV_VAR, value)
    return value


@pytest.fixture
def scoped(db_url, engine, key):
    h = start_harness(db_url, accounts={LEHIGH_USER: {"password": LEHIGH_PASSWORD,
                                                      "regions": ["Lehigh"]}})
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO users (name, email, password) VALUES ('Lee Planner', 'lee@example.com', '!')"))
    yield h
    h.server.stop()


def test_a_sync_as_a_user_sees_what_their_groups_allow(scoped, engine):
    with engine.begin() as conn:
        credentials.set_user_credentials(conn, "lee@example.com", LEHIGH_USER, LEHIGH_PASSWORD)
    assert scoped.run(DAY, run_as="lee@example.com").success
    truth = scoped.world.circuits_truth(regions=["Lehigh"])
    with engine.connect() as conn:
        regions = conn.execute(sa.text(
            "SELECT DISTINCT r.name FROM circuits c JOIN regions r ON r.id = c.region_id")).scalars().all()
        count = conn.execute(sa.text("SELECT count(*) FROM circuits")).scalar_one()
        cred = conn.execute(sa.text("SELECT is_valid, fail_count, validated_at FROM user_ws_credentials")).one()
    assert regions == ["Lehigh"] and count == len(truth) > 0
    assert cred.is_valid and cred.fail_count == 0 and cred.validated_at is not None


def test_a_401_marks_the_users_credentials_failed_and_fails_the_run(scoped, engine):
    with engine.begin() as conn:
        credentials.set_user_credentials(conn, "lee@example.com", LEHIGH_USER, "stale-" + LEHIGH_PASSWORD)
    result = scoped.run(DAY, run_as="lee@example.com", raise_on_error=False)
    assert not result.success
    with engine.connect() as conn:
        cred = conn.execute(sa.text("SELECT is_valid, fail_count FROM user_ws_credentials")).one()
        user = conn.execute(sa.text(
            "SELECT ws_credentials_fail_count, ws_credentials_failed_at FROM users")).one()
        log = conn.execute(sa.text(
            "SELECT sync_status, error_message, context_json::text AS c, summary_json::text AS s"
            " FROM sync_logs")).one()
    assert (cred.is_valid, cred.fail_count) == (False, 1)
    assert user.ws_credentials_fail_count == 1 and user.ws_credentials_failed_at is not None
    assert log.sync_status == "failed" and "401" in log.error_message
    assert "lee@example.com" in log.c  # who the sync ran as is recorded, never the secret
    for text in (log.error_message, log.c, log.s):
        assert LEHIGH_PASSWORD not in text
    # The next attempt refuses at once: the stored credentials are marked invalid.
    again = scoped.run(DAY, run_as="lee@example.com", raise_on_error=False)
    assert not again.success
    assert scoped.server.stats().get("unauthorized", 0) == 1


def _everything_a_run_produced(dagster_url: str, warehouse_url: str, home: Path) -> str:
    parts = []
    for url, sql in ((dagster_url, "SELECT event FROM event_logs"),
                     (dagster_url, "SELECT run_body FROM runs"),
                     (warehouse_url, "SELECT row_to_json(s)::text FROM sync_logs s"),
                     (warehouse_url, "SELECT row_to_json(c)::text FROM circuits c")):
        eng = make_engine(url)
        try:
            with eng.connect() as conn:
                parts += [str(v) for v in conn.execute(sa.text(sql)).scalars()]
        finally:
            eng.dispose()
    for path in home.rglob("*"):
        if path.is_file() and path.stat().st_size < 5_000_000 and "pgdata" not in path.parts:
            parts.append(path.read_text(errors="replace"))
    return "\n".join(parts)


def test_no_secret_in_anything_a_run_produced(db_url, empty_db_url, tmp_path):
    secret = "Sup3r-Secret-WS-Pa55"
    dagster_url = parse(empty_db_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with SimulatorServer(World(), accounts={"ASPLUNDH\\svc": secret}) as server:
        server.start()
        outputs = []
        for password in (secret, secret + "-wrong"):  # a good run and a 401
            env = {k: v for k, v in os.environ.items() if not k.startswith(("WS_TRACKER", "DAGSTER", "WORKSTUDIO"))}
            env.update({"WS_TRACKER_DATABASE_URL": db_url, "DAGSTER_PG_URL": dagster_url,
                        "WS_TRACKER_HOME": str(tmp_path), "WORKSTUDIO_BASE_URL": server.base_url,
                        "WORKSTUDIO_USERNAME": "ASPLUNDH\\svc", "WORKSTUDIO_PASSWORD": password})
            proc = subprocess.run([str(BIN / "ws-tracker"), "run", "--date", "2026-03-02"], env=env,
                                  capture_output=True, text=True, timeout=240, cwd=REPO)
            outputs += [proc.stdout, proc.stderr]
        assert "succeeded" in outputs[0] and "FAILED" in outputs[2]
    produced = "\n".join(outputs) + _everything_a_run_produced(dagster_url, db_url, tmp_path)
    assert "ASPLUNDH\\\\svc" in produced or "ASPLUNDH\\svc" in produced  # we did look at the right things
    assert secret not in produced
    assert PASSWORD not in produced
