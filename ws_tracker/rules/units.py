"""Planned-unit rows -> normalised units, their JSON form and content hash.

Pure: no I/O. See business-rules.md ("Planned-unit captures") and workstudio-api.md
("Planned units view columns").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from ws_tracker.rules.circuits import MAIN_EXTENSION, normalise_extension
from ws_tracker.rules.decoding import (
    DecodeError,
    clean_text,
    decode_date,
    decode_int,
    decode_number,
)
from ws_tracker.rules.errors import RowIssue

__all__ = [
    "PlannedUnit",
    "canonical_json",
    "content_hash",
    "normalise_units",
    "unit_from_row",
    "unit_to_json",
    "units_from_json",
]


class PlannedUnit(BaseModel):
    """One planned work unit, normalised (no geometry)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    unit_id: int
    work_order: str | None = None
    extension: str = MAIN_EXTENSION
    station: str | None = None
    unit_code: str | None = None
    description: str | None = None
    removal_category: str | None = None
    permission_status: str | None = None
    trees: int = 0
    linear_ft: float = 0.0  # feet: the view already converts LENGTHWRK from metres
    acres: float = 0.0
    assessed_date: date | None = None
    forester: str | None = None
    forester_username: str | None = None
    species: str | None = None
    notes: str | None = None
    parcel_comments: str | None = None
    audit_user: str | None = None
    auditor: str | None = None
    audit_date: date | None = None
    audit_pass: str | None = None
    audit_fail_hist: str | None = None
    from_structure: str | None = None
    to_structure: str | None = None
    unit_class: str | None = None
    cost_method: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    span_length_m: float | None = None  # metres, as STATIONS_SPANLGTH gives them

    @field_validator("extension", mode="before")
    @classmethod
    def _extension(cls, v: Any) -> str:
        return normalise_extension(v)


_TEXT_COLUMNS = (
    ("work_order", "SS_WO"),
    ("station", "STATIONS_STATNAME"),
    ("unit_code", "VEGUNIT_UNIT"),
    ("description", "UNITS_DESCRIPTIO"),
    ("removal_category", "VEGUNIT_REMOVCAT"),
    ("permission_status", "VEGUNIT_PERMSTAT"),
    ("forester", "VEGUNIT_FORESTER"),
    ("forester_username", "VEGUNIT_FRSTR_USER"),
    ("species", "VEGUNIT_SPECIES"),
    ("notes", "VEGUNIT_ASSNOTE"),
    ("parcel_comments", "VEGUNIT_PARCELCOMMENTS"),
    ("audit_user", "VEGUNIT_AUDIT_USER"),
    ("auditor", "VEGUNIT_AUDITOR"),
    ("audit_pass", "VEGUNIT_AUDIT_PASS"),
    ("audit_fail_hist", "VEGUNIT_AUDIT_FAIL_HIST"),
    ("from_structure", "VEGSTAT_FROMSTR"),
    ("to_structure", "VEGSTAT_TOSTR"),
    ("unit_class", "VEGUNIT_UNIT_CLASS"),
    ("cost_method", "VEGUNIT_COSTMETHOD"),
)
# Measures: a bad value becomes 0 with an issue (business rule); empty is 0 silently, since
# most units legitimately leave two of the three measures empty.
_MEASURE_COLUMNS = (
    ("trees", "JOBVEGETATIONUNITS_NUMTREES", decode_int),
    ("linear_ft", "JOBVEGETATIONUNITS_LENGTHWRK", decode_number),
    ("acres", "JOBVEGETATIONUNITS_ACRES", decode_number),
)
# Optional numbers: a bad value becomes None with an issue (0 is a real place/length).
_OPTIONAL_NUMBER_COLUMNS = (
    ("latitude", "VEGUNIT_ASSLAT"),
    ("longitude", "VEGUNIT_ASSLONG"),
    ("span_length_m", "STATIONS_SPANLGTH"),
)
_DATE_COLUMNS = (("assessed_date", "VEGUNIT_ASSDDATE"), ("audit_date", "VEGUNIT_AUDITDATE"))


def unit_from_row(
    row: dict[str, Any], n: int | None = None, issues: list[RowIssue] | None = None
) -> PlannedUnit | None:
    """One planned-units row -> a unit, or None (with an "error" issue) without a unit id.

    ``n`` is the 1-based row number used in issues; issues are appended to ``issues``.
    """
    sink: list[RowIssue] = issues if issues is not None else []
    raw_id = row.get("SSUNITS_OBJECTID")
    try:
        unit_id = decode_int(raw_id)
    except DecodeError as exc:
        sink.append(RowIssue(n, "SSUNITS_OBJECTID", raw_id, f"{exc}; unit row skipped",
                             "error", None, "bad_key"))
        return None
    if unit_id is None:
        sink.append(RowIssue(n, "SSUNITS_OBJECTID", raw_id, "no unit id; unit row skipped",
                             "error", None, "missing_key"))
        return None
    key = str(unit_id)

    fields: dict[str, Any] = {"unit_id": unit_id}
    for name, column in _TEXT_COLUMNS:
        value = row.get(column)
        if value.__class__ is str:  # the usual case, inline: clean_text's ASCII fast path
            text = value.strip()
            if text.isascii() and "\x00" not in text:
                fields[name] = text or None
                continue
        try:
            fields[name] = clean_text(value)
        except DecodeError as exc:
            sink.append(RowIssue(n, column, row.get(column), f"{exc}; stored as NULL",
                                 "warning", key, "bad_text"))
    try:
        fields["extension"] = normalise_extension(row.get("SS_EXT"))
    except DecodeError as exc:
        sink.append(RowIssue(n, "SS_EXT", row.get("SS_EXT"), f"{exc}; taken as '@'",
                             "warning", key, "bad_text"))
    for name, column, decoder in _MEASURE_COLUMNS:
        try:
            value = decoder(row.get(column))
        except DecodeError as exc:
            sink.append(RowIssue(n, column, row.get(column), f"{exc}; stored as 0",
                                 "warning", key, "bad_number"))
            value = None
        fields[name] = value if value is not None else 0
    for name, column in _OPTIONAL_NUMBER_COLUMNS:
        try:
            fields[name] = decode_number(row.get(column))
        except DecodeError as exc:
            sink.append(RowIssue(n, column, row.get(column), f"{exc}; stored as NULL",
                                 "warning", key, "bad_number"))
    for name, column in _DATE_COLUMNS:
        try:
            fields[name] = decode_date(row.get(column))
        except DecodeError as exc:
            sink.append(RowIssue(n, column, row.get(column), f"{exc}; stored as NULL",
                                 "warning", key, "bad_date"))
    fields["linear_ft"] = float(fields["linear_ft"])
    fields["acres"] = float(fields["acres"])
    return _construct(fields)


assert not PlannedUnit.__private_attributes__, "_construct sets no private attributes"
_DEFAULTS = {name: f.default for name, f in PlannedUnit.model_fields.items() if name != "unit_id"}
_set = object.__setattr__


def _construct(fields: dict[str, Any]) -> PlannedUnit:
    """A PlannedUnit from values that already have their fields' exact types.

    Every value comes from a decoder above, so pydantic's validation (or even
    ``model_construct``'s generic path) would only repeat work: once per unit per sync it was
    about a third of the units' CPU at scale (BENCHMARKS.md, profile). This is what
    ``model_construct`` does for a model without private attributes or extras; test_fuzz
    checks the result equals, type for type, the validated unit."""
    unit = PlannedUnit.__new__(PlannedUnit)
    values = {"unit_id": fields["unit_id"], **_DEFAULTS}
    values.update(fields)
    _set(unit, "__dict__", values)
    _set(unit, "__pydantic_fields_set__", set(fields))
    _set(unit, "__pydantic_extra__", None)
    _set(unit, "__pydantic_private__", None)
    return unit


def _freshness(unit: PlannedUnit) -> tuple[date, date]:
    return (unit.assessed_date or date.min, unit.audit_date or date.min)


def normalise_units(
    rows: list[dict[str, Any]],
) -> tuple[dict[str, list[PlannedUnit]], list[RowIssue]]:
    """Planned-units rows -> ({extension: units sorted by id}, issues).

    Dedupes by unit id across the whole listing (ids are global object ids). Identical
    duplicates (server-side join artefacts) are collapsed and counted in **one** warning
    issue. Conflicting duplicates keep the unit with the latest (assessed_date, audit_date),
    the later row on a tie, and each gives a warning naming the fields that differ.
    Rows without a unit id are not returned and give an "error" issue.
    """
    issues: list[RowIssue] = []
    kept: dict[int, PlannedUnit] = {}
    identical = 0
    for n, row in enumerate(rows, start=1):
        unit = unit_from_row(row, n, issues)
        if unit is None:
            continue
        previous = kept.get(unit.unit_id)
        if previous is None:
            kept[unit.unit_id] = unit
            continue
        if previous == unit:
            identical += 1
            continue
        old, new = previous.model_dump(), unit.model_dump()
        differing = sorted(k for k in new if old[k] != new[k])
        winner = unit if _freshness(unit) >= _freshness(previous) else previous
        kept[unit.unit_id] = winner
        issues.append(RowIssue(
            n, ",".join(differing), {k: new[k] for k in differing},
            f"conflicting duplicate of unit {unit.unit_id} (fields {differing}); kept the "
            f"{'later' if winner is unit else 'earlier'} row by assessed/audit date",
            "warning", str(unit.unit_id), "conflicting_duplicate_unit",
        ))
    if identical:
        issues.append(RowIssue(
            None, "SSUNITS_OBJECTID", identical,
            f"{identical} identical duplicate unit row(s) collapsed (server-side join duplicates)",
            "warning", None, "identical_duplicate_units",
        ))
    grouped: dict[str, list[PlannedUnit]] = {}
    for unit in sorted(kept.values(), key=lambda u: u.unit_id):
        grouped.setdefault(unit.extension, []).append(unit)
    return grouped, issues


_DATE_FIELDS = tuple(name for name, _ in _DATE_COLUMNS)


def unit_to_json(unit: PlannedUnit) -> dict[str, Any]:
    """JSON-serialisable dict: dates as ISO strings, numbers as ints/floats.

    Equal to ``unit.model_dump(mode="json")`` (test_fuzz checks it), built directly because it
    runs once per unit per sync."""
    out = dict(unit.__dict__)
    for name in _DATE_FIELDS:
        value = out[name]
        if value is not None:
            out[name] = value.isoformat()
    return out


def units_from_json(items: Iterable[dict[str, Any]]) -> list[PlannedUnit]:
    """Inverse of :func:`unit_to_json` (the warehouse stores the JSON form)."""
    return [PlannedUnit.model_validate(item) for item in items]


def content_hash(units: Iterable[PlannedUnit | dict[str, Any]]) -> str:
    """SHA-256 hex of the canonical JSON of the units sorted by id.

    Canonical = ``json.dumps(..., sort_keys=True, separators=(",", ":"))``; floats use
    Python's shortest round-trip repr, so the hash is stable across processes and machines.
    JSON dicts are revalidated first, so a unit and its JSON form hash alike.
    """
    return canonical_json(units)[1]


def canonical_json(units: Iterable[PlannedUnit | dict[str, Any]]) -> tuple[str, str]:
    """(canonical JSON text of the units sorted by id, its SHA-256 hex): :func:`content_hash`
    and the text a capture stores as ``raw_json``, encoded once."""
    normalised = [u if isinstance(u, PlannedUnit) else PlannedUnit.model_validate(u)
                  for u in units]
    payload = [unit_to_json(u) for u in sorted(normalised, key=lambda u: u.unit_id)]
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)
    return text, hashlib.sha256(text.encode("utf-8")).hexdigest()
