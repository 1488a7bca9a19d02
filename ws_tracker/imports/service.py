"""Preview and commit of one export file: the one path the command line and the sensor share.

preview: read and validate the whole file (streamed), print nothing, write nothing.
commit:  data_imports row (processing) -> stage every row (COPY batches) -> queued ->
         transforming -> load in one transaction (replacing this file's earlier rows) ->
         transformed, or failed with {code, message, trace_id} at whichever step broke.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from ws_tracker.imports import load as loader
from ws_tracker.imports.reader import (
    CsvStream,
    Heading,
    ImportFileError,
    as_of_from_name,
    detect_kind,
    file_digest,
)
from ws_tracker.imports.staging import StagingWriter, clear_staging, open_import
from ws_tracker.imports.status import set_status
from ws_tracker.imports.validation import Totals, ValidatedRow, Validator
from ws_tracker.rules.circuits import region_key

__all__ = ["CommitResult", "Preview", "commit_file", "preview_file", "resolve_kind"]

NY = ZoneInfo("America/New_York")
EXAMPLES_PER_CODE = 3
# Progress callback: (phase, done, total, rows). Phases: "staging" (done/total in bytes),
# "loading" (done/total in rows).
Progress = Callable[[str, int, int, int], None]


class ImportBusy(RuntimeError):
    """Another process is importing the same file right now."""


def resolve_kind(path: str | Path, kind: str | None, encoding: str = "utf-8") -> str:
    found = kind or detect_kind(path, "utf-8-sig" if encoding.lower() in ("utf-8", "utf8")
                                else encoding)
    if found is None:
        raise ImportFileError("unknown_kind", "cannot tell whether this is a circuits or a "
                              "planned_units export (neither SS_JOBGUID nor SSUNITS_OBJECTID "
                              "in its heading, nor 'circuit'/'unit' in its name); give --kind",
                              file=Path(path).name)
    return found


def _reference(engine: sa.Engine | None, kind: str
               ) -> tuple[set[str] | None, dict[tuple[str, str], int] | None]:
    """What validation checks against: region keys, and circuits for planned units."""
    if engine is None:
        return None, None
    with engine.connect() as conn:
        names = conn.execute(sa.text("SELECT name FROM regions")).scalars()
        regions = {region_key(n) for n in names}
        circuits = None
        if kind == "planned_units":
            circuits = {(r.work_order, r.extension or "@"): r.id for r in conn.execute(
                sa.text("SELECT id, work_order, extension FROM circuits"))}
    return regions, circuits


class _IssueDigest:
    """Row issues by code: a count and the first few, for the summary (all are in staging)."""

    def __init__(self) -> None:
        self.by_code: dict[str, dict[str, Any]] = {}

    def add(self, row: ValidatedRow) -> None:
        for i in row.issues:
            entry = self.by_code.setdefault(i["code"], {"severity": i["severity"], "count": 0,
                                                         "examples": []})
            entry["count"] += 1
            if len(entry["examples"]) < EXAMPLES_PER_CODE:
                entry["examples"].append({k: i.get(k) for k in
                                          ("row_number", "column", "value", "reason")})

    def summary(self) -> list[dict[str, Any]]:
        out = []
        for code, e in sorted(self.by_code.items()):
            first = e["examples"][0]
            out.append({"type": e["severity"], "code": code, "count": e["count"],
                        "message": f"{e['count']} row issue(s), e.g. row {first['row_number']}"
                                   f" column {first['column']}: {first['reason']}",
                        "examples": e["examples"]})
        return out


# ----------------------------------------------------------------------------- preview
@dataclass
class Preview:
    file: str
    kind: str
    heading: Heading
    samples: list[ValidatedRow]
    issues: list[dict[str, Any]]  # every row issue, up to max_issues
    issues_total: int
    totals: Totals


def preview_file(path: str | Path, kind: str | None = None, *, engine: sa.Engine | None = None,
                 sample_rows: int = 5, max_issues: int = 200, encoding: str = "utf-8",
                 progress: Progress | None = None) -> Preview:
    """Read and validate the whole file (streamed); write nothing. ``engine`` (read only)
    gives the known regions and circuits the rows are checked against."""
    kind = resolve_kind(path, kind, encoding)
    regions, circuits = _reference(engine, kind)
    validator = Validator(kind, regions, circuits)
    totals = Totals()
    samples: list[ValidatedRow] = []
    issues: list[dict[str, Any]] = []
    issues_total = 0
    with CsvStream(path, kind, encoding) as stream:
        for raw in stream:
            row = validator.validate(raw)
            totals.add(row)
            if len(samples) < sample_rows:
                samples.append(row)
            issues_total += len(row.issues)
            for i in row.issues:
                if len(issues) < max_issues:
                    issues.append(i)
            if progress and totals.rows % 10_000 == 0:
                progress("reading", stream.bytes_read, stream.size, totals.rows)
        totals.blank_lines = stream.blank_lines
        heading = stream.heading
    assert heading is not None
    return Preview(Path(path).name, kind, heading, samples, issues, issues_total, totals)


# ----------------------------------------------------------------------------- commit
@dataclass
class CommitResult:
    import_id: int | None
    status: str
    kind: str
    file: str
    as_of: date | None
    content_hash: str
    trace_id: str
    reimport: bool = False
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "transformed"

    @property
    def error(self) -> dict[str, Any] | None:
        return self.summary.get("error")


def _lock_key(kind: str, digest: str) -> str:
    return f"ws_tracker:import:{kind}:{digest}"


def commit_file(engine: sa.Engine, path: str | Path, *, kind: str | None = None,
                as_of: date | None = None, imported_by: str | None = None,
                source: str = "cli", run_id: str | None = None, encoding: str = "utf-8",
                progress: Progress | None = None, today: date | None = None) -> CommitResult:
    """Stage, validate and load one export as captures dated ``as_of`` (see module doc).

    Returns the outcome (status transformed or failed, with the summary); raises only when
    not even a data_imports row can be written (no such file, unknown kind, the same file
    being imported by another process)."""
    path = Path(path)
    if not path.is_file():
        raise ImportFileError("no_such_file", "no such file", file=str(path))
    kind = resolve_kind(path, kind, encoding)
    digest, size = file_digest(path)
    trace_id = run_id or uuid.uuid4().hex
    at = loader.captured_at_for(as_of) if as_of else None
    result = CommitResult(None, "processing", kind, path.name, as_of, digest, trace_id)

    with engine.connect() as holder:
        got = holder.execute(sa.text("SELECT pg_try_advisory_lock(hashtext(:k))"),
                             {"k": _lock_key(kind, digest)}).scalar()
        holder.commit()
        if not got:
            raise ImportBusy(f"{path.name}: this file ({kind}, sha256 {digest[:12]}...) is being "
                             "imported by another process right now")
        try:
            _commit_locked(engine, path, kind, digest, size, as_of, at, imported_by, source,
                           run_id, encoding, progress, today, result)
        finally:
            holder.execute(sa.text("SELECT pg_advisory_unlock(hashtext(:k))"),
                           {"k": _lock_key(kind, digest)})
            holder.commit()
    return result


def _fail(engine: sa.Engine, result: CommitResult, code: str, message: str,
          metrics: dict[str, Any] | None = None) -> None:
    error = {"code": code, "message": message, "trace_id": result.trace_id}
    summary: dict[str, Any] = {"error": error}
    if metrics is not None:
        summary["metrics"] = metrics
    with engine.begin() as conn:
        result.summary = set_status(conn, result.import_id, "failed", summary=summary,
                                    error_message=message[:2000])
    result.status = "failed"


def _commit_locked(engine, path, kind, digest, size, as_of, at, imported_by, source, run_id,
                   encoding, progress, today, result: CommitResult) -> None:
    with engine.begin() as conn:
        record = open_import(conn, kind=kind, file_name=path.name, file_path=str(path.resolve()),
                             file_size=size, content_hash=digest, as_of=as_of, captured_at=at,
                             imported_by=imported_by, source=source, run_id=run_id)
        result.import_id = record.id
        result.reimport = record.reimport
        set_status(conn, record.id, "processing", summary={
            "kind": kind, "file": path.name, "content_hash": digest,
            "as_of_date": as_of.isoformat() if as_of else None,
            "captured_at": at.isoformat() if at else None, "reimport": record.reimport,
            "imported_by": imported_by, "source": source, "trace_id": result.trace_id},
            total_rows=0, valid_rows=0, invalid_rows=0, warning_rows=0, unknown_unit_codes=0,
            unknown_regions=0, records_loaded=0, error_message=None, dagster_run_id=run_id)
        clear_staging(conn, record.id)

    today = today or datetime.now(NY).date()
    if as_of is None:
        try:
            as_of_from_name(path.name)
        except ImportFileError as exc:
            return _fail(engine, result, exc.code, f"{exc}; give --as-of YYYY-MM-DD")
        return _fail(engine, result, "no_as_of_date",
                     f"{path.name}: no as-of date. Name the file ..._YYYY-MM-DD.csv (the day the "
                     "export shows) or give --as-of YYYY-MM-DD")
    if as_of > today:
        return _fail(engine, result, "as_of_in_future",
                     f"{path.name}: as-of date {as_of} is after today ({today})")

    # ---- processing: read, validate and stage every row
    totals = Totals()
    digest_issues = _IssueDigest()
    writer = StagingWriter(engine, record.id)
    try:
        regions, circuits = _reference(engine, kind)
        validator = Validator(kind, regions, circuits)
        with CsvStream(path, kind, encoding) as stream:
            for raw in stream:
                row = validator.validate(raw)
                totals.add(row)
                digest_issues.add(row)
                writer.add(row)
                if progress and totals.rows % 5_000 == 0:
                    progress("staging", stream.bytes_read, stream.size, totals.rows)
            if stream.digest() != digest:
                # Staged rows must be the content the lineage names (a file still being
                # written, or replaced, while it was imported).
                raise ImportFileError("file_changed", "the file changed while it was imported "
                                      f"(sha256 {digest[:12]}... before, {stream.digest()[:12]}"
                                      "... as read); import it again once it is complete",
                                      file=path.name)
            writer.flush()
            totals.blank_lines = stream.blank_lines
            if progress:
                progress("staging", stream.size, stream.size, totals.rows)
    except ImportFileError as exc:
        return _fail(engine, result, exc.code, str(exc), totals.as_dict())
    except Exception as exc:  # noqa: BLE001 - recorded as the import's failure, then reported
        return _fail(engine, result, type(exc).__name__, f"{path.name}: staging failed: {exc}",
                     totals.as_dict())

    staged = {**totals.as_dict(), "staging_batches": writer.batches}
    columns = dict(total_rows=totals.rows, valid_rows=totals.valid, invalid_rows=totals.invalid,
                   warning_rows=totals.with_warnings,
                   unknown_unit_codes=len(totals.unknown_unit_codes),
                   unknown_regions=len(totals.unknown_regions))
    row_issues = digest_issues.summary()
    with engine.begin() as conn:
        set_status(conn, record.id, "queued", summary={
            "metrics": staged, "issues": row_issues,
            "unknown_unit_codes": totals.unknown_unit_codes,
            "unknown_regions": totals.unknown_regions}, **columns)
    if totals.valid == 0:
        return _fail(engine, result, "no_valid_rows",
                     f"{path.name}: none of its {totals.rows} row(s) is valid; the rows and their "
                     f"issues are in import_staging_rows (data_import_id {record.id})", staged)

    # ---- transforming: one transaction for the whole load
    with engine.begin() as conn:
        set_status(conn, record.id, "transforming")
    try:
        loaded_rows = 0

        def step(n: int) -> None:
            nonlocal loaded_rows
            loaded_rows += n
            if progress:
                progress("loading", loaded_rows, totals.valid, loaded_rows)

        with engine.begin() as conn, engine.connect() as read:
            removed = loader.remove_rows_of_import(conn, record.id, record.previous_captured_at)
            load = loader.load_circuits if kind == "circuits" else loader.load_units
            outcome = load(conn, read, record.id, at, progress=step)
            # Rows that loaded cleanly are in the warehouse now (with lineage); rows with issues
            # (invalid ones, warnings, duplicates) stay in staging with their reasons.
            purged = conn.execute(sa.text(
                "DELETE FROM import_staging_rows WHERE data_import_id = :id AND valid"
                " AND issues = CAST('[]' AS jsonb)"), {"id": record.id}).rowcount
            metrics = {**staged, **outcome.metrics(), **removed, "staging_rows_purged": purged,
                       "staging_rows_kept": totals.rows - purged}
            result.summary = set_status(
                conn, record.id, "transformed",
                summary={"metrics": metrics, "issues": row_issues + outcome.issues()},
                records_loaded=outcome.records)
        result.status = "transformed"
    except Exception as exc:  # noqa: BLE001 - the load rolled back; recorded as failed
        _fail(engine, result, type(exc).__name__, f"{path.name}: load failed (nothing written): "
              f"{exc}", staged)
