"""sync_circuits against PostgreSQL with hand-written listings: regions, history splicing,
planners, and the run-queue limits that keep two syncs of a kind apart."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa
import yaml

from ws_tracker.pipeline.jobs import CIRCUIT_SYNC_TAG, JOBS, UNIT_SYNC_TAG
from ws_tracker.rules.circuits import transform_circuit_rows
from ws_tracker.warehouse.circuit_sync import sync_circuits
from ws_tracker.warehouse.workflow import refresh_stages

T0 = datetime(2026, 3, 2, 22, 30, tzinfo=timezone.utc)
REPO = Path(__file__).resolve().parent.parent


def row(guid: str, wo: str = "2026-0001", ext: str = "@", region: str = "Lehigh",
        status: str = "ACTIV", miles: float = 10.0, planned: float = 1.0, taken: str = "ASPLUNDH\\jdoe"):
    return {"SS_JOBGUID": guid, "SS_WO": wo, "SS_EXT": ext, "SS_TITLE": f"LINE {wo}",
            "WSREQ_STATUS": status, "REGION": region, "VEGJOB_LENGTH": miles,
            "VEGJOB_LENGTHCOMP": planned, "VEGJOB_PRCENT": round(100 * planned / miles),
            "SS_TAKENBY": taken, "SS_EDITDATE": "/Date(2026-03-02T12:00:00.000Z)/"}


G1 = "{11111111-1111-1111-1111-111111111111}"
G2 = "{22222222-2222-2222-2222-222222222222}"
G3 = "{33333333-3333-3333-3333-333333333333}"


def sync(engine, rows, at):
    records, issues = transform_circuit_rows(rows)
    assert not [i for i in issues if i.severity == "error"]
    with engine.begin() as conn:
        return sync_circuits(conn, records, observed_at=at)


def test_regions_match_loosely_and_unseen_ones_are_created_and_reported(engine):
    result = sync(engine, [row(G1, region="  LEHIGH "), row(G2, wo="2026-0002", region="Atlantic Coast")], T0)
    assert result.regions_created == ["Atlantic Coast"]
    assert any(i["code"] == "region_created" and "Atlantic Coast" in i["message"] for i in result.issues)
    with engine.connect() as conn:
        got = dict(conn.execute(sa.text(
            "SELECT c.job_guid, r.name FROM circuits c JOIN regions r ON r.id = c.region_id")).all())
        n_lehigh = conn.execute(sa.text("SELECT count(*) FROM regions WHERE lower(name) = 'lehigh'")).scalar()
    assert got == {G1: "Lehigh", G2: "Atlantic Coast"} and n_lehigh == 1


def test_splits_link_to_the_main_job_even_when_listed_later(engine):
    sync(engine, [row(G2, ext="C_a")], T0)  # the split arrives before its main job
    sync(engine, [row(G1), row(G2, ext="C_a")], T0 + timedelta(hours=12))
    with engine.connect() as conn:
        parent = conn.execute(sa.text(
            "SELECT p.job_guid FROM circuits c JOIN circuits p ON p.id = c.parent_circuit_id"
            " WHERE c.job_guid = :g"), {"g": G2}).scalar()
    assert parent == G1


def test_history_keeps_every_change_and_splices_out_of_order_observations(engine):
    t1, t2, t_mid = T0, T0 + timedelta(days=2), T0 + timedelta(days=1)
    sync(engine, [row(G1, planned=1.0)], t1)
    sync(engine, [row(G1, planned=3.0)], t2)
    sync(engine, [row(G1, planned=2.0)], t_mid)  # e.g. an import of the day in between
    sync(engine, [row(G1, planned=3.0)], t2 + timedelta(hours=1))  # no change: no version
    with engine.connect() as conn:
        hist = conn.execute(sa.text(
            "SELECT valid_from, valid_to, miles_planned FROM circuit_history ORDER BY valid_from")).all()
    assert [(h.valid_from, h.valid_to, float(h.miles_planned)) for h in hist] == [
        (t1, t_mid, 1.0), (t_mid, t2, 2.0), (t2, None, 3.0)]


def test_planners_link_to_users_else_count_distinct_circuits(engine):
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO users (name, email, password, ws_username)"
                             " VALUES ('Jo Doe', 'jo@example.com', '!', 'asplundh\\jdoe')"))
    rows = [row(G1), row(G2, wo="2026-0002", taken="ASPLUNDH\\other "),
            row(G3, wo="2026-0003", taken="ASPLUNDH\\other")]
    sync(engine, rows, T0)
    sync(engine, rows, T0 + timedelta(hours=12))  # seen twice: still two circuits
    with engine.connect() as conn:
        links = conn.execute(sa.text(
            "SELECT c.job_guid, cu.assignment_source FROM circuit_user cu JOIN circuits c ON c.id = cu.circuit_id")).all()
        unlinked = conn.execute(sa.text("SELECT ws_username, circuit_count FROM unlinked_planners")).all()
    assert [tuple(x) for x in links] == [(G1, "api_sync")]
    assert [tuple(x) for x in unlinked] == [("ASPLUNDH\\other", 2)]


def test_run_queue_limits_keep_two_syncs_of_a_kind_apart():
    config = yaml.safe_load((REPO / "dagster.yaml").read_text())
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    limits = {l["key"]: l["limit"] for l in config["concurrency"]["runs"]["tag_concurrency_limits"]}
    assert limits == {CIRCUIT_SYNC_TAG: 1, UNIT_SYNC_TAG: 1}
    tags = {job.name: set(job.tags) for job in JOBS}
    assert CIRCUIT_SYNC_TAG in tags["circuit_sync"] and UNIT_SYNC_TAG in tags["unit_sync"]
    assert {CIRCUIT_SYNC_TAG, UNIT_SYNC_TAG} <= tags["daily_pipeline"]
    # Runs without those tags (an asset materialized from the UI's graph): the live assets'
    # concurrency pools, one run in progress each.
    from ws_tracker.definitions import defs
    from ws_tracker.pipeline.assets import CIRCUIT_SYNC_POOL, UNIT_SYNC_POOL

    assert config["concurrency"]["pools"] == {"granularity": "run", "default_limit": 1}
    graph = defs.resolve_asset_graph()
    pools = {key.to_user_string(): graph.get(key).pools for key in graph.get_all_asset_keys()}
    assert pools["circuits"] == {CIRCUIT_SYNC_POOL}
    assert pools["planned_unit_captures"] == {UNIT_SYNC_POOL}
    assert all(not p for k, p in pools.items() if k not in ("circuits", "planned_unit_captures"))


def test_new_circuits_get_the_stages_a_read_back_would_give(engine):
    """sync_circuits hands the circuits it creates to refresh_stages as they are (no read
    back); the stages, stage changes and events must equal those of the read-back path."""
    rows = [row(G1, status="ACTIV", planned=4.0), row(G2, wo="2026-0002", status="ACTIV", planned=10.0),
            row(G3, wo="2026-0003", status="QC"),
            row("{44444444-4444-4444-4444-444444444444}", wo="2026-0004", status="REWRK"),
            row("{55555555-5555-5555-5555-555555555555}", wo="2026-0005", status="CLOSE"),
            row("{66666666-6666-6666-6666-666666666666}", wo="2026-0002", ext="C_a")]
    result = sync(engine, rows, T0)
    assert len(result.stage_changes) == len(rows)

    def stages(conn):
        return (conn.execute(sa.text(
                    "SELECT circuit_id, workflow_stage, stage_changed_at, stage_source,"
                    " stage_api_status FROM circuit_ui_states ORDER BY circuit_id")).all(),
                conn.execute(sa.text(
                    "SELECT circuit_id, from_stage, to_stage, source, api_status, changed_at"
                    " FROM circuit_stage_changes ORDER BY circuit_id")).all())

    def events(changes):
        return [{k: v for k, v in c.event().items() if k != "change_id"} for c in changes]

    with engine.connect() as conn:
        given = stages(conn)
    with engine.connect() as conn:
        trans = conn.begin()
        conn.execute(sa.text("DELETE FROM circuit_stage_changes"))
        conn.execute(sa.text("DELETE FROM circuit_ui_states"))
        read_back = refresh_stages(conn, result.circuit_ids.values(), at=T0)
        assert stages(conn) == given
        trans.rollback()
    assert events(read_back) == events(result.stage_changes)
    assert {c.to_stage for c in read_back} >= {"active", "qc"}
