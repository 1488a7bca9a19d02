"""A person's edit of a circuit: the other half of user-priority sync.

An edited SYNCABLE field is recorded in ``circuits.user_modified_fields`` as
``{field: {modified_at, modified_by, original_value}}`` (seed 002's shape), so a normal sync
keeps the person's value and a forced sync restores the API's and clears the mark.
``original_value`` is the value before the first edit; later edits keep it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

import sqlalchemy as sa

from ws_tracker.rules.circuits import normalise_guid
from ws_tracker.rules.circuits import region_key
from ws_tracker.rules.decoding import DecodeError
from ws_tracker.rules.decoding import to_decimal as q
from ws_tracker.warehouse.circuit_sync import SYNCABLE
from ws_tracker.warehouse.users import user_id_by_email


class EditError(ValueError):
    """A circuit edit that cannot be applied; the message names what and where."""


def _text(limit: int | None) -> Callable[[str], str]:
    def parse(value: str) -> str:
        text = value.strip()
        if not text:
            raise ValueError("must not be empty")
        if limit is not None and len(text) > limit:
            raise ValueError(f"longer than {limit} characters")
        return text
    return parse


def _number(places: int, maximum: Decimal) -> Callable[[str], Decimal]:
    def parse(value: str) -> Decimal:
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError("not a number") from None
        if not number.is_finite() or number < 0 or number >= maximum:
            raise ValueError(f"must be between 0 and {maximum}")
        return q(float(number), places)
    return parse


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError("not a date (YYYY-MM-DD)") from None


# field -> (column, parser)
FIELDS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "title": ("title", _text(None)),
    "contractor": ("contractor", _text(50)),
    "cycle_type": ("cycle_type", _text(100)),
    "total_miles": ("total_miles", _number(2, Decimal("100000000"))),
    "miles_planned": ("miles_planned", _number(2, Decimal("100000000"))),
    "percent_complete": ("percent_complete", _number(2, Decimal("1000"))),
    "total_acres": ("total_acres", _number(2, Decimal("100000000"))),
    "start_date": ("start_date", _date),
    "region": ("region_id", str),  # resolved to a region id below
}
assert set(FIELDS) == set(SYNCABLE)


@dataclass(frozen=True)
class EditResult:
    circuit_id: int
    job_guid: str
    changed: dict[str, Any]


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def parse_assignments(assignments: list[str]) -> dict[str, str]:
    """``["title=NEW", "total_miles=12.5"]`` -> ``{"title": "NEW", "total_miles": "12.5"}``."""
    out: dict[str, str] = {}
    for item in assignments:
        field, sep, value = item.partition("=")
        field = field.strip()
        if not sep or not field:
            raise EditError(f"expected FIELD=VALUE, got {item!r}")
        if field not in FIELDS:
            raise EditError(f"{field!r} cannot be edited; editable fields: {', '.join(FIELDS)}")
        out[field] = value
    return out


def record_edit(conn: sa.Connection, job_guid: str, changes: dict[str, str], *,
                by_email: str | None = None, at: datetime) -> EditResult:
    """Apply a person's edit to one circuit and mark the fields as user-modified."""
    if not changes:
        raise EditError("nothing to edit: give at least one FIELD=VALUE")
    try:
        guid = normalise_guid(job_guid)
    except DecodeError as exc:
        raise EditError(f"job GUID: {exc}") from None
    row = conn.execute(sa.text(
        "SELECT c.*, r.name AS region_name FROM circuits c JOIN regions r ON r.id = c.region_id"
        " WHERE c.job_guid = :g FOR UPDATE OF c"), {"g": guid}).mappings().first()
    if row is None:
        raise EditError(f"no circuit with job_guid {guid}")
    user_id = None
    if by_email:
        user_id = user_id_by_email(conn, by_email)
        if user_id is None:
            raise EditError(f"no user with email {by_email!r} (--by names an existing user)")

    marks = dict(row["user_modified_fields"] or {})
    updates: dict[str, Any] = {}
    for field, raw in changes.items():
        column, parse = FIELDS[field]
        try:
            value = parse(raw)
        except ValueError as exc:
            raise EditError(f"{field}={raw!r}: {exc}") from None
        if field == "region":
            region_id = conn.execute(sa.text("SELECT id, name FROM regions"))
            matches = [r.id for r in region_id if region_key(r.name) == region_key(value)]
            if not matches:
                raise EditError(f"region={raw!r}: no such region")
            value, original = matches[0], row["region_name"]
        else:
            original = row[column]
        previous = marks.get(field)
        marks[field] = {
            "modified_at": at.isoformat(),
            "modified_by": user_id,
            # The API's value before the first edit; a second edit keeps it.
            "original_value": previous["original_value"] if previous else _jsonable(original),
        }
        updates[column] = value

    sets = ", ".join(f"{c} = :{c}" for c in updates)
    conn.execute(sa.text(
        f"UPDATE circuits SET {sets}, user_modified_fields = CAST(:marks AS jsonb),"
        " last_user_modified_at = :at, last_user_modified_by = :uid, updated_at = now()"
        " WHERE id = :id"),
        {**updates, "marks": json.dumps(marks), "at": at, "uid": user_id, "id": row["id"]})
    return EditResult(row["id"], guid, {k: _jsonable(v) for k, v in updates.items()})
