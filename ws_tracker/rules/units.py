"""Planned-unit rows -> normalised units, their JSON form and content hash.

Pure: no I/O. See business-rules.md ("Planned-unit captures") and workstudio-api.md
("Planned units view columns").
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from functools import lru_cache
from itertools import repeat
from operator import itemgetter
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from ws_tracker.rules.circuits import MAIN_EXTENSION, normalise_extension
from ws_tracker.rules.decoding import (
    MIN_YEAR,
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


# Text fields WorkStudio may also send as a JSON boolean (VEGUNIT_AUDIT_PASS: the simulator
# does, and a bool is a real answer, not a bad value): kept as "true"/"false", whether it came
# as a JSON boolean or as the text of one (a CSV export's "True").
_FLAG_FIELDS = frozenset({"audit_pass"})
_FLAG_SPELLINGS = {"true": "true", "false": "false"}


def flag_text(value: Any) -> str | None:
    """A yes/no text field: true/false (JSON booleans, or their text in any case) ->
    "true"/"false"; any other value as :func:`clean_text` gives it."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    text = clean_text(value)
    return _FLAG_SPELLINGS.get(text.lower(), text) if text is not None else None


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
        if value.__class__ is str and name not in _FLAG_FIELDS:  # the usual case, inline:
            # clean_text's ASCII fast path
            text = value.strip()
            if text.isascii() and "\x00" not in text:
                fields[name] = text or None
                continue
        try:
            fields[name] = (flag_text if name in _FLAG_FIELDS else clean_text)(value)
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


def _keep(kept: dict[int, PlannedUnit], unit: PlannedUnit, n: int,
          issues: list[RowIssue]) -> bool:
    """Keep ``unit`` (row ``n``) among ``kept`` by its id, by the rule of
    :func:`normalise_units`; True when it was an identical duplicate (collapsed)."""
    previous = kept.get(unit.unit_id)
    if previous is None:
        kept[unit.unit_id] = unit
        return False
    if previous == unit:
        return True
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
    return False


def _normalise_units_reference(
    rows: list[dict[str, Any]],
) -> tuple[dict[str, list[PlannedUnit]], list[RowIssue]]:
    """:func:`normalise_units` the straightforward way: :func:`unit_from_row` per row.

    The reference the fast version must equal, unit for unit (type for type, fields set) and
    issue for issue; test_fuzz compares them on random rows. Not used by the pipeline.
    """
    issues: list[RowIssue] = []
    kept: dict[int, PlannedUnit] = {}
    identical = 0
    for n, row in enumerate(rows, start=1):
        unit = unit_from_row(row, n, issues)
        if unit is None:
            continue
        identical += _keep(kept, unit, n, issues)
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


class _Bad:
    """What a column memo gives for a value its decoder rejects: the DecodeError's message."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


class _Memo(dict):
    """Raw value -> final field value, each distinct ``str`` (or None) decoded once per call.

    Only str and None keys are stored: values of other types are decoded on every lookup,
    since True == 1 == 1.0 hash alike but decode differently (clean_text(1) is "1",
    clean_text(1.0) "1.0", clean_text(True) an error). With ``any_key`` every key is stored:
    for callers that only ever look up exact ints. A value the decoder rejects gives a
    :class:`_Bad` and sets ``bad``. An unhashable value raises TypeError from the lookup, as
    for a dict; :meth:`lookup` decodes it instead.
    """

    __slots__ = ("decode", "bad", "any_key")

    def __init__(self, decode: Any, any_key: bool = False) -> None:
        super().__init__()
        self.decode = decode
        self.bad = False
        self.any_key = any_key

    def __missing__(self, raw: Any) -> Any:
        try:
            value = self.decode(raw)
        except DecodeError as exc:
            self.bad = True
            value = _Bad(str(exc))
        if raw is None or raw.__class__ is str or self.any_key:
            self[raw] = value
        return value

    def lookup(self, raw: Any) -> Any:
        try:
            return self[raw]
        except TypeError:  # unhashable (a geometry object, a list): decoded, not stored
            return self.__missing__(raw)


def _trees(raw: Any) -> int:
    value = decode_int(raw)
    return value if value is not None else 0


def _measure(raw: Any) -> float:
    value = decode_number(raw)
    return float(value if value is not None else 0)


_WRAPPED_DAY = re.compile(r"/Date\(([0-9]{4}-[0-9]{2}-[0-9]{2})\)/")


def _date(raw: Any) -> date | None:
    """decode_date, with its commonest form (``/Date(2026-03-04)/``) read directly."""
    if raw.__class__ is str:
        match = _WRAPPED_DAY.fullmatch(raw)
        if match:
            try:
                day = date.fromisoformat(match.group(1))
            except ValueError:  # 2026-02-30: decode_date words the error
                return decode_date(raw)
            return day if day.year >= MIN_YEAR else None
    return decode_date(raw)


def _raw_columns(rows: list[dict[str, Any]]) -> Callable[[str], Sequence[Any]]:
    """column -> ``[row.get(column) for row in rows]``.

    Rows parsed from one envelope share their keys (the heading): then one pass reads every
    value (``itemgetter`` of all the first row's keys) and ``zip`` transposes."""
    first = rows[0]
    if len(first) > 1 and len(set(map(len, rows))) == 1:
        try:
            table = list(map(itemgetter(*first), rows))
        except KeyError:  # a row lacks one of the first row's keys
            pass
        else:  # every row has exactly the first row's keys
            by_column = dict(zip(first, zip(*table)))
            absent = (None,) * len(rows)
            return lambda column: by_column.get(column, absent)
    return lambda column: [row.get(column) for row in rows]


def _text_column(raw: Sequence[Any], memo: _Memo, empty: str | None = None) -> list[Any]:
    """clean_text (or normalise_extension, ``empty="@"``) of each value."""
    try:
        joined = "".join(raw)  # TypeError unless every value is a str
    except TypeError:
        joined = None
    if joined is not None and joined.isascii() and "\x00" not in joined:
        return [text or empty for text in map(str.strip, raw)]  # clean_text's ASCII path
    return _memo_column(raw, memo)


# str -> _date's value, shared by every call (and thread: a dict's get and set are atomic):
# the same few hundred days recur across work orders. Emptied when it reaches _DAYS_MAX.
_DAYS: dict[str, date | None] = {}
_DAYS_MAX = 4096
_UNSEEN = object()


def _date_column(raw: Sequence[Any], memo: _Memo) -> list[Any]:
    try:
        values = list(map(_DAYS.get, raw, repeat(_UNSEEN)))
    except TypeError:  # an unhashable value
        return _memo_column(raw, memo)
    if _UNSEEN in values:
        for i, value in enumerate(values):
            if value is _UNSEEN:
                value = values[i] = memo[raw[i]]
                if raw[i].__class__ is str and value.__class__ is not _Bad:
                    if len(_DAYS) >= _DAYS_MAX:
                        _DAYS.clear()
                    _DAYS[raw[i]] = value
    return values


def _memo_column(raw: Sequence[Any], memo: _Memo) -> list[Any]:
    try:
        return list(map(memo.__getitem__, raw))
    except TypeError:
        return list(map(memo.lookup, raw))


def _number_column(raw: Sequence[Any], memo: _Memo, ints: _Memo) -> list[Any]:
    """A float column (decode_number): finite floats inline (``+ 0.0`` turns -0.0 into 0.0, as
    decode_number does; ``f - f == 0.0`` holds exactly for finite floats), exact ints through
    their own memo, the rest (str, None, bools, NaN, ...) through ``memo``."""
    if set(map(type, raw)) == {float}:  # latitude, longitude
        total = sum(raw)
        if total - total == 0.0:  # then every value is finite
            return [v + 0.0 for v in raw] if 0.0 in raw else list(raw)
    by_str, by_int = memo.__getitem__, ints.__getitem__
    try:
        return [v + 0.0 if (c := v.__class__) is float and v - v == 0.0
                else by_int(v) if c is int else by_str(v) for v in raw]
    except TypeError:
        return [v + 0.0 if (c := v.__class__) is float and v - v == 0.0
                else by_int(v) if c is int else memo.lookup(v) for v in raw]


def _int_column(raw: Sequence[Any], memo: _Memo) -> list[Any]:
    """The tree count (decode_int): an exact int is its own value."""
    try:
        return [v if v.__class__ is int else memo[v] for v in raw]
    except TypeError:
        return [v if v.__class__ is int else memo.lookup(v) for v in raw]


# What unit_from_row does with a value its decoder rejects, per kind of column: the suffix of
# the issue's reason, its code, the field's value, and whether the field still counts as set.
_ON_ERROR = {
    "text": ("; stored as NULL", "bad_text", None, False),
    "flag": ("; stored as NULL", "bad_text", None, False),
    "extension": ("; taken as '@'", "bad_text", MAIN_EXTENSION, False),
    "trees": ("; stored as 0", "bad_number", 0, True),
    "measure": ("; stored as 0", "bad_number", 0.0, True),
    "number": ("; stored as NULL", "bad_number", None, False),
    "date": ("; stored as NULL", "bad_date", None, False),
}
# Every decoded column, in the order unit_from_row decodes them (the order of its issues).
_COLUMN_PLAN = (
    [(name, column, "flag" if name in _FLAG_FIELDS else "text")
     for name, column in _TEXT_COLUMNS]
    + [("extension", "SS_EXT", "extension")]
    + [(name, column, "trees" if decoder is decode_int else "measure")
       for name, column, decoder in _MEASURE_COLUMNS]
    + [(name, column, "number") for name, column in _OPTIONAL_NUMBER_COLUMNS]
    + [(name, column, "date") for name, column in _DATE_COLUMNS]
)
_FIELD_NAMES = tuple(PlannedUnit.model_fields)
assert sorted(_FIELD_NAMES) == sorted(["unit_id"] + [name for name, _, _ in _COLUMN_PLAN])
assert _FIELD_NAMES[0] == "unit_id" and _MEASURE_COLUMNS[0][2] is decode_int
_ALL_FIELDS = frozenset(_FIELD_NAMES)


@lru_cache(maxsize=128)
def _dict_builder(varying: tuple[str, ...]) -> Callable[..., dict[str, Any]]:
    """``build(copy, *values)``: ``copy()`` (a copy of a dict of every field, in field order,
    holding the values shared by all rows) with one value per ``varying`` field stored in it.

    Generated, like namedtuple's and dataclasses' methods, from field names only. Copying a
    template and storing the varying fields costs about half a 29-key dict display when a
    third of the fields are constant in the response (the work order, absent columns,
    "" for units never audited, ...)."""
    assert set(varying) <= _ALL_FIELDS
    params = "".join(f", v{i}" for i in range(len(varying)))
    stores = "".join(f"    d[{name!r}] = v{i}\n" for i, name in enumerate(varying))
    namespace: dict[str, Any] = {}
    exec(f"def build(copy{params}):\n    d = copy()\n{stores}    return d\n", namespace)
    return namespace["build"]


# An int id with more digits than this takes unit_from_row's path, where str(unit_id) may
# raise (int_max_str_digits) as it always did.
_ID_BOUND = 10 ** 300
# kind of column -> what decodes one raw value of it to the field's value (memos' decoders)
_DECODERS = {"text": clean_text, "flag": flag_text, "extension": normalise_extension,
             "trees": _trees,
             "measure": _measure, "number": decode_number, "date": _date}


def _consume(iterator: Iterable[Any]) -> None:
    deque(iterator, maxlen=0)


# The descriptors ``object.__setattr__(unit, name, value)`` calls (the model's slots), called
# directly: about half the cost of going through object.__setattr__.
_SLOT_SETTERS = {
    name: next(vars(k)[name] for k in PlannedUnit.__mro__ if name in vars(k)).__set__
    for name in ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__",
                 "__pydantic_private__")
}


def _decode_column(raw: Sequence[Any], kind: str) -> tuple[list, bool]:
    """(the field's value per raw value, or a :class:`_Bad`; whether any is a _Bad)."""
    memo = _Memo(_DECODERS[kind])
    if kind == "text":
        return _text_column(raw, memo), memo.bad
    if kind == "flag":  # few distinct values: each decoded once by flag_text
        return _memo_column(raw, memo), memo.bad
    if kind == "extension":
        return _text_column(raw, memo, MAIN_EXTENSION), memo.bad
    if kind == "date":
        return _date_column(raw, memo), memo.bad
    if kind == "trees":
        return _int_column(raw, memo), memo.bad
    ints = _Memo(_DECODERS[kind], any_key=True)
    return _number_column(raw, memo, ints), memo.bad or ints.bad


def normalise_units(
    rows: list[dict[str, Any]],
) -> tuple[dict[str, list[PlannedUnit]], list[RowIssue]]:
    """Planned-units rows -> ({extension: units sorted by id}, issues).

    Dedupes by unit id across the whole listing (ids are global object ids). Identical
    duplicates (server-side join artefacts) are collapsed and counted in **one** warning
    issue. Conflicting duplicates keep the unit with the latest (assessed_date, audit_date),
    the later row on a tie, and each gives a warning naming the fields that differ.
    Rows without a unit id are not returned and give an "error" issue.

    Equal, unit for unit (type for type, fields set) and issue for issue, to
    :func:`unit_from_row` per row (:func:`_normalise_units_reference`; test_fuzz compares
    them), but decoded column by column, because this runs once per planned unit per sync
    (the pipeline's hottest Python): a value shared by the whole column is decoded once, an
    all-ASCII text column is trimmed in one pass, other repeated values are decoded once per
    column (a memo per call; days in a cache shared by all calls), and the units are built
    in C-level loops. A row with an undecodable value gets the issues unit_from_row would
    give it; a row whose id is not a plain int is decoded by :func:`unit_from_row` itself.
    """
    if not isinstance(rows, list):
        rows = list(rows)
    n = len(rows)
    if not n:
        return {}, []
    raw_column = _raw_columns(rows)
    ids = raw_column("SSUNITS_OBJECTID")
    slow: set[int] = set()  # 0-based indexes of the rows unit_from_row decodes
    if not (set(map(type, ids)) == {int} and -_ID_BOUND < min(ids) and max(ids) < _ID_BOUND):
        slow.update(i for i, v in enumerate(ids)
                    if v.__class__ is not int or not -_ID_BOUND < v < _ID_BOUND)
    columns: dict[str, Sequence[Any]] = {"unit_id": ids}
    shared: dict[str, Any] = {}  # field -> its value in every row
    # 0-based row index -> [(field, column, message, kind)], in unit_from_row's order
    errors: dict[int, list[tuple[str, str, str, str]]] = {}
    for name, column, kind in _COLUMN_PLAN:
        raw = raw_column(column)
        first = raw[0]
        # One value all down the column (the work order, an absent column, "" for units
        # never audited, ...): decoded once. Only for str/None: True == 1 == 1.0.
        if ((first is None or first.__class__ is str) and raw[-1] == first
                and raw.count(first) == n):
            try:
                shared[name] = _DECODERS[kind](first)
                continue
            except DecodeError:
                pass  # one issue per row: the general path words them
        values, bad = _decode_column(raw, kind)
        if bad:
            fallback = _ON_ERROR[kind][2]
            for i, value in enumerate(values):
                if value.__class__ is _Bad:
                    values[i] = fallback
                    errors.setdefault(i, []).append((name, column, value.message, kind))
        columns[name] = values

    # Every row's unit, built in C loops: what _construct does, row by row.
    units = list(map(PlannedUnit.__new__, repeat(PlannedUnit, n)))
    template = {name: shared.get(name) for name in _FIELD_NAMES}
    _consume(map(_SLOT_SETTERS["__dict__"], units,
                 map(_dict_builder(tuple(columns)), repeat(template.copy, n),
                     *columns.values())))
    _consume(map(_SLOT_SETTERS["__pydantic_fields_set__"], units,
                 map(set, repeat(_ALL_FIELDS, n))))
    _consume(map(_SLOT_SETTERS["__pydantic_extra__"], units, repeat(None, n)))
    _consume(map(_SLOT_SETTERS["__pydantic_private__"], units, repeat(None, n)))

    issues: list[RowIssue] = []
    # Unique plain-int ids and no issue: nothing to resolve. Else, row by row and in order,
    # as the reference does (ids of slow rows may not even be hashable).
    kept: dict[int, PlannedUnit] = {} if slow else dict(zip(ids, units))
    if slow or errors or len(kept) < n:
        kept = {}
        identical = 0
        special = slow | errors.keys()
        for i, unit in enumerate(units):
            if special and i in special:
                if i in slow:
                    unit = unit_from_row(rows[i], i + 1, issues)
                    if unit is None:
                        continue
                else:
                    key, row, unset = str(ids[i]), rows[i], []
                    for name, column, message, kind in errors[i]:
                        suffix, code, _, still_set = _ON_ERROR[kind]
                        issues.append(RowIssue(i + 1, column, row.get(column),
                                               message + suffix, "warning", key, code))
                        if not still_set:
                            unset.append(name)
                    _set(unit, "__pydantic_fields_set__", set(_ALL_FIELDS.difference(unset)))
            identical += _keep(kept, unit, i + 1, issues)
        if identical:
            issues.append(RowIssue(
                None, "SSUNITS_OBJECTID", identical,
                f"{identical} identical duplicate unit row(s) collapsed (server-side join "
                "duplicates)", "warning", None, "identical_duplicate_units",
            ))
    if "extension" in shared and not slow:  # one extension for all (the usual case)
        return ({shared["extension"]: list(map(kept.__getitem__, sorted(kept)))} if kept
                else {}), issues
    grouped: dict[str, list[PlannedUnit]] = {}
    for unit_id in sorted(kept):
        unit = kept[unit_id]
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
