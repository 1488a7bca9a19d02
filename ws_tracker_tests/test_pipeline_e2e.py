"""End to end: the simulator over real HTTP -> the Dagster assets -> a real PostgreSQL.

Table contents are compared with what the simulator's world says (its clean ground truth),
never with numbers copied from an earlier run.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from ws_tracker.rules.catalog import UNIT_CATEGORY
from ws_tracker_tests.e2e import PASSWORD, dump_tables, start_harness, sync_instant

DAY = date(2026, 3, 2)  # a Monday
REPO = Path(__file__).resolve().parent.parent
UNIT_STATUSES = ("ACTIV", "QC", "REWRK")
DATA_TABLES = ["regions", "circuits", "circuit_history", "circuit_ui_states", "circuit_user",
               "unlinked_planners", "planned_units_snapshots", "circuit_aggregates",
               "circuit_snapshots", "planner_daily_aggregates", "regional_daily_aggregates"]


def _d(x) -> Decimal:
    return Decimal(str(x)).quantize(Decimal("0.01"))


def expected_aggregate(units: list[dict]) -> dict:
    """The business rules, computed independently from the world's clean units."""
    def cat(code):
        return UNIT_CATEGORY.get(code)

    perm = [(u["permission"] or "").strip() for u in units]
    return {
        "total_units": len(units),
        "total_linear_ft": _d(sum(u["linear_ft"] for u in units if cat(u["unit_code"]) == "VLG")),
        "total_trees": sum(u["trees"] for u in units if cat(u["unit_code"]) == "VCT"),
        "units_approved": sum(1 for p in perm if p == "Approved"),
        "units_refused": sum(1 for p in perm if p == "Refused"),
        "units_pending": sum(1 for p in perm if p.lower() in ("", "pending")),
        "unit_counts_by_type": dict(Counter(u["unit_code"] for u in units)),
    }


def test_first_sync_matches_the_world(harness, engine):
    result = harness.run(DAY)
    assert result.success
    from ws_tracker_tests.e2e import DAILY_CHECK_KEYS

    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == len(DAILY_CHECK_KEYS) >= 7 and all(e.passed for e in evaluations)
    truth = {c["job_guid"]: c for c in harness.world.circuits_truth()}
    assert len(truth) > 100

    with engine.connect() as conn:
        rows = {r.job_guid: r for r in conn.execute(sa.text(
            "SELECT c.*, r.name AS region_name FROM circuits c JOIN regions r ON r.id = c.region_id"))}
        assert set(rows) == set(truth)
        for guid, t in truth.items():
            r = rows[guid]
            assert (r.work_order, r.extension, r.api_status) == (t["work_order"], t["extension"], t["status"])
            assert r.region_name == t["region"]
            assert r.taken_by == t["taken_by"]
            assert r.title == t["title"]
            assert r.total_miles == _d(t["total_miles"])
            assert r.miles_planned == _d(t["miles_planned"])
            assert r.percent_complete == _d(t["percent_complete"])
            assert "SS_JOBBOUNDS" not in r.api_data_json
            assert r.last_synced_at == sync_instant(DAY)

        # Splits point at the '@' job of their work order; main jobs have no parent.
        ids = {g: r.id for g, r in rows.items()}
        splits = [t for t in truth.values() if t["extension"] != "@"]
        assert splits, "the default world has split jobs"
        for t in truth.values():
            want = ids[t["parent_job_guid"]] if t["extension"] != "@" and t["parent_job_guid"] in ids else None
            assert rows[t["job_guid"]].parent_circuit_id == want

        # Every circuit has a UI state following its API status; an ACTIV circuit 100 % planned
        # with units still waiting for a permission is pending_permissions.
        stages = dict(conn.execute(sa.text(
            "SELECT c.job_guid, u.workflow_stage FROM circuit_ui_states u JOIN circuits c ON c.id = u.circuit_id")).all())
        want_stage = {"ACTIV": "active", "QC": "qc", "REWRK": "rework", "CLOSE": "closed"}

        def expected_stage(t):
            waiting = sum(1 for u in harness.world.units_truth(t["job_guid"])
                          if (u["permission"] or "").strip().lower() in ("", "pending"))
            if t["status"] == "ACTIV" and t["percent_complete"] >= 100 and waiting:
                return "pending_permissions"
            return want_stage[t["status"]]

        assert stages == {g: expected_stage(t) for g, t in truth.items()}
        assert "pending_permissions" in stages.values(), "the default world has such circuits"

        # No users exist: every planner is unlinked, counted by distinct circuits held.
        held = Counter(t["taken_by"] for t in truth.values())
        unlinked = dict(conn.execute(sa.text("SELECT ws_username, circuit_count FROM unlinked_planners")).all())
        assert unlinked == dict(held)

        # One history version per circuit, open-ended, from the sync instant.
        hist = conn.execute(sa.text(
            "SELECT count(*), count(DISTINCT circuit_id), min(valid_from), max(valid_from),"
            " count(valid_to) FROM circuit_history")).one()
        assert hist == (len(truth), len(truth), sync_instant(DAY), sync_instant(DAY), 0)

        # Captures: every ACTIV/QC/REWRK job, with exactly the world's (deduplicated) units.
        caps = {r.job_guid: r for r in conn.execute(sa.text(
            "SELECT c.job_guid, s.raw_json, s.unit_count, s.content_hash, s.snapshot_trigger"
            " FROM planned_units_snapshots s JOIN circuits c ON c.id = s.circuit_id"))}
        due = {g for g, t in truth.items() if t["status"] in UNIT_STATUSES}
        assert set(caps) == due
        for guid in due:
            units = harness.world.units_truth(guid)
            cap = caps[guid]
            assert [u["unit_id"] for u in cap.raw_json] == [u["unit_id"] for u in units]
            assert cap.unit_count == len(units)
            assert cap.snapshot_trigger == "scheduled"
            by_id = {u["unit_id"]: u for u in cap.raw_json}
            for u in units:
                got = by_id[u["unit_id"]]
                assert got["unit_code"] == u["unit_code"]
                assert got["permission_status"] == u["permission"]
                assert got["forester"] == u["forester"]
                assert got["assessed_date"] == u["assessed_date"].isoformat()

        # That day's aggregates, one per captured circuit, equal to the rules over the truth.
        aggs = {r.job_guid: r for r in conn.execute(sa.text(
            "SELECT c.job_guid, a.* FROM circuit_aggregates a JOIN circuits c ON c.id = a.circuit_id"
            " WHERE a.aggregate_date = :d"), {"d": DAY})}
        assert set(aggs) == due
        for guid in due:
            want = expected_aggregate(harness.world.units_truth(guid))
            a = aggs[guid]
            got = {k: getattr(a, k) for k in want}
            assert got == want, guid
            assert a.is_rollup is False
            assert a.miles_remaining == max(a.total_miles - a.miles_planned, Decimal("0.00"))

        # Daily snapshots: every non-closed circuit, its state and that day's totals.
        snaps = {r.job_guid: r for r in conn.execute(sa.text(
            "SELECT c.job_guid, s.* FROM circuit_snapshots s JOIN circuits c ON c.id = s.circuit_id"
            " WHERE s.snapshot_date = :d AND s.snapshot_type = 'daily'"), {"d": DAY})}
        assert set(snaps) == {g for g, t in truth.items() if t["status"] != "CLOSE"}
        for guid, snap in snaps.items():
            assert snap.api_status == truth[guid]["status"]
            assert snap.miles_planned == _d(truth[guid]["miles_planned"])
            if guid in aggs:
                assert (snap.total_units, snap.units_approved) == (aggs[guid].total_units, aggs[guid].units_approved)
                assert snap.metrics_json["unit_counts_by_type"] == aggs[guid].unit_counts_by_type
            else:
                assert snap.total_units is None

        # One sync log per sync (the circuit list, the planned units); the derived build
        # writes none but fills aggregates_created of the unit sync it ran with.
        logs = conn.execute(sa.text(
            "SELECT sync_type, sync_status, sync_trigger, summary_json, aggregates_created,"
            " circuits_processed, dagster_run_id FROM sync_logs ORDER BY id")).all()
        assert [(l.sync_type, l.sync_status, l.sync_trigger) for l in logs] == [
            ("circuit_list", "completed", "scheduled"), ("aggregates", "completed", "scheduled")]
        assert logs[1].aggregates_created == len(due) and logs[1].circuits_processed == len(due)
        assert logs[0].dagster_run_id == logs[1].dagster_run_id is not None
        assert logs[0].summary_json["metrics"]["circuits_processed"] == len(truth)
        assert logs[1].summary_json["metrics"]["captures_stored"] == len(due)


def test_rerun_changes_nothing(harness, engine):
    assert harness.run(DAY).success
    before = dump_tables(engine, DATA_TABLES)
    with engine.connect() as conn:
        logs_before = conn.execute(sa.text("SELECT count(*) FROM sync_logs")).scalar_one()
    assert harness.run(DAY).success
    after = dump_tables(engine, DATA_TABLES)
    for table in DATA_TABLES:
        assert after[table] == before[table], table
    with engine.connect() as conn:
        # The audit trail does grow: one row per sync per run.
        assert conn.execute(sa.text("SELECT count(*) FROM sync_logs")).scalar_one() == logs_before + 2


def test_next_days_add_captures_history_and_keep_past_days(harness, engine):
    assert harness.run(DAY).success
    with engine.connect() as conn:
        day0 = dump_tables(engine, ["circuit_aggregates"])["circuit_aggregates"]
        caps0 = conn.execute(sa.text("SELECT count(*) FROM planned_units_snapshots")).scalar_one()

    later = DAY + timedelta(days=1)
    statuses0 = {c["job_guid"]: c["status"] for c in harness.world.circuits_truth()}
    assert harness.run(later).success
    truth1 = {c["job_guid"]: c for c in harness.world.circuits_truth()}

    with engine.connect() as conn:
        caps1 = conn.execute(sa.text("SELECT count(*) FROM planned_units_snapshots")).scalar_one()
        assert caps1 > caps0, "planners added units overnight: new captures were stored"
        # Each circuit's latest capture holds the world's units as of the second day.
        latest = {r.job_guid: r.raw_json for r in conn.execute(sa.text(
            "SELECT DISTINCT ON (s.circuit_id) c.job_guid, s.raw_json FROM planned_units_snapshots s"
            " JOIN circuits c ON c.id = s.circuit_id ORDER BY s.circuit_id, s.captured_at DESC"))}
        for guid, t in truth1.items():
            if t["status"] in UNIT_STATUSES and guid in latest:
                assert [u["unit_id"] for u in latest[guid]] == [
                    u["unit_id"] for u in harness.world.units_truth(guid)], guid

        # Circuits whose data changed got a second history version; the first was closed.
        changed = conn.execute(sa.text(
            "SELECT count(*) FROM circuit_history WHERE valid_to = :t"), {"t": sync_instant(later)}).scalar_one()
        versions = conn.execute(sa.text(
            "SELECT count(*) FROM circuit_history WHERE valid_from = :t"), {"t": sync_instant(later)}).scalar_one()
        assert changed >= 1 and versions >= changed
        # The first day's state is still rebuildable from history.
        state0 = dict(conn.execute(sa.text(
            "SELECT c.job_guid, h.api_status FROM circuit_history h JOIN circuits c ON c.id = h.circuit_id"
            " WHERE h.valid_from <= :t AND (h.valid_to IS NULL OR h.valid_to > :t)"),
            {"t": sync_instant(DAY)}).all())
        assert {g: s for g, s in state0.items() if g in statuses0} == statuses0

    # Rebuilding the first day (a backfill) gives exactly the same rows: no API call needed.
    harness.server.stop()  # no WorkStudio at all now
    import dagster as dg

    from ws_tracker.pipeline.assets import circuit_aggregates
    from ws_tracker.warehouse.resource import WarehouseResource

    res = dg.materialize([circuit_aggregates], partition_key=DAY.isoformat(),
                         resources={"warehouse": WarehouseResource(database_url=harness.db_url)})
    assert res.success
    assert dump_tables(engine, ["circuit_aggregates"])["circuit_aggregates"][: len(day0)] == day0


def test_user_edits_survive_a_normal_sync_and_force_overwrites(harness, engine):
    assert harness.run(DAY).success
    with engine.begin() as conn:
        guid, api_title = conn.execute(sa.text(
            "SELECT job_guid, title FROM circuits WHERE api_status = 'ACTIV' ORDER BY id LIMIT 1")).one()
        conn.execute(sa.text(
            "UPDATE circuits SET title = 'EDITED BY A PERSON', user_modified_fields ="
            " jsonb_build_object('title', jsonb_build_object('modified_at', now(), 'modified_by', null,"
            " 'original_value', title)) WHERE job_guid = :g"), {"g": guid})
    assert harness.run(DAY).success
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT title FROM circuits WHERE job_guid = :g"), {"g": guid}).scalar() \
            == "EDITED BY A PERSON"
    assert harness.run(DAY, force=True).success
    with engine.connect() as conn:
        title, marks = conn.execute(sa.text(
            "SELECT title, user_modified_fields FROM circuits WHERE job_guid = :g"), {"g": guid}).one()
    assert title == api_title
    assert not marks


def test_bad_credentials_fail_the_run_and_log_it_without_the_secret(harness, engine):
    harness.password = "wrong-" + PASSWORD
    result = harness.run(DAY, raise_on_error=False)
    assert not result.success
    with engine.connect() as conn:
        log = conn.execute(sa.text(
            "SELECT sync_status, error_message, error_details::text AS details, summary_json::text AS s"
            " FROM sync_logs ORDER BY id LIMIT 1")).one()
        assert conn.execute(sa.text("SELECT count(*) FROM circuits")).scalar_one() == 0
    assert log.sync_status == "failed"
    assert "401" in log.error_message or "auth" in log.error_message.lower()
    for text in (log.error_message, log.details, log.s):
        assert harness.password not in text and PASSWORD not in text


def test_seed_common_queries_run_unchanged(harness, engine):
    assert harness.run(DAY).success
    files = sorted((REPO / "sql" / "common_queries").glob("*.sql"))
    assert len(files) == 4
    with engine.connect() as conn:
        results = {f.name: conn.execute(sa.text(f.read_text())).all() for f in files}
    assert len(results["active_circuits_latest_aggregate.sql"]) > 50
    assert all(r.aggregate_date == DAY for r in results["active_circuits_latest_aggregate.sql"])
    assert len(results["regional_summary.sql"]) >= 6
    assert [r.sync_status for r in results["sync_history.sql"]] == ["completed"] * 2


def test_optional_unit_columns_are_used_when_the_view_has_them(db_url, engine):
    h = start_harness(db_url, extra_unit_columns=True)
    try:
        assert h.run(DAY).success
        with engine.connect() as conn:
            guid, raw = conn.execute(sa.text(
                "SELECT c.job_guid, s.raw_json FROM planned_units_snapshots s"
                " JOIN circuits c ON c.id = s.circuit_id ORDER BY s.unit_count DESC LIMIT 1")).one()
        truth = {u["unit_id"]: u for u in h.world.units_truth(guid)}
        assert raw and all(u["forester_username"] == truth[u["unit_id"]]["forester_user"] for u in raw)
        assert all(u["span_length_m"] == pytest.approx(truth[u["unit_id"]]["span_length_m"]) for u in raw)
    finally:
        h.server.stop()
