"""Every data check can be made to fail by breaking the data it guards."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from ws_tracker.pipeline.checks import run_partition_keys
from ws_tracker.pipeline.partitions import daily_partitions
from ws_tracker.warehouse import checks
from ws_tracker_tests.conftest import _built_db, _fresh_db
from ws_tracker_tests.e2e import start_harness

DAY = date(2026, 3, 2)
END = daily_partitions.time_window_for_partition_key(DAY.isoformat()).end


def _build(db_url):
    harness = start_harness(db_url)
    try:
        assert harness.run(DAY).success
    finally:
        harness.server.stop()


@pytest.fixture(scope="module")
def built_db(pg_server_url, template_db):
    """DAY synced and built once for the module; each test breaks its own copy (db_url)."""
    yield from _built_db(pg_server_url, template_db, _build)


@pytest.fixture
def db_url(pg_server_url, built_db):
    yield from _fresh_db(pg_server_url, built_db)


@pytest.fixture
def built(engine):
    with engine.connect() as conn:
        assert all(not f for f in _all(conn)), "a clean build passes every check"
    return engine


def _all(conn):
    return [checks.permissions_within_total(conn, [DAY]),
            checks.type_counts_sum_to_total(conn, [DAY]),
            checks.snapshots_cover_open_circuits(conn, [DAY], [END]),
            checks.regional_units_exclude_excluded(conn, [DAY]),
            checks.planner_work_excludes_excluded(conn, [DAY])]


def _break(engine, sql):
    with engine.begin() as conn:
        conn.execute(sa.text(sql))


def test_permissions_within_total(built):
    _break(built, "UPDATE circuit_aggregates SET units_approved = total_units + 1"
                  " WHERE id = (SELECT min(id) FROM circuit_aggregates)")
    with built.connect() as conn:
        bad = checks.permissions_within_total(conn, [DAY])
    assert len(bad) == 1 and bad[0]["classified"] > bad[0]["total_units"]


def test_type_counts_sum_to_total(built):
    _break(built, "UPDATE circuit_aggregates SET unit_counts_by_type = unit_counts_by_type || '{\"ZZZ\": 3}'"
                  " WHERE id = (SELECT min(id) FROM circuit_aggregates)")
    with built.connect() as conn:
        assert len(checks.type_counts_sum_to_total(conn, [DAY])) == 1


def test_snapshots_cover_open_circuits(built):
    _break(built, "DELETE FROM circuit_snapshots WHERE id IN (SELECT id FROM circuit_snapshots LIMIT 2)")
    with built.connect() as conn:
        assert len(checks.snapshots_cover_open_circuits(conn, [DAY], [END])) == 2


def test_excluded_circuits_left_out_of_rollups(built):
    # Excluding a circuit after the rollups were built: they now hold its numbers.
    _break(built, "UPDATE circuits SET is_excluded = true WHERE id = (SELECT circuit_id FROM"
                  " circuit_aggregates WHERE total_units > 0 ORDER BY circuit_id LIMIT 1)")
    with built.connect() as conn:
        assert len(checks.regional_units_exclude_excluded(conn, [DAY])) == 1
        worked = conn.execute(sa.text(
            "SELECT count(*) FROM planner_daily_aggregates p, jsonb_object_keys(p.circuit_breakdown) k"
            " JOIN circuits c ON c.work_order = split_part(k, '/', 1) WHERE c.is_excluded")).scalar()
        assert (len(checks.planner_work_excludes_excluded(conn, [DAY])) > 0) == (worked > 0)


def test_duplicate_keys(built):
    with built.connect() as conn:
        assert checks.duplicate_keys(conn, "circuit_aggregates",
                                     ("circuit_id", "aggregate_date", "is_rollup"), "aggregate_date", [DAY]) == []
        # The unique index forbids a real duplicate; the rule itself still finds one in a
        # relation that allows it.
        conn.execute(sa.text("CREATE TEMP TABLE dup AS SELECT * FROM circuit_aggregates WHERE aggregate_date = :d"), {"d": DAY})
        conn.execute(sa.text("INSERT INTO dup SELECT * FROM dup LIMIT 1"))
        assert len(checks.duplicate_keys(conn, "dup", ("circuit_id", "aggregate_date", "is_rollup"),
                                         "aggregate_date", [DAY])) == 1


def test_run_partition_keys_from_tags():
    assert run_partition_keys({"dagster/partition": "2026-03-02"}) == ["2026-03-02"]
    assert run_partition_keys({"dagster/asset_partition_range_start": "2026-03-07",
                               "dagster/asset_partition_range_end": "2026-03-09"}) == [
        "2026-03-07", "2026-03-08", "2026-03-09"]
    assert run_partition_keys({}) == []
