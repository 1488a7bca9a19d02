"""Benchmark "writes": our warehouse writes vs the earlier per-row pattern vs a raw COPY.

Two scenarios of a first sync, each written several ways into fresh copies
(``CREATE DATABASE .. TEMPLATE``) of one template database per scenario, side by side in
every repetition. Every writer starts from the same input held in memory, and its timing
includes turning that input into the rows it writes; connecting is outside the timing.

**captures**: the planned_units_snapshots rows (one per ACTIV/QC/REWRK circuit, ``raw_json``
holding its units) of a world of N circuits. Setup (never timed): the simulator in-process,
the circuit list synced into the template with ``sync_circuits`` (as the ``circuits`` asset
does), every work order's planned units fetched and normalised once (as
``planned_unit_captures`` does). Input: ``{circuit id: [PlannedUnit]}`` plus the circuits.

(a) ours: ``store_captures`` exactly as ``planned_unit_captures`` calls it: one transaction,
    one call per batch of ``CAPTURE_BATCH_CIRCUITS`` circuits or ``CAPTURE_BATCH_UNITS`` units
    (canonical JSON + hash, latest-capture lookup, COPY of the new captures, the circuits
    UPDATE, NOTIFY, workflow stages);
(b) the per-row pattern: per circuit, build the row (``canonical_json``, the pipeline's
    function, and ``decide_trigger``), SELECT by key (circuit_id, captured_at), then INSERT
    or UPDATE, each statement its own round trip and, as in the earlier system (no
    ``DB::transaction``), its own autocommitted transaction;
(b') the same statements in one transaction (for reference, not the earlier pattern);
(c) raw COPY (psycopg 3 ``cursor.copy``) of the same rows, built the same way inside the
    timed section, one transaction.

"build rows" (``canonical_json`` + trigger for every circuit, no database) is timed on its
own, for information: it is part of (a), (b), (b') and (c) alike.

**circuits**: the circuit listing of a first sync at 10x scale (``WorldConfig(seed=7,
circuits=5000)``). Setup: the four statuses' lists fetched and turned into ``CircuitRecord``
by ``transform_circuit_rows`` (deduplicated by job_guid, as the asset does); the regions
created in the template with ``ensure_regions`` (as ours would on its first run); one untimed
run of (a) into a copy, whose rows are digested (to check (a) and (c) against) and exported
for (c0).

(a) ours: ``sync_circuits(conn, records, observed_at=AT, run_id=...)`` in one transaction,
    exactly as the ``circuits`` asset calls it (circuits, circuit_history, circuit_ui_states,
    circuit_stage_changes, unlinked_planners, NOTIFY);
(b) the earlier system's ``SyncCircuitsJob::upsertCircuit``, per circuit, autocommit per
    statement: ``Circuit::updateOrCreate(['job_guid' => ..], $data)`` (SELECT .. LIMIT 1, then
    INSERT .. RETURNING id or UPDATE; api_data_json as jsonb), for a created circuit
    ``getOrCreateUiState()`` (SELECT + INSERT circuit_ui_states), then with SS_TAKENBY set
    ``User::where('ws_username', ..)->first()`` and, with no such user,
    ``UnlinkedPlanner::updateOrCreate(['ws_username' => ..], ..)`` (SELECT, INSERT or UPDATE);
    the region ids are looked up in memory (the regions exist in the template);
(b') the same statements in one transaction (for reference, not the earlier pattern);
(c) raw COPY FROM STDIN, one transaction, of exactly the rows (a) writes (in FK order:
    circuits, circuit_history, circuit_ui_states, circuit_stage_changes, unlinked_planners),
    built from the same records inside the timing, as every writer here builds its rows: ids
    from the tables' sequences, each row by the pipeline's own row functions (``_api_row``,
    ``_state_hash``, ``resolve_parents``, ``derived_stage``/``decide_stage``, as the captures
    scenario uses ``canonical_json``), with no lookups, comparisons or events (it knows the
    database is empty). A digest of the five tables' content must equal (a)'s;
(c0) for reference, not a floor: COPY FROM STDIN of (a)'s rows exported in setup as COPY text
    (``COPY (SELECT ..) TO STDOUT``): the bare storage of the result, no Python work at all.

After every writer the row counts of the tables it writes are checked against (a)'s. The
per-row writers model the statements only (psycopg 3 defaults: one round trip per statement,
server-side prepared after 5 uses), not the ORM's own PHP work. (a) is also timed for this
process's CPU, and each scenario's setup makes one untimed diagnostic run of (a) with
psycopg's ``execute``/``executemany`` wrapped to time each kind of statement: the notes
report where (a)'s time goes. The ratios: (a)/(c) for "within 1.5x of raw COPY", (b)/(a)
for ">= 10x the per-row pattern", in both scenarios.
"""

from __future__ import annotations

import gc
import json
import re
import statistics
import time
from collections import defaultdict
from contextlib import contextmanager
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from suite import Context, Figure, Floor, benchmark, release_engine
from ws_tracker.pipeline.assets import CAPTURE_BATCH_CIRCUITS, CAPTURE_BATCH_UNITS
from ws_tracker.rules.circuits import region_key, resolve_parents, transform_circuit_rows
from ws_tracker.rules.stages import decide_stage, derived_stage
from ws_tracker.rules.triggers import decide_trigger
from ws_tracker.rules.units import canonical_json, normalise_units
from ws_tracker.simulator.server import SimulatorServer
from ws_tracker.simulator.world import World, WorldConfig
from ws_tracker.warehouse.captures import circuits_needing_units, store_captures
from ws_tracker.warehouse.circuit_sync import (
    _HISTORY_COLUMNS,
    _INSERT_COLUMNS,
    HISTORY_FIELDS,
    UNKNOWN_REGION,
    _api_row,
    _state_hash,
    ensure_regions,
    sync_circuits,
)
from ws_tracker.warehouse.engine import make_engine
from ws_tracker.workstudio.client import WorkStudioClient

USER = "ASPLUNDH\\bench"
PASSWORD = "bench-Pa55"
AT = datetime(2026, 3, 4, 22, 30, tzinfo=timezone.utc)  # Wed 17:30 New York
AT_NY_DATE = AT.astimezone(ZoneInfo("America/New_York")).date()
RUN_ID = "bench-writes"
STATUSES = ("ACTIV", "QC", "REWRK", "CLOSE")

# Tables sync_circuits writes on a first sync, in FK order (the order (c) copies them in).
CIRCUIT_TABLES = ("circuits", "circuit_history", "circuit_ui_states", "circuit_stage_changes",
                  "unlinked_planners")
# The tables the earlier pattern writes (it kept no history and no stage changes).
EARLIER_TABLES = ("circuits", "circuit_ui_states", "unlinked_planners")


# --- shared ------------------------------------------------------------------------------

@contextmanager
def _driver(url: str, *, autocommit: bool = False):
    """A psycopg 3 connection of its own (the per-row pattern and COPY bypass SQLAlchemy)."""
    engine = make_engine(url, poolclass=sa.pool.NullPool, pool_pre_ping=False)
    try:
        raw = engine.raw_connection()
        try:
            pg = raw.driver_connection
            pg.rollback()  # idle, so autocommit may be set
            pg.autocommit = autocommit
            yield pg
        finally:
            raw.close()
    finally:
        engine.dispose()


def _counts(url: str, tables: tuple[str, ...]) -> dict[str, int]:
    with _driver(url) as pg, pg.cursor() as cur:
        out = {}
        for t in tables:
            cur.execute(f"SELECT count(*) FROM {t}")
            out[t] = cur.fetchone()[0]
        return out


def _warm_engine(url: str) -> sa.Engine:
    """An engine with its pooled connection already open (connecting is not timed)."""
    engine = make_engine(url)
    with engine.connect():
        pass
    return engine


def _pg_settings(url: str) -> str:
    with _driver(url) as pg, pg.cursor() as cur:
        got = []
        for name in ("fsync", "synchronous_commit", "wal_sync_method", "shared_buffers"):
            cur.execute(f"SHOW {name}")
            got.append(f"{name}={cur.fetchone()[0]}")
        return ", ".join(got)


_KIND = re.compile(r"^\s*(INSERT INTO \w+|UPDATE \w+|DELETE FROM \w+|SELECT pg_notify"
                   r"|SELECT pg_advisory_xact_lock|SELECT)", re.I)


@contextmanager
def _statement_times():
    """Wall time spent inside psycopg's execute/executemany, by statement kind (parameter
    adaptation, sending, the server's work, the results). For the untimed diagnostic runs of
    setup only: the wrapper is removed on exit, and the timed runs never see it."""
    import psycopg

    acc: dict[str, float] = defaultdict(float)
    saved = {name: getattr(psycopg.Cursor, name) for name in ("execute", "executemany")}

    def wrap(orig):
        def run(self, query, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                return orig(self, query, *args, **kwargs)
            finally:
                m = _KIND.match(query if isinstance(query, str) else str(query))
                kind = m.group(1) if m else "other"
                kind = {"SELECT pg_notify": "NOTIFY", "SELECT": "reads (SELECT)",
                        "SELECT pg_advisory_xact_lock": "advisory locks"}.get(kind, kind)
                acc[kind] += time.perf_counter() - t0
        return run

    for name, fn in saved.items():
        setattr(psycopg.Cursor, name, wrap(fn))
    try:
        yield acc
    finally:
        for name, fn in saved.items():
            setattr(psycopg.Cursor, name, fn)


def _breakdown(wall: float, acc: dict[str, float]) -> str:
    """'X s: a s in statements (k1 a1, k2 a2, ...), the other b s Python between them'."""
    inside = sum(acc.values())
    top = sorted(acc.items(), key=lambda kv: -kv[1])
    shown = ", ".join(f"{k} {v:.2f} s" for k, v in top if v >= 0.01)
    return (f"{wall:.2f} s: {inside:.2f} s inside psycopg's execute/executemany (parameter "
            f"adaptation, the server's work, the results: {shown}), the other "
            f"{wall - inside:.2f} s Python between them")


# --- scenario 1: captures -----------------------------------------------------------------

CAPTURE_COLS = ("circuit_id", "work_order", "extension", "snapshot_trigger", "content_hash",
                "unit_count", "api_status", "percent_complete", "captured_at", "raw_json",
                "dagster_run_id")


def _capture_row(cid: int, units, c) -> tuple:
    """The row store_captures writes for a circuit on a first sync (no earlier capture)."""
    payload, digest = canonical_json(units)
    trigger = decide_trigger(None, None, c.api_status, c.percent_complete, "scheduled")
    return (cid, c.work_order, c.extension, trigger, digest, len(units), c.api_status,
            c.percent_complete, AT, payload, RUN_ID)


def _build_captures(captures, circuits) -> list[tuple]:
    return [_capture_row(cid, units, circuits[cid]) for cid, units in captures.items()]


def _batches(captures):
    """The pipeline's batches: CAPTURE_BATCH_CIRCUITS circuits, or fewer once their units reach
    CAPTURE_BATCH_UNITS (planned_unit_captures)."""
    batch: dict = {}
    units = 0
    for cid, circuit_units in captures.items():
        batch[cid] = circuit_units
        units += len(circuit_units)
        if len(batch) >= CAPTURE_BATCH_CIRCUITS or units >= CAPTURE_BATCH_UNITS:
            yield batch
            batch, units = {}, 0
    if batch:
        yield batch


def _captures_ours(url: str, captures, circuits) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds) of store_captures as the pipeline calls it."""
    engine = _warm_engine(url)
    try:
        c0, t0 = time.process_time(), time.perf_counter()
        with engine.begin() as conn:
            for batch in _batches(captures):
                store_captures(conn, batch, circuits, captured_at=AT, run_trigger="scheduled",
                               run_id=RUN_ID)
        return time.perf_counter() - t0, time.process_time() - c0
    finally:
        engine.dispose()


_CAP_SELECT = ("SELECT * FROM planned_units_snapshots WHERE circuit_id = %s AND captured_at = %s"
               " LIMIT 1")
_CAP_INSERT = (f"INSERT INTO planned_units_snapshots ({', '.join(CAPTURE_COLS)}) VALUES "
               f"({', '.join(['%s'] * len(CAPTURE_COLS))}) RETURNING id")
_CAP_UPDATE = ("UPDATE planned_units_snapshots SET work_order = %s, extension = %s,"
               " snapshot_trigger = %s, content_hash = %s, unit_count = %s, api_status = %s,"
               " percent_complete = %s, raw_json = %s, dagster_run_id = %s, updated_at = now()"
               " WHERE id = %s")


def _captures_per_row(url: str, captures, circuits, *, autocommit: bool) -> float:
    with _driver(url, autocommit=autocommit) as pg:
        t0 = time.perf_counter()
        with pg.cursor() as cur:
            for cid, units in captures.items():
                r = _capture_row(cid, units, circuits[cid])
                cur.execute(_CAP_SELECT, (r[0], r[8]))
                found = cur.fetchone()
                if found is None:
                    cur.execute(_CAP_INSERT, r)
                    cur.fetchone()
                else:
                    cur.execute(_CAP_UPDATE, (*r[1:8], r[9], r[10], found[0]))
        if not autocommit:
            pg.commit()
        return time.perf_counter() - t0


def _captures_copy(url: str, captures, circuits) -> float:
    with _driver(url) as pg:
        t0 = time.perf_counter()
        with pg.cursor() as cur:
            with cur.copy(f"COPY planned_units_snapshots ({', '.join(CAPTURE_COLS)})"
                          " FROM STDIN") as cp:
                for cid, units in captures.items():
                    cp.write_row(_capture_row(cid, units, circuits[cid]))
        pg.commit()
        return time.perf_counter() - t0


def _capture_counts(url: str) -> tuple[int, int]:
    with _driver(url) as pg, pg.cursor() as cur:
        cur.execute("SELECT count(*), coalesce(sum(unit_count), 0) FROM planned_units_snapshots")
        return tuple(cur.fetchone())


@contextmanager
def _captures_scenario(ctx: Context):
    n = 500 if ctx.quick else 3000
    world = World(WorldConfig(seed=7, circuits=n, units_per_circuit=(50, 200)))
    world.set_clock(AT)
    server = SimulatorServer(world, accounts={USER: PASSWORD}).start()
    template = ctx.fresh_database()
    try:
        with WorkStudioClient(server.base_url, USER, PASSWORD, requests_per_second=None) as client:
            records = {}
            for status in STATUSES:
                recs, _ = transform_circuit_rows(client.circuits_by_status(status).rows)
                records.update((r.job_guid, r) for r in recs)
            engine = make_engine(template)
            try:
                with engine.begin() as conn:
                    sync_circuits(conn, list(records.values()), observed_at=AT, run_id=RUN_ID)
                with engine.connect() as conn:
                    todo = circuits_needing_units(conn, AT)
            finally:
                engine.dispose()
            by_wo: dict[str, list] = {}
            for c in todo:
                by_wo.setdefault(c.work_order, []).append(c)
            captures = {}
            for wo, jobs in by_wo.items():
                units_by_ext, _ = normalise_units(client.planned_units(wo).rows)
                for c in jobs:
                    captures[c.id] = units_by_ext.get(c.extension, [])
    finally:
        server.stop()
    circuits = {c.id: c for c in todo}
    built = _build_captures(captures, circuits)
    raw_mib = sum(len(r[9]) for r in built) / 2**20
    units = sum(len(u) for u in captures.values())
    expected = (len(built), units)
    del built
    rows = len(captures)
    release_engine(template)
    settings = _pg_settings(template)
    # An untimed diagnostic run of (a), statement by statement (also a warm-up).
    url = ctx.clone_database(template)
    try:
        with _statement_times() as acc:
            diag_wall, _ = _captures_ours(url, captures, circuits)
        assert _capture_counts(url) == expected
    finally:
        ctx.drop_database(url)
    diagnosis = _breakdown(diag_wall, acc)
    flushed = "fsync=on" in settings and "synchronous_commit=on" in settings
    ctx.note(f"PostgreSQL: the embedded server on a unix socket ({settings}): no network round "
             "trip, so the per-row pattern pays far less per statement here than against a "
             "remote server" + ("; every commit waits for its WAL flush to this machine's disk."
                                if flushed else "; commits do NOT wait for a WAL flush here."))
    ctx.note(f"**captures.** World `WorldConfig(seed=7, circuits={n}, units_per_circuit=(50, "
             f"200))`, first sync on 2026-03-04 17:30 New York: {rows:,} captures "
             f"(one row per ACTIV/QC/REWRK circuit), {units:,} units, {raw_mib:.0f} MiB of "
             "raw_json. Every writer gets the same input, the normalised units in memory, and "
             "builds its rows inside its timing with the pipeline's `canonical_json` (one JSON "
             "encoding + SHA-256 per circuit). Each writer has its own fresh copy of the "
             "template (circuits synced, no captures); the order (a), (b), (b'), (c) is the "
             "same every repetition. The earlier system stored no captures (it computed "
             "aggregates and dropped the units), so (b) is the earlier system's write pattern "
             "(per-row SELECT then INSERT or UPDATE, autocommit) applied to this table." +
             (f" Quick mode: {n:,} circuits, not 3,000." if ctx.quick else ""))

    samples: list[dict[str, float]] = []

    def measure() -> dict[str, float]:
        out: dict[str, float] = {"captures_rows": rows, "captures_units": units,
                                 "captures_raw_mib": raw_mib}
        samples.append(out)
        t0 = time.perf_counter()
        _build_captures(captures, circuits)
        out["captures_build_s"] = time.perf_counter() - t0
        for key, fn in (
                ("captures_ours", lambda u: _captures_ours(u, captures, circuits)),
                ("captures_per_row_s",
                 lambda u: _captures_per_row(u, captures, circuits, autocommit=True)),
                ("captures_per_row_tx_s",
                 lambda u: _captures_per_row(u, captures, circuits, autocommit=False)),
                ("captures_copy_s", lambda u: _captures_copy(u, captures, circuits))):
            url = ctx.clone_database(template)
            try:
                ctx.checkpoint()
                if key == "captures_ours":
                    out["captures_ours_s"], out["captures_ours_cpu_s"] = fn(url)
                else:
                    out[key] = fn(url)
                written = _capture_counts(url)
                assert written == expected, (key, written, expected)
            finally:
                ctx.drop_database(url)
        out["captures_vs_copy"] = out["captures_ours_s"] / out["captures_copy_s"]
        out["captures_vs_per_row"] = out["captures_per_row_s"] / out["captures_ours_s"]
        out["captures_vs_per_row_tx"] = out["captures_per_row_tx_s"] / out["captures_ours_s"]
        out["captures_ceiling"] = out["captures_per_row_s"] / out["captures_copy_s"]
        out["captures_build_share"] = 100 * out["captures_build_s"] / out["captures_ours_s"]
        return out

    try:
        yield measure, lambda: _captures_summary(ctx, samples, rows, raw_mib, diagnosis)
    finally:
        ctx.drop_database(template)


def _captures_summary(ctx: Context, samples, rows: int, raw_mib: float, diagnosis: str) -> None:
    if not samples:
        return
    med = {k: statistics.median(s[k] for s in samples) for k in samples[0]}
    build = med["captures_build_s"]
    ctx.note(
        f"**captures: what dominates (medians).** Few, fat rows: {rows:,} rows of "
        f"~{raw_mib * 1024 / max(rows, 1):.0f} KiB of JSON each. Building them "
        f"(`canonical_json`: a dict per unit, one `json.dumps`, SHA-256) takes {build:.2f} s "
        f"alone, {med['captures_build_share']:.0f} % of (a), and every writer pays it. Beyond "
        f"it, COPY spends {med['captures_copy_s'] - build:.2f} s sending and storing the jsonb, "
        f"(a) {med['captures_ours_s'] - build:.2f} s, the per-row pattern "
        f"{med['captures_per_row_s'] - build:.2f} s with autocommit ({2 * rows:,} round trips, "
        f"{rows:,} commits) and {med['captures_per_row_tx_s'] - build:.2f} s in one "
        f"transaction. (a) {med['captures_ours_s']:.2f} s of wall time, "
        f"{med['captures_ours_cpu_s']:.2f} s of it CPU in this process (building, parameter "
        "adaptation, event payloads), the rest waiting for the server. In the untimed "
        f"diagnostic run of setup, (a) took {diagnosis}; besides storing the rows (COPY, not "
        "timed by that wrapper), (a) runs the "
        "latest-capture lookup per batch, the circuits UPDATE, NOTIFY payloads and the "
        "workflow-stage refresh, which (b) and (c) do not. (b)/(c), the per-row pattern vs a "
        f"raw COPY: {med['captures_ceiling']:.2f}x (median of the per-run ratios). With one fat "
        "row per circuit, the per-statement cost of the per-row pattern is small next to "
        "building and storing the JSON, so \">= 10x the per-row pattern\" would take a writer "
        f"finishing in {med['captures_per_row_s'] / 10:.2f} s: less than building the rows "
        f"alone ({build:.2f} s) and far less than a COPY of them "
        f"({med['captures_copy_s']:.2f} s). The rows are fixed by the schema analysts query "
        "(seed 002: one planned_units_snapshots row per capture, `raw_json` JSONB holding its "
        "full planned units), so no writer of these rows can meet that floor here.")


# --- scenario 2: circuits -----------------------------------------------------------------

_CIRCUIT_COLS = ("job_guid", "work_order", "extension", "region_id", "title", "contractor",
                 "cycle_type", "total_miles", "miles_planned", "percent_complete", "total_acres",
                 "start_date", "api_modified_date", "api_modified_at", "api_status",
                 "api_version", "job_type", "taken_by", "api_data_json", "last_synced_at",
                 "created_at", "updated_at")
_C_SELECT = "SELECT * FROM circuits WHERE job_guid = %s LIMIT 1"
_C_INSERT = (f"INSERT INTO circuits ({', '.join(_CIRCUIT_COLS)}) VALUES "
             f"({', '.join(f'%({c})s' for c in _CIRCUIT_COLS)}) RETURNING id")
_C_UPDATE = ("UPDATE circuits SET " + ", ".join(
    f"{c} = %({c})s" for c in _CIRCUIT_COLS if c not in ("job_guid", "created_at"))
    + " WHERE id = %(id)s")
_UI_SELECT = "SELECT * FROM circuit_ui_states WHERE circuit_id = %s LIMIT 1"
_UI_INSERT = ("INSERT INTO circuit_ui_states (circuit_id, workflow_stage, stage_changed_at,"
              " stage_source, stage_api_status, created_at, updated_at)"
              " VALUES (%s, %s, %s, 'api', %s, %s, %s) RETURNING id")
_USER_SELECT = "SELECT * FROM users WHERE ws_username = %s LIMIT 1"
_PIVOT_SELECT = "SELECT * FROM circuit_user WHERE circuit_id = %s AND user_id = %s"
_PIVOT_INSERT = ("INSERT INTO circuit_user (circuit_id, user_id, assignment_source, assigned_at)"
                 " VALUES (%s, %s, 'api_sync', %s)")
_UP_SELECT = "SELECT * FROM unlinked_planners WHERE ws_username = %s LIMIT 1"
# occurrence_count + 1 in the earlier code; here circuit_count, which it then meant.
_UP_INSERT = ("INSERT INTO unlinked_planners (ws_username, first_seen_at, last_seen_at,"
              " circuit_count, created_at, updated_at) VALUES (%s, %s, %s, 1, %s, %s)"
              " RETURNING id")
_UP_UPDATE = ("UPDATE unlinked_planners SET last_seen_at = %s, circuit_count = circuit_count + 1,"
              " updated_at = %s WHERE id = %s")


def _earlier_circuit_data(rec, regions: dict[str, int]) -> dict:
    """The earlier transformer's ``$data`` for a circuit, in this schema (same values ours
    writes; parent links, history and stages are ours only)."""
    return {
        "job_guid": rec.job_guid, "work_order": rec.work_order, "extension": rec.extension,
        "region_id": regions[region_key(rec.region_name or UNKNOWN_REGION)],
        "title": rec.title if rec.title is not None else rec.work_order,
        "contractor": rec.contractor, "cycle_type": rec.cycle_type,
        "total_miles": rec.total_miles, "miles_planned": rec.miles_planned,
        "percent_complete": rec.percent_complete, "total_acres": 0,
        "start_date": rec.start_date, "api_modified_date": rec.api_modified_date or AT_NY_DATE,
        "api_modified_at": rec.api_modified_at, "api_status": rec.api_status,
        "api_version": rec.api_version, "job_type": rec.job_type, "taken_by": rec.taken_by,
        "api_data_json": json.dumps(rec.api_data), "last_synced_at": AT,
        "created_at": AT, "updated_at": AT,
    }


def _circuits_ours(url: str, records) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds) of sync_circuits as the asset calls it."""
    engine = _warm_engine(url)
    try:
        c0, t0 = time.process_time(), time.perf_counter()
        with engine.begin() as conn:
            sync_circuits(conn, records, observed_at=AT, run_id=RUN_ID)
        return time.perf_counter() - t0, time.process_time() - c0
    finally:
        engine.dispose()


def _circuits_per_row(url: str, records, regions, *, autocommit: bool) -> tuple[float, int, int]:
    """(seconds, statements, write statements) of SyncCircuitsJob::upsertCircuit per circuit."""
    statements = writes = 0
    with _driver(url, autocommit=autocommit) as pg:
        t0 = time.perf_counter()
        with pg.cursor() as cur:
            for rec in records:
                data = _earlier_circuit_data(rec, regions)
                cur.execute(_C_SELECT, (rec.job_guid,))
                found = cur.fetchone()
                if found is None:
                    cur.execute(_C_INSERT, data)
                    cid, created = cur.fetchone()[0], True
                else:
                    cid, created = found[0], False
                    cur.execute(_C_UPDATE, {**data, "id": cid})
                statements, writes = statements + 2, writes + 1
                if created:  # getOrCreateUiState()
                    cur.execute(_UI_SELECT, (cid,))
                    statements += 1
                    if cur.fetchone() is None:
                        cur.execute(_UI_INSERT, (
                            cid, derived_stage(rec.api_status, rec.percent_complete, 0), AT,
                            rec.api_status, AT, AT))
                        cur.fetchone()
                        statements, writes = statements + 1, writes + 1
                if rec.taken_by:  # linkPlanner()
                    cur.execute(_USER_SELECT, (rec.taken_by,))
                    user = cur.fetchone()
                    statements += 1
                    if user is not None:  # syncWithoutDetaching
                        cur.execute(_PIVOT_SELECT, (cid, user[0]))
                        statements += 1
                        if cur.fetchone() is None:
                            cur.execute(_PIVOT_INSERT, (cid, user[0], AT))
                            statements, writes = statements + 1, writes + 1
                    else:  # UnlinkedPlanner::updateOrCreate
                        cur.execute(_UP_SELECT, (rec.taken_by,))
                        planner = cur.fetchone()
                        if planner is None:
                            cur.execute(_UP_INSERT, (rec.taken_by, AT, AT, AT, AT))
                            cur.fetchone()
                        else:
                            cur.execute(_UP_UPDATE, (AT, AT, planner[0]))
                        statements, writes = statements + 2, writes + 1
        if not autocommit:
            pg.commit()
        return time.perf_counter() - t0, statements, writes


def _columns(cur, table: str) -> list[str]:
    cur.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s"
                " AND table_schema = current_schema() AND is_generated = 'NEVER'"
                " ORDER BY ordinal_position", (table,))
    return [r[0] for r in cur.fetchall()]


def _export(url: str) -> dict[str, tuple[list[str], bytes]]:
    """Every row of CIRCUIT_TABLES, ids included, as COPY text, in memory."""
    out = {}
    with _driver(url) as pg, pg.cursor() as cur:
        for table in CIRCUIT_TABLES:
            cols = _columns(cur, table)
            buf = bytearray()
            with cur.copy(f"COPY (SELECT {', '.join(cols)} FROM {table} ORDER BY id)"
                          " TO STDOUT") as cp:
                for chunk in cp:
                    buf += chunk
            out[table] = (cols, bytes(buf))
    return out


# What (c) builds, per table: (a)'s rows from the same records, with the pipeline's own row
# functions (as the captures scenario builds its rows with canonical_json), and no lookups,
# comparisons or events (a fresh database: every circuit is new).
_C_COPY_COLUMNS = {
    "circuits": ("id", *_INSERT_COLUMNS, "parent_circuit_id"),
    "circuit_history": _HISTORY_COLUMNS,
    "circuit_ui_states": ("circuit_id", "workflow_stage", "stage_changed_at",
                          "stage_changed_by", "stage_source", "stage_api_status"),
    "circuit_stage_changes": ("id", "circuit_id", "from_stage", "to_stage", "source",
                              "api_status", "changed_at", "changed_by", "dagster_run_id"),
    "unlinked_planners": ("ws_username", "first_seen_at", "last_seen_at", "circuit_count"),
}


def _circuits_copy_built(url: str, records, regions: dict[str, int]) -> float:
    """(c): build (a)'s rows of the five tables from the records and COPY them, one
    transaction; ids from the tables' sequences, as a COPY writer must know them."""
    with _driver(url) as pg:
        t0 = time.perf_counter()
        with pg.cursor() as cur:
            def ids(table: str) -> list[int]:
                cur.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id'))"
                            " FROM generate_series(1, %s)", (table, len(records)))
                return sorted(r[0] for r in cur.fetchall())

            circuit_ids = dict(zip((r.job_guid for r in records), ids("circuits")))
            change_ids = ids("circuit_stage_changes")
            parents = resolve_parents(records)
            api = {}
            for rec in records:
                row = _api_row(rec, regions[region_key(rec.region_name or UNKNOWN_REGION)], AT)
                parent = parents.get(rec.job_guid)
                row["parent_circuit_id"] = circuit_ids.get(parent) if parent else None
                api[rec.job_guid] = row
            planners: dict[str, int] = {}
            for rec in records:
                if rec.taken_by:
                    planners[rec.taken_by] = planners.get(rec.taken_by, 0) + 1

            def circuits():
                for guid, row in api.items():
                    yield (circuit_ids[guid], *(row[c] for c in _INSERT_COLUMNS[:-2]),
                           json.dumps(row["api_data_json"]), AT, row["parent_circuit_id"])

            def history():
                for guid, row in api.items():
                    state = {k: row.get(k) for k in HISTORY_FIELDS}
                    yield (circuit_ids[guid], AT, None, _state_hash(state),
                           *(state[k] for k in HISTORY_FIELDS), RUN_ID)

            stages = {guid: decide_stage(None, None, None, row["api_status"], derived_stage(
                row["api_status"], row["percent_complete"], 0)) for guid, row in api.items()}

            def ui_states():
                for guid, row in api.items():
                    d = stages[guid]
                    yield (circuit_ids[guid], d.stage, AT, None, d.source, row["api_status"])

            def stage_changes():
                for change_id, (guid, row) in zip(change_ids, api.items()):
                    d = stages[guid]
                    yield (change_id, circuit_ids[guid], None, d.stage, d.source,
                           row["api_status"], AT, None, RUN_ID)

            def unlinked():
                for name in sorted(planners):
                    yield (name, AT, AT, planners[name])

            for table, rows in (("circuits", circuits()), ("circuit_history", history()),
                                ("circuit_ui_states", ui_states()),
                                ("circuit_stage_changes", stage_changes()),
                                ("unlinked_planners", unlinked())):
                with cur.copy(f"COPY {table} ({', '.join(_C_COPY_COLUMNS[table])})"
                              " FROM STDIN") as cp:
                    for row in rows:
                        cp.write_row(row)
        pg.commit()
        return time.perf_counter() - t0


# The rows' content, to check that (c) wrote what (a) wrote (not just as many rows).
_DIGEST = {
    "circuits": "id, job_guid, region_id, title, total_miles, api_status, start_date,"
                " api_modified_at, api_data_json, parent_circuit_id, last_synced_at",
    "circuit_history": "circuit_id, state_hash, valid_from, valid_to, parent_circuit_id",
    "circuit_ui_states": "circuit_id, workflow_stage, stage_source, stage_api_status",
    "circuit_stage_changes": "id, circuit_id, from_stage, to_stage, source, changed_at",
    "unlinked_planners": "ws_username, circuit_count, first_seen_at",
}


def _digests(url: str) -> dict[str, str]:
    with _driver(url) as pg, pg.cursor() as cur:
        out = {}
        for table, cols in _DIGEST.items():
            cur.execute(f"SELECT md5(string_agg(t::text, '|' ORDER BY t::text))"
                        f" FROM (SELECT {cols} FROM {table}) t")
            out[table] = cur.fetchone()[0]
        return out


def _circuits_copy(url: str, dump) -> float:
    with _driver(url) as pg:
        t0 = time.perf_counter()
        with pg.cursor() as cur:
            for table in CIRCUIT_TABLES:
                cols, data = dump[table]
                with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp:
                    cp.write(data)
        pg.commit()
        return time.perf_counter() - t0


@contextmanager
def _circuits_scenario(ctx: Context):
    n = 1000 if ctx.quick else 5000
    world = World(WorldConfig(seed=7, circuits=n))
    world.set_clock(AT)
    server = SimulatorServer(world, accounts={USER: PASSWORD}).start()
    try:
        with WorkStudioClient(server.base_url, USER, PASSWORD, requests_per_second=None) as client:
            by_guid = {}
            for status in STATUSES:
                recs, _ = transform_circuit_rows(client.circuits_by_status(status).rows)
                by_guid.update((r.job_guid, r) for r in recs)  # the later listing wins
    finally:
        server.stop()
    records = list(by_guid.values())
    template = ctx.fresh_database()
    engine = make_engine(template)
    try:
        with engine.begin() as conn:
            regions, created_regions = ensure_regions(
                conn, [r.region_name or UNKNOWN_REGION for r in records])
            users = conn.execute(sa.text("SELECT count(*) FROM users")).scalar_one()
    finally:
        engine.dispose()
    release_engine(template)
    # An untimed diagnostic run of (a), statement by statement (also a warm-up); its rows are
    # what (c) copies and what the others are checked against.
    url = ctx.clone_database(template)
    try:
        with _statement_times() as acc:
            diag_wall, _ = _circuits_ours(url, records)
        diagnosis = _breakdown(diag_wall, acc)
        expected = _counts(url, CIRCUIT_TABLES + ("circuit_user",))
        expected_digests = _digests(url)
        dump = _export(url)
    finally:
        ctx.drop_database(url)
    assert expected.pop("circuit_user") == 0 and users == 0, "users would link planners"
    dump_mib = sum(len(d) for _, d in dump.values()) / 2**20
    api_mib = sum(len(json.dumps(r.api_data)) for r in records) / 2**20
    taken = sum(1 for r in records if r.taken_by)
    ctx.note(f"**circuits.** World `WorldConfig(seed=7, circuits={n})`, the ACTIV, QC, REWRK "
             f"and CLOSE listings of 2026-03-04 17:30 New York: {len(records):,} circuits "
             f"({taken:,} with SS_TAKENBY; {api_mib:.1f} MiB of api_data_json), "
             f"{len({region_key(r.region_name or UNKNOWN_REGION) for r in records})} regions "
             "(in the template before any writer runs: `ensure_regions` created "
             f"{len(created_regions)}, the rest are the migration's reference data), no users "
             "(every planner is unlinked). Rows (a) writes: " + ", ".join(
                 f"{t} {c:,}" for t, c in expected.items()) +
             f" ({dump_mib:.1f} MiB as COPY text). The earlier pattern writes circuits, "
             "circuit_ui_states and unlinked_planners only (no history, no stage changes, no "
             "parent links, no NOTIFY): (a) does strictly more. Its 0.5 s pause every 5 "
             "circuits (an API rate limit inside the write loop) is left out, and so is "
             "Eloquent's PHP work (hydration, casts, model events): (b) is its statements "
             "only, on psycopg's defaults (one round trip each, prepared after 5 uses). "
             "Order (a), (b), "
             "(b'), (c), each into its own fresh copy of the template." +
             (f" Quick mode: {n:,} circuits, not 5,000." if ctx.quick else ""))

    samples: list[dict[str, float]] = []

    def measure() -> dict[str, float]:
        out: dict[str, float] = {"circuits_listed": len(records)}
        samples.append(out)
        t0 = time.perf_counter()
        for rec in records:
            _earlier_circuit_data(rec, regions)
        out["circuits_build_s"] = time.perf_counter() - t0
        for key in ("circuits_ours_s", "circuits_per_row_s", "circuits_per_row_tx_s",
                    "circuits_copy_s", "circuits_copy_dump_s"):
            url = ctx.clone_database(template)
            try:
                ctx.checkpoint()
                if key == "circuits_ours_s":
                    out[key], out["circuits_ours_cpu_s"] = _circuits_ours(url, records)
                    tables = CIRCUIT_TABLES
                    assert _digests(url) == expected_digests, key
                elif key == "circuits_copy_s":
                    out[key], tables = _circuits_copy_built(url, records, regions), CIRCUIT_TABLES
                    got = _digests(url)
                    assert got == expected_digests, (key, {
                        t for t in got if got[t] != expected_digests[t]})
                elif key == "circuits_copy_dump_s":
                    out[key], tables = _circuits_copy(url, dump), CIRCUIT_TABLES
                else:
                    out[key], stmts, writes = _circuits_per_row(
                        url, records, regions, autocommit=key == "circuits_per_row_s")
                    out["circuits_per_row_statements"] = stmts
                    out["circuits_per_row_writes"] = writes
                    tables = EARLIER_TABLES
                written = _counts(url, tables)
                want = {t: expected[t] for t in tables}
                assert written == want, (key, written, want)
            finally:
                ctx.drop_database(url)
        out["circuits_vs_copy"] = out["circuits_ours_s"] / out["circuits_copy_s"]
        out["circuits_vs_copy_dump"] = out["circuits_ours_s"] / out["circuits_copy_dump_s"]
        out["circuits_vs_per_row"] = out["circuits_per_row_s"] / out["circuits_ours_s"]
        out["circuits_vs_per_row_tx"] = out["circuits_per_row_tx_s"] / out["circuits_ours_s"]
        out["circuits_ceiling"] = out["circuits_per_row_s"] / out["circuits_copy_s"]
        return out

    try:
        yield measure, lambda: _circuits_summary(ctx, samples, len(records), diagnosis)
    finally:
        ctx.drop_database(template)


def _circuits_summary(ctx: Context, samples, n_records: int, diagnosis: str) -> None:
    if not samples:
        return
    med = {k: statistics.median(s[k] for s in samples) for k in samples[0]}
    commits = med["circuits_per_row_s"] - med["circuits_per_row_tx_s"]
    ctx.note(
        f"**circuits: what dominates (medians).** (b) sends "
        f"{med['circuits_per_row_statements']:,.0f} statements, one round trip each, "
        f"{med['circuits_per_row_writes']:,.0f} of them writes, each committed on its own: "
        f"{med['circuits_per_row_s']:.2f} s, of which ~{commits:.2f} s is the per-statement "
        f"commits ((b) - (b')) and {med['circuits_build_s']:.2f} s building its rows in Python "
        f"(api_data_json encoded per circuit). (a) writes the same {n_records:,} circuits "
        "and more (history, stage changes, NOTIFY) in one transaction with a few dozen "
        f"statements, the big ones COPY or set-based: {med['circuits_ours_s']:.2f} s, "
        f"{med['circuits_ours_cpu_s']:.2f} s of it CPU in this process (records to rows, "
        "comparisons, state hashes, event payloads, parameter adaptation), the rest waiting "
        f"for the server. In the untimed diagnostic run of setup, (a) took {diagnosis}. (c) "
        f"builds the identical rows from the records and COPYs them in "
        f"{med['circuits_copy_s']:.2f} s (its digest equals (a)'s); beyond it, (a) reads what "
        "is stored (circuits by job_guid, users; UI states, history and captures only for "
        "circuits stored before, none in a first sync), compares, and queues two "
        "events per new circuit (`circuit_updated`, `workflow_changed`). Restoring (a)'s rows "
        f"from exported COPY text, with no Python work at all, takes "
        f"{med['circuits_copy_dump_s']:.2f} s ((c0), reference).")


# --- the benchmark --------------------------------------------------------------------------

@benchmark(
    "writes", "Warehouse writes",
    measures=(
        "Two first-sync writes, each written four ways into fresh copies of one database, side "
        "by side in each repetition; every writer starts from the same input in memory and its "
        "timing includes building the rows it writes. **captures**: the planned_units_snapshots "
        "rows of `WorldConfig(seed=7, circuits=3000, units_per_circuit=(50, 200))` (one per "
        "ACTIV/QC/REWRK circuit, `raw_json` holding its units), from the normalised units: (a) "
        "`store_captures` exactly as `planned_unit_captures` calls it (one transaction, batches "
        "of 200); (b) the per-row pattern: per row build it (`canonical_json`, the pipeline's "
        "function), SELECT by (circuit_id, captured_at), then INSERT or UPDATE, every statement "
        "autocommitted as in the earlier system; (b') the same statements in one transaction "
        "(for reference, not the earlier pattern); (c) raw COPY (psycopg 3) of the same rows, "
        "built the same way. **circuits**: the circuit listing of `WorldConfig(seed=7, "
        "circuits=5000)` (ACTIV, QC, REWRK, CLOSE), from the `CircuitRecord`s: (a) "
        "`sync_circuits` in one transaction, as the `circuits` asset calls it; (b) the earlier "
        "system's `SyncCircuitsJob::upsertCircuit` per circuit with autocommit (Eloquent "
        "`updateOrCreate` by job_guid = SELECT then INSERT/UPDATE, `getOrCreateUiState` for a "
        "created circuit, the planner's user lookup and `UnlinkedPlanner::updateOrCreate`); "
        "(b') the same in one transaction; (c) raw COPY FROM STDIN of exactly the rows (a) "
        "writes (5 tables), built from the records inside the timing with the pipeline's row "
        "functions and no lookups, comparisons or events, its content digest checked against "
        "(a)'s; (c0) for reference, a restore of (a)'s rows exported as COPY text (no Python "
        "work). Row counts are checked after every writer. Each writer gets its copy of the "
        "template, then a CHECKPOINT (the previous writer's and the copy's writes flushed, "
        "untimed) before its timing starts. The inputs built in setup are "
        "frozen out of the garbage collector (`gc.freeze`) before the runs, for every writer "
        "alike. (a) is also timed for this process's CPU, and an untimed "
        "diagnostic run of (a) per scenario times each kind of statement (notes). "
        "`--quick`: 500 and 1,000 circuits."),
    figures=[
        Figure("captures_rows", "captures: rows written", "circuits"),
        Figure("captures_units", "captures: planned units in those rows", "units"),
        Figure("captures_raw_mib", "captures: raw_json payload", "MiB"),
        Figure("captures_build_s", "captures: build the rows (canonical_json + trigger), no "
               "database; part of every writer below", "s"),
        Figure("captures_ours_s", "captures (a) ours: store_captures, batches of 200, one "
               "transaction", "s"),
        Figure("captures_ours_cpu_s", "captures (a): CPU time of this process during (a)", "s"),
        Figure("captures_per_row_s", "captures (b) per-row SELECT then INSERT/UPDATE, "
               "autocommit per statement", "s"),
        Figure("captures_per_row_tx_s", "captures (b') same statements in one transaction "
               "(reference, not the earlier pattern)", "s"),
        Figure("captures_copy_s", "captures (c) raw COPY, rows built in the timing", "s"),
        Figure("captures_build_share", "captures: building the rows, share of (a)", "%"),
        Figure("captures_vs_copy", "captures (a)/(c) ours vs raw COPY", "x"),
        Figure("captures_vs_per_row", "captures (b)/(a) per-row pattern vs ours", "x"),
        Figure("captures_vs_per_row_tx", "captures (b')/(a) per-row in one transaction vs ours "
               "(reference)", "x"),
        Figure("captures_ceiling", "captures (b)/(c) per-row pattern vs raw COPY: the most any "
               "writer of these rows could reach", "x"),
        Figure("circuits_listed", "circuits: circuits listed", "circuits"),
        Figure("circuits_build_s", "circuits: (b)'s row building alone (no database)", "s"),
        Figure("circuits_ours_s", "circuits (a) ours: sync_circuits, one transaction", "s"),
        Figure("circuits_ours_cpu_s", "circuits (a): CPU time of this process during (a)", "s"),
        Figure("circuits_per_row_s", "circuits (b) earlier pattern, autocommit per statement",
               "s"),
        Figure("circuits_per_row_tx_s", "circuits (b') same statements in one transaction "
               "(reference, not the earlier pattern)", "s"),
        Figure("circuits_copy_s", "circuits (c) raw COPY of (a)'s rows, 5 tables, built from "
               "the records in the timing", "s"),
        Figure("circuits_copy_dump_s", "circuits (c0) COPY of (a)'s rows as exported COPY text "
               "(no building; reference)", "s"),
        Figure("circuits_per_row_statements", "circuits (b): statements (one round trip each)",
               "calls"),
        Figure("circuits_per_row_writes", "circuits (b): write statements (one commit each)",
               "calls"),
        Figure("circuits_vs_copy", "circuits (a)/(c) ours vs raw COPY", "x"),
        Figure("circuits_vs_copy_dump", "circuits (a)/(c0) ours vs restoring the exported text "
               "(reference)", "x"),
        Figure("circuits_vs_per_row", "circuits (b)/(a) earlier pattern vs ours", "x"),
        Figure("circuits_vs_per_row_tx", "circuits (b')/(a) per-row in one transaction vs ours "
               "(reference)", "x"),
        Figure("circuits_ceiling", "circuits (b)/(c) earlier pattern vs raw COPY: the most any "
               "writer of these rows could reach", "x"),
    ],
    floors=[Floor("captures_vs_copy", "<=", 1.5, "writes within 1.5x of raw COPY (captures)"),
            Floor("captures_vs_per_row", ">=", 10.0, ">= 10x the per-row pattern (captures)",
                  ceiling="captures_ceiling"),
            Floor("circuits_vs_copy", "<=", 1.5, "writes within 1.5x of raw COPY (circuits)"),
            Floor("circuits_vs_per_row", ">=", 10.0, ">= 10x the per-row pattern (circuits)",
                  ceiling="circuits_ceiling")],
    # Five runs, not three: its writers take 0.5 to 8 s each and vary by +-15 % run to run on
    # this machine, and two of its ratios sit near their floors.
    repeats=5,
)
@contextmanager
def writes(ctx: Context):
    with _captures_scenario(ctx) as (captures, captures_done), \
            _circuits_scenario(ctx) as (circuits, circuits_done):
        # Both scenarios' inputs stay in memory through every run (170,601 units and 5,075
        # records). Frozen out of the garbage collector, they are not rescanned by the
        # collections a writer's own allocations trigger, which otherwise landed on whichever
        # writer happened to run then (one run of (a) circuits took 3.4 s instead of 0.9 s).
        gc.collect()
        gc.freeze()
        try:
            yield lambda: {**captures(), **circuits()}
        finally:
            gc.unfreeze()
    captures_done()
    circuits_done()
