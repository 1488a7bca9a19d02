"""Historical imports (issue 8): WorkStudio exports in, with preview, validation, staging, the
status contract, lineage, idempotent re-import, the import-folder sensor, and history that
backfills into the same rollups a live sync of those days gives.

Exports are written from the simulator world (its rows as the API sends them: wrapped dates,
"" for NULL, trailing spaces, numbers as text) in a file's shape (UTF-8 BOM, CRLF, quoted
fields), then copies are broken on purpose. Everything runs on a real PostgreSQL.
"""

from __future__ import annotations

import csv
import json
import os
import time
import tracemalloc
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from ws_tracker.imports import ImportFileError, as_of_from_name, commit_file, preview_file
from ws_tracker.imports.export import world_exports, write_csv
from ws_tracker.imports.load import captured_at_for
from ws_tracker.imports.reader import CsvStream, detect_kind
from ws_tracker.imports.staging import BATCH_ROWS
from ws_tracker.imports.status import InvalidTransition, set_status
from ws_tracker.imports.validation import Totals, Validator
from ws_tracker.pipeline.assets import DAILY_ASSETS, WEEKLY_ASSETS
from ws_tracker.simulator.world import World, WorldConfig
from ws_tracker.warehouse.engine import make_engine
from ws_tracker.warehouse.resource import WarehouseResource
from ws_tracker_tests.e2e import dump_tables, start_harness

D0, D1, D2 = date(2026, 2, 27), date(2026, 3, 2), date(2026, 3, 3)  # Fri, Mon, Tue
WORLD = {"circuits": 30, "units_per_circuit": (5, 25)}
WRITTEN = ["circuits", "circuit_history", "planned_units_snapshots"]


def world() -> World:
    return World(WorldConfig(**WORLD))


def read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def count(engine, table: str, where: str = "true", **params) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {table} WHERE {where}"),
                            params).scalar_one()


def import_row(engine, import_id: int):
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT * FROM data_imports WHERE id = :id"),
                            {"id": import_id}).mappings().one()


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[date, tuple[Path, Path]]:
    out = tmp_path_factory.mktemp("exports")
    w = world()
    return {day: world_exports(w, day, out) for day in (D0, D1, D2)}


def broken_circuits(src: Path, dst: Path) -> tuple[str, str]:
    """A copy of a circuit export with the mistakes real files have; returns what was broken."""
    heading, rows = read_rows(src)
    col = {c: i for i, c in enumerate(heading)}
    rows[1][col["VEGJOB_LENGTH"]] = "12,5"  # row 2: a decimal comma
    missing = (rows[2][col["SS_WO"]], rows[2][col["SS_EXT"]] or "@")
    rows[2][col["SS_JOBGUID"]] = ""  # row 3: no key
    rows[3][col["REGION"]] = "Atlantis "  # row 4: a region nobody knows, trailing space
    rows[4][col["SS_EDITDATE"]] = "/Date(notadate)/"  # row 5: a wrapped date that is not one
    rows.append(rows[0][:10])  # a ragged row (cut short)
    rows.append(list(rows[5]))  # a duplicate of row 6 (the later copy is loaded)
    write_csv(dst, heading, rows)
    with open(dst, "a", encoding="utf-8", newline="") as f:
        f.write("\r\n")  # a trailing blank line
    return missing


def broken_units(src: Path, dst: Path) -> None:
    heading, rows = read_rows(src)
    col = {c: i for i, c in enumerate(heading)}
    rows[0][col["SSUNITS_OBJECTID"]] = ""  # row 1: no unit id -> invalid
    rows[1][col["VEGUNIT_UNIT"]] = "ZZTOP"  # row 2: unknown unit code -> warning, still counted
    rows[2][col["JOBVEGETATIONUNITS_LENGTHWRK"]] = "abc"  # row 3: bad number -> 0, warning
    rows[3][col["VEGUNIT_ASSDDATE"]] = "/Date(2026-13-45)/"  # row 4: bad wrapped date
    rows[4][col["SS_WO"]] = "1999-0001"  # row 5: no such circuit -> invalid
    rows[5][col["VEGUNIT_ASSNOTE"]] = 'Dog, "Rex"\r\nlocked gate'  # row 6: quoted, multi-line
    write_csv(dst, heading, rows)


# ----------------------------------------------------------------------------- pure parts
def test_file_names_kinds_and_as_of_dates(exports, tmp_path):
    circuits, units = exports[D1]
    assert detect_kind(circuits) == "circuits" and detect_kind(units) == "planned_units"
    assert as_of_from_name("circuits_2026-03-02.csv") == D1
    assert as_of_from_name("export 2025-12-31 of 2026-03-02.csv") == D1  # the last date wins
    assert as_of_from_name("circuits.csv") is None
    with pytest.raises(ImportFileError, match="not a calendar date"):
        as_of_from_name("circuits_2026-02-30.csv")
    # A heading without the view's columns names them, and which kind it looks like.
    with pytest.raises(ImportFileError) as err:
        with CsvStream(units, "circuits"):
            pass
    assert err.value.code == "missing_columns" and "planned_units export" in str(err.value)
    assert units.name in str(err.value) and "line 1" in str(err.value)


def test_reader_reads_workstudio_file_shapes(exports, tmp_path):
    circuits, units = exports[D1]
    raw = units.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw  # BOM and CRLF, as Excel saves
    broken = tmp_path / "units_broken_2026-03-02.csv"
    broken_units(units, broken)
    heading, rows = read_rows(units)
    with CsvStream(broken, "planned_units") as stream:
        read = list(stream)
    assert [r.row_number for r in read] == list(range(1, len(rows) + 1))
    # Row 6's note holds a comma, quotes and a line break: one field, and every later row
    # ends one physical line further down.
    assert read[5].values["VEGUNIT_ASSNOTE"] == 'Dog, "Rex"\r\nlocked gate'
    assert read[5].line_number == 8 and read[6].line_number == 9
    # Values as read: wrapped dates, "" for NULL, trailing spaces: the API's own text.
    assert any(r.values["VEGUNIT_ASSDDATE"].startswith("/Date(") for r in read)
    assert any(r.values["VEGUNIT_PERMSTAT"] == "" for r in read)
    assert any(r.values["VEGUNIT_FORESTER"].endswith(" ") for r in read)
    validated = [Validator("planned_units").validate(r) for r in read]
    ok = next(v for v in validated[6:] if v.raw["VEGUNIT_FORESTER"].endswith(" "))
    assert not ok.normalised["forester"].endswith(" ")  # trimmed
    assert date.fromisoformat(ok.normalised["assessed_date"])  # a plain date, unwrapped
    assert not validated[0].valid and validated[0].issues[0]["code"] == "missing_key"


def test_memory_is_bounded_by_the_batch_not_the_file(tmp_path):
    """Reading and validating is streamed: the peak for a 4x larger file is about the same
    (1,000,000 rows: bench/bench_import.py). Staging holds at most BATCH_ROWS rows."""
    w = world()
    w.set_clock(captured_at_for(D1))
    heading = w.planned_units_heading()
    sample = [row for wo in sorted({r[1] for r in w.circuit_rows("ACTIV")})
              for row in w.planned_unit_rows(wo)][:500]

    def make(n: int) -> Path:
        path = tmp_path / f"planned_units_{n}_2026-03-02.csv"
        write_csv(path, heading, (sample[i % len(sample)] for i in range(n)))
        return path

    def peak(path: Path) -> int:
        validator, totals = Validator("planned_units"), Totals()
        tracemalloc.start()
        with CsvStream(path, "planned_units") as stream:
            for raw in stream:
                totals.add(validator.validate(raw))
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert totals.rows == int(path.name.split("_")[2])
        return top

    small, large = peak(make(5_000)), peak(make(20_000))
    assert large < small * 1.5 + 256 * 1024, (small, large)
    assert large < 8 * 1024 * 1024  # a few MB whatever the file size
    assert BATCH_ROWS <= 10_000


# ----------------------------------------------------------------------------- preview
def test_preview_shows_headers_rows_issues_and_totals_and_writes_nothing(
        exports, engine, db_url, tmp_path, monkeypatch, capsys):
    circuits, units = exports[D1]
    bad = tmp_path / "circuits_broken_2026-03-02.csv"
    broken_circuits(circuits, bad)
    p = preview_file(bad, engine=engine, sample_rows=3)
    assert p.kind == "circuits" and "SS_JOBGUID" in p.heading.recognised
    assert p.heading.unrecognised == ()
    first = p.samples[0]
    assert first.normalised["job_guid"] == first.raw["SS_JOBGUID"].upper()
    n_rows = len(read_rows(circuits)[1]) + 2
    t = p.totals
    assert (t.rows, t.invalid, t.blank_lines) == (n_rows, 2, 1)  # no GUID; the ragged row
    assert t.valid == n_rows - 2 and t.unknown_regions == {"Atlantis": 1}
    by_row = {(i["row_number"], i["code"]): i for i in p.issues}
    assert by_row[(2, "bad_number")]["column"] == "VEGJOB_LENGTH"
    assert by_row[(2, "bad_number")]["value"] == "'12,5'"
    assert "stored as 0" in by_row[(2, "bad_number")]["reason"]
    assert by_row[(3, "missing_key")]["severity"] == "error"
    assert by_row[(4, "unknown_region")]["severity"] == "warning"
    assert by_row[(5, "bad_date")]["column"] == "SS_EDITDATE"
    assert (n_rows - 1, "ragged_row") in by_row

    u = preview_file(units, engine=engine)  # no circuits stored yet: every unit is unplaceable
    assert u.totals.valid == 0 and u.totals.issues_by_code == {"unknown_circuit": u.totals.rows}

    # The command prints the same, and writes nothing.
    from ws_tracker.cli import main

    monkeypatch.setenv("WS_TRACKER_DATABASE_URL", db_url)
    monkeypatch.setenv("WS_TRACKER_HOME", str(tmp_path / "home"))
    assert main(["import", "preview", str(bad), "--kind", "circuits", "--rows", "2"]) == 0
    out = capsys.readouterr().out
    assert "nothing is written" in out and "headers recognised (27)" in out
    assert "as read:" in out and "as normalised:" in out
    assert "row 2, column VEGJOB_LENGTH, value '12,5'" in out
    assert f"totals: rows {n_rows}, valid {n_rows - 2}, invalid 2" in out
    assert "unknown regions 1 ['Atlantis' (1 rows)]" in out
    assert main(["import", "preview", str(bad), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["invalid_rows"] == 2 and doc["rows"][0]["original"]["SS_JOBGUID"]
    for table in ("data_imports", "import_staging_rows", "circuits", "circuit_history", "regions"):
        expected = 7 if table == "regions" else 0
        assert count(engine, table) == expected, table
    assert main(["import", "preview", str(tmp_path / "nope.csv"), "--kind", "circuits"]) == 2
    assert "nope.csv" in capsys.readouterr().err


# ----------------------------------------------------------------------------- commit
def test_commit_lineage_invalid_rows_kept_and_idempotent_reimport(exports, engine, tmp_path):
    circuits, units = exports[D1]
    bad_c = tmp_path / "circuits_broken_2026-03-02.csv"
    missing = broken_circuits(circuits, bad_c)
    rc = commit_file(engine, bad_c, as_of=D1, imported_by="analyst@example.com")
    assert rc.ok, rc.summary
    n = len(read_rows(circuits)[1])
    row = import_row(engine, rc.import_id)
    assert (row["status"], row["kind"], row["as_of_date"], row["imported_by"]) == (
        "transformed", "circuits", D1, "analyst@example.com")
    assert row["content_hash"] == rc.content_hash and len(row["content_hash"]) == 64
    assert (row["total_rows"], row["valid_rows"], row["invalid_rows"]) == (n + 2, n, 2)
    assert row["unknown_regions"] == 1 and row["captured_at"] == captured_at_for(D1)
    # n valid rows, one is an earlier copy of a later row: n - 1 circuits, all with lineage.
    assert row["records_loaded"] == n - 1
    assert count(engine, "circuits", "data_import_id = :i", i=rc.import_id) == n - 1
    assert count(engine, "circuit_history", "data_import_id = :i AND valid_from = :t",
                 i=rc.import_id, t=captured_at_for(D1)) == n - 1
    assert count(engine, "regions", "name = 'Atlantis'") == 1
    # Nothing silently dropped: the invalid rows, the rows with warnings and the superseded
    # duplicate stay in staging with their reasons; clean rows were purged once loaded.
    with engine.connect() as conn:
        kept = {r.row_number: r for r in conn.execute(sa.text(
            "SELECT row_number, valid, issues FROM import_staging_rows WHERE data_import_id = :i"),
            {"i": rc.import_id})}
    assert set(kept) == {2, 3, 4, 5, 6, n + 1}
    assert not kept[3].valid and kept[3].issues[0]["code"] == "missing_key"
    assert not kept[n + 1].valid and kept[n + 1].issues[0]["code"] == "ragged_row"
    assert kept[6].valid and kept[6].issues[-1]["code"] == "duplicate_circuit"
    codes = {i["code"] for i in rc.summary["issues"]}
    assert {"missing_key", "ragged_row", "bad_number", "bad_date", "unknown_region",
            "region_created", "duplicate_rows"} <= codes

    bad_u = tmp_path / "planned_units_broken_2026-03-02.csv"
    broken_units(units, bad_u)
    ru = commit_file(engine, bad_u, as_of=D1, imported_by="analyst@example.com")
    assert ru.ok, ru.summary
    urow = import_row(engine, ru.import_id)
    # Invalid: row 1 (no unit id), row 5 (no such work order), and the units of the circuit
    # whose row had no GUID (not loaded, so nothing to attach its units to).
    heading, unit_rows = read_rows(bad_u)
    wo, ext = heading.index("SS_WO"), heading.index("SS_EXT")
    orphans = [n for n, r in enumerate(unit_rows, start=1) if n != 1
               and (r[wo], r[ext] or "@") == missing]
    assert urow["invalid_rows"] == 2 + len(orphans) and urow["unknown_unit_codes"] == 1
    with engine.connect() as conn:
        unknown = conn.execute(sa.text(
            "SELECT row_number FROM import_staging_rows WHERE data_import_id = :i AND NOT valid"
            " AND issues @> '[{\"code\": \"unknown_circuit\"}]' ORDER BY row_number"),
            {"i": ru.import_id}).scalars().all()
    assert unknown == sorted([5] + orphans)
    assert ru.summary["unknown_unit_codes"] == {"ZZTOP": 1}
    with engine.connect() as conn:
        caps = conn.execute(sa.text(
            "SELECT circuit_id, raw_json, snapshot_trigger, captured_at, api_status"
            " FROM planned_units_snapshots WHERE data_import_id = :i"), {"i": ru.import_id}).all()
    assert caps and all(c.snapshot_trigger == "import" and c.captured_at == captured_at_for(D1)
                        and c.api_status in ("ACTIV", "QC", "REWRK") for c in caps)
    units_stored = [u for c in caps for u in c.raw_json]
    assert any(u["unit_code"] == "ZZTOP" for u in units_stored)  # unknown code still counts
    assert any(u["notes"] == 'Dog, "Rex"\r\nlocked gate' for u in units_stored)

    # Re-import: the file's own rows are replaced (same values), nothing else moves.
    others = _rows_not_of(engine, ru.import_id)
    mine = _value_rows(engine, ru.import_id)
    again = commit_file(engine, bad_u, as_of=D1, imported_by="analyst@example.com")
    assert again.ok and again.reimport and again.import_id == ru.import_id
    assert again.summary["metrics"]["captures_removed"] == len(caps)
    assert _rows_not_of(engine, ru.import_id) == others
    assert _value_rows(engine, ru.import_id) == mine
    assert count(engine, "data_imports") == 2  # one row per file

    # The same file under another as-of date moves its rows (and only its rows) there.
    moved = commit_file(engine, bad_u, as_of=D2)
    assert moved.ok and count(engine, "planned_units_snapshots",
                              "data_import_id = :i AND captured_at = :t",
                              i=ru.import_id, t=captured_at_for(D2)) == len(caps)
    assert count(engine, "planned_units_snapshots", "captured_at = :t",
                 t=captured_at_for(D1)) == 0


def _rows_not_of(engine, import_id):
    """Every row of the written tables not from import ``import_id`` (None: not from any)."""
    with engine.connect() as conn:
        return {t: [tuple(r) for r in conn.execute(sa.text(
            f"SELECT * FROM {t} WHERE data_import_id IS DISTINCT FROM CAST(:i AS bigint)"
            " AND (CAST(:i AS bigint) IS NOT NULL OR data_import_id IS NULL) ORDER BY id"),
            {"i": import_id})] for t in WRITTEN}


def _value_rows(engine, import_id):
    with engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(sa.text(
            "SELECT circuit_id, work_order, extension, content_hash, unit_count, api_status,"
            " percent_complete, captured_at, raw_json::text FROM planned_units_snapshots"
            " WHERE data_import_id = :i"), {"i": import_id}))


def test_status_contract_transitions_and_failures(exports, engine, tmp_path):
    circuits, units = exports[D1]
    seen: list[tuple[str, str]] = []

    def watch(phase, done, total, rows):
        with engine.connect() as conn:
            seen.append((phase, conn.execute(sa.text(
                "SELECT status FROM data_imports ORDER BY id DESC LIMIT 1")).scalar_one()))

    r = commit_file(engine, circuits, as_of=D1, progress=watch)
    assert r.ok
    assert ("staging", "processing") in seen and ("loading", "transforming") in seen
    s = import_row(engine, r.import_id)["summary"]
    assert s["stage"] == "transformed" and s["error"] is None
    stamps = [s[k] for k in ("processing_started_at", "queued_at", "transform_started_at",
                             "transform_finished_at")]
    assert stamps == sorted(stamps) and all(x.endswith("Z") for x in stamps)
    assert s["metrics"]["rows"] == s["metrics"]["valid_rows"] > 0
    assert s["metrics"]["circuits_created"] == s["metrics"]["records"]
    with engine.begin() as conn:
        with pytest.raises(InvalidTransition, match="transformed -> queued"):
            set_status(conn, r.import_id, "queued")

    # Failures: each leaves a failed row with {code, message, trace_id}.
    undated = tmp_path / "planned_units.csv"
    undated.write_bytes(units.read_bytes())
    f1 = commit_file(engine, undated)
    assert f1.status == "failed" and f1.error["code"] == "no_as_of_date"
    assert "planned_units.csv" in f1.error["message"] and len(f1.error["trace_id"]) == 32
    wrong = tmp_path / "circuits_2026-03-02.csv"
    wrong.write_bytes(units.read_bytes())
    f2 = commit_file(engine, wrong, kind="circuits", as_of=D1)
    assert f2.error["code"] == "missing_columns" and "SS_JOBGUID" in f2.error["message"]
    cp1252 = tmp_path / "circuits_latin_2026-03-02.csv"
    cp1252.write_bytes(circuits.read_bytes().replace(b"\r\n", "\r\nCaf\xe9".encode("latin-1"), 3))
    f3 = commit_file(engine, cp1252, as_of=D1)
    assert f3.error["code"] == "bad_encoding" and "line" in f3.error["message"]
    # A file that changes between its hash and its rows (still being copied in) fails.
    import ws_tracker.imports.service as service

    grown = tmp_path / "circuits_grown_2026-03-02.csv"
    grown.write_bytes(circuits.read_bytes())
    real_digest = service.file_digest

    def digest_then_grow(path):
        out = real_digest(path)
        with open(path, "ab") as f:
            f.write(b"{00000000-0000-0000-0000-000000000000},2026-9999\r\n")
        return out

    service.file_digest = digest_then_grow
    try:
        f6 = commit_file(engine, grown, as_of=D1)
    finally:
        service.file_digest = real_digest
    assert f6.error["code"] == "file_changed"
    assert "changed while it was imported" in f6.error["message"]
    rows = {x.id: x for x in _imports(engine)}
    assert {rows[f.import_id].status for f in (f1, f2, f3, f6)} == {"failed"}
    assert rows[f1.import_id].error_message == f1.error["message"]

    # A load that breaks half-way (a real PostgreSQL error) writes nothing and keeps staging.
    before = dump_tables(engine, WRITTEN)
    heading, unit_rows = read_rows(units)
    victim = sorted({r[heading.index("SS_WO")] for r in unit_rows})[-1]
    with engine.begin() as conn:
        conn.execute(sa.text(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " IF NEW.work_order = '" + victim + "' THEN RAISE EXCEPTION 'disk full (test)';"
            " END IF; RETURN NEW; END $$"))
        conn.execute(sa.text("CREATE TRIGGER refuse BEFORE INSERT ON planned_units_snapshots"
                             " FOR EACH ROW EXECUTE FUNCTION refuse()"))
    f4 = commit_file(engine, units, as_of=D1, run_id="run-1234")
    assert f4.status == "failed" and "disk full (test)" in f4.error["message"]
    assert f4.error["trace_id"] == "run-1234"
    assert f4.summary["queued_at"] <= f4.summary["transform_started_at"] <= f4.summary["failed_at"]
    assert dump_tables(engine, WRITTEN) == before
    assert count(engine, "import_staging_rows", "data_import_id = :i",
                 i=f4.import_id) == len(unit_rows)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TRIGGER refuse ON planned_units_snapshots"))
    # The same file cannot be imported by two processes at once.
    from ws_tracker.imports import ImportBusy
    from ws_tracker.imports.reader import file_digest

    with engine.connect() as other:
        key = f"ws_tracker:import:planned_units:{file_digest(units)[0]}"
        other.execute(sa.text("SELECT pg_advisory_lock(hashtext(:k))"), {"k": key})
        with pytest.raises(ImportBusy, match="another process"):
            commit_file(engine, units, as_of=D1)
        other.execute(sa.text("SELECT pg_advisory_unlock(hashtext(:k))"), {"k": key})
    f5 = commit_file(engine, units, as_of=D1)  # the retry goes through
    assert f5.ok and f5.import_id == f4.import_id and f5.summary["error"] is None
    assert count(engine, "import_staging_rows", "data_import_id = :i",
                 i=f5.import_id) < len(unit_rows)


def _imports(engine):
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT * FROM data_imports ORDER BY id")).all()


def test_commit_command_with_progress_bar_and_errors(exports, engine, db_url, tmp_path,
                                                     monkeypatch, capsys):
    from ws_tracker.cli import main

    circuits, _ = exports[D1]
    monkeypatch.setenv("WS_TRACKER_DATABASE_URL", db_url)
    monkeypatch.setenv("WS_TRACKER_HOME", str(tmp_path / "home"))
    assert main(["import", "commit", str(circuits), "--by", "lead@example.com"]) == 0
    out, err = capsys.readouterr()
    assert "as of 2026-03-02" in out and ": transformed" in out and "circuits_created=" in out
    assert "staging  100%" in err and "loading  100%" in err  # the bar (a line per 10 % off a tty)
    assert "ws-tracker backfill --from 2026-03-02 --to 2026-03-02" in out
    assert main(["import", "commit", str(circuits), "--as-of", "2026-03-02"]) == 0
    assert "re-import" in capsys.readouterr().out
    assert main(["import", "status"]) == 0
    assert "transformed  circuits" in capsys.readouterr().out
    undated = tmp_path / "circuits.csv"
    undated.write_bytes(circuits.read_bytes())
    assert main(["import", "commit", str(undated), "--no-progress"]) == 1
    assert "no_as_of_date" in capsys.readouterr().err
    assert main(["import", "commit", str(undated), "--as-of", "3026-01-01"]) == 1
    assert "as_of_in_future" in capsys.readouterr().err
    assert main(["import", "commit", str(tmp_path / "gone_2026-03-02.csv"),
                 "--kind", "circuits"]) == 2
    assert "gone_2026-03-02.csv" in capsys.readouterr().err


# ----------------------------------------------------------------------------- history
def _backfill(db_url, days):
    tags = {"dagster/asset_partition_range_start": days[0].isoformat(),
            "dagster/asset_partition_range_end": days[-1].isoformat()}
    resources = {"warehouse": WarehouseResource(database_url=db_url)}
    assert dg.materialize(DAILY_ASSETS, resources=resources, tags=tags).success
    week = days[0] - timedelta(days=(days[0].weekday() + 1) % 7)
    assert dg.materialize(WEEKLY_ASSETS, resources=resources,
                          partition_key=week.isoformat()).success


ROLLUPS = {
    "circuit_aggregates": (
        "SELECT c.job_guid, a.aggregate_date, a.total_miles, a.miles_planned, a.miles_remaining,"
        " a.total_units, a.total_linear_ft, a.total_acres, a.total_trees, a.units_approved,"
        " a.units_refused, a.units_pending, a.unit_counts_by_type::text, a.linear_ft_by_type::text,"
        " a.acres_by_type::text, a.planner_distribution::text, a.units_by_permission::text"
        " FROM circuit_aggregates a JOIN circuits c ON c.id = a.circuit_id"),
    "circuit_snapshots": (
        "SELECT c.job_guid, s.snapshot_date, s.api_status, s.workflow_stage, s.miles_planned,"
        " s.percent_complete, s.total_units, s.total_linear_ft, s.total_trees,"
        " (s.metrics_json - 'planned_units_snapshot_id')::text"
        " FROM circuit_snapshots s JOIN circuits c ON c.id = s.circuit_id"),
    "planner_daily_aggregates": (
        "SELECT r.name, (to_jsonb(p) - 'id' - 'created_at' - 'updated_at' - 'region_id')::text"
        " FROM planner_daily_aggregates p JOIN regions r ON r.id = p.region_id"),
    "regional_daily_aggregates": (
        "SELECT r.name, (to_jsonb(x) - 'id' - 'created_at' - 'updated_at' - 'region_id')::text"
        " FROM regional_daily_aggregates x JOIN regions r ON r.id = x.region_id"),
    "planner_weekly_aggregates": (
        "SELECT r.name, (to_jsonb(p) - 'id' - 'created_at' - 'updated_at' - 'region_id')::text"
        " FROM planner_weekly_aggregates p JOIN regions r ON r.id = p.region_id"),
}


def _rollups(engine) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {t: sorted(tuple(map(str, r)) for r in conn.execute(sa.text(q)))
                for t, q in ROLLUPS.items()}


def test_two_imported_days_backfill_into_the_history_a_live_sync_gives(
        exports, engine, db_url, other_db_url, tmp_path):
    """Import D1 and D2, backfill them: the rollups equal those of live syncs of D1 and D2
    (same world), rebuilt the same way. Then importing into the live database never moves
    live data: the same day's exports change nothing, an older day adds history before it."""
    for day in (D1, D2):
        circuits, units = exports[day]
        assert commit_file(engine, circuits, as_of=day).ok
        assert commit_file(engine, units, as_of=day).ok
    _backfill(db_url, [D1, D2])
    imported = _rollups(engine)
    # D2's file is the newest observation of its circuits: their current rows follow it.
    heading, d2_rows = read_rows(exports[D2][0])
    with engine.connect() as conn:
        current = {r.job_guid: r for r in conn.execute(sa.text(
            "SELECT job_guid, api_status, last_synced_at FROM circuits"))}
    for row in d2_rows:
        assert current[row[0]].api_status == row[heading.index("WSREQ_STATUS")]
        assert current[row[0]].last_synced_at == captured_at_for(D2)
    assert all(imported[t] for t in ROLLUPS), {t: len(v) for t, v in imported.items()}
    assert {r[1] for r in imported["circuit_aggregates"]} == {str(D1), str(D2)}

    live_engine = make_engine(other_db_url)
    harness = start_harness(other_db_url, **WORLD)
    try:
        for day in (D1, D2):
            assert harness.run(day).success
    finally:
        harness.server.stop()
    try:
        _backfill(other_db_url, [D1, D2])  # rebuilt after both syncs, as the imports were
        live = _rollups(live_engine)
        for table in ROLLUPS:
            assert imported[table] == live[table], table

        # Into the live database: nothing a live sync stored moves. The same days add no
        # history (every state is already there) and no capture: the file's units equal the
        # live captures at the very same instant (VEGUNIT_AUDIT_PASS included: a JSON boolean
        # live, "True" in the file, "true" in both captures), so none is even a conflict.
        live_rows = _rows_not_of(live_engine, None)
        for day in (D1, D2):
            for path in exports[day]:
                r = commit_file(live_engine, path, as_of=day)
                assert r.ok and r.summary["metrics"]["history_versions"] == 0
                if day == D1 and "planned_units" in path.name:
                    assert r.summary["metrics"]["captures_stored"] == 0
                    assert r.summary["metrics"]["captures_unchanged"] > 0
                    assert not [i for i in r.summary["issues"] if i["code"] == "same_instant_kept"]
        # A file that says otherwise about one circuit at that instant: the live capture is
        # kept, and the import says so.
        heading, rows = read_rows(exports[D1][1])
        species = heading.index("VEGUNIT_SPECIES")
        rows[0][species] = "Not what the live sync saw"
        changed = tmp_path / exports[D1][1].name
        write_csv(changed, heading, rows)
        r = commit_file(live_engine, changed, as_of=D1)
        assert r.ok and r.summary["metrics"]["captures_stored"] == 0
        kept = [i for i in r.summary["issues"] if i["code"] == "same_instant_kept"]
        assert kept and kept[0]["count"] == r.summary["metrics"]["skipped_same_instant"] == 1
        assert _rows_not_of(live_engine, None) == live_rows
        before = dump_tables(live_engine, ["circuits"])
        old_c, old_u = exports[D0]
        assert commit_file(live_engine, old_c, as_of=D0).ok
        assert commit_file(live_engine, old_u, as_of=D0).ok
        after = dump_tables(live_engine, ["circuits"])["circuits"]
        by_id = {r[0]: r for r in after}
        assert all(by_id[r[0]] == r for r in before["circuits"])  # today's state untouched
        with live_engine.connect() as conn:
            early = conn.execute(sa.text(
                "SELECT count(*) FROM circuit_history WHERE valid_from = :t"
                " AND valid_to IS NOT NULL"), {"t": captured_at_for(D0)}).scalar_one()
        assert early > 0
        _backfill(other_db_url, [D0])
        assert count(live_engine, "circuit_aggregates", "aggregate_date = :d", d=D0) > 0
    finally:
        live_engine.dispose()


# ----------------------------------------------------------------------------- sensor
def test_import_folder_sensor_commits_dropped_exports(exports, engine, db_url, tmp_path,
                                                      monkeypatch):
    from ws_tracker.pipeline.import_sensor import (
        IMPORT_FILE_TAG,
        circuits_pending,
        import_file_job,
        import_folder_sensor,
    )

    folder = tmp_path / "drop"
    folder.mkdir()
    monkeypatch.delenv("WS_TRACKER_IMPORT_DIR", raising=False)
    assert "not set" in import_folder_sensor(dg.build_sensor_context()).skip_message
    monkeypatch.setenv("WS_TRACKER_IMPORT_DIR", str(folder))
    circuits, units = exports[D1]
    # Dropped in the "wrong" order: units first, then circuits, then an undated copy.
    for name, src in (("planned_units_2026-03-02.csv", units),
                      ("circuits_2026-03-02.csv", circuits),
                      ("circuits_latest.csv", circuits), (".partial.csv", circuits)):
        (folder / name).write_bytes(src.read_bytes())
    (folder / "notes.txt").write_text("not an export")
    old = time.time() - 60
    for p in folder.iterdir():
        os.utime(p, (old, old))
    result = import_folder_sensor(dg.build_sensor_context())
    requests = result.run_requests
    names = [r.tags[IMPORT_FILE_TAG] for r in requests]
    # Undated first (date.min), then circuits before units of the same day; hidden files
    # and non-CSV files are not exports.
    assert names == ["circuits_latest.csv", "circuits_2026-03-02.csv",
                     "planned_units_2026-03-02.csv"]
    configs = [r.run_config["ops"]["import_file"]["config"] for r in requests]
    assert [c["kind"] for c in configs] == ["circuits", "circuits", "planned_units"]
    assert [c["as_of"] for c in configs] == [None, "2026-03-02", "2026-03-02"]
    # Run key = content hash (Dagster never launches a key twice); the undated copy's run only
    # records a failure, so its key is marked and the dated file with that content still runs.
    assert [r.run_key for r in requests[1:]] == [c["content_hash"] for c in configs[1:]]
    assert requests[0].run_key == configs[0]["content_hash"] + ":undated"

    # The next tick: nothing new (the cursor remembers size and mtime).
    again = import_folder_sensor(dg.build_sensor_context(cursor=result.cursor))
    assert not again.run_requests and "no new export" in again.skip_reason.skip_message

    resources = {"warehouse": WarehouseResource(database_url=db_url)}
    # Runs may start out of order: units before the circuit list of their day. The units run
    # sees that list waiting in the folder and retries (here once, without waiting).
    eager = json.loads(json.dumps(requests[2].run_config))
    eager["ops"]["import_file"]["config"].update(wait_for_circuits_retries=1,
                                                 wait_for_circuits_seconds=0)
    assert circuits_pending(engine, str(folder / "planned_units_2026-03-02.csv"), D1) == [
        "circuits_2026-03-02.csv"]
    early = import_file_job.execute_in_process(run_config=eager, resources=resources,
                                               raise_on_error=False)
    assert not early.success
    assert any(e.event_type_value == "STEP_UP_FOR_RETRY" for e in early.all_events)
    undated = import_file_job.execute_in_process(
        run_config=requests[0].run_config, resources=resources, raise_on_error=False,
        tags={"dagster/sensor_name": "import_folder_sensor"})
    assert not undated.success
    for req in requests[1:]:
        run = import_file_job.execute_in_process(
            run_config=req.run_config, resources=resources,
            tags={"dagster/sensor_name": "import_folder_sensor"})
        assert run.success
    assert circuits_pending(engine, str(folder / "planned_units_2026-03-02.csv"), D1) == []
    rows = _imports(engine)
    by_kind = {r.kind: r for r in rows}
    assert [r.status for r in rows] == ["transformed", "transformed"]  # one row per content
    assert by_kind["circuits"].imported_by == "sensor:import_folder_sensor"
    assert by_kind["circuits"].source == "sensor"
    assert by_kind["circuits"].dagster_run_id and by_kind["circuits"].as_of_date == D1
    assert by_kind["circuits"].summary["error"] is None
    assert count(engine, "planned_units_snapshots", "data_import_id = :i",
                 i=by_kind["planned_units"].id) > 0
    # The undated file's run recorded the failure first (its row was then reused by the dated
    # copy of the same content); an undated file of its own stays failed, naming the reason.
    lone = folder / "circuits_other.csv"
    heading, crow = read_rows(circuits)
    write_csv(lone, heading, crow[:3])
    os.utime(lone, (old, old))
    third = import_folder_sensor(dg.build_sensor_context(cursor=result.cursor))
    assert [r.tags[IMPORT_FILE_TAG] for r in third.run_requests] == ["circuits_other.csv"]
    failed = import_file_job.execute_in_process(
        run_config=third.run_requests[0].run_config, resources=resources, raise_on_error=False)
    assert not failed.success
    row = [r for r in _imports(engine) if r.file_name == "circuits_other.csv"][0]
    assert row.status == "failed" and row.summary["error"]["code"] == "no_as_of_date"
    assert row.summary["error"]["trace_id"] == failed.run_id
    assert "YYYY-MM-DD" in row.error_message
    # The same name with new content is a new file: a new request, under its own hash.
    write_csv(lone, heading, crow[:4])
    os.utime(lone, (old, old))
    fourth = import_folder_sensor(dg.build_sensor_context(cursor=third.cursor))
    assert [r.tags[IMPORT_FILE_TAG] for r in fourth.run_requests] == ["circuits_other.csv"]
    assert fourth.run_requests[0].run_key != third.run_requests[0].run_key


def test_definitions_include_the_import_sensor_and_job():
    from ws_tracker.definitions import defs

    assert defs.resolve_sensor_def("import_folder_sensor").job_name == "import_file_job"
    assert defs.resolve_job_def("import_file_job")


def test_a_newer_import_keeps_a_persons_edits_and_an_older_one_keeps_todays_state(
        exports, engine):
    from ws_tracker.warehouse.edits import parse_assignments, record_edit

    assert commit_file(engine, exports[D1][0], as_of=D1).ok
    heading, rows = read_rows(exports[D1][0])
    guid = next(r[0] for r in rows if r[0] in {x[0] for x in read_rows(exports[D0][0])[1]})
    with engine.begin() as conn:
        record_edit(conn, guid, parse_assignments(["title=Kept by a person"]), by_email=None,
                    at=captured_at_for(D1) + timedelta(hours=1))
    assert commit_file(engine, exports[D2][0], as_of=D2).ok  # newer: current rows follow it
    with engine.connect() as conn:
        title, synced = conn.execute(sa.text(
            "SELECT title, last_synced_at FROM circuits WHERE job_guid = :g"), {"g": guid}).one()
    assert title == "Kept by a person" and synced == captured_at_for(D2)
    circuits_before = dump_tables(engine, ["circuits"])["circuits"]
    older = commit_file(engine, exports[D0][0], as_of=D0)  # older: history only
    assert older.ok and older.summary["metrics"]["circuits_updated"] == 0
    after = {r[0]: r for r in dump_tables(engine, ["circuits"])["circuits"]}
    assert all(after[r[0]] == r for r in circuits_before)
    with engine.connect() as conn:
        first = conn.execute(sa.text(
            "SELECT h.valid_from, h.valid_to FROM circuit_history h JOIN circuits c"
            " ON c.id = h.circuit_id WHERE c.job_guid = :g ORDER BY h.valid_from"),
            {"g": guid}).first()
    assert first.valid_from == captured_at_for(D0) and first.valid_to == captured_at_for(D1)
