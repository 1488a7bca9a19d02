"""Loading staged rows into the warehouse, in the shapes a live sync of that day stores.

- circuits: ``circuit_history`` gets the file's state of each circuit as a version valid from
  the as-of instant (spliced between the versions before and after it, like any out-of-order
  observation); the ``circuits`` row (current state) is created for a circuit the warehouse
  does not know, and rewritten only when the import is the newest observation of it
  (``as-of instant > circuits.last_synced_at``): a historical file never moves today's state
  back. User-edited fields are kept as a normal sync keeps them.
- planned units: one ``planned_units_snapshots`` capture per circuit, dated at the as-of
  instant, with the same normalised, deduplicated, sorted, hashed unit list as a live capture
  (each row decoded by ``rules.units.unit_from_row`` at staging, duplicates resolved per work
  order by the rule of ``rules.units.normalise_units``), stored only when it differs from the
  circuit's latest capture on or before that instant.

Every row written carries ``data_import_id`` (lineage). A row another source (a live sync,
another file) holds at the very same instant is never overwritten: the import skips it and says
so. The caller runs a load in one transaction, after :func:`remove_rows_of_import` (delete
before insert), so re-importing a file replaces its own rows and nothing else, and a failed
load leaves the warehouse as it was. Rows are read from staging in order and written in
batches: memory holds one batch (circuits) or one work order's units, not the file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from ws_tracker import config
from ws_tracker.rules.circuits import CircuitRecord, region_key, resolve_parents
from ws_tracker.rules.units import PlannedUnit, canonical_json, units_from_json
from ws_tracker.warehouse.circuit_sync import (
    HISTORY_FIELDS,
    UNKNOWN_REGION,
    CircuitSyncResult,
    _api_row,
    _planners,
    _state_hash,
    ensure_regions,
)
from ws_tracker.warehouse.captures import UNIT_SYNC_STATUSES
from ws_tracker.warehouse.locks import LIVE_WRITES, lock
from ws_tracker.warehouse.workflow import refresh_stages

__all__ = ["IMPORT_TIME", "LoadResult", "captured_at_for", "load_circuits", "load_units",
           "remove_rows_of_import"]

NY = ZoneInfo(config.TIMEZONE)
# The instant an as-of date stands for: the evening sync's time in New York, as
# `ws-tracker run --date` uses for a past day. The day's derived partitions read the state at
# the end of the day, so any time inside the day gives the same history; a live sync of the
# same day at 17:30 exactly is kept, and the import skips those rows (reported).
IMPORT_TIME = config.EVENING_SYNC_TIME
CIRCUIT_BATCH = 500
UNIT_BATCH_CIRCUITS = 200
UNIT_BATCH_UNITS = 10_000  # and at most about this many units per write batch
MAX_EXAMPLES = 5

Progress = Callable[[int], None]


def captured_at_for(as_of: date) -> datetime:
    return datetime.combine(as_of, IMPORT_TIME, NY).astimezone(timezone.utc)


@dataclass
class LoadResult:
    records: int = 0
    circuits_created: int = 0
    circuits_updated: int = 0
    circuits_history_only: int = 0
    history_versions: int = 0
    history_unchanged: int = 0
    regions_created: list[str] = field(default_factory=list)
    captures_stored: int = 0
    captures_unchanged: int = 0
    units_loaded: int = 0
    duplicate_rows: int = 0
    skipped_same_instant: list[str] = field(default_factory=list)
    circuits_without_state: list[str] = field(default_factory=list)
    dedupe_issues: list[dict[str, Any]] = field(default_factory=list)

    def metrics(self) -> dict[str, Any]:
        return {k: (len(v) if isinstance(v, list) else v) for k, v in self.__dict__.items()
                if k != "dedupe_issues"}

    def issues(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []

        def add(kind: str, code: str, items: list, message: str) -> None:
            if items:
                out.append({"type": kind, "code": code, "count": len(items),
                            "message": message, "examples": items[:MAX_EXAMPLES]})

        add("info", "region_created", self.regions_created,
            f"{len(self.regions_created)} region(s) not known before were created: "
            + ", ".join(map(repr, self.regions_created[:MAX_EXAMPLES])))
        add("warning", "same_instant_kept", self.skipped_same_instant,
            f"{len(self.skipped_same_instant)} circuit(s) already had a row from another source "
            "at the as-of instant (a live sync or another file); those rows were kept and this "
            "file's left out")
        add("warning", "no_circuit_state", self.circuits_without_state,
            f"{len(self.circuits_without_state)} circuit(s) have no recorded state on or before "
            "the as-of date: their units are stored, but they count in that day's rollups only "
            "once the circuit list of that day is imported")
        if self.duplicate_rows:
            out.append({"type": "warning", "code": "duplicate_rows", "count": self.duplicate_rows,
                        "message": f"{self.duplicate_rows} row(s) repeat a key of a later row "
                                   "(job GUID) or a unit id; the later/fresher row is loaded "
                                   "(see each row's issues in import_staging_rows)",
                        "examples": self.dedupe_issues[:MAX_EXAMPLES]})
        return out


# ----------------------------------------------------------------------------- replace
def remove_rows_of_import(conn: sa.Connection, import_id: int,
                          previous_at: datetime | None) -> dict[str, int]:
    """Delete what an earlier load of this import wrote (delete before insert).

    History versions are unlinked first: the version before each one takes over its validity
    period. Circuits the import created stay (other rows may refer to them); those whose
    current row it wrote last are marked unseen since, so the new load rewrites them."""
    conn.execute(sa.text(
        "UPDATE circuit_history p SET valid_to = r.valid_to FROM circuit_history r"
        " WHERE r.data_import_id = :id AND p.circuit_id = r.circuit_id"
        " AND p.valid_to = r.valid_from AND p.id <> r.id"), {"id": import_id})
    history = conn.execute(sa.text("DELETE FROM circuit_history WHERE data_import_id = :id"),
                           {"id": import_id}).rowcount
    captures = conn.execute(sa.text(
        "DELETE FROM planned_units_snapshots WHERE data_import_id = :id"),
        {"id": import_id}).rowcount
    circuits = 0
    if previous_at is not None:
        circuits = conn.execute(sa.text(
            "UPDATE circuits SET last_synced_at = NULL WHERE data_import_id = :id"
            " AND last_synced_at = :t"), {"id": import_id, "t": previous_at}).rowcount
    return {"history_versions_removed": history, "captures_removed": captures,
            "circuits_reset": circuits}


# ----------------------------------------------------------------------------- circuits
_INSERT_CIRCUIT = sa.text(
    "INSERT INTO circuits (job_guid, work_order, extension, region_id, title, contractor,"
    " cycle_type, total_miles, miles_planned, percent_complete, total_acres, start_date,"
    " api_modified_date, api_modified_at, api_status, api_version, job_type, taken_by,"
    " api_data_json, last_synced_at, data_import_id)"
    " VALUES (:job_guid, :work_order, :extension, :region_id, :title, :contractor,"
    " :cycle_type, :total_miles, :miles_planned, :percent_complete, :total_acres,"
    " :start_date, :api_modified_date, :api_modified_at, :api_status, :api_version,"
    " :job_type, :taken_by, CAST(:api_data_json AS jsonb), :at, :import_id) RETURNING id")

# The import is the newest observation: API-only fields follow it, SYNCABLE fields a person
# edited (user_modified_fields) are kept, as a normal sync keeps them.
_UPDATE_CIRCUIT = sa.text(
    "UPDATE circuits SET work_order = :work_order, extension = :extension,"
    " api_status = :api_status, api_modified_date = :api_modified_date,"
    " api_modified_at = :api_modified_at, api_version = :api_version, job_type = :job_type,"
    " taken_by = :taken_by, api_data_json = CAST(:api_data_json AS jsonb),"
    " title = CASE WHEN user_modified_fields ? 'title' THEN title ELSE :title END,"
    " contractor = CASE WHEN user_modified_fields ? 'contractor' THEN contractor"
    "   ELSE :contractor END,"
    " cycle_type = CASE WHEN user_modified_fields ? 'cycle_type' THEN cycle_type"
    "   ELSE :cycle_type END,"
    " total_miles = CASE WHEN user_modified_fields ? 'total_miles' THEN total_miles"
    "   ELSE :total_miles END,"
    " miles_planned = CASE WHEN user_modified_fields ? 'miles_planned' THEN miles_planned"
    "   ELSE :miles_planned END,"
    " percent_complete = CASE WHEN user_modified_fields ? 'percent_complete'"
    "   THEN percent_complete ELSE :percent_complete END,"
    " start_date = CASE WHEN user_modified_fields ? 'start_date' THEN start_date"
    "   ELSE :start_date END,"
    " region_id = CASE WHEN user_modified_fields ? 'region' THEN region_id ELSE :region_id END,"
    " deleted_at = NULL, last_synced_at = :at, data_import_id = :import_id, updated_at = now()"
    " WHERE id = :id")

_INSERT_HISTORY = sa.text(
    "INSERT INTO circuit_history (circuit_id, valid_from, valid_to, state_hash, job_guid,"
    " work_order, extension, parent_circuit_id, region_id, api_status, title, contractor,"
    " cycle_type, job_type, total_miles, miles_planned, percent_complete, total_acres,"
    " start_date, api_modified_date, api_modified_at, api_version, taken_by, data_import_id)"
    " VALUES (:circuit_id, :valid_from, :valid_to, :state_hash, :job_guid, :work_order,"
    " :extension, :parent_circuit_id, :region_id, :api_status, :title, :contractor,"
    " :cycle_type, :job_type, :total_miles, :miles_planned, :percent_complete, :total_acres,"
    " :start_date, :api_modified_date, :api_modified_at, :api_version, :taken_by, :import_id)")


def _staged_circuits(read: sa.Connection, import_id: int) -> Iterator[CircuitRecord]:
    """The valid circuit rows, the last row of each job GUID, in work-order order."""
    rows = read.execution_options(stream_results=True, max_row_buffer=CIRCUIT_BATCH).execute(
        sa.text("SELECT s.normalised FROM (SELECT DISTINCT ON (row_key) row_key, normalised"
                " FROM import_staging_rows WHERE data_import_id = :id AND valid"
                " ORDER BY row_key, row_number DESC) s"
                " ORDER BY s.normalised->>'work_order', s.row_key"), {"id": import_id})
    for (normalised,) in rows:
        yield CircuitRecord.model_validate(normalised)


def mark_duplicates(conn: sa.Connection, import_id: int, result: LoadResult) -> None:
    """Valid rows whose key a later row repeats are not loaded: say so on each of them."""
    rows = conn.execute(sa.text(
        "UPDATE import_staging_rows r SET issues = r.issues"
        " || jsonb_build_array(jsonb_build_object('row_number', r.row_number,"
        " 'column', 'SS_JOBGUID', 'value', r.row_key,"
        " 'reason', 'duplicate job GUID; row ' || w.row_number || ' (the last) is loaded',"
        " 'severity', 'warning', 'code', 'duplicate_circuit'))"
        " FROM (SELECT DISTINCT ON (row_key) row_key, row_number FROM import_staging_rows"
        "       WHERE data_import_id = :id AND valid ORDER BY row_key, row_number DESC) w"
        " WHERE r.data_import_id = :id AND r.valid AND r.row_key = w.row_key"
        " AND r.row_number <> w.row_number"
        " RETURNING r.row_number, r.row_key, w.row_number AS kept"),
        {"id": import_id}).all()
    result.duplicate_rows += len(rows)
    result.dedupe_issues += [{"row_number": r.row_number, "key": r.row_key,
                              "reason": f"duplicate job GUID; row {r.kept} is loaded"}
                             for r in sorted(rows)[:MAX_EXAMPLES]]


def load_circuits(conn: sa.Connection, read: sa.Connection, import_id: int, at: datetime,
                  *, progress: Progress | None = None) -> LoadResult:
    """Load the staged circuit rows of ``import_id`` as observed at ``at`` (see module doc)."""
    result = LoadResult()
    lock(conn, LIVE_WRITES)
    mark_duplicates(conn, import_id, result)
    batch: list[CircuitRecord] = []
    for record in _staged_circuits(read, import_id):
        if len(batch) >= CIRCUIT_BATCH and record.work_order != batch[-1].work_order:
            _circuit_batch(conn, batch, at, import_id, result)
            if progress:
                progress(len(batch))
            batch = []
        batch.append(record)
    if batch:
        _circuit_batch(conn, batch, at, import_id, result)
        if progress:
            progress(len(batch))
    return result


def _circuit_batch(conn: sa.Connection, records: list[CircuitRecord], at: datetime,
                   import_id: int, result: LoadResult) -> None:
    names = [r.region_name or UNKNOWN_REGION for r in records]
    regions, created = ensure_regions(conn, names)
    result.regions_created += created
    existing = {r.job_guid: r for r in conn.execute(
        sa.text("SELECT id, job_guid, last_synced_at FROM circuits WHERE job_guid = ANY(:g)"),
        {"g": [r.job_guid for r in records]})}
    ids: dict[str, int] = {}
    api_rows: dict[str, dict[str, Any]] = {}
    written: list[CircuitRecord] = []
    updates: list[dict[str, Any]] = []
    for rec in records:
        api = _api_row(rec, regions[region_key(rec.region_name or UNKNOWN_REGION)], at)
        api_rows[rec.job_guid] = api
        old = existing.get(rec.job_guid)
        params = {**api, "api_data_json": json.dumps(api["api_data_json"]), "at": at,
                  "import_id": import_id}
        if old is None:
            ids[rec.job_guid] = conn.execute(_INSERT_CIRCUIT, params).scalar_one()
            result.circuits_created += 1
            written.append(rec)
            continue
        ids[rec.job_guid] = old.id
        if old.last_synced_at is None or at > old.last_synced_at:
            updates.append({**params, "id": old.id})
            written.append(rec)
        else:
            result.circuits_history_only += 1
    if updates:
        conn.execute(_UPDATE_CIRCUIT, updates)
        result.circuits_updated += len(updates)
    _parents(conn, records, ids, api_rows, {r.job_guid for r in written})
    _splice_history(conn, ids, api_rows, at, import_id, result)
    if written:
        written_ids = [ids[r.job_guid] for r in written]
        refresh_stages(conn, written_ids, at=at)
        _planners(conn, written, ids, at, CircuitSyncResult())
    result.records += len(records)


def _parents(conn: sa.Connection, records: list[CircuitRecord], ids: dict[str, int],
             api_rows: dict[str, dict[str, Any]], written: set[str]) -> None:
    """parent_circuit_id of each split (its SS_PJOBGUID, else the '@' job of its work order,
    in this file or already stored), into the history rows; on the circuits row only where the
    import writes the current state."""
    parents = resolve_parents(records)
    wanted = {p for p in parents.values() if p and p not in ids}
    known = dict(ids)
    if wanted:
        known.update({r.job_guid: r.id for r in conn.execute(
            sa.text("SELECT id, job_guid FROM circuits WHERE job_guid = ANY(:g)"),
            {"g": sorted(wanted)})})
    orphans = sorted({r.work_order for r in records if r.is_split and not parents[r.job_guid]})
    at_jobs = {}
    if orphans:
        at_jobs = {r.work_order: r.id for r in conn.execute(
            sa.text("SELECT id, work_order FROM circuits WHERE work_order = ANY(:w)"
                    " AND extension = '@' ORDER BY job_guid DESC"), {"w": orphans})}
    updates = []
    for rec in records:
        parent_id = None
        if rec.is_split:
            guid = parents.get(rec.job_guid)
            parent_id = known.get(guid) if guid else at_jobs.get(rec.work_order)
        api_rows[rec.job_guid]["parent_circuit_id"] = parent_id
        if rec.job_guid in written:
            updates.append({"p": parent_id, "id": ids[rec.job_guid]})
    if updates:
        conn.execute(sa.text("UPDATE circuits SET parent_circuit_id = :p WHERE id = :id"
                             " AND parent_circuit_id IS DISTINCT FROM :p"), updates)


def _splice_history(conn: sa.Connection, ids: dict[str, int], api_rows: dict[str, dict[str, Any]],
                    at: datetime, import_id: int, result: LoadResult) -> None:
    """A version valid from ``at`` for each circuit whose state then differs from the version
    in force; the version before it ends at ``at``, ours ends where the next one starts.
    Never deletes or overwrites a version from another source."""
    cids = list(ids.values())
    current = {r.circuit_id: r for r in conn.execute(
        sa.text("SELECT DISTINCT ON (circuit_id) id, circuit_id, state_hash, valid_from"
                " FROM circuit_history WHERE circuit_id = ANY(:c) AND valid_from <= :t"
                " ORDER BY circuit_id, valid_from DESC"), {"c": cids, "t": at})}
    following = {r.circuit_id: r.next_from for r in conn.execute(
        sa.text("SELECT circuit_id, min(valid_from) AS next_from FROM circuit_history"
                " WHERE circuit_id = ANY(:c) AND valid_from > :t GROUP BY circuit_id"),
        {"c": cids, "t": at})}
    ends, inserts = [], []
    for guid, cid in ids.items():
        state = {k: api_rows[guid].get(k) for k in HISTORY_FIELDS}
        digest = _state_hash(state)
        cur = current.get(cid)
        if cur is not None and cur.valid_from == at:
            if cur.state_hash != digest:
                result.skipped_same_instant.append(f"{state['work_order']}/{state['extension']}")
            else:
                result.history_unchanged += 1
            continue
        if cur is not None and cur.state_hash == digest:
            result.history_unchanged += 1
            continue
        if cur is not None:
            ends.append({"t": at, "id": cur.id})
        inserts.append({**state, "circuit_id": cid, "state_hash": digest, "valid_from": at,
                        "valid_to": following.get(cid), "import_id": import_id})
    if ends:
        conn.execute(sa.text("UPDATE circuit_history SET valid_to = :t WHERE id = :id"), ends)
    if inserts:
        conn.execute(_INSERT_HISTORY, inserts)
    result.history_versions += len(inserts)


# ----------------------------------------------------------------------------- planned units
def _staged_work_orders(read: sa.Connection, import_id: int
                        ) -> Iterator[tuple[str, list[int], list[dict[str, Any]]]]:
    """(work order, row numbers, normalised units) of the valid unit rows, one work order at a
    time, in file order within it."""
    rows = read.execution_options(stream_results=True, max_row_buffer=2000).execute(
        sa.text("SELECT row_key, row_number, normalised FROM import_staging_rows"
                " WHERE data_import_id = :id AND valid ORDER BY row_key, row_number"),
        {"id": import_id})
    key, numbers, units = None, [], []
    for row_key, number, unit in rows:
        if row_key != key and units:
            yield key, numbers, units
            numbers, units = [], []
        key = row_key
        numbers.append(number)
        units.append(unit)
    if units:
        yield key, numbers, units


def _freshness(unit: PlannedUnit) -> tuple[date, date]:
    return (unit.assessed_date or date.min, unit.audit_date or date.min)


def dedupe_units(units: list[PlannedUnit], numbers: list[int], work_order: str,
                 result: LoadResult) -> dict[str, list[PlannedUnit]]:
    """One work order's units -> {extension: units sorted by id}, duplicates resolved as
    ``rules.units.normalise_units`` resolves them (identical copies collapse; of conflicting
    ones the latest by assessed/audit date wins, the later row on a tie). Staging already
    holds each row decoded by ``unit_from_row``: decoding it again here would double the cost
    of a large file, so the rule is applied to the decoded units."""
    kept: dict[int, PlannedUnit] = {}
    for unit, number in zip(units, numbers):
        previous = kept.get(unit.unit_id)
        if previous is None:
            kept[unit.unit_id] = unit
            continue
        result.duplicate_rows += 1
        if previous == unit:
            reason = f"identical duplicate of unit {unit.unit_id}; collapsed"
        else:
            winner = unit if _freshness(unit) >= _freshness(previous) else previous
            kept[unit.unit_id] = winner
            differing = sorted(k for k, v in unit.model_dump().items()
                               if getattr(previous, k) != v)
            reason = (f"conflicting duplicate of unit {unit.unit_id} (fields {differing}); "
                      f"kept the {'later' if winner is unit else 'earlier'} row")
        if len(result.dedupe_issues) < MAX_EXAMPLES:
            result.dedupe_issues.append({"row_number": number, "work_order": work_order,
                                         "reason": reason})
    grouped: dict[str, list[PlannedUnit]] = {}
    for unit in sorted(kept.values(), key=lambda u: u.unit_id):
        grouped.setdefault(unit.extension, []).append(unit)
    return grouped


def load_units(conn: sa.Connection, read: sa.Connection, import_id: int, at: datetime,
               *, progress: Progress | None = None) -> LoadResult:
    """Load the staged unit rows of ``import_id`` as captures taken at ``at`` (module doc)."""
    result = LoadResult()
    lock(conn, LIVE_WRITES)
    circuits = {(r.work_order, r.extension or "@"): r.id for r in conn.execute(
        sa.text("SELECT id, work_order, extension FROM circuits"))}
    labels: dict[int, str] = {cid: f"{wo}/{ext}" for (wo, ext), cid in circuits.items()}
    jobs_of: dict[str, list[tuple[str, int]]] = {}
    for (wo, ext), cid in circuits.items():
        jobs_of.setdefault(wo, []).append((ext, cid))
    batch: dict[int, list[PlannedUnit]] = {}
    batch_units = 0
    stored_ids: list[int] = []
    for work_order, numbers, normalised in _staged_work_orders(read, import_id):
        grouped = dedupe_units(units_from_json(normalised), numbers, work_order, result)
        for extension, units in grouped.items():
            cid = circuits.get((work_order, extension))
            if cid is None:  # validated at staging; a circuit cannot vanish in between
                raise LookupError(f"no circuit {work_order}/{extension} for staged units")
            batch[cid] = units
            batch_units += len(units)
            result.records += len(units)
        # The export lists a work order's jobs together, as the live view does: a job of it
        # with no rows has no units that day (a live sync stores that as an empty capture,
        # for the statuses it captures; see _capture_batch).
        for extension, cid in jobs_of.get(work_order, []):
            if extension not in grouped:
                batch[cid] = []
        if progress:
            progress(len(normalised))
        if len(batch) >= UNIT_BATCH_CIRCUITS or batch_units >= UNIT_BATCH_UNITS:
            stored_ids += _capture_batch(conn, batch, labels, at, import_id, result)
            batch, batch_units = {}, 0
    if batch:
        stored_ids += _capture_batch(conn, batch, labels, at, import_id, result)
    # New units may start or end a wait for permissions, as after a live capture.
    refresh_stages(conn, stored_ids, at=at)
    return result


_INSERT_CAPTURE = sa.text(
    "INSERT INTO planned_units_snapshots (circuit_id, work_order, extension, snapshot_trigger,"
    " content_hash, unit_count, api_status, percent_complete, captured_at, raw_json,"
    " data_import_id) VALUES (:c, :wo, :ext, 'import', :h, :n, :st, :pc, :t,"
    " CAST(:raw AS jsonb), :import_id) ON CONFLICT (circuit_id, captured_at) DO NOTHING")


def _capture_batch(conn: sa.Connection, captures: dict[int, list[PlannedUnit]],
                   labels: dict[int, str], at: datetime, import_id: int,
                   result: LoadResult) -> list[int]:
    ids = list(captures)
    latest = {r.circuit_id: r for r in conn.execute(
        sa.text("SELECT DISTINCT ON (circuit_id) circuit_id, content_hash, captured_at"
                " FROM planned_units_snapshots WHERE circuit_id = ANY(:c) AND captured_at <= :t"
                " ORDER BY circuit_id, captured_at DESC"), {"c": ids, "t": at})}
    state = {r.circuit_id: r for r in conn.execute(
        sa.text("SELECT DISTINCT ON (circuit_id) circuit_id, work_order, extension, api_status,"
                " percent_complete FROM circuit_history WHERE circuit_id = ANY(:c)"
                " AND valid_from <= :t ORDER BY circuit_id, valid_from DESC"),
        {"c": ids, "t": at})}
    inserts, stored = [], []
    for cid, units in captures.items():
        payload, digest = canonical_json(units)  # the live path's encoding: one for both
        prev = latest.get(cid)
        if prev is not None and prev.captured_at == at:
            if prev.content_hash != digest:
                result.skipped_same_instant.append(labels[cid])
            else:
                result.captures_unchanged += 1
            continue
        if prev is not None and prev.content_hash == digest:
            result.captures_unchanged += 1  # the raw layer stores a capture only on change
            continue
        st = state.get(cid)
        if not units and (st is None or st.api_status not in UNIT_SYNC_STATUSES):
            continue  # no rows, and not a job a live sync would have captured that day
        if st is None:
            result.circuits_without_state.append(labels[cid])
        wo, _, ext = labels[cid].partition("/")
        inserts.append({"c": cid, "wo": wo, "ext": ext, "h": digest, "n": len(units),
                        "st": st.api_status if st else None,
                        "pc": st.percent_complete if st else None, "t": at,
                        "raw": payload,
                        "import_id": import_id})
        stored.append(cid)
        result.units_loaded += len(units)
    if inserts:
        conn.execute(_INSERT_CAPTURE, inserts)
    result.captures_stored += len(inserts)
    return stored
