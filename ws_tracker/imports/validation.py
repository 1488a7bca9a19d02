"""Row validation for imports: the live transforms, row by row, plus what a file can get wrong.

Pure: no I/O. Circuit rows go through ``rules.circuits.transform_circuit_rows`` and unit rows
through ``rules.units.unit_from_row``: the same decoding (wrapped dates, "" as NULL, trimmed
text, numbers as strings) and the same issues as a live sync, so an import stores what a live
capture of that day would. On top: unknown unit codes and regions (warnings: they still
count), units of a circuit the warehouse does not know (error: nothing to attach them to).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ws_tracker.imports.reader import RawRow, issue
from ws_tracker.rules.catalog import UNIT_CATEGORY
from ws_tracker.rules.circuits import normalise_extension, region_key, transform_circuit_rows
from ws_tracker.rules.decoding import DecodeError, clean_text
from ws_tracker.rules.errors import RowIssue
from ws_tracker.rules.units import unit_from_row, unit_to_json

__all__ = ["ValidatedRow", "Validator", "Totals"]

# Distinct unknown codes/regions remembered for the totals; beyond this they are still
# counted, just not named (a garbage column must not grow memory with the file).
MAX_NAMED = 1000


@dataclass
class ValidatedRow:
    row_number: int
    line_number: int
    raw: dict[str, Any]
    normalised: dict[str, Any] | None
    valid: bool
    issues: list[dict[str, Any]]
    row_key: str | None = None
    unit_id: int | None = None
    unknown_unit_code: str | None = None
    unknown_region: str | None = None


@dataclass
class Totals:
    rows: int = 0
    valid: int = 0
    invalid: int = 0
    with_warnings: int = 0
    unknown_unit_code_rows: int = 0
    unknown_region_rows: int = 0
    unknown_unit_codes: dict[str, int] = field(default_factory=dict)
    unknown_regions: dict[str, int] = field(default_factory=dict)
    issues_by_code: dict[str, int] = field(default_factory=dict)
    blank_lines: int = 0

    def add(self, row: ValidatedRow) -> None:
        self.rows += 1
        if row.valid:
            self.valid += 1
        else:
            self.invalid += 1
        if row.valid and row.issues:
            self.with_warnings += 1
        for i in row.issues:
            self.issues_by_code[i["code"]] = self.issues_by_code.get(i["code"], 0) + 1
        if row.unknown_unit_code is not None:
            self.unknown_unit_code_rows += 1
            _bump(self.unknown_unit_codes, row.unknown_unit_code)
        if row.unknown_region is not None:
            self.unknown_region_rows += 1
            _bump(self.unknown_regions, row.unknown_region)

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "valid_rows": self.valid, "invalid_rows": self.invalid,
                "rows_with_warnings": self.with_warnings,
                "unknown_unit_codes": len(self.unknown_unit_codes),
                "unknown_unit_code_rows": self.unknown_unit_code_rows,
                "unknown_regions": len(self.unknown_regions),
                "unknown_region_rows": self.unknown_region_rows,
                "blank_lines": self.blank_lines,
                "issues_by_code": dict(sorted(self.issues_by_code.items()))}


def _bump(counts: dict[str, int], key: str) -> None:
    if key in counts or len(counts) < MAX_NAMED:
        counts[key] = counts.get(key, 0) + 1
    else:
        counts["(others)"] = counts.get("(others)", 0) + 1


def _renumber(issues: list[RowIssue], n: int) -> list[dict[str, Any]]:
    # (dataclasses.replace would re-run __post_init__ and repr the value a second time)
    return [{**i.to_dict(), "row_number": n} for i in issues]


class Validator:
    """Validates the rows of one file of ``kind``.

    ``region_keys``: the regions the warehouse knows (``region_key`` form); a row naming
    another is valid (the region is created on load) and counted as an unknown region.
    ``circuits``: (work order, extension) -> circuit id of the circuits the warehouse knows,
    for planned units; None skips that check (no database).
    """

    def __init__(self, kind: str, region_keys: set[str] | None = None,
                 circuits: dict[tuple[str, str], int] | None = None) -> None:
        self.kind = kind
        self.region_keys = region_keys
        self.circuits = circuits

    def validate(self, row: RawRow) -> ValidatedRow:
        if self.kind == "circuits":
            return self._circuit(row)
        return self._unit(row)

    def _circuit(self, row: RawRow) -> ValidatedRow:
        n = row.row_number
        issues = list(row.issues)
        out = ValidatedRow(n, row.line_number, row.values, None, False, issues)
        if row.ragged:  # the values are shifted: nothing in them can be trusted
            out.row_key = _safe_text(row.values.get("SS_JOBGUID"))
            return out
        records, found = transform_circuit_rows([row.values])
        issues += _renumber(found, n)
        if not records:
            out.row_key = _safe_text(row.values.get("SS_JOBGUID"))
            return out
        record = records[0]
        out.valid = True
        out.row_key = record.job_guid
        out.normalised = record.model_dump(mode="json")
        if not record.region_name:
            issues.append(issue(n, "REGION", row.values.get("REGION"), "no region: filed under "
                                "'Unknown', as a live sync files it", "warning",
                                "missing_region"))
        elif self.region_keys is not None \
                and region_key(record.region_name) not in self.region_keys:
            out.unknown_region = record.region_name
            issues.append(issue(n, "REGION", row.values.get("REGION"),
                                f"region {record.region_name!r} is not known; it is created "
                                "on load (a new region, or a misspelling?)", "warning",
                                "unknown_region"))
        return out

    def _unit(self, row: RawRow) -> ValidatedRow:
        n = row.row_number
        issues = list(row.issues)
        out = ValidatedRow(n, row.line_number, row.values, None, False, issues)
        work_order = _safe_text(row.values.get("SS_WO"))
        out.row_key = work_order
        if row.ragged:
            return out
        found: list[RowIssue] = []
        unit = unit_from_row(row.values, n, found)
        issues += [i.to_dict() for i in found]
        if unit is None:
            return out
        out.unit_id = unit.unit_id
        if work_order is None:
            issues.append(issue(n, "SS_WO", row.values.get("SS_WO"), "no work order: the unit "
                                "cannot be attributed to a circuit; not loaded", "error",
                                "missing_work_order"))
            return out
        try:
            extension = normalise_extension(row.values.get("SS_EXT"))
        except DecodeError:
            extension = "@"
        if self.circuits is not None and (work_order, extension) not in self.circuits:
            issues.append(issue(n, "SS_WO,SS_EXT", f"{work_order}/{extension}",
                                f"no circuit {work_order}/{extension} in the warehouse; import "
                                "the circuit list of that day first; not loaded", "error",
                                "unknown_circuit"))
            return out
        if unit.unit_code is None:
            issues.append(issue(n, "VEGUNIT_UNIT", row.values.get("VEGUNIT_UNIT"),
                                "no unit code: counted as a unit that measures nothing",
                                "warning", "missing_unit_code"))
        elif unit.unit_code not in UNIT_CATEGORY:
            out.unknown_unit_code = unit.unit_code
            issues.append(issue(n, "VEGUNIT_UNIT", row.values.get("VEGUNIT_UNIT"),
                                f"unit code {unit.unit_code!r} is not in the catalogue: counted "
                                "as a unit that measures nothing", "warning",
                                "unknown_unit_code"))
        out.valid = True
        out.normalised = unit_to_json(unit)
        return out


def _safe_text(value: Any) -> str | None:
    try:
        return clean_text(value)
    except DecodeError:
        return None
