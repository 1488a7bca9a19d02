"""Circuit-list rows -> typed circuit records (business-rules.md, "Circuits").

Pure: no I/O. Problems are returned as :class:`RowIssue` values, never swallowed.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, computed_field, field_validator

from ws_tracker.rules.decoding import (
    DecodeError,
    clean_text,
    decode_date,
    decode_number,
    decode_timestamp,
    replace_unstorable,
    to_decimal,
)
from ws_tracker.rules.errors import RowIssue
from ws_tracker.workstudio.protocol import CIRCUIT_LIST_DROPPED

__all__ = [
    "MAIN_EXTENSION",
    "CircuitRecord",
    "normalise_extension",
    "normalise_guid",
    "region_key",
    "resolve_parents",
    "transform_circuit_rows",
]

MAIN_EXTENSION = "@"
# The business day is Eastern: a 23:30 ET edit belongs to that ET day, not the next UTC one.
LOCAL_TZ = ZoneInfo("America/New_York")
REQUIRED_COLUMNS = ("SS_JOBGUID", "SS_WO", "WSREQ_STATUS")

_GUID = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$")
_WS = re.compile(r"\s+")


def normalise_guid(value: Any) -> str | None:
    """``14a9...`` / ``{14A9...}`` -> ``{14A9...}``; ""/None -> None; not a GUID -> DecodeError."""
    text = clean_text(value)
    if text is None:
        return None
    bare = text.strip("{}").strip().upper()
    if not _GUID.match(bare):
        raise DecodeError(f"not a GUID: {text!r:.80}")
    return "{" + bare + "}"


def normalise_extension(value: Any) -> str:
    """Empty, None or ``@`` -> ``@`` (the main job); anything else, trimmed, is a split."""
    text = clean_text(value)
    return MAIN_EXTENSION if text is None else text


def region_key(name: str | None) -> str:
    """Case- and space-insensitive region key: casefold, trim, collapse inner whitespace."""
    if not name:
        return ""
    return _WS.sub(" ", name).strip().casefold()


class CircuitRecord(BaseModel):
    """One WorkStudio job as the circuit list shows it, normalised."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    job_guid: str
    work_order: str
    extension: str = MAIN_EXTENSION
    title: str | None = None
    api_status: str
    job_type: str | None = None
    cycle_type: str | None = None
    region_name: str | None = None
    total_miles: float = 0.0
    miles_planned: float = 0.0
    percent_complete: float = 0.0
    contractor: str | None = None
    forester: str | None = None
    taken_by: str | None = None
    assigned_to: str | None = None
    api_modified_at: datetime | None = None
    api_version: str | None = None
    start_date: date | None = None
    parent_job_guid: str | None = None
    api_data: dict[str, Any] = {}

    @field_validator("job_guid")
    @classmethod
    def _job_guid(cls, v: str) -> str:
        guid = normalise_guid(v)
        if guid is None:
            raise ValueError("job_guid is required")
        return guid

    @field_validator("parent_job_guid", mode="before")
    @classmethod
    def _parent_guid(cls, v: Any) -> str | None:
        return normalise_guid(v)

    @field_validator("extension", mode="before")
    @classmethod
    def _extension(cls, v: Any) -> str:
        return normalise_extension(v)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def is_split(self) -> bool:
        """True for a split child (any extension other than ``@``)."""
        return self.extension != MAIN_EXTENSION

    @computed_field  # type: ignore[prop-decorator]
    @property
    def api_modified_date(self) -> date | None:
        """The America/New_York calendar date of ``api_modified_at``."""
        if self.api_modified_at is None:
            return None
        return self.api_modified_at.astimezone(LOCAL_TZ).date()


# What the circuits and circuit_history columns hold (migration 0001): a longer text or a
# larger number would fail the whole listing's transaction, so the row reports it instead.
_MAX_LENGTH = {"work_order": 20, "api_status": 20, "extension": 5, "contractor": 50,
               "cycle_type": 100, "job_type": 100, "api_version": 50}
_NUMERIC_LIMIT = {"total_miles": 10 ** 8, "miles_planned": 10 ** 8,  # NUMERIC(10, 2)
                  "percent_complete": 10 ** 3}  # NUMERIC(5, 2)

_NUMBER_FIELDS = (
    ("total_miles", "VEGJOB_LENGTH"),
    ("miles_planned", "VEGJOB_LENGTHCOMP"),
    ("percent_complete", "VEGJOB_PRCENT"),
)
_TEXT_FIELDS = (
    ("title", "SS_TITLE"),
    ("job_type", "SS_JOBTYPE"),
    ("cycle_type", "VEGJOB_CYCLETYPE"),
    ("region_name", "REGION"),
    ("contractor", "VEGJOB_CONTRACTOR"),
    ("forester", "VEGJOB_FORESTER"),
    ("taken_by", "SS_TAKENBY"),
    ("assigned_to", "SS_ASSIGNEDTO"),
    ("api_version", "WSREQ_VERSION"),
)


def _text(row: dict, column: str, n: int, key: str, issues: list[RowIssue],
          name: str | None = None) -> str | None:
    try:
        text = clean_text(row.get(column))
    except DecodeError as exc:
        issues.append(RowIssue(n, column, row.get(column), f"{exc}; stored as NULL",
                               "warning", key, "bad_text"))
        return None
    limit = _MAX_LENGTH.get(name or "")
    if text is not None and limit is not None and len(text) > limit:
        issues.append(RowIssue(n, column, row.get(column),
                               f"{len(text)} characters, the column holds {limit}; stored as NULL",
                               "warning", key, "text_too_long"))
        return None
    return text


def _in_range(number: float, limit: int) -> bool:
    """Whether ``number`` fits a NUMERIC(p, 2) column whose integer part is below ``limit``."""
    return abs(number) < limit and abs(to_decimal(number, 2)) < limit


def _storable(value: Any) -> tuple[Any, bool]:
    """(value as JSONB can hold it, whether that changed it): NUL and lone surrogates in
    strings (keys too) become U+FFFD, NaN and infinities (not JSON) become null."""
    if isinstance(value, str):
        clean = replace_unstorable(value)
        return clean, clean != value
    if isinstance(value, float) and not math.isfinite(value):
        return None, True
    if isinstance(value, list):
        pairs = [_storable(v) for v in value]
        return [v for v, _ in pairs], any(c for _, c in pairs)
    if isinstance(value, dict):
        out, changed = {}, False
        for k, v in value.items():
            key, key_changed = _storable(k) if isinstance(k, str) else (k, False)
            out[key], value_changed = _storable(v)
            changed = changed or key_changed or value_changed
        return out, changed
    return value, False


def _circuit_from_row(
    row: dict[str, Any], n: int, issues: list[RowIssue]
) -> CircuitRecord | None:
    """One row -> a record, or None (with an error issue) when a key column is unusable."""
    fields: dict[str, Any] = {}
    missing: list[str] = []
    for column in REQUIRED_COLUMNS:
        try:
            value = clean_text(row.get(column))
        except DecodeError:
            value = None
        if value is None:
            missing.append(column)
        fields[column] = value
    key = fields["SS_JOBGUID"]
    too_long = {c: limit for c, limit in (("SS_WO", _MAX_LENGTH["work_order"]),
                                          ("WSREQ_STATUS", _MAX_LENGTH["api_status"]))
                if fields[c] is not None and len(fields[c]) > limit}
    if too_long and not missing:
        issues.append(RowIssue(
            n, ",".join(too_long), {c: row.get(c) for c in too_long},
            "longer than the circuits table holds ("
            + ", ".join(f"{c}: {len(fields[c])} characters, max {m}" for c, m in too_long.items())
            + "); circuit row skipped", "error", key, "key_too_long",
        ))
        return None
    if missing:
        issues.append(RowIssue(
            n, ",".join(missing), {c: row.get(c) for c in missing},
            f"required column(s) {missing} missing or empty; circuit row skipped",
            "error", key, "missing_key",
        ))
        return None
    try:
        job_guid = normalise_guid(key)
    except DecodeError as exc:
        issues.append(RowIssue(n, "SS_JOBGUID", key, f"{exc}; circuit row skipped",
                               "error", key, "bad_key"))
        return None
    assert job_guid is not None

    record: dict[str, Any] = {
        "job_guid": job_guid,
        "work_order": fields["SS_WO"],
        "api_status": fields["WSREQ_STATUS"],
    }
    extension = _text(row, "SS_EXT", n, job_guid, issues)
    if extension is not None and len(extension) > _MAX_LENGTH["extension"]:
        # The extension names the job (main or which split): NULL would make it the main job.
        issues.append(RowIssue(n, "SS_EXT", row.get("SS_EXT"),
                               f"extension of {len(extension)} characters, the column holds "
                               f"{_MAX_LENGTH['extension']}; circuit row skipped",
                               "error", job_guid, "key_too_long"))
        return None
    record["extension"] = extension
    for name, column in _TEXT_FIELDS:
        record[name] = _text(row, column, n, job_guid, issues, name)

    for name, column in _NUMBER_FIELDS:
        raw = row.get(column)
        try:
            number = decode_number(raw)
        except DecodeError as exc:
            number, why = None, f"{exc}"
        else:
            why = "missing"
            if number is not None and not _in_range(number, _NUMERIC_LIMIT[name]):
                number, why = None, f"{number!r} is out of the column's range"
        if number is None:
            # business-rules.md: numbers that do not parse become 0, reported, never silently.
            issues.append(RowIssue(n, column, raw, f"{why}; stored as 0", "warning",
                                   job_guid, "bad_number"))
            number = 0.0
        record[name] = number

    try:
        record["api_modified_at"] = decode_timestamp(row.get("SS_EDITDATE"))
    except DecodeError as exc:
        issues.append(RowIssue(n, "SS_EDITDATE", row.get("SS_EDITDATE"),
                               f"{exc}; stored as NULL", "warning", job_guid, "bad_date"))
    start_col = "WPStartDate_Assessment_Xrefs_WP_STARTDATE"
    try:
        record["start_date"] = decode_date(row.get(start_col))
    except DecodeError as exc:
        issues.append(RowIssue(n, start_col, row.get(start_col), f"{exc}; stored as NULL",
                               "warning", job_guid, "bad_date"))
    try:
        parent = normalise_guid(row.get("SS_PJOBGUID"))
    except DecodeError as exc:
        issues.append(RowIssue(n, "SS_PJOBGUID", row.get("SS_PJOBGUID"),
                               f"{exc}; parent ignored", "warning", job_guid, "bad_parent"))
        parent = None
    record["parent_job_guid"] = parent if parent != job_guid else None
    api_data: dict[str, Any] = {}
    for column, raw in row.items():
        if column in CIRCUIT_LIST_DROPPED:
            continue
        name, name_changed = _storable(column)
        value, value_changed = _storable(raw)
        if name_changed or value_changed:
            issues.append(RowIssue(n, name, raw, "holds NUL, a lone surrogate or NaN/Infinity, "
                                   "which PostgreSQL cannot store; kept in api_data with U+FFFD "
                                   "/ null in their place", "warning", job_guid,
                                   "unstorable_value"))
        api_data[name] = value
    record["api_data"] = api_data
    return CircuitRecord(**record)


def transform_circuit_rows(
    rows: list[dict[str, Any]],
) -> tuple[list[CircuitRecord], list[RowIssue]]:
    """Circuit-list rows -> (records, issues).

    Rows without SS_JOBGUID, SS_WO or WSREQ_STATUS (or with a malformed GUID, or a work order,
    status or extension longer than the circuits table holds) are not returned and each gives
    an "error" issue. Every record can be stored: a text too long for its column is NULL, a
    number out of its NUMERIC range is 0, each with a "warning" issue; in ``api_data`` (the
    raw row) NUL and lone surrogates become U+FFFD and NaN/Infinity null, with a warning. A job GUID seen twice keeps its **last** row (a later
    listing is the fresher state) in the position of its first, with a "warning" issue.
    ``row_number`` is the 1-based position in ``rows``.
    """
    issues: list[RowIssue] = []
    by_guid: dict[str, CircuitRecord] = {}
    first_row: dict[str, int] = {}
    for n, row in enumerate(rows, start=1):
        record = _circuit_from_row(row, n, issues)
        if record is None:
            continue
        if record.job_guid in by_guid:
            issues.append(RowIssue(
                n, "SS_JOBGUID", record.job_guid,
                f"duplicate job GUID (first at row {first_row[record.job_guid]}); "
                "the last row is kept",
                "warning", record.job_guid, "duplicate_circuit",
            ))
        else:
            first_row[record.job_guid] = n
        by_guid[record.job_guid] = record
    return list(by_guid.values()), issues


def resolve_parents(records: list[CircuitRecord]) -> dict[str, str | None]:
    """job_guid -> parent job_guid for every record (None for main jobs and orphans).

    A split's parent is its SS_PJOBGUID when given, else the ``@`` job of the same work order
    among ``records``. Should a work order list two ``@`` jobs, the smallest GUID is used, so
    the answer does not depend on listing order.
    """
    mains: dict[str, str] = {}
    for r in records:
        if not r.is_split:
            current = mains.get(r.work_order)
            mains[r.work_order] = r.job_guid if current is None else min(current, r.job_guid)
    parents: dict[str, str | None] = {}
    for r in records:
        if not r.is_split:
            parents[r.job_guid] = None
        else:
            parents[r.job_guid] = r.parent_job_guid or mains.get(r.work_order)
    return parents
