"""Fault injection for the WorkStudio simulator: which DDOProtocol calls fail, and how.

A :class:`FaultPlan` holds :class:`FaultRule` s. Each rule says *what* goes wrong (``kind``),
*which* calls it concerns (``protocol``, ``view``, ``filter_value``) and *when* among those
calls it fires (``calls``, ``times`` or ``rate``; none of them = every matching call). Every
rule counts its own matching calls (1-based), whatever the other rules do, so
``calls=[1, 2]`` always means "the first two calls this rule matches".

Kinds, by what the server does when one fires:

- delay: ``slow`` (sleep ``seconds``, then answer normally).
- the answer is replaced (at most one per call: the first firing rule in plan order wins, the
  others are not injected although their call counts): ``http_500``, ``http_502``,
  ``http_503`` (optional ``retry_after``), ``http_429`` (``Retry-After: retry_after``, default
  1 s), ``http_401``, ``connection_reset`` (the socket is closed with an RST, no response),
  ``read_timeout`` (the server stalls ``seconds``, default 65 s, longer than the client's 60 s
  read timeout, then answers normally), ``protocol_error`` (HTTP 200
  ``{"protocol": "ERROR", "errorMessage": message}``), ``null_body`` (HTTP 200 ``null``),
  ``malformed_json`` (the real answer with a trailing comma before its last brace).
- the data are damaged (only in a ``DATASET`` answer; several may apply to one call, in plan
  order): ``missing_column`` (``column`` dropped from the heading and every row),
  ``renamed_column`` (``column`` renamed ``to``, default ``<column>_RENAMED``), ``short_rows``
  (the last cell of the chosen rows dropped), ``duplicate_rows`` (the chosen rows repeated
  right after themselves), ``wrong_type`` (the chosen rows' ``column`` gets ``value``, default
  a non-numeric string for a number, ``[1, 2, 3]`` for a string), ``bad_date`` (the chosen
  rows' ``column`` gets ``value``, default ``/Date(notadate)/``).
  ``wrong_type`` and ``bad_date`` default their column by view (circuits: VEGJOB_LENGTH /
  SS_EDITDATE; planned units: JOBVEGETATIONUNITS_LENGTHWRK / VEGUNIT_ASSDDATE; GETQUERY: the
  first column). Rows: ``rows`` (indexes, negative from the end) or ``row_rate`` (each row
  with that probability); neither = the first row.
- the encoding is damaged: ``truncated_json`` (the answer cut to half its length, with a
  matching Content-Length).

A data fault that finds nothing to damage (no DATASET, column absent, no rows) is not
injected. Rates draw from ``random.Random`` seeded by (plan seed or rule ``seed``, rule index,
call number): the same plan gives the same calls whatever the thread interleaving.

Spec strings (``ws-tracker simulator serve --fault``)::

    KIND[:key=value[,key=value...]]      lists separated by ';'
    http_503:protocol=GETVIEWDATA,view=planned_units,times=2
    wrong_type:view=circuits,column=VEGJOB_LENGTH,rows=0;3
    http_429:retry_after=2,rate=0.1
    slow:seconds=1.5,calls=1;4
    protocol_error:message=Access denied,filter_value=ACTIV

JSON: a list of rule objects with the same keys (or ``{"seed": n, "rules": [...]}``), e.g.
``[{"kind": "http_503", "protocol": "GETVIEWDATA", "view": "planned_units", "times": 2}]``.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from ws_tracker.workstudio import protocol as ddo

__all__ = [
    "DATA_KINDS",
    "FAULT_KINDS",
    "FaultPlan",
    "FaultRule",
    "FaultSpecError",
    "Firing",
    "InjectedFault",
    "REPLACING_KINDS",
    "apply_data_fault",
    "parse_fault_spec",
]

FaultKind = Literal[
    "http_500", "http_502", "http_503", "http_429", "http_401",
    "connection_reset", "read_timeout", "slow",
    "protocol_error", "null_body", "malformed_json", "truncated_json",
    "missing_column", "renamed_column", "short_rows", "duplicate_rows", "wrong_type", "bad_date",
]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
HTTP_STATUS = {"http_500": 500, "http_502": 502, "http_503": 503, "http_429": 429,
               "http_401": 401}
REPLACING_KINDS = frozenset({*HTTP_STATUS, "connection_reset", "read_timeout",
                             "protocol_error", "null_body", "malformed_json"})
DATA_KINDS = frozenset({"missing_column", "renamed_column", "short_rows", "duplicate_rows",
                        "wrong_type", "bad_date"})
ROW_KINDS = frozenset({"short_rows", "duplicate_rows", "wrong_type", "bad_date"})
PROTOCOLS = ("HEARTBEAT", "GETVIEWDATA", "GETQUERY")
VIEW_NAMES = {"circuits": ddo.CIRCUIT_LIST_VIEW, "planned_units": ddo.PLANNED_UNITS_VIEW}
VIEW_LABELS = {guid: name for name, guid in VIEW_NAMES.items()}
DEFAULT_COLUMNS = {
    ("wrong_type", ddo.CIRCUIT_LIST_VIEW): "VEGJOB_LENGTH",
    ("wrong_type", ddo.PLANNED_UNITS_VIEW): "JOBVEGETATIONUNITS_LENGTHWRK",
    ("bad_date", ddo.CIRCUIT_LIST_VIEW): "SS_EDITDATE",
    ("bad_date", ddo.PLANNED_UNITS_VIEW): "VEGUNIT_ASSDDATE",
}
DEFAULT_BAD_DATE = "/Date(notadate)/"
DEFAULT_READ_TIMEOUT_S = 65.0
DEFAULT_SLOW_S = 2.0
DEFAULT_MESSAGE = "Simulated fault: the WorkStudio service reported an error"


class FaultSpecError(ValueError):
    """A fault rule or spec string that cannot be understood; the message names the part."""


def _normalize_view(value: str) -> str:
    text = value.strip()
    named = VIEW_NAMES.get(text.lower())
    if named:
        return named
    guid = text.upper()
    if not guid.startswith("{"):
        guid = "{" + guid + "}"
    if len(guid) != 38 or guid.count("-") != 4:
        raise ValueError(f"view {value!r} is neither 'circuits', 'planned_units' nor a "
                         "{GUID}")
    return guid


class FaultRule(BaseModel):
    """One fault: what goes wrong, on which calls, and when (see the module doc)."""

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    # match
    protocol: str | None = None  # HEARTBEAT | GETVIEWDATA | GETQUERY; None/"any" = any
    view: str | None = None  # a view GUID, or "circuits" / "planned_units"
    filter_value: str | None = None  # e.g. "ACTIV" or a work order (case-insensitive)
    # when (at most one; none = every matching call)
    calls: list[int] | None = None  # 1-based numbers among this rule's matching calls
    times: int | None = None  # the first N matching calls
    rate: float | None = None  # each matching call with this probability
    seed: int | None = None  # for rate / row_rate (default: the plan's seed)
    # which rows (row-level kinds)
    rows: list[int] | None = None
    row_rate: float | None = None
    # parameters
    column: str | None = None
    to: str | None = None
    value: Any = None
    retry_after: float | None = None
    seconds: float | None = None
    message: str | None = None

    @field_validator("protocol")
    @classmethod
    def _protocol(cls, v: str | None) -> str | None:
        if v is None or v.strip().lower() in ("", "any", "*"):
            return None
        up = v.strip().upper()
        if up not in PROTOCOLS:
            raise ValueError(f"protocol {v!r} is not one of {', '.join(PROTOCOLS)} or any")
        return up

    @field_validator("view")
    @classmethod
    def _view(cls, v: str | None) -> str | None:
        return None if v is None else _normalize_view(v)

    @field_validator("calls", "rows")
    @classmethod
    def _sorted_unique(cls, v: list[int] | None, info) -> list[int] | None:
        if v is None:
            return None
        if info.field_name == "calls" and any(n < 1 for n in v):
            raise ValueError("call numbers start at 1")
        return sorted(set(v))

    @field_validator("rate", "row_rate")
    @classmethod
    def _probability(cls, v: float | None) -> float | None:
        if v is not None and not 0 <= v <= 1:
            raise ValueError(f"{v} is not a probability between 0 and 1")
        return v

    @field_validator("times")
    @classmethod
    def _times(cls, v: int | None) -> int | None:
        if v is not None and v < 0:
            raise ValueError("times cannot be negative")
        return v

    @field_validator("retry_after", "seconds")
    @classmethod
    def _non_negative(cls, v: float | None) -> float | None:
        if v is not None and v < 0:
            raise ValueError("cannot be negative")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> FaultRule:
        k = self.kind
        when = [n for n in ("calls", "times", "rate") if getattr(self, n) is not None]
        if len(when) > 1:
            raise ValueError(f"give at most one of calls, times, rate (got {', '.join(when)})")
        if self.view is not None:
            if self.protocol not in (None, "GETVIEWDATA"):
                raise ValueError(f"view only applies to GETVIEWDATA, not {self.protocol}")
            self.protocol = "GETVIEWDATA"
        if k in DATA_KINDS | {"truncated_json"} and self.protocol == "HEARTBEAT":
            raise ValueError(f"{k} needs a data answer: HEARTBEAT has none")
        if k in ("missing_column", "renamed_column") and not self.column:
            raise ValueError(f"{k} needs a column")
        if k == "renamed_column" and not self.to:
            self.to = f"{self.column}_RENAMED"
        self._only(("to",), {"renamed_column"})
        self._only(("column",), {"missing_column", "renamed_column", "wrong_type", "bad_date"})
        self._only(("rows", "row_rate"), ROW_KINDS)
        if self.rows is not None and self.row_rate is not None:
            raise ValueError("give rows or row_rate, not both")
        self._only(("value",), {"wrong_type", "bad_date"})
        self._only(("retry_after",), {"http_429", "http_503"})
        self._only(("seconds",), {"slow", "read_timeout"})
        self._only(("message",), {"protocol_error"})
        if k == "http_429" and self.retry_after is None:
            self.retry_after = 1.0
        if k == "read_timeout" and self.seconds is None:
            self.seconds = DEFAULT_READ_TIMEOUT_S
        if k == "slow" and self.seconds is None:
            self.seconds = DEFAULT_SLOW_S
        if k == "protocol_error" and self.message is None:
            self.message = DEFAULT_MESSAGE
        return self

    def _only(self, names: tuple[str, ...], kinds: set | frozenset) -> None:
        for name in names:
            if getattr(self, name) is not None and self.kind not in kinds:
                raise ValueError(f"{name} does not apply to {self.kind} "
                                 f"(only to {', '.join(sorted(kinds))})")

    # ------------------------------------------------------------------ behaviour
    def matches(self, protocol: str, view: str | None, filter_value: str | None) -> bool:
        if self.protocol is not None and self.protocol != protocol:
            return False
        if self.view is not None and self.view != (view or "").strip().upper():
            return False
        if self.filter_value is not None:
            if filter_value is None:
                return False
            if self.filter_value.strip().casefold() != str(filter_value).strip().casefold():
                return False
        return True

    def fires(self, call: int, seed: int, index: int) -> bool:
        """Whether the rule fires on its ``call``-th matching call."""
        if self.calls is not None:
            return call in self.calls
        if self.times is not None:
            return call <= self.times
        if self.rate is not None:
            s = self.seed if self.seed is not None else seed
            return random.Random(f"fault:{s}:{index}:{call}").random() < self.rate
        return True

    def to_dict(self) -> dict:
        return self.model_dump(exclude_none=True)


@dataclass(frozen=True)
class Firing:
    """A rule firing on one call: the rule, its index in the plan and its call number."""

    index: int
    rule: FaultRule
    call: int
    seed: int

    @property
    def kind(self) -> str:
        return self.rule.kind

    def select_rows(self, n: int) -> list[int]:
        """Row indexes (ascending) the row-level fault damages in an answer of ``n`` rows."""
        if n <= 0:
            return []
        rule = self.rule
        if rule.rows is not None:
            return sorted({i + n if i < 0 else i for i in rule.rows if -n <= i < n})
        if rule.row_rate is not None:
            s = rule.seed if rule.seed is not None else self.seed
            rng = random.Random(f"fault-rows:{s}:{self.index}:{self.call}")
            return [i for i in range(n) if rng.random() < rule.row_rate]
        return [0]


@dataclass(frozen=True)
class InjectedFault:
    """What was injected: kept by the plan so tests and operators can see it."""

    kind: str
    rule: int  # index of the rule in the plan
    call: int  # the rule's matching-call number
    protocol: str
    view: str | None
    filter_value: str | None
    column: str | None = None
    rows: list[int] | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class FaultPlan:
    """Rules plus thread-safe counters of matching calls and a record of what was injected."""

    def __init__(self, rules: Iterable[FaultRule | dict] = (), *, seed: int = 0):
        built = []
        for i, rule in enumerate(rules):
            if isinstance(rule, FaultRule):
                built.append(rule)
            else:
                built.append(_rule_from_mapping(rule, f"rule {i}"))
        self.rules: list[FaultRule] = built
        self.seed = int(seed)
        self._lock = threading.Lock()
        self._matched = [0] * len(built)
        self._injected: list[InjectedFault] = []

    # ------------------------------------------------------------------ construction
    @classmethod
    def parse(cls, obj: Any, *, seed: int = 0) -> FaultPlan:
        """From decoded JSON: a list of rules, or ``{"seed": n, "rules": [...]}``."""
        if isinstance(obj, dict) and "kind" not in obj:
            unknown = set(obj) - {"seed", "rules"}
            if unknown:
                raise FaultSpecError(f"fault plan: unknown key(s) {', '.join(sorted(unknown))} "
                                     "(expected seed, rules)")
            seed = obj.get("seed", seed)
            if not isinstance(seed, int) or isinstance(seed, bool):
                raise FaultSpecError(f"fault plan: seed {seed!r} is not an integer")
            obj = obj.get("rules", [])
        elif isinstance(obj, dict):
            obj = [obj]
        if not isinstance(obj, list):
            raise FaultSpecError("fault plan: expected a JSON list of rules (or an object with "
                                 f"'rules'), got {type(obj).__name__}")
        return cls(obj, seed=seed)

    @classmethod
    def from_json(cls, text: str, *, seed: int = 0) -> FaultPlan:
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise FaultSpecError(f"fault plan: invalid JSON: {exc}") from None
        return cls.parse(obj, seed=seed)

    @classmethod
    def from_file(cls, path: str | Path, *, seed: int = 0) -> FaultPlan:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise FaultSpecError(f"faults file {path}: {exc.strerror or exc}") from None
        try:
            return cls.from_json(text, seed=seed)
        except FaultSpecError as exc:
            raise FaultSpecError(f"faults file {path}: {exc}") from None

    @classmethod
    def from_specs(cls, specs: Iterable[str], *, seed: int = 0) -> FaultPlan:
        return cls([parse_fault_spec(s) for s in specs], seed=seed)

    def __add__(self, other: FaultPlan) -> FaultPlan:
        return FaultPlan([*self.rules, *other.rules], seed=self.seed)

    def __bool__(self) -> bool:
        return bool(self.rules)

    # ------------------------------------------------------------------ use
    def match(self, protocol: str, view: str | None = None,
              filter_value: str | None = None) -> list[Firing]:
        """Count this call for every rule it matches; the rules that fire, in plan order."""
        firing = []
        with self._lock:
            for i, rule in enumerate(self.rules):
                if not rule.matches(protocol, view, filter_value):
                    continue
                self._matched[i] += 1
                call = self._matched[i]
                if rule.fires(call, self.seed, i):
                    firing.append(Firing(i, rule, call, self.seed))
        return firing

    def record(self, firing: Firing, *, protocol: str, view: str | None,
               filter_value: str | None, column: str | None = None,
               rows: list[int] | None = None) -> InjectedFault:
        injected = InjectedFault(firing.kind, firing.index, firing.call, protocol,
                                 view or None, filter_value, column, rows)
        with self._lock:
            self._injected.append(injected)
        return injected

    @property
    def injected(self) -> list[dict]:
        with self._lock:
            return [f.to_dict() for f in self._injected]

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(Counter(f.kind for f in self._injected))

    def matched(self) -> list[int]:
        with self._lock:
            return list(self._matched)

    def to_dict(self) -> dict:
        with self._lock:
            return {"seed": self.seed,
                    "rules": [r.to_dict() for r in self.rules],
                    "matched": list(self._matched),
                    "injected": [f.to_dict() for f in self._injected],
                    "counts": dict(Counter(f.kind for f in self._injected))}


def _rule_from_mapping(obj: Any, where: str) -> FaultRule:
    if not isinstance(obj, dict):
        raise FaultSpecError(f"{where}: expected an object, got {type(obj).__name__}")
    try:
        return FaultRule.model_validate(obj)
    except ValidationError as exc:
        raise FaultSpecError(f"{where}: {_explain(exc)}") from None


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "literal_error" and loc == "kind":
            msg = f"unknown kind {err['input']!r} (choose from {', '.join(FAULT_KINDS)})"
        elif err["type"] == "extra_forbidden":
            msg = f"unknown key (known: {', '.join(FaultRule.model_fields)})"
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


# ---------------------------------------------------------------------------------- spec strings
_LIST_KEYS = {"calls", "rows"}
_INT_KEYS = {"times", "seed"}
_FLOAT_KEYS = {"rate", "row_rate", "retry_after", "seconds"}
_KEY_ALIASES = {"filter": "filter_value", "status": "filter_value", "work_order": "filter_value",
                "col": "column", "retry": "retry_after"}


def parse_fault_spec(spec: str) -> FaultRule:
    """``KIND[:key=value,...]`` -> a rule; errors name the bad part of ``spec``."""
    text = spec.strip()
    kind, _, rest = text.partition(":")
    kind = kind.strip()
    if not kind:
        raise FaultSpecError(f"fault {spec!r}: missing the kind before ':'")
    if kind not in FAULT_KINDS:
        raise FaultSpecError(f"fault {spec!r}: unknown kind {kind!r} "
                             f"(choose from {', '.join(FAULT_KINDS)})")
    fields: dict[str, Any] = {"kind": kind}
    for part in (p for p in rest.split(",") if p.strip()) if rest.strip() else ():
        key, sep, raw = part.partition("=")
        key = key.strip().lower()
        key = _KEY_ALIASES.get(key, key)
        raw = raw.strip()
        if not sep or not key:
            raise FaultSpecError(f"fault {spec!r}: {part.strip()!r} is not key=value")
        if key == "kind" or key not in FaultRule.model_fields:
            raise FaultSpecError(f"fault {spec!r}: unknown key {key!r} (known: "
                                 f"{', '.join(k for k in FaultRule.model_fields if k != 'kind')})")
        if key in fields:
            raise FaultSpecError(f"fault {spec!r}: {key} given twice")
        try:
            if key in _LIST_KEYS:
                fields[key] = [int(x) for x in raw.split(";") if x.strip()]
            elif key in _INT_KEYS:
                fields[key] = int(raw)
            elif key in _FLOAT_KEYS:
                fields[key] = float(raw)
            elif key == "value":
                try:
                    fields[key] = json.loads(raw)
                except ValueError:
                    fields[key] = raw
            else:
                fields[key] = raw
        except ValueError:
            expected = ("integers separated by ';'" if key in _LIST_KEYS
                        else "an integer" if key in _INT_KEYS else "a number")
            raise FaultSpecError(f"fault {spec!r}: {key}={raw!r} is not {expected}") from None
    try:
        return FaultRule.model_validate(fields)
    except ValidationError as exc:
        raise FaultSpecError(f"fault {spec!r}: {_explain(exc)}") from None


# ---------------------------------------------------------------------------------- data faults
def _wrong_value(original: Any) -> Any:
    if isinstance(original, bool):
        return "maybe"
    if isinstance(original, (int, float)):
        return "not-a-number"
    if isinstance(original, str):
        try:
            float(original)
        except ValueError:
            return [1, 2, 3]
        return "not-a-number"  # a number sent as a string: still a number to a reader
    return "not-an-object"


def apply_data_fault(payload: Any, firing: Firing, view: str | None) -> tuple[str | None,
                                                                              list[int] | None]:
    """Damage a DATASET ``payload`` in place. Returns (column, rows) when something changed,
    else raises LookupError (nothing to damage)."""
    rule = firing.rule
    if not isinstance(payload, dict) or payload.get("Protocol") != "DATASET":
        raise LookupError("no DATASET answer")
    dataset = payload.get("DataSet") or {}
    heading: list = dataset.get("Heading")
    data: list = dataset.get("Data")
    if not isinstance(heading, list) or not isinstance(data, list):
        raise LookupError("no heading or data")
    kind = rule.kind
    column = rule.column
    if column is None and kind in ("wrong_type", "bad_date"):
        column = DEFAULT_COLUMNS.get((kind, (view or "").upper()))
        if column is None and heading:
            column = heading[0]
    col = None
    if column is not None:
        if column not in heading:
            raise LookupError(f"column {column} not in the heading")
        col = heading.index(column)
    if kind == "missing_column":
        del heading[col]
        for row in data:
            if isinstance(row, list) and len(row) > col:
                del row[col]
        _retitle(payload, column, None)
        return column, None
    if kind == "renamed_column":
        heading[col] = rule.to
        _retitle(payload, column, rule.to)
        return column, None
    chosen = firing.select_rows(len(data))
    if not chosen:
        raise LookupError("no rows")
    if kind == "short_rows":
        for i in chosen:
            if isinstance(data[i], list) and data[i]:
                data[i] = data[i][:-1]
    elif kind == "duplicate_rows":
        for i in reversed(chosen):
            data.insert(i + 1, list(data[i]) if isinstance(data[i], list) else data[i])
    elif kind in ("wrong_type", "bad_date"):
        for i in chosen:
            row = data[i]
            if not isinstance(row, list) or col >= len(row):
                continue
            if rule.value is not None:
                value = rule.value
            elif kind == "bad_date":
                value = DEFAULT_BAD_DATE
            else:
                value = _wrong_value(row[col])
            data[i] = row = list(row)
            row[col] = value
    return column, chosen


def _retitle(payload: dict, column: str, to: str | None) -> None:
    """Keep the echoed view definition (ColumnGroup) in step with the heading."""
    group = payload.get("ColumnGroup")
    columns = group.get("Columns") if isinstance(group, dict) else None
    if not isinstance(columns, list):
        return
    kept = []
    for c in columns:
        if isinstance(c, dict) and c.get("FieldName") == column:
            if to is None:
                continue
            c = {**c, "FieldName": to, "Caption": to}
        kept.append(c)
    group["Columns"] = kept


def malformed(body: bytes) -> bytes:
    """The answer with a trailing comma before its last closing bracket: not JSON."""
    text = body.rstrip()
    if text.endswith((b"}", b"]")):
        return text[:-1] + b"," + text[-1:]
    return b"{" + text + b","


def truncated(body: bytes) -> bytes:
    return body[: max(1, len(body) // 2)]
