"""Reading WorkStudio CSV exports: kinds, headings, the as-of date of a file name, streaming.

A CSV export of a view has the view's heading (ws_tracker/workstudio/protocol.py) as its first
line and one row per line after it, with the quirks of the API (wrapped dates, "" for NULL,
trailing spaces), plus those of files: a UTF-8 byte order mark, CRLF line ends, quoted fields
(commas and line breaks inside), ragged rows, blank lines. Nothing here holds more than one
row at a time: a file of any size is read in constant memory.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from ws_tracker.rules.decoding import replace_unstorable
from ws_tracker.workstudio.protocol import (
    CIRCUIT_LIST_HEADING,
    CIRCUIT_LIST_REQUIRED,
    PLANNED_UNITS_HEADING,
    PLANNED_UNITS_OPTIONAL,
    PLANNED_UNITS_REQUIRED,
)

__all__ = [
    "KINDS",
    "CsvStream",
    "Heading",
    "ImportFileError",
    "RawRow",
    "as_of_from_name",
    "detect_kind",
    "file_digest",
    "read_heading",
]

KINDS = ("circuits", "planned_units")
KNOWN_COLUMNS: dict[str, tuple[str, ...]] = {
    "circuits": tuple(CIRCUIT_LIST_HEADING),
    "planned_units": tuple(PLANNED_UNITS_HEADING) + tuple(PLANNED_UNITS_OPTIONAL),
}
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "circuits": tuple(CIRCUIT_LIST_REQUIRED),
    "planned_units": tuple(PLANNED_UNITS_REQUIRED),
}
# A column only one kind has: how a heading tells which view it was exported from.
_KIND_MARKERS = {"circuits": "SS_JOBGUID", "planned_units": "SSUNITS_OBJECTID"}
# A geometry cell (the bounds polygon) is about 24 KB; allow far more, but not unbounded.
FIELD_SIZE_LIMIT = 16 * 1024 * 1024
_CHUNK = 1 << 20
# `..._2026-03-02.csv`, `circuits 2026-03-02 export.csv`: the last ISO date in the name.
_ISO_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")


class ImportFileError(ValueError):
    """The file as a whole cannot be imported: names the file, and the line/column where known."""

    def __init__(self, code: str, message: str, *, file: str | None = None,
                 line: int | None = None, column: str | None = None) -> None:
        self.code = code
        self.file = file
        self.line = line
        self.column = column
        where = ", ".join(p for p in (file, f"line {line}" if line else None,
                                      f"column {column}" if column else None) if p)
        super().__init__(f"{where}: {message}" if where else message)


def as_of_from_name(name: str) -> date | None:
    """The as-of date written in a file name (``circuits_2026-03-02.csv``), else None.

    The last ISO date (YYYY-MM-DD) in the name wins; an impossible date (2026-02-30) is an
    error, not a silent None."""
    matches = list(_ISO_DATE.finditer(Path(name).name))
    if not matches:
        return None
    y, m, d = (int(g) for g in matches[-1].groups())
    try:
        return date(y, m, d)
    except ValueError:
        raise ImportFileError("bad_as_of_date", f"{matches[-1].group(0)!r} in the file name is "
                              "not a calendar date", file=Path(name).name) from None


def file_digest(path: str | Path) -> tuple[str, int]:
    """(SHA-256 hex of the file's bytes, size in bytes), read in 1 MiB chunks."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _canonical(name: str) -> str:
    return name.replace("\ufeff", "").strip()


def detect_kind(path: str | Path, encoding: str = "utf-8-sig") -> str | None:
    """Which view a file was exported from, by its heading, else by its name; None if neither."""
    try:
        with open(path, encoding=encoding, newline="", errors="replace") as f:
            first = next(csv.reader(f), [])
    except (OSError, csv.Error):
        first = []
    names = {_canonical(c).upper() for c in first}
    found = [kind for kind, marker in _KIND_MARKERS.items() if marker in names]
    if len(found) == 1:
        return found[0]
    lowered = Path(path).name.lower()
    if "planned" in lowered or "unit" in lowered:
        return "planned_units"
    if "circuit" in lowered:
        return "circuits"
    return None


@dataclass(frozen=True)
class Heading:
    """The file's heading, matched to the view's columns (case- and space-insensitively)."""

    kind: str
    columns: tuple[str, ...]  # canonical names, in file order
    recognised: tuple[str, ...]
    unrecognised: tuple[str, ...]
    missing_optional: tuple[str, ...]


def read_heading(fields: list[str], kind: str, file: str | None = None) -> Heading:
    """Match a heading line to ``kind``'s view; a missing required column fails the file."""
    if kind not in KINDS:
        raise ImportFileError("unknown_kind", f"kind must be one of {KINDS}, not {kind!r}",
                              file=file)
    known = {c.upper(): c for c in KNOWN_COLUMNS[kind]}
    columns: list[str] = []
    seen: dict[str, int] = {}
    for position, raw in enumerate(fields, start=1):
        name = _canonical(raw)
        canonical = known.get(name.upper(), name)
        if not canonical:
            raise ImportFileError("empty_column_name", f"column {position} of the heading has "
                                  "no name", file=file, line=1)
        if canonical in seen:
            raise ImportFileError("duplicate_column", f"column {canonical!r} appears twice in "
                                  f"the heading (positions {seen[canonical]} and {position})",
                                  file=file, line=1, column=canonical)
        seen[canonical] = position
        columns.append(canonical)
    missing = [c for c in REQUIRED_COLUMNS[kind] if c not in seen]
    if missing:
        other = [k for k in KINDS if k != kind and _KIND_MARKERS[k] in seen]
        hint = f"; the heading looks like a {other[0]} export" if other else ""
        raise ImportFileError("missing_columns", f"the heading lacks {len(missing)} column(s) a "
                              f"{kind} export has: {', '.join(missing)}{hint}", file=file, line=1)
    return Heading(
        kind=kind,
        columns=tuple(columns),
        recognised=tuple(c for c in columns if c in KNOWN_COLUMNS[kind]),
        unrecognised=tuple(c for c in columns if c not in KNOWN_COLUMNS[kind]),
        missing_optional=tuple(c for c in KNOWN_COLUMNS[kind]
                               if c not in seen and c not in REQUIRED_COLUMNS[kind]),
    )


@dataclass
class RawRow:
    """One data row as read: 1-based row number (after the heading) and the line it ends on."""

    row_number: int
    line_number: int
    values: dict[str, Any]
    issues: list[dict[str, Any]] = field(default_factory=list)
    ragged: bool = False


def issue(row_number: int | None, column: str | None, value: Any, reason: str,
          severity: str = "error", code: str = "row_issue") -> dict[str, Any]:
    """A row issue in the shape staging and previews show (RowIssue.to_dict's keys)."""
    r = repr(value)
    return {"row_number": row_number, "column": column,
            "value": r if len(r) <= 200 else r[:197] + "...", "reason": reason,
            "severity": severity, "code": code}


class CsvStream:
    """Rows of one CSV export, streamed: ``with CsvStream(path, kind) as s: for row in s: ...``.

    The heading is read on entry (``s.heading``); each data row comes out as a :class:`RawRow`
    whose values are keyed by canonical column names. Ragged rows (more or fewer fields than
    the heading) come out flagged with an error issue, blank lines are counted and skipped,
    NUL and lone surrogates are replaced (PostgreSQL cannot store them) with a warning.
    Bytes that are not valid in ``encoding`` fail the file, naming the line and position.
    Lines are read as bytes and decoded one by one (so a decoding error names its line), which
    suits UTF-8 and the single-byte encodings (cp1252, latin-1) exports are saved in.
    """

    def __init__(self, path: str | Path, kind: str, encoding: str = "utf-8-sig") -> None:
        self.path = Path(path)
        self.kind = kind
        self.encoding = "utf-8-sig" if encoding.replace("_", "-").lower() in ("utf-8", "utf8") \
            else encoding
        codecs.lookup(self.encoding)  # an unknown encoding fails here, clearly
        self.heading: Heading | None = None
        self.blank_lines = 0
        self.rows_read = 0
        self.size = 0
        self.bytes_read = 0
        self._sha256 = hashlib.sha256()
        self._raw = None
        self._reader = None

    def __enter__(self) -> "CsvStream":
        csv.field_size_limit(max(csv.field_size_limit(), FIELD_SIZE_LIMIT))
        try:
            self._raw = open(self.path, "rb", buffering=_CHUNK)
        except OSError as exc:
            raise ImportFileError("unreadable_file", f"cannot open: {exc.strerror or exc}",
                                  file=str(self.path)) from None
        self.size = self.path.stat().st_size
        self._reader = csv.reader(self._lines(), strict=False)
        first = self._next()
        if first is None:
            raise ImportFileError("empty_file", "the file is empty (no heading line)",
                                  file=self.path.name)
        self.heading = read_heading(first, self.kind, self.path.name)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def digest(self) -> str:
        """SHA-256 of the bytes read so far (the whole file once the rows are exhausted)."""
        return self._sha256.hexdigest()

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()
        self._raw = None

    def _lines(self) -> Iterator[str]:
        """The file's physical lines (line ends kept, as csv wants them), decoded."""
        assert self._raw is not None
        encoding = self.encoding
        later = "utf-8" if encoding == "utf-8-sig" else encoding  # a BOM only opens a file
        for number, raw in enumerate(self._raw, start=1):
            self.bytes_read += len(raw)
            self._sha256.update(raw)
            try:
                yield raw.decode(encoding)
            except UnicodeDecodeError as exc:
                raise ImportFileError(
                    "bad_encoding", f"byte {raw[exc.start:exc.start + 1]!r} at position "
                    f"{exc.start + 1} is not valid {self.encoding} ({exc.reason}); save the "
                    "export as UTF-8 or give its encoding (--encoding cp1252)",
                    file=self.path.name, line=number) from None
            encoding = later

    def _next(self) -> list[str] | None:
        assert self._reader is not None
        try:
            return next(self._reader)
        except StopIteration:
            return None
        except csv.Error as exc:
            raise ImportFileError("bad_csv", f"unreadable CSV: {exc}", file=self.path.name,
                                  line=self._reader.line_num) from None

    def __iter__(self) -> Iterator[RawRow]:
        assert self.heading is not None, "use CsvStream as a context manager"
        columns = self.heading.columns
        width = len(columns)
        number = 0
        while True:
            fields = self._next()
            if fields is None:
                return
            if not fields or (len(fields) == 1 and not fields[0].strip() and width > 1):
                self.blank_lines += 1
                continue
            number += 1
            self.rows_read = number
            line = self._reader.line_num
            row = RawRow(number, line, {})
            for i, value in enumerate(fields[:width]):
                clean = replace_unstorable(value)
                if clean != value:
                    row.issues.append(issue(number, columns[i], value, "holds NUL or a lone "
                                            "surrogate, which PostgreSQL cannot store; kept "
                                            "with U+FFFD in their place", "warning",
                                            "unstorable_value"))
                row.values[columns[i]] = clean
            if len(fields) != width:
                row.ragged = True
                if len(fields) > width:
                    row.values["_extra_fields"] = [replace_unstorable(v) for v in fields[width:]]
                row.issues.append(issue(
                    number, None, len(fields),
                    f"{len(fields)} field(s), the heading has {width}: a ragged row (a stray "
                    "comma or line break?); not loaded", "error", "ragged_row"))
            yield row
