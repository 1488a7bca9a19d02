"""Workflow stages in the warehouse: derived by syncs, set by people, every change recorded.

``refresh_stages`` runs in a sync's transaction (after the circuit list, and after planned
units are captured, since pending permissions come from the latest capture). ``set_stage`` is
a person's change (``ws-tracker circuits stage``). Both write ``circuit_ui_states`` and one
``circuit_stage_changes`` row per change, and queue a ``workflow_changed`` NOTIFY.

Writers take one transaction-level advisory lock before touching stages, so change ids become
visible in id order: the workflow-stage sensor's cursor (the last id it saw) never skips one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Iterable, NamedTuple

import sqlalchemy as sa

from ws_tracker.rules.circuits import normalise_guid
from ws_tracker.rules.decoding import DecodeError
from ws_tracker.rules.stages import FULLY_PLANNED_PERCENT, check_stage, decide_stage, derived_stage, pending_units
from ws_tracker.warehouse.batch import copy_rows, executemany_returning, reserve_ids, update_rows
from ws_tracker.warehouse.events import notify, payload
from ws_tracker.warehouse.users import user_id_by_email

STAGE_LOCK_KEY = 0x5753_5447  # "WSTG": serializes stage writers (see module docstring)


class StageError(ValueError):
    """A stage change that cannot be applied; the message names what and where."""


@dataclass(frozen=True)
class StageChange:
    change_id: int
    circuit_id: int
    job_guid: str
    work_order: str
    extension: str
    from_stage: str | None
    to_stage: str
    source: str
    api_status: str | None
    changed_at: datetime
    changed_by: str | None = None  # email, when a person named themselves
    run_id: str | None = None

    def event(self) -> dict[str, Any]:
        return payload("workflow_changed", at=self.changed_at, change_id=self.change_id,
                       circuit_id=self.circuit_id, job_guid=self.job_guid,
                       work_order=self.work_order, extension=self.extension,
                       from_stage=self.from_stage, to_stage=self.to_stage, source=self.source,
                       api_status=self.api_status, changed_by=self.changed_by,
                       dagster_run_id=self.run_id)


def _lock(conn: sa.Connection) -> None:
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": STAGE_LOCK_KEY})


_INSERT_STATE = (
    "INSERT INTO circuit_ui_states (circuit_id, workflow_stage, stage_changed_at,"
    " stage_changed_by, stage_source, stage_api_status) VALUES (:c, :s, :t, :by, :src, :st)"
    " ON CONFLICT (circuit_id) DO NOTHING")
_MOVE_STATE = (
    "UPDATE circuit_ui_states SET workflow_stage = :s, stage_changed_at = :t,"
    " stage_changed_by = :by, stage_source = :src, stage_api_status = :st,"
    " updated_at = now() WHERE circuit_id = :c")
_RESTAMP_STATE = (
    "UPDATE circuit_ui_states SET stage_source = :src, stage_api_status = :st,"
    " stage_changed_by = :by, updated_at = now() WHERE circuit_id = :c")
_INSERT_CHANGE = (
    "INSERT INTO circuit_stage_changes (circuit_id, from_stage, to_stage, source, api_status,"
    " changed_at, changed_by, dagster_run_id) VALUES (%(c)s, %(f)s, %(s)s, %(src)s, %(st)s,"
    " %(t)s, %(by)s, %(run)s) RETURNING id")


def _write(conn: sa.Connection, row: Any, stage: str, source: str, *, at: datetime,
           by_user: int | None, by_email: str | None, run_id: str | None,
           record_change: bool) -> StageChange | None:
    params = {"c": row.id, "s": stage, "src": source, "st": row.api_status, "t": at, "by": by_user}
    if row.workflow_stage is None:
        conn.execute(sa.text(_INSERT_STATE), params)
    elif record_change:
        conn.execute(sa.text(_MOVE_STATE), params)
    else:  # same stage, but it is the API's now (or was set under another status)
        conn.execute(sa.text(_RESTAMP_STATE), params)
    if not record_change:
        return None
    (change_id,) = executemany_returning(conn, _INSERT_CHANGE,
                                         [{**params, "f": row.workflow_stage, "run": run_id}])[0]
    return StageChange(change_id, row.id, row.job_guid, row.work_order, row.extension or "@",
                       row.workflow_stage, stage, source, row.api_status, at, by_email, run_id)


_STATE_SQL = (
    "SELECT c.id, c.job_guid, c.work_order, c.extension, c.api_status, c.percent_complete,"
    " u.workflow_stage, u.stage_source, u.stage_api_status, u.stage_changed_at"
    " FROM circuits c LEFT JOIN circuit_ui_states u ON u.circuit_id = c.id")


class NewCircuit(NamedTuple):
    """A circuit created in the caller's transaction, as :data:`_STATE_SQL` would read it: no
    UI state yet, no capture (no other transaction can see it, so nothing to read)."""

    id: int
    job_guid: str
    work_order: str
    extension: str | None
    api_status: str | None
    percent_complete: Decimal | None
    workflow_stage: None = None
    stage_source: None = None
    stage_api_status: None = None
    stage_changed_at: None = None


def refresh_stages(conn: sa.Connection, circuit_ids: Iterable[int], *, at: datetime,
                   run_id: str | None = None, pending: dict[int, int] | None = None,
                   new: Iterable[NewCircuit] = ()) -> list[StageChange]:
    """Bring the stages of these circuits in line with their API state and latest capture.

    ``pending``: circuit id -> units waiting for a permission in the capture just stored at
    ``at`` (the caller has the units in memory); the others' latest captures are read.
    ``new``: circuits the caller created in this transaction (a first sync's thousands), taken
    as given instead of read back; they need not be in ``circuit_ids``."""
    created = {n.id: n for n in new}
    ids = sorted(set(circuit_ids) - created.keys())
    if not ids and not created:
        return []
    _lock(conn)
    rows = conn.execute(sa.text(_STATE_SQL + " WHERE c.id = ANY(:ids)"),
                        {"ids": ids}).all() if ids else []
    rows = sorted([*rows, *created.values()], key=lambda r: r.id)
    # Pending permissions only matter for a fully planned ACTIV circuit: read just those captures.
    candidates = [r.id for r in rows if r.api_status == "ACTIV" and r.percent_complete is not None
                  and r.percent_complete >= FULLY_PLANNED_PERCENT]
    pending = dict(pending or {})
    to_read = [cid for cid in candidates if cid not in pending and cid not in created]
    if to_read:
        for cid, units in conn.execute(sa.text(
                "SELECT DISTINCT ON (circuit_id) circuit_id, raw_json FROM planned_units_snapshots"
                " WHERE circuit_id = ANY(:c) AND captured_at <= :t"
                " ORDER BY circuit_id, captured_at DESC"), {"c": to_read, "t": at}):
            pending[cid] = pending_units(u.get("permission_status") for u in units)
    writes = []
    for row in rows:
        if row.stage_changed_at is not None and at < row.stage_changed_at:
            # An observation older than the stage's last change (a past day re-run) is not
            # newer knowledge: the current stage stands, and its history is not rewritten.
            continue
        derived = derived_stage(row.api_status, None if row.percent_complete is None
                                else float(row.percent_complete), pending.get(row.id, 0))
        decision = decide_stage(row.workflow_stage, row.stage_source, row.stage_api_status,
                                row.api_status, derived)
        if decision.rewrite:
            writes.append((row, decision))
    changes = _write_many(conn, writes, at=at, run_id=run_id)
    notify(conn, [c.event() for c in changes])
    return changes


_STATE_COLUMNS = ("circuit_id", "workflow_stage", "stage_changed_at", "stage_changed_by",
                  "stage_source", "stage_api_status")
_CHANGE_COLUMNS = ("circuit_id", "from_stage", "to_stage", "source", "api_status", "changed_at",
                   "changed_by", "dagster_run_id")


def _write_many(conn: sa.Connection, writes: list, *, at: datetime, run_id: str | None
                ) -> list[StageChange]:
    """:func:`_write` for many circuits (the API's decisions), in four set-based statements
    instead of up to two statements per circuit; changes keep the order of ``writes`` (their
    ids too, so the workflow-stage sensor's cursor reads them in that order)."""
    new_states, moved, restamped, recorded = [], [], [], []
    for row, decision in writes:
        state = {"circuit_id": row.id, "workflow_stage": decision.stage, "stage_changed_at": at,
                 "stage_changed_by": None, "stage_source": decision.source,
                 "stage_api_status": row.api_status}
        if row.workflow_stage is None:
            new_states.append(state)
        elif decision.changed:
            moved.append(state)
        else:
            restamped.append(state)
        if decision.changed:
            recorded.append((row, decision))
    # No UI state yet, read under the stage lock (and workflow_stage is NOT NULL): none can
    # appear before this commits, so the new ones go in by COPY.
    copy_rows(conn, "circuit_ui_states", _STATE_COLUMNS,
              ([s[c] for c in _STATE_COLUMNS] for s in new_states))
    update_rows(conn, "circuit_ui_states", "circuit_id", _STATE_COLUMNS[1:], moved,
                also="updated_at = now()")
    update_rows(conn, "circuit_ui_states", "circuit_id",
                ("stage_source", "stage_api_status", "stage_changed_by"), restamped,
                also="updated_at = now()")
    # Ids taken in order under the stage lock, then the rows COPYed with them.
    ids = reserve_ids(conn, "circuit_stage_changes", len(recorded))
    changes: list[StageChange] = []

    def change_rows():
        # Each change is built while the COPY streams (the server stores one row meanwhile).
        for change_id, (row, decision) in zip(ids, recorded):
            changes.append(StageChange(change_id, row.id, row.job_guid, row.work_order,
                                       row.extension or "@", row.workflow_stage, decision.stage,
                                       decision.source, row.api_status, at, None, run_id))
            yield (change_id, row.id, row.workflow_stage, decision.stage, decision.source,
                   row.api_status, at, None, run_id)

    copy_rows(conn, "circuit_stage_changes", ("id", *_CHANGE_COLUMNS), change_rows())
    return changes


def find_circuit(conn: sa.Connection, ref: str) -> int:
    """A circuit id from ``WORK_ORDER[/EXTENSION]`` (no extension: the '@' job) or a job GUID."""
    text = ref.strip()
    if text.startswith("{") or (len(text) == 36 and text.count("-") == 4):
        try:
            guid = normalise_guid(text)
        except DecodeError as exc:
            raise StageError(f"job GUID {ref!r}: {exc}") from None
        cid = conn.execute(sa.text("SELECT id FROM circuits WHERE job_guid = :g"), {"g": guid}).scalar()
        if cid is None:
            raise StageError(f"no circuit with job_guid {guid}")
        return cid
    work_order, _, extension = text.partition("/")
    work_order, extension = work_order.strip(), (extension.strip() or "@")
    if not work_order:
        raise StageError(f"expected WORK_ORDER[/EXTENSION], got {ref!r}")
    rows = conn.execute(sa.text(
        "SELECT id FROM circuits WHERE work_order = :w AND coalesce(extension, '@') = :e"),
        {"w": work_order, "e": extension}).scalars().all()
    if not rows:
        known = conn.execute(sa.text(
            "SELECT string_agg(coalesce(extension, '@'), ', ' ORDER BY extension) FROM circuits"
            " WHERE work_order = :w"), {"w": work_order}).scalar()
        hint = f"; its jobs are: {known}" if known else ""
        raise StageError(f"no circuit {work_order}/{extension}{hint}")
    if len(rows) > 1:
        raise StageError(f"{work_order}/{extension} names {len(rows)} circuits; give the job GUID")
    return rows[0]


def set_stage(conn: sa.Connection, ref: str, stage: str, *, by_email: str | None = None,
              at: datetime) -> StageChange | None:
    """A person sets a circuit's stage; it wins over syncs until the API status changes.

    Returns the change, or None when the circuit already had that stage (it is still marked as
    the person's from now on).
    """
    try:
        stage = check_stage(stage)
    except ValueError as exc:
        raise StageError(str(exc)) from None
    user_id = None
    if by_email:
        user_id = user_id_by_email(conn, by_email)
        if user_id is None:
            raise StageError(f"no user with email {by_email!r} (--by names an existing user)")
    circuit_id = find_circuit(conn, ref)
    _lock(conn)
    row = conn.execute(sa.text(_STATE_SQL + " WHERE c.id = :id"), {"id": circuit_id}).one()
    change = _write(conn, row, stage, "person", at=at, by_user=user_id,
                    by_email=by_email.strip() if by_email else None, run_id=None,
                    record_change=row.workflow_stage != stage)
    if change is not None:
        notify(conn, [change.event()])
    return change


@dataclass(frozen=True)
class StageEntry:
    """A circuit's entry into a stage, as the workflow-stage sensor sees it."""

    change_id: int
    circuit_id: int
    job_guid: str
    work_order: str
    extension: str
    changed_at: datetime
    source: str
    current_stage: str | None
    units_synced_at: datetime | None
    eligible: bool  # unit sync enabled, not excluded, not deleted, a status units are synced in


def stage_entries(conn: sa.Connection, stage: str, *, after_id: int | None,
                  recorded_since: datetime, limit: int = 100) -> list[StageEntry]:
    """Changes into ``stage`` with id > ``after_id`` (or, with no cursor yet, recorded since
    ``recorded_since``), oldest first, at most ``limit``, with the circuit's state now."""
    rows = conn.execute(sa.text(
        "SELECT s.id, s.circuit_id, c.job_guid, c.work_order, coalesce(c.extension, '@') AS ext,"
        " s.changed_at, s.source, u.workflow_stage, c.last_planned_units_synced_at,"
        " (c.planned_units_sync_enabled AND NOT c.is_excluded AND c.deleted_at IS NULL"
        "  AND c.api_status IN ('ACTIV', 'QC', 'REWRK')) AS eligible"
        " FROM circuit_stage_changes s JOIN circuits c ON c.id = s.circuit_id"
        " LEFT JOIN circuit_ui_states u ON u.circuit_id = s.circuit_id"
        " WHERE s.to_stage = :stage AND (CASE WHEN CAST(:after AS bigint) IS NULL"
        "   THEN s.recorded_at >= :since ELSE s.id > :after END)"
        " ORDER BY s.id LIMIT :limit"),
        {"stage": stage, "after": after_id, "since": recorded_since, "limit": limit}).all()
    return [StageEntry(r.id, r.circuit_id, r.job_guid, r.work_order, r.ext, r.changed_at, r.source,
                       r.workflow_stage, r.last_planned_units_synced_at, r.eligible) for r in rows]
