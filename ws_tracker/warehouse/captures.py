"""planned_units_snapshots: the raw layer. A capture is stored only when its content changed.

Every derived number for a past day is recomputed from the latest capture on or before that
day, so captures are never updated in place and never deleted by a sync.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable, Iterator
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from ws_tracker.rules.stages import FULLY_PLANNED_PERCENT, pending_units
from ws_tracker.rules.triggers import decide_trigger
from ws_tracker.rules.units import PlannedUnit, canonical_json
from ws_tracker.warehouse.batch import copy_rows, executemany_returning
from ws_tracker.warehouse.events import notify
from ws_tracker.warehouse.locks import LIVE_WRITES, lock
from ws_tracker.warehouse.events import payload as event_payload
from ws_tracker.warehouse.workflow import StageChange, refresh_stages

# Which circuits get their planned units fetched (business-rules.md).
UNIT_SYNC_STATUSES = ("ACTIV", "QC", "REWRK")
# The safety net for changes WorkStudio did not date (SS_EDITDATE and WSREQ_VERSION both
# unmoved): an unchanged circuit is re-verified (its units fetched again) once a week, on its
# own weekday: circuits.id modulo 5 (ids are dealt in insertion order, so each weekday holds
# about a fifth of the circuits, and a circuit keeps its weekday for life). On its weekday a
# circuit is refetched when its last fetch is older than STALE_AFTER (12 h), so exactly one of
# the day's two runs takes it. A circuit whose weekday was missed (a holiday, a failed run) is
# refetched once its last fetch is older than REVERIFY_AFTER, whatever the day. Before issue 7 every circuit
# older than 12 h was refetched, i.e. the whole tenant every morning: about 70 % of a full
# refetch's calls for a day on which 10 % of circuits changed (BENCHMARKS.md, api_calls).
STALE_AFTER = timedelta(hours=12)
REVERIFY_WEEKDAYS = 5  # Monday..Friday, New York time
REVERIFY_AFTER = timedelta(days=7)
# Syncs run 12 h apart (05:30 / 17:30). A run that starts a few minutes later than the one
# before must not find its captures "older than 12 h" and refetch them, so both age limits
# have this much slack.
STALE_SLACK = timedelta(minutes=30)
NEW_YORK = ZoneInfo("America/New_York")


def reverify_slot(now: datetime) -> int:
    """The re-verification slot of ``now``: its New York weekday 0-4, or -1 at a weekend."""
    weekday = now.astimezone(NEW_YORK).weekday()
    return weekday if weekday < REVERIFY_WEEKDAYS else -1


@dataclass(frozen=True)
class CircuitToCapture:
    id: int
    job_guid: str
    work_order: str
    extension: str
    api_status: str
    percent_complete: float


@dataclass
class CaptureResult:
    stored: int = 0
    unchanged: int = 0
    units: int = 0
    triggers: dict[str, int] = field(default_factory=dict)
    snapshot_ids: dict[int, int] = field(default_factory=dict)  # circuit id -> new capture id
    events: list[dict] = field(default_factory=list)  # planned_units_synced, NOTIFYed
    stage_changes: list[StageChange] = field(default_factory=list)

    def merge(self, other: "CaptureResult") -> None:
        """Add a later batch's result to this one."""
        self.stored += other.stored
        self.unchanged += other.unchanged
        self.units += other.units
        for k, v in other.triggers.items():
            self.triggers[k] = self.triggers.get(k, 0) + v
        self.snapshot_ids.update(other.snapshot_ids)
        self.events += other.events
        self.stage_changes += other.stage_changes

    def counts(self) -> dict[str, int]:
        return {"captures_stored": self.stored, "captures_unchanged": self.unchanged,
                "units_captured": self.units,
                **{f"trigger_{k}": v for k, v in sorted(self.triggers.items())}}


def circuits_needing_units(conn: sa.Connection, now: datetime, *, force: bool = False,
                           job_guids: list[str] | None = None, workflow_event: bool = False,
                           stale_after: timedelta = STALE_AFTER,
                           reverify_after: timedelta = REVERIFY_AFTER) -> list[CircuitToCapture]:
    """ACTIV/QC/REWRK, sync enabled, not excluded, and: changed in WorkStudio since the last
    fetch, never captured, or due for its weekly re-verification (module constants); ``force``
    takes every one of them (and CLOSE circuits too). ``job_guids`` narrows to those circuits;
    with ``workflow_event`` they are captured whether or not they changed (a workflow event is
    a reason of its own)."""
    statuses = list(UNIT_SYNC_STATUSES) + (["CLOSE"] if force else [])
    rows = conn.execute(
        sa.text(
            "SELECT id, job_guid, work_order, extension, api_status, percent_complete FROM circuits"
            " WHERE deleted_at IS NULL AND api_status = ANY(:st) AND planned_units_sync_enabled"
            " AND NOT is_excluded AND (CAST(:guids AS varchar[]) IS NULL OR job_guid = ANY(:guids))"
            " AND (:force OR :event OR last_planned_units_synced_at IS NULL"
            "      OR api_modified_at > last_planned_units_synced_at"
            "      OR api_version IS DISTINCT FROM last_planned_units_version"
            "      OR last_planned_units_synced_at < :overdue"
            "      OR (id % :slots = :slot AND last_planned_units_synced_at < :stale))"
            " ORDER BY work_order, extension"
        ),
        {"st": statuses, "force": force, "guids": job_guids,
         "event": workflow_event and job_guids is not None, "slots": REVERIFY_WEEKDAYS,
         "slot": reverify_slot(now), "stale": now - stale_after - STALE_SLACK,
         "overdue": now - reverify_after - STALE_SLACK},
    ).all()
    return [CircuitToCapture(r.id, r.job_guid, r.work_order, r.extension or "@", r.api_status,
                             float(r.percent_complete)) for r in rows]


# ON CONFLICT: the same instant captured twice (a retried run with a frozen clock).
_INSERT_CAPTURE = (
    "INSERT INTO planned_units_snapshots (circuit_id, work_order, extension, snapshot_trigger,"
    " content_hash, unit_count, api_status, percent_complete, captured_at, raw_json,"
    " dagster_run_id) VALUES (%(c)s, %(wo)s, %(ext)s, %(tr)s, %(h)s, %(n)s, %(st)s, %(pc)s,"
    " %(t)s, CAST(%(raw)s AS jsonb), %(run)s)"
    " ON CONFLICT (circuit_id, captured_at) DO UPDATE SET content_hash = EXCLUDED.content_hash,"
    " raw_json = EXCLUDED.raw_json, unit_count = EXCLUDED.unit_count,"
    " snapshot_trigger = EXCLUDED.snapshot_trigger, updated_at = now() RETURNING id")


_COPY_COLUMNS = ("c", "wo", "ext", "tr", "h", "n", "st", "pc", "t", "raw", "run")
_SNAPSHOT_COLUMNS = ("circuit_id", "work_order", "extension", "snapshot_trigger", "content_hash",
                     "unit_count", "api_status", "percent_complete", "captured_at", "raw_json",
                     "dagster_run_id")


def _copy_captures(conn: sa.Connection, rows: Iterable[dict[str, Any]], captured_at: datetime
                   ) -> dict[int, int]:
    """COPY new captures (none may exist at their instant) in ``conn``'s transaction;
    circuit id -> new capture id. ``rows`` may be a generator: each row is sent as soon as it
    is built, so the server stores one while the next is encoded."""
    copied: list[int] = []

    def values() -> Iterator[list[Any]]:
        for row in rows:
            copied.append(row["c"])
            yield [row[k] for k in _COPY_COLUMNS]

    copy_rows(conn, "planned_units_snapshots", _SNAPSHOT_COLUMNS, values())
    if not copied:
        return {}
    return dict(conn.execute(
        sa.text("SELECT circuit_id, id FROM planned_units_snapshots"
                " WHERE circuit_id = ANY(:c) AND captured_at = :t"),
        {"c": copied, "t": captured_at}).all())


def store_captures(conn: sa.Connection, captures: dict[int, list[PlannedUnit]],
                   circuits: dict[int, CircuitToCapture], *, captured_at: datetime,
                   run_trigger: str = "scheduled", run_id: str | None = None) -> CaptureResult:
    """Store one capture per circuit whose content hash differs from its latest capture."""
    result = CaptureResult()
    if not captures:
        return result
    # Before reading the latest captures: a concurrent run of the same circuits waits, then
    # sees this one's captures and stores no duplicate.
    lock(conn, LIVE_WRITES)
    ids = list(captures)
    latest = {
        r.circuit_id: r for r in conn.execute(
            sa.text("SELECT DISTINCT ON (circuit_id) circuit_id, content_hash, api_status,"
                    " percent_complete, captured_at FROM planned_units_snapshots"
                    " WHERE circuit_id = ANY(:c) AND captured_at <= :t"
                    " ORDER BY circuit_id, captured_at DESC"),
            {"c": ids, "t": captured_at})
    }
    rows: list[dict[str, Any]] = []
    pending: dict[int, int] = {}  # circuit id -> units waiting for a permission
    # New captures go in by COPY (the batch in one stream, each row sent as soon as it is
    # encoded: BENCHMARKS.md, writes); one at the very instant of an earlier capture (a
    # retried run with a frozen clock) replaces it.
    again = {cid for cid, prev in latest.items() if prev.captured_at == captured_at}
    replaced: list[dict[str, Any]] = []

    def changed() -> Iterator[dict[str, Any]]:
        for cid, units in captures.items():
            circuit = circuits[cid]
            payload, digest = canonical_json(units)
            prev = latest.get(cid)
            if prev is not None and prev.content_hash == digest:
                result.unchanged += 1
                continue
            trigger = decide_trigger(
                prev.api_status if prev else None,
                float(prev.percent_complete) if prev and prev.percent_complete is not None
                else None, circuit.api_status, circuit.percent_complete, run_trigger)
            row = {"c": cid, "wo": circuit.work_order, "ext": circuit.extension, "tr": trigger,
                   "h": digest, "n": len(units), "st": circuit.api_status,
                   "pc": circuit.percent_complete, "t": captured_at, "raw": payload,
                   "run": run_id}
            rows.append(row)
            if circuit.api_status == "ACTIV" and circuit.percent_complete >= FULLY_PLANNED_PERCENT:
                pending[cid] = pending_units(u.permission_status for u in units)
            if cid in again:
                replaced.append(row)
            else:
                yield row

    snap_ids = _copy_captures(conn, changed(), captured_at)
    snap_ids.update((r["c"], i) for r, (i,) in zip(
        replaced, executemany_returning(conn, _INSERT_CAPTURE, replaced)))
    snap_ids = [snap_ids[r["c"]] for r in rows]
    for row, snap_id in zip(rows, snap_ids):
        cid = row["c"]
        result.stored += 1
        result.units += row["n"]
        result.triggers[row["tr"]] = result.triggers.get(row["tr"], 0) + 1
        result.snapshot_ids[cid] = snap_id
        result.events.append(event_payload(
            "planned_units_synced", at=captured_at, circuit_id=cid, snapshot_id=snap_id,
            work_order=row["wo"], extension=row["ext"], unit_count=row["n"],
            content_hash=row["h"], snapshot_trigger=row["tr"], dagster_run_id=run_id))
    # Fetched (changed or not): remember when, and at which WSREQ_VERSION.
    conn.execute(
        sa.text("UPDATE circuits SET last_planned_units_synced_at = :t,"
                " last_planned_units_version = api_version WHERE id = ANY(:c)"
                " AND (last_planned_units_synced_at IS DISTINCT FROM :t"
                "      OR last_planned_units_version IS DISTINCT FROM api_version)"),
        {"t": captured_at, "c": ids},
    )
    notify(conn, result.events)
    # New units may start or end a wait for permissions (pending_permissions).
    result.stage_changes = refresh_stages(conn, result.snapshot_ids, at=captured_at, run_id=run_id,
                                          pending=pending)
    return result


def latest_captures(conn: sa.Connection, before: datetime) -> list[Any]:
    """Each circuit's latest capture strictly before ``before`` (id, circuit_id, raw_json)."""
    return conn.execute(
        sa.text("SELECT DISTINCT ON (circuit_id) id, circuit_id, raw_json FROM planned_units_snapshots"
                " WHERE captured_at < :b ORDER BY circuit_id, captured_at DESC"),
        {"b": before}).all()
