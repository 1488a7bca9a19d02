"""`ws-tracker import ...` (issue 8): registered into the main parser by ws_tracker.cli.

    ws-tracker import preview FILE [--kind circuits|planned_units]   read + validate, write nothing
    ws-tracker import commit FILE --as-of YYYY-MM-DD [--kind ...]    stage, validate, load
    ws-tracker import status [ID] [--last N]                         data_imports and summaries
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from datetime import date
from typing import Any, TextIO

KINDS = ("circuits", "planned_units")
ENV_IMPORT_BY = "WS_TRACKER_IMPORTED_BY"


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `import` command group to the top-level subparsers."""
    p = sub.add_parser("import", help="historical imports: WorkStudio CSV exports in "
                       "(preview, commit, status)")
    isub = p.add_subparsers(dest="import_command", required=True)

    pv = isub.add_parser("preview", help="read and validate an export; writes nothing")
    pv.add_argument("file")
    pv.add_argument("--kind", choices=KINDS, help="default: from the heading (or the name)")
    pv.add_argument("--rows", type=int, default=5, help="rows shown as read and as normalised")
    pv.add_argument("--max-issues", type=int, default=50, help="row issues listed (all counted)")
    pv.add_argument("--encoding", default="utf-8", help="of the file (default utf-8; BOM ok)")
    pv.add_argument("--json", action="store_true", help="the preview as one JSON document")
    pv.set_defaults(func=cmd_preview)

    cm = isub.add_parser("commit", help="stage, validate and load an export as captures dated "
                         "--as-of, with lineage (data_imports)")
    cm.add_argument("file")
    cm.add_argument("--as-of", type=_day, dest="as_of",
                    help="the day the export shows (default: the YYYY-MM-DD in the file name)")
    cm.add_argument("--kind", choices=KINDS, help="default: from the heading (or the name)")
    cm.add_argument("--by", help=f"who imports (email of a user, or a name; default "
                                 f"${ENV_IMPORT_BY}, else the OS user)")
    cm.add_argument("--encoding", default="utf-8")
    cm.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    cm.set_defaults(func=cmd_commit)

    st = isub.add_parser("status", help="data_imports rows: status, counts, summary")
    st.add_argument("import_id", nargs="?", type=int)
    st.add_argument("--last", type=int, default=10)
    st.set_defaults(func=cmd_status)


# ----------------------------------------------------------------------------- progress
class ProgressBar:
    """A one-line progress bar on a terminal (redrawn at most 10 times a second); on anything
    else, a line per 10 % so logs stay short."""

    def __init__(self, stream: TextIO = sys.stderr, width: int = 30) -> None:
        self.stream = stream
        self.width = width
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.phase: str | None = None
        self.last_draw = 0.0
        self.last_tenth = -1

    def __call__(self, phase: str, done: int, total: int, rows: int) -> None:
        if phase != self.phase:
            if self.phase is not None and self.tty:
                self.stream.write("\n")
            self.phase, self.last_tenth = phase, -1
        share = min(1.0, done / total) if total else 1.0
        if self.tty:
            now = time.monotonic()
            if share < 1.0 and now - self.last_draw < 0.1:
                return
            self.last_draw = now
            filled = int(share * self.width)
            self.stream.write(f"\r{phase:8} [{'#' * filled}{'-' * (self.width - filled)}] "
                              f"{share:4.0%}  {rows:,} rows")
        else:
            tenth = int(share * 10)
            if tenth == self.last_tenth:
                return
            self.last_tenth = tenth
            self.stream.write(f"{phase:8} {share:4.0%}  {rows:,} rows\n")
        self.stream.flush()

    def close(self) -> None:
        if self.phase is not None and self.tty:
            self.stream.write("\n")
            self.stream.flush()


# ----------------------------------------------------------------------------- helpers
def _engine(migrate: bool = True):
    from ws_tracker.warehouse.migrate import upgrade
    from ws_tracker.warehouse.resource import engine_for, resolve_database_url

    url = resolve_database_url()
    if migrate:
        upgrade(url)
    return engine_for(url)


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    r = repr(text) if isinstance(value, str) else text
    return r if len(r) <= limit else r[: limit - 3] + "..."


def _pairs(values: dict[str, Any] | None) -> str:
    if not values:
        return "-"
    return ", ".join(f"{k}={_short(v)}" for k, v in values.items())


def _issue_line(i: dict[str, Any]) -> str:
    return (f"row {i.get('row_number')}, column {i.get('column') or '-'}, value "
            f"{i.get('value')}: {i.get('reason')} [{i.get('severity')} {i.get('code')}]")


def _error(message: str) -> int:
    print(f"ws-tracker: error: {message}", file=sys.stderr)
    return 2


# ----------------------------------------------------------------------------- preview
def cmd_preview(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from ws_tracker.imports import ImportFileError, preview_file

    # Read only: the warehouse gives the regions and circuits rows are checked against (it is
    # not even migrated here); without it the file is still previewed, unchecked against them.
    note = None
    try:
        try:
            preview = preview_file(args.file, args.kind, engine=_engine(migrate=False),
                                   sample_rows=args.rows, max_issues=args.max_issues,
                                   encoding=args.encoding)
        except sa.exc.DBAPIError as exc:
            note = (f"warehouse not readable ({type(exc.orig).__name__}): regions and circuits "
                    "were not checked")
            preview = preview_file(args.file, args.kind, sample_rows=args.rows,
                                   max_issues=args.max_issues, encoding=args.encoding)
    except (ImportFileError, LookupError) as exc:
        return _error(str(exc))
    t = preview.totals
    if args.json:
        print(json.dumps({
            "file": preview.file, "kind": preview.kind,
            "headers": {"recognised": list(preview.heading.recognised),
                        "unrecognised": list(preview.heading.unrecognised),
                        "absent_optional": list(preview.heading.missing_optional)},
            "rows": [{"row_number": r.row_number, "line_number": r.line_number,
                      "original": r.raw, "normalized": r.normalised, "valid": r.valid,
                      "issues": r.issues} for r in preview.samples],
            "issues": preview.issues, "issues_total": preview.issues_total,
            "summary": t.as_dict(), "unknown_unit_codes": t.unknown_unit_codes,
            "unknown_regions": t.unknown_regions}, default=str, indent=2))
        return 0
    out = print
    out(f"preview of {preview.file} ({preview.kind}): nothing is written")
    if note:
        out(f"note: {note}")
    out(f"headers recognised ({len(preview.heading.recognised)}): "
        + ", ".join(preview.heading.recognised))
    if preview.heading.unrecognised:
        out(f"headers not recognised ({len(preview.heading.unrecognised)}, kept in the raw row): "
            + ", ".join(preview.heading.unrecognised))
    if preview.heading.missing_optional:
        out("optional view columns absent: " + ", ".join(preview.heading.missing_optional))
    out(f"first {len(preview.samples)} row(s):")
    for r in preview.samples:
        out(f"  row {r.row_number} (line {r.line_number}): {'valid' if r.valid else 'INVALID'}")
        out(f"    as read:       {_pairs(r.raw)}")
        out(f"    as normalised: {_pairs(r.normalised)}")
        for i in r.issues:
            out(f"    issue: {_issue_line(i)}")
    shown = len(preview.issues)
    out(f"issues: {preview.issues_total} in all" + (f", first {shown} shown" if shown <
                                                      preview.issues_total else "")
        + (":" if shown else ""))
    for i in preview.issues:
        out(f"  {_issue_line(i)}")
    codes = ", ".join(f"{k} ({v} rows)" for k, v in sorted(t.unknown_unit_codes.items()))
    regions = ", ".join(f"{k!r} ({v} rows)" for k, v in sorted(t.unknown_regions.items()))
    out(f"totals: rows {t.rows}, valid {t.valid}, invalid {t.invalid}, with warnings "
        f"{t.with_warnings}, unknown unit codes {len(t.unknown_unit_codes)}"
        + (f" [{codes}]" if codes else "")
        + f", unknown regions {len(t.unknown_regions)}" + (f" [{regions}]" if regions else "")
        + f", blank lines {t.blank_lines}")
    return 0


# ----------------------------------------------------------------------------- commit
def cmd_commit(args: argparse.Namespace) -> int:
    from ws_tracker.imports import ImportBusy, ImportFileError, as_of_from_name, commit_file

    try:
        as_of = args.as_of or as_of_from_name(args.file)
    except ImportFileError as exc:
        return _error(str(exc))
    by = args.by or os.environ.get(ENV_IMPORT_BY) or getpass.getuser()
    bar = None if args.no_progress else ProgressBar(sys.stderr)
    try:
        result = commit_file(_engine(), args.file, kind=args.kind, as_of=as_of,
                             imported_by=by, source="cli", encoding=args.encoding, progress=bar)
    except (ImportFileError, ImportBusy) as exc:
        return _error(str(exc))
    finally:
        if bar is not None:
            bar.close()
    summary = result.summary
    metrics = summary.get("metrics", {})
    head = (f"import {result.import_id} of {result.file} ({result.kind}, as of "
            f"{result.as_of or '?'}, sha256 {result.content_hash[:12]}): {result.status}"
            + (" (a re-import: its earlier rows were replaced)" if result.reimport else ""))
    print(head)
    if metrics:
        print("  rows {rows}, valid {valid_rows}, invalid {invalid_rows}, with warnings "
              "{rows_with_warnings}, unknown unit codes {unknown_unit_codes}, unknown regions "
              "{unknown_regions}".format(**{k: metrics.get(k, 0) for k in (
                  "rows", "valid_rows", "invalid_rows", "rows_with_warnings",
                  "unknown_unit_codes", "unknown_regions")}))
    if result.ok:
        loaded = {k: metrics[k] for k in ("circuits_created", "circuits_updated",
                                          "circuits_history_only", "history_versions",
                                          "captures_stored", "captures_unchanged",
                                          "units_loaded") if metrics.get(k)}
        print("  loaded: " + (", ".join(f"{k}={v}" for k, v in loaded.items()) or "no change"))
    for i in summary.get("issues", []):
        print(f"  {i['type']} {i['code']}: {i['message']}")
    if metrics.get("invalid_rows") or metrics.get("staging_rows_kept"):
        print(f"  rows with issues (and every invalid row) are kept in import_staging_rows, "
              f"data_import_id {result.import_id}, each with its reasons")
    if not result.ok:
        err = result.error or {}
        print(f"ws-tracker: error: import failed [{err.get('code')}]: {err.get('message')} "
              f"(trace id {err.get('trace_id')})", file=sys.stderr)
        return 1
    last, first = (result.as_of.isoformat(),) * 2
    print(f"  history for {first}: ws-tracker backfill --from {first} --to {last}")
    return 0


# ----------------------------------------------------------------------------- status
def cmd_status(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    engine = _engine()
    with engine.connect() as conn:
        if args.import_id is not None:
            row = conn.execute(sa.text("SELECT * FROM data_imports WHERE id = :id"),
                               {"id": args.import_id}).mappings().first()
            if row is None:
                return _error(f"no data import {args.import_id}")
            print(json.dumps(dict(row), default=str, indent=2))
            return 0
        rows = conn.execute(sa.text(
            "SELECT id, status, kind, as_of_date, file_name, total_rows, valid_rows, invalid_rows,"
            " records_loaded, imported_by, updated_at FROM data_imports ORDER BY id DESC"
            " LIMIT :n"), {"n": args.last}).all()
    for r in rows:
        print(f"{r.id:>5} {r.status:12} {r.kind:13} {r.as_of_date or '-'!s:10} rows {r.total_rows}"
              f" (valid {r.valid_rows}, invalid {r.invalid_rows}) loaded {r.records_loaded}  "
              f"{r.file_name}  by {r.imported_by}  {r.updated_at:%Y-%m-%d %H:%M}")
    return 0
