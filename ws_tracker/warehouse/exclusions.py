"""Leaving a circuit out of reporting, and taking it back in, with an audit row.

``circuits.is_excluded`` / ``exclusion_reason`` / ``excluded_by`` / ``excluded_at`` belong to
the project (a sync never touches them). An excluded circuit gets no planned-unit sync, no
daily snapshot, and no place in any rollup (planner and regional, daily and weekly) or
reporting view; regional rollups count it in ``excluded_circuits``. The flag has no history,
so a rebuilt past day leaves it out too (rollups.py): the next pipeline run rebuilds the
recent days, and ``ws-tracker backfill`` rebuilds older ones.

Including a circuit clears the four columns; the audit_log row keeps who excluded it, when
and why (``before``) and who took it back (the actor).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ws_tracker.warehouse import audit
from ws_tracker.warehouse.users import user_id_by_email
from ws_tracker.warehouse.workflow import StageError, find_circuit


class ExclusionError(ValueError):
    """An exclude/include was refused; the message names what was wrong."""


@dataclass
class ExclusionChange:
    circuit_id: int
    job_guid: str
    work_order: str
    extension: str | None
    before: dict[str, Any]
    after: dict[str, Any]
    changed: bool
    audit_id: int | None = None


_FIELDS = ("is_excluded", "exclusion_reason", "excluded_by", "excluded_at")


def _state(row) -> dict[str, Any]:
    return {"is_excluded": row.is_excluded, "exclusion_reason": row.exclusion_reason,
            "excluded_by": row.excluded_by, "excluded_by_email": row.by_email,
            "excluded_at": row.excluded_at.isoformat() if row.excluded_at else None}


def set_excluded(conn: sa.Connection, ref: str, *, excluded: bool, by_email: str,
                 reason: str | None = None, at: datetime) -> ExclusionChange:
    """Exclude (``excluded``) or include the circuit ``ref`` (job GUID or WORK_ORDER[/EXT])."""
    if not by_email or not by_email.strip():
        raise ExclusionError("--by EMAIL is required: every exclusion change names who made it")
    user_id = user_id_by_email(conn, by_email)
    if user_id is None:
        raise ExclusionError(f"no user with email {by_email!r} (--by names an existing user)")
    reason = (reason or "").strip() or None
    if excluded and reason is None:
        raise ExclusionError("--reason must say why the circuit is left out of reporting")
    try:
        cid = find_circuit(conn, ref)
    except StageError as exc:
        raise ExclusionError(str(exc)) from None
    row = conn.execute(sa.text(
        "SELECT c.id, c.job_guid, c.work_order, c.extension, c.is_excluded, c.exclusion_reason,"
        " c.excluded_by, c.excluded_at, u.email AS by_email FROM circuits c"
        " LEFT JOIN users u ON u.id = c.excluded_by WHERE c.id = :id FOR UPDATE OF c"),
        {"id": cid}).one()
    before = _state(row)
    if excluded:
        wanted = (True, reason)
        changed = (row.is_excluded, row.exclusion_reason) != wanted
        params = {"x": True, "r": reason, "b": user_id, "t": at}
    else:
        changed = row.is_excluded or any(getattr(row, f) is not None for f in _FIELDS[1:])
        params = {"x": False, "r": None, "b": None, "t": None}
    change = ExclusionChange(cid, row.job_guid, row.work_order, row.extension, before, before,
                             changed)
    if not changed:
        return change
    conn.execute(sa.text(
        "UPDATE circuits SET is_excluded = :x, exclusion_reason = :r, excluded_by = :b,"
        " excluded_at = :t, updated_at = now() WHERE id = :id"), {**params, "id": cid})
    change.after = {"is_excluded": params["x"], "exclusion_reason": params["r"],
                    "excluded_by": params["b"],
                    "excluded_by_email": by_email.strip() if excluded else None,
                    "excluded_at": at.isoformat() if excluded else None}
    change.audit_id = audit.record(
        conn, action="circuit.exclude" if excluded else "circuit.include",
        entity_type="circuit", entity_id=cid, entity_key=row.job_guid, before=before,
        after=change.after, actor_user_id=user_id, actor=by_email.strip(), at=at)
    return change
