"""Write a circuit listing into PostgreSQL: circuits, history, ui states, regions, planners.

One call = one transaction (the caller passes an open connection inside ``engine.begin()``):
either the whole listing lands or nothing does. Every write compares before it writes, so a
re-run of the same listing changes no row (no updated_at churn, no WAL for unchanged rows).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from ws_tracker.rules.circuits import CircuitRecord, region_key, resolve_parents
from ws_tracker.rules.decoding import to_decimal
from ws_tracker.warehouse.batch import copy_rows, reserve_ids, update_rows
from ws_tracker.warehouse.events import notify, payload
from ws_tracker.warehouse.locks import LIVE_WRITES, lock
from ws_tracker.warehouse.workflow import NewCircuit, StageChange, refresh_stages

NY = ZoneInfo("America/New_York")

# User-priority sync (business-rules.md): fields a person may edit, by circuits column.
# region is SYNCABLE under the name "region" (column region_id).
SYNCABLE = ("title", "contractor", "cycle_type", "total_miles", "miles_planned",
            "percent_complete", "total_acres", "start_date", "region")
_MARK_FOR_COLUMN = {f: f for f in SYNCABLE if f != "region"} | {"region_id": "region"}

# Columns the API owns, always overwritten.
API_ONLY = ("work_order", "extension", "api_status", "api_modified_date", "api_modified_at",
            "api_version", "job_type", "taken_by", "api_data_json")

HISTORY_FIELDS = ("job_guid", "work_order", "extension", "parent_circuit_id", "region_id",
                  "api_status", "title", "contractor", "cycle_type", "job_type", "total_miles",
                  "miles_planned", "percent_complete", "total_acres", "start_date",
                  "api_modified_date", "api_modified_at", "api_version", "taken_by")

UNKNOWN_REGION = "Unknown"


q = to_decimal  # a float for a NUMERIC(p, places) column, so comparisons with it hold


@dataclass
class CircuitSyncResult:
    processed: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    history_versions: int = 0
    regions_created: list[str] = field(default_factory=list)
    planners_linked: int = 0
    unlinked_planners: list[str] = field(default_factory=list)
    stage_changes: list[StageChange] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # NOTIFYed (events.py)
    issues: list[dict[str, Any]] = field(default_factory=list)
    circuit_ids: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {"circuits_processed": self.processed, "circuits_created": self.created,
                "circuits_updated": self.updated, "circuits_unchanged": self.unchanged,
                "history_versions": self.history_versions,
                "regions_created": len(self.regions_created),
                "planners_linked": self.planners_linked,
                "unlinked_planners": len(self.unlinked_planners)}


def _region_code(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Z0-9]", "", name.upper())[:8] or "REGION"
    code, n = base, 1
    while code in taken:
        n += 1
        code = f"{base[:6]}{n}"
    return code


def ensure_regions(conn: sa.Connection, names: Iterable[str]) -> tuple[dict[str, int], list[str]]:
    """Map region names (matched case- and space-insensitively) to ids, creating unseen ones."""
    rows = conn.execute(sa.text("SELECT id, name, code FROM regions")).all()
    by_key = {region_key(r.name): r.id for r in rows}
    codes = {r.code for r in rows}
    created: list[str] = []
    next_order = len(rows) + 1
    for name in sorted({n for n in names}):
        key = region_key(name)
        if key in by_key:
            continue
        code = _region_code(name, codes)
        codes.add(code)
        # ON CONFLICT: a concurrent sync may have created it a moment ago.
        rid = conn.execute(
            sa.text("INSERT INTO regions (name, code, sort_order, is_active) VALUES (:n, :c, :o, true)"
                    " ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id"),
            {"n": name.strip(), "c": code, "o": next_order},
        ).scalar_one()
        next_order += 1
        by_key[key] = rid
        created.append(name.strip())
    return by_key, created


def _api_row(rec: CircuitRecord, region_id: int, observed_at: datetime) -> dict[str, Any]:
    """The circuits row the API says, before user priority."""
    modified_date = rec.api_modified_date or observed_at.astimezone(NY).date()
    return {
        "job_guid": rec.job_guid,
        "work_order": rec.work_order,
        "extension": rec.extension,
        "region_id": region_id,
        "title": rec.title if rec.title is not None else rec.work_order,
        "contractor": rec.contractor,
        "cycle_type": rec.cycle_type,
        "total_miles": q(rec.total_miles, 2),
        "miles_planned": q(rec.miles_planned, 2),
        "percent_complete": q(rec.percent_complete, 2),
        "total_acres": q(0, 2),
        "start_date": rec.start_date,
        "api_modified_date": modified_date,
        "api_modified_at": rec.api_modified_at,
        "api_status": rec.api_status,
        "api_version": rec.api_version,
        "job_type": rec.job_type,
        "taken_by": rec.taken_by,
        "api_data_json": rec.api_data,
    }


# The state hash's encoding (stored in circuit_history: it must not change). One encoder for
# all circuits: json.dumps with options builds a new encoder per call.
_STATE_ENCODER = json.JSONEncoder(sort_keys=True, default=str, separators=(",", ":"))


def _state_hash(state: dict[str, Any]) -> str:
    payload = _STATE_ENCODER.encode({k: state.get(k) for k in HISTORY_FIELDS})
    return hashlib.sha256(payload.encode()).hexdigest()


_CIRCUIT_COLS = ("id", "job_guid", "work_order", "extension", "region_id", "title", "contractor",
                 "cycle_type", "total_miles", "miles_planned", "percent_complete", "total_acres",
                 "start_date", "api_modified_date", "api_modified_at", "api_status", "api_version",
                 "job_type", "taken_by", "api_data_json", "user_modified_fields",
                 "parent_circuit_id", "deleted_at")


_INSERT_COLUMNS = ("job_guid", "work_order", "extension", "region_id", "title", "contractor",
                   "cycle_type", "total_miles", "miles_planned", "percent_complete",
                   "total_acres", "start_date", "api_modified_date", "api_modified_at",
                   "api_status", "api_version", "job_type", "taken_by", "api_data_json",
                   "last_synced_at")


def sync_circuits(conn: sa.Connection, records: list[CircuitRecord], *, observed_at: datetime,
                  force: bool = False, run_id: str | None = None) -> CircuitSyncResult:
    """Upsert a listing of circuits by job_guid and record what changed.

    ``observed_at`` is when WorkStudio said this (the run's clock); it dates history versions.
    ``force`` overwrites user-modified SYNCABLE fields and clears their marks.
    """
    result = CircuitSyncResult(processed=len(records))
    if not records:
        return result
    lock(conn, LIVE_WRITES)  # a concurrent sync waits here, then finds these rows unchanged

    names = []
    for rec in records:
        if rec.region_name:
            names.append(rec.region_name)
        else:
            result.issues.append({"type": "row", "code": "missing_region", "severity": "warning",
                                  "message": f"{rec.job_guid} ({rec.work_order}) has no REGION; "
                                             f"filed under {UNKNOWN_REGION!r}"})
            names.append(UNKNOWN_REGION)
    regions, result.regions_created = ensure_regions(conn, names)
    for name in result.regions_created:
        result.issues.append({"type": "region", "code": "region_created", "severity": "info",
                              "message": f"new region {name!r} created"})

    guids = [r.job_guid for r in records]
    existing = {
        row["job_guid"]: row
        for row in conn.execute(
            sa.text(f"SELECT {', '.join(_CIRCUIT_COLS)} FROM circuits WHERE job_guid = ANY(:g)"),
            {"g": guids},
        ).mappings()
    }

    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    api_rows: dict[str, dict[str, Any]] = {}
    for rec in records:
        region_id = regions[region_key(rec.region_name or UNKNOWN_REGION)]
        api = _api_row(rec, region_id, observed_at)
        api_rows[rec.job_guid] = api
        old = existing.get(rec.job_guid)
        if old is None:
            inserts.append(api)
            continue
        marks = {} if force else dict(old["user_modified_fields"] or {})
        new = dict(api)
        for column, mark in _MARK_FOR_COLUMN.items():
            if mark in marks:
                new[column] = old[column]  # a person's edit wins over a normal sync
        changed = {c: new[c] for c in new if c != "job_guid" and new[c] != old[c]}
        if force and old["user_modified_fields"]:
            changed["user_modified_fields"] = None
        if old["deleted_at"] is not None:
            changed["deleted_at"] = None  # listed again: it exists
        if changed:
            result.events.append(payload(
                "circuit_updated", at=observed_at, change="updated", circuit_id=old["id"],
                job_guid=rec.job_guid, work_order=rec.work_order, extension=rec.extension,
                api_status=new["api_status"], fields=sorted(changed), dagster_run_id=run_id))
            changed["id"] = old["id"]
            updates.append(changed)
        else:
            result.unchanged += 1

    # New circuits go in by COPY, with ids taken from the sequence first, so that every
    # circuit's parent is known before any row is written.
    new_ids = reserve_ids(conn, "circuits", len(inserts))
    for row, row_id in zip(inserts, new_ids):
        existing[row["job_guid"]] = {"id": row_id, "user_modified_fields": None, **row}
    ids = {g: existing[g]["id"] for g in guids}
    result.circuit_ids = ids
    parent_ids = _parent_ids(conn, records, ids)
    for guid, parent_id in parent_ids.items():
        api_rows[guid]["parent_circuit_id"] = parent_id
    def new_circuits():
        # Each new circuit's event is built while the COPY streams (the server stores one
        # row while the next is built).
        for row_id, row in zip(new_ids, inserts):
            result.events.append(payload(
                "circuit_updated", at=observed_at, change="created", circuit_id=row_id,
                job_guid=row["job_guid"], work_order=row["work_order"],
                extension=row["extension"], api_status=row["api_status"], fields=[],
                dagster_run_id=run_id))
            yield (row_id, *(row[c] for c in _INSERT_COLUMNS[:-2]),
                   json.dumps(row["api_data_json"]), observed_at, parent_ids[row["job_guid"]])

    copy_rows(conn, "circuits", ("id", *_INSERT_COLUMNS, "parent_circuit_id"), new_circuits())
    result.created = len(inserts)
    created = {row["job_guid"] for row in inserts}

    # One statement per set of changed columns (usually a handful of shapes).
    by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in updates:
        by_shape.setdefault(tuple(c for c in row if c != "id"), []).append(row)
    for columns, rows in by_shape.items():
        update_rows(conn, "circuits", "id", columns, rows, also="updated_at = now()")
    result.updated = len(updates)

    stored = [g for g in dict.fromkeys(guids) if g not in created]  # stored before this sync
    known = [ids[g] for g in stored]
    # last_synced_at: when the circuit was last seen; only written when it moves (the new
    # ones were written with it).
    if known:
        conn.execute(
            sa.text("UPDATE circuits SET last_synced_at = :t WHERE id = ANY(:ids)"
                    " AND last_synced_at IS DISTINCT FROM :t"),
            {"t": observed_at, "ids": known},
        )
        # A stored split's parent may have been listed (or stored) since.
        conn.execute(
            sa.text("UPDATE circuits c SET parent_circuit_id = v.p"
                    " FROM unnest(CAST(:ids AS bigint[]), CAST(:ps AS bigint[])) AS v(id, p)"
                    " WHERE c.id = v.id AND c.parent_circuit_id IS DISTINCT FROM v.p"),
            {"ids": known, "ps": [parent_ids[g] for g in stored]},
        )
    # A new circuit gets its UI state at once; an API change may move the stage.
    result.stage_changes = refresh_stages(
        conn, known, at=observed_at, run_id=run_id,
        new=[NewCircuit(row_id, row["job_guid"], row["work_order"], row["extension"],
                        row["api_status"], row["percent_complete"])
             for row, row_id in zip(inserts, new_ids)])
    result.history_versions = _record_history(conn, ids, api_rows, observed_at, run_id,
                                              stored=known)
    _planners(conn, records, ids, observed_at, result)
    notify(conn, result.events)  # delivered when the sync's transaction commits
    return result


def _parent_ids(conn: sa.Connection, records: list[CircuitRecord], ids: dict[str, int]
                ) -> dict[str, int | None]:
    """job_guid -> parent_circuit_id: a split's parent is the '@' job of its work order (or
    its SS_PJOBGUID), in this listing (``ids``) or stored before; None for main jobs."""
    parents = resolve_parents(records)
    missing = [p for p in parents.values() if p and p not in ids]
    known = dict(ids)
    if missing:
        known.update({r.job_guid: r.id for r in conn.execute(
            sa.text("SELECT id, job_guid FROM circuits WHERE job_guid = ANY(:g)"), {"g": missing})})
    # A parent not in this listing: the '@' job of the same work order already stored.
    orphan_wos = [r.work_order for r in records if r.extension != "@" and not parents.get(r.job_guid)]
    at_jobs = {}
    if orphan_wos:
        at_jobs = {r.work_order: r.id for r in conn.execute(
            sa.text("SELECT id, work_order FROM circuits WHERE work_order = ANY(:w) AND extension = '@'"),
            {"w": orphan_wos})}
    out: dict[str, int | None] = {}
    for rec in records:
        if rec.extension == "@":
            out[rec.job_guid] = None
        else:
            parent_guid = parents.get(rec.job_guid)
            out[rec.job_guid] = (known.get(parent_guid) if parent_guid
                                 else at_jobs.get(rec.work_order))
    return out


_HISTORY_COLUMNS = ("circuit_id", "valid_from", "valid_to", "state_hash", *HISTORY_FIELDS,
                    "dagster_run_id")


def _record_history(conn: sa.Connection, ids: dict[str, int], api_rows: dict[str, dict[str, Any]],
                    observed_at: datetime, run_id: str | None, *, stored: list[int]) -> int:
    """Keep every change of a circuit's API state with its validity period.

    Safe for out-of-order observations (an import or a replay of an earlier day): the new
    version is spliced between the version valid at ``observed_at`` and the next one.
    ``stored``: the ids of the circuits stored before this sync (only they can have history;
    a first sync reads none).
    """
    cids = stored
    current = {} if not cids else {
        r.circuit_id: r for r in conn.execute(
            sa.text("SELECT DISTINCT ON (circuit_id) id, circuit_id, state_hash, valid_from, valid_to"
                    " FROM circuit_history WHERE circuit_id = ANY(:c) AND valid_from <= :t"
                    " ORDER BY circuit_id, valid_from DESC"),
            {"c": cids, "t": observed_at})
    }
    following = {} if not cids else {
        r.circuit_id: r.next_from for r in conn.execute(
            sa.text("SELECT circuit_id, min(valid_from) AS next_from FROM circuit_history"
                    " WHERE circuit_id = ANY(:c) AND valid_from > :t GROUP BY circuit_id"),
            {"c": cids, "t": observed_at})
    }
    deletes: list[int] = []
    closes: list[dict[str, Any]] = []
    inserts: list[tuple] = []  # new versions of circuits stored before
    stored_ids = set(cids)
    for guid, cid in ids.items():
        if cid not in stored_ids:
            continue
        state = {k: api_rows[guid].get(k) for k in HISTORY_FIELDS}
        digest = _state_hash(state)
        cur = current.get(cid)
        if cur is not None and cur.state_hash == digest:
            continue
        if cur is not None and cur.valid_from == observed_at:
            # Same instant observed again with other values: the later observation wins.
            deletes.append(cur.id)
        elif cur is not None:
            closes.append({"valid_to": observed_at, "id": cur.id})
        inserts.append(_history_row(cid, state, digest, observed_at, following.get(cid), run_id))

    def first_versions():
        # Circuits created in this sync: nothing to compare or splice. Built while the COPY
        # streams, so the server stores one while the next is hashed.
        for guid, cid in ids.items():
            if cid not in stored_ids:
                state = {k: api_rows[guid].get(k) for k in HISTORY_FIELDS}
                yield _history_row(cid, state, _state_hash(state), observed_at, None, run_id)

    # Each circuit's old version is deleted or closed before its new one is inserted; the
    # three kinds go in three pipelined batches (one round trip each, not one per row).
    if deletes:
        conn.execute(sa.text("DELETE FROM circuit_history WHERE id = ANY(:ids)"), {"ids": deletes})
    update_rows(conn, "circuit_history", "id", ("valid_to",), closes)
    return copy_rows(conn, "circuit_history", _HISTORY_COLUMNS,
                     itertools.chain(inserts, first_versions()))


def _history_row(cid: int, state: dict[str, Any], digest: str, valid_from: datetime,
                 valid_to: datetime | None, run_id: str | None) -> tuple:
    """A circuit_history row in :data:`_HISTORY_COLUMNS` order."""
    return (cid, valid_from, valid_to, digest, *(state[k] for k in HISTORY_FIELDS), run_id)


def _planners(conn: sa.Connection, records: list[CircuitRecord], ids: dict[str, int],
              observed_at: datetime, result: CircuitSyncResult) -> None:
    """SS_TAKENBY -> circuit_user when a user matches, else unlinked_planners.

    circuit_count counts distinct circuits a planner holds now (recomputed, not incremented:
    the earlier system counted sync appearances).
    """
    taken = {r.job_guid: r.taken_by for r in records if r.taken_by}
    if not taken:
        return
    users = {
        row.key: row.id for row in conn.execute(
            sa.text("SELECT id, lower(ws_username) AS key FROM users WHERE ws_username IS NOT NULL"))
    }
    unlinked: set[str] = set()
    for guid, username in taken.items():
        uid = users.get(username.lower())
        if uid is None:
            unlinked.add(username)
            continue
        linked = conn.execute(
            sa.text("INSERT INTO circuit_user (circuit_id, user_id, assignment_source, assigned_at)"
                    " VALUES (:c, :u, 'api_sync', :t) ON CONFLICT (circuit_id, user_id) DO NOTHING"
                    " RETURNING id"),
            {"c": ids[guid], "u": uid, "t": observed_at},
        ).scalar()
        result.planners_linked += 1 if linked else 0
    for username in sorted(unlinked):
        conn.execute(
            sa.text("INSERT INTO unlinked_planners (ws_username, first_seen_at, last_seen_at)"
                    " VALUES (:u, :t, :t) ON CONFLICT (ws_username) DO UPDATE"
                    " SET last_seen_at = greatest(unlinked_planners.last_seen_at, EXCLUDED.last_seen_at),"
                    " updated_at = now()"
                    " WHERE unlinked_planners.last_seen_at IS DISTINCT FROM"
                    " greatest(unlinked_planners.last_seen_at, EXCLUDED.last_seen_at)"),
            {"u": username, "t": observed_at},
        )
    result.unlinked_planners = sorted(unlinked)
    # One pass over circuits (grouped), not one count per planner.
    conn.execute(sa.text(
        "UPDATE unlinked_planners p SET circuit_count = coalesce(n.cnt, 0), updated_at = now()"
        " FROM unlinked_planners p2 LEFT JOIN (SELECT lower(taken_by) AS key, count(*) AS cnt"
        "   FROM circuits WHERE deleted_at IS NULL AND taken_by IS NOT NULL GROUP BY 1) n"
        "   ON n.key = lower(p2.ws_username)"
        " WHERE p.id = p2.id AND p.circuit_count IS DISTINCT FROM coalesce(n.cnt, 0)"))


def state_as_of(conn: sa.Connection, at: datetime) -> list[sa.Row]:
    """Each circuit's API state valid at instant ``at`` (from circuit_history)."""
    return conn.execute(
        sa.text("SELECT DISTINCT ON (circuit_id) * FROM circuit_history WHERE valid_from <= :t"
                " ORDER BY circuit_id, valid_from DESC"), {"t": at}).all()

