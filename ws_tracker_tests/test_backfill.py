"""Backfills: a range rebuilt in one run equals the days built one by one, re-running it
changes nothing, and no WorkStudio call is needed."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import pytest
import sqlalchemy as sa

from ws_tracker.pipeline.assets import circuit_aggregates, circuit_snapshots
from ws_tracker.warehouse import checks
from ws_tracker.warehouse.resource import WarehouseResource
from ws_tracker_tests.conftest import _built_db, _fresh_db
from ws_tracker_tests.e2e import dump_tables, start_harness, value_rows

FIRST = date(2026, 3, 2)
DAYS = [FIRST + timedelta(days=i) for i in range(5)]  # Monday..Friday
TABLES = ["circuit_aggregates", "circuit_snapshots"]
# Columns that legitimately differ between two builds of the same rows.
VOLATILE = {"id", "created_at", "updated_at"}


def _rows(engine, table):
    return value_rows(engine, [table], VOLATILE)[table]


def _derived(db_url, **kw):
    return dg.materialize([circuit_aggregates, circuit_snapshots],
                          resources={"warehouse": WarehouseResource(database_url=db_url)}, **kw)


def _sync_days(db_url):
    harness = start_harness(db_url)
    try:
        for day in DAYS:
            assert harness.run(day).success
    finally:
        harness.server.stop()  # from here on, nothing may call WorkStudio


@pytest.fixture(scope="module")
def synced_db(pg_server_url, template_db):
    """The five days synced from the simulator, once for the module (about 10 s)."""
    yield from _built_db(pg_server_url, template_db, _sync_days)


@pytest.fixture
def db_url(pg_server_url, synced_db):
    """This test's own copy of the synced days (and ``engine`` is on it)."""
    yield from _fresh_db(pg_server_url, synced_db)


def test_range_backfill_equals_day_by_day_and_is_idempotent(engine, db_url):
    with engine.begin() as conn:
        for t in TABLES:
            conn.execute(sa.text(f"DELETE FROM {t}"))
    ranged = _derived(db_url, tags={"dagster/asset_partition_range_start": DAYS[0].isoformat(),
                                    "dagster/asset_partition_range_end": DAYS[-1].isoformat()})
    assert ranged.success
    mats = ranged.get_asset_materialization_events()
    assert sorted({e.event_specific_data.materialization.partition for e in mats}) == [d.isoformat() for d in DAYS]
    by_range = {t: _rows(engine, t) for t in TABLES}
    assert all(by_range[t] for t in TABLES)
    with_ids = dump_tables(engine, TABLES)

    # The same range again: the very same rows, ids included.
    assert _derived(db_url, tags={"dagster/asset_partition_range_start": DAYS[0].isoformat(),
                                  "dagster/asset_partition_range_end": DAYS[-1].isoformat()}).success
    assert dump_tables(engine, TABLES) == with_ids

    with engine.begin() as conn:
        for t in TABLES:
            conn.execute(sa.text(f"DELETE FROM {t}"))
    for day in reversed(DAYS):  # order must not matter
        assert _derived(db_url, partition_key=day.isoformat()).success
    assert {t: _rows(engine, t) for t in TABLES} == by_range


def test_backfill_command_rebuilds_a_range(engine, db_url, tmp_path, monkeypatch):
    from ws_tracker.cli import main

    monkeypatch.setenv("WS_TRACKER_DATABASE_URL", db_url)
    monkeypatch.setenv("WS_TRACKER_HOME", str(tmp_path))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("DAGSTER_PG_URL", raising=False)
    before = {t: _rows(engine, t) for t in TABLES}
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM circuit_snapshots"))
    # Without --select: the derived days and the weeks that overlap them (Sunday 2026-03-01).
    assert main(["backfill", "--from", DAYS[1].isoformat(), "--to", DAYS[2].isoformat()]) == 0
    with engine.connect() as conn:
        weeks = conn.execute(sa.text(
            "SELECT DISTINCT week_starting::text FROM planner_weekly_aggregates")).scalars().all()
        assert weeks == ["2026-03-01"]
        assert checks.weekly_sums_match_days(conn, [date(2026, 3, 1)]) == []
        # Breaking a weekly sum is what the check is for.
        conn.execute(sa.text("UPDATE planner_weekly_aggregates SET total_units_assessed = total_units_assessed + 1"
                             " WHERE id = (SELECT min(id) FROM planner_weekly_aggregates)"))
        assert len(checks.weekly_sums_match_days(conn, [date(2026, 3, 1)])) == 1
        conn.rollback()
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM circuit_snapshots"))
    assert main(["backfill", "--from", DAYS[0].isoformat(), "--to", DAYS[-1].isoformat(),
                 "--select", "circuit_snapshots"]) == 0
    assert {t: _rows(engine, t) for t in TABLES} == before
    assert main(["backfill", "--from", "2026-03-06", "--to", "2026-03-02"]) != 0


def test_weekly_target_is_run_config(engine, db_url):
    from ws_tracker.pipeline.assets import WEEKLY_ASSETS

    def build(target):
        return dg.materialize(WEEKLY_ASSETS, partition_key="2026-03-01",
                              resources={"warehouse": WarehouseResource(database_url=db_url)},
                              run_config={"ops": {"planner_weekly_aggregates": {
                                  "config": {"target_miles": target}}}})

    assert build(1_000_000.0).success
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT miles_delta, met_weekly_target FROM planner_weekly_aggregates")).all()
    assert rows and not any(r.met_weekly_target for r in rows)
    assert build(0.0).success
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT miles_delta, met_weekly_target FROM planner_weekly_aggregates")).all()
    assert all(r.met_weekly_target == (r.miles_delta >= 0) for r in rows)
    assert any(r.met_weekly_target for r in rows)
