"""sync_logs: one row per sync, started -> completed | warning | failed.

The row is written in its own short transactions (never inside the data transaction) so a
failed run still leaves a failed log. Messages pass through ``scrub`` so no secret reaches it.
"""

from __future__ import annotations

import json
import logging
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from ws_tracker.warehouse.events import notify, payload

MAX_ISSUES_IN_SUMMARY = 200


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _iso(dt: datetime | None) -> str | None:
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if dt else None


@dataclass
class SyncLog:
    engine: sa.Engine
    sync_type: str
    sync_trigger: str
    api_status_filter: str | None = None
    run_id: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    id: int | None = None
    started_at: datetime | None = None
    events: list[dict[str, Any]] = field(default_factory=list)  # NOTIFYed sync_* events

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "***")
        return text

    def start(self) -> "SyncLog":
        self.started_at = utcnow()
        summary = {"stage": "started", "started_at": _iso(self.started_at), "metrics": {},
                   "issues": [], "error": None}
        with self.engine.begin() as conn:
            self.id = conn.execute(
                sa.text(
                    "INSERT INTO sync_logs (sync_type, sync_status, sync_trigger, api_status_filter,"
                    " started_at, context_json, summary_json, dagster_run_id)"
                    " VALUES (:t, 'started', :tr, :f, :s, CAST(:ctx AS jsonb), CAST(:sum AS jsonb), :run)"
                    " RETURNING id"
                ),
                {"t": self.sync_type, "tr": self.sync_trigger, "f": self.api_status_filter,
                 "s": self.started_at, "ctx": json.dumps(self.context, default=str),
                 "sum": json.dumps(summary), "run": self.run_id},
            ).scalar_one()
            self.events.append(self._event("sync_started", self.started_at))
            notify(conn, self.events[-1:])
        return self

    def _event(self, kind: str, at: datetime, **fields) -> dict[str, Any]:
        return payload(kind, at=at, sync_log_id=self.id, sync_type=self.sync_type,
                       sync_trigger=self.sync_trigger, api_status_filter=self.api_status_filter,
                       dagster_run_id=self.run_id, **fields)

    def _finish(self, status: str, counts: dict[str, int], issues: list[dict], error: dict | None,
                message: str | None) -> None:
        completed = utcnow()
        metrics = dict(counts)
        summary = {
            "stage": status,
            "started_at": _iso(self.started_at),
            "completed_at": _iso(completed),
            "metrics": metrics,
            "issues": issues[:MAX_ISSUES_IN_SUMMARY],
            "issues_total": len(issues),
            "error": error,
        }
        columns = {k: counts.get(k) for k in
                   ("circuits_processed", "circuits_created", "circuits_updated", "aggregates_created")}
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE sync_logs SET sync_status = :st, completed_at = :c,"
                    " duration_seconds = :d, circuits_processed = :cp, circuits_created = :cc,"
                    " circuits_updated = :cu, aggregates_created = :ac, error_message = :em,"
                    " error_details = CAST(:ed AS jsonb), summary_json = CAST(:sum AS jsonb),"
                    " updated_at = now() WHERE id = :id"
                ),
                {"st": status, "c": completed,
                 "d": int(round((completed - self.started_at).total_seconds())),
                 "cp": columns["circuits_processed"], "cc": columns["circuits_created"],
                 "cu": columns["circuits_updated"], "ac": columns["aggregates_created"],
                 "em": self.scrub(message) if message else None,
                 "ed": self.scrub(json.dumps(error or ({"issues": issues[:MAX_ISSUES_IN_SUMMARY]}
                                                      if issues else None), default=str)),
                 "sum": self.scrub(json.dumps(summary, default=str)), "id": self.id},
            )
            if status == "failed":
                event = self._event("sync_failed", completed, status=status,
                                    error_code=(error or {}).get("code"),
                                    message=self.scrub(message or ""))
            else:
                event = self._event("sync_completed", completed, status=status, metrics=metrics,
                                    issues_total=len(issues),
                                    message=self.scrub(message) if message else None)
            self.events.append(event)
            notify(conn, [event])

    def complete(self, counts: dict[str, int], issues: list[dict] | None = None,
                 failures: list[dict] | None = None) -> str:
        """Completed, or warning when some items failed (listed) or rows had errors."""
        issues = list(issues or [])
        failures = list(failures or [])
        if failures:
            message = f"{len(failures)} item(s) failed: " + "; ".join(
                f"{f.get('item')}: {f.get('message')}" for f in failures[:5])
            self._finish("warning", counts, failures + issues, None, message)
            return "warning"
        if any(i.get("severity") == "error" for i in issues):
            n = sum(1 for i in issues if i.get("severity") == "error")
            self._finish("warning", counts, issues, None, f"{n} row(s) rejected; see summary_json")
            return "warning"
        self._finish("completed", counts, issues, None, None)
        return "completed"

    def fail(self, exc: BaseException, counts: dict[str, int] | None = None) -> None:
        """Record the failure. Never raises: the original error is what the run must report
        (when the database itself is gone, the sync_log_sweeper sensor closes the log later)."""
        message = f"{type(exc).__name__}: {exc}"
        error = {"code": type(exc).__name__, "message": self.scrub(str(exc)),
                 "trace_id": self.run_id,
                 "traceback": self.scrub("".join(traceback.format_exception(exc))[-4000:])}
        try:
            self._finish("failed", counts or {}, [], error, message)
        except Exception as log_exc:  # noqa: BLE001 - reported, then the original goes on
            logging.getLogger(__name__).warning(
                "could not record sync log %s as failed: %s", self.id, type(log_exc).__name__)


def close_orphaned(engine: sa.Engine, run_state, *, stale_after_hours: float = 6.0,
                   run_id: str | None = None) -> list[int]:
    """Close sync logs left in "started" by a run that died (killed process, lost database).

    ``run_state(run_id)`` returns the run's status name ("STARTED", "FAILURE", ...) or None when
    the run is unknown. A log is closed as failed when its run has ended, or when it has been
    "started" for longer than ``stale_after_hours`` (an in-process run whose process was killed
    never reaches a final status). ``run_id`` limits the sweep to that run's logs (the
    run-status sensor, as soon as a run fails). Returns the ids closed.
    """
    now = utcnow()
    closed: list[int] = []
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT id, dagster_run_id, started_at FROM sync_logs WHERE sync_status = 'started'"
            " AND (CAST(:run AS varchar) IS NULL OR dagster_run_id = :run) ORDER BY id"),
            {"run": run_id}).all()
    for row in rows:
        state = run_state(row.dagster_run_id) if row.dagster_run_id else None
        age_hours = (now - row.started_at).total_seconds() / 3600 if row.started_at else 1e9
        if state in ("SUCCESS", "FAILURE", "CANCELED"):
            reason = f"the Dagster run ended ({state}) before this sync recorded its outcome"
        elif age_hours >= stale_after_hours:
            reason = (f"no outcome recorded {age_hours:.1f} h after the start; the run "
                      f"is {state or 'unknown'} (process killed or database lost?)")
        else:
            continue
        error = {"code": "RunDied", "message": reason, "trace_id": row.dagster_run_id}
        with engine.begin() as conn:
            updated = conn.execute(sa.text(
                "UPDATE sync_logs SET sync_status = 'failed', completed_at = :c,"
                " duration_seconds = CAST(EXTRACT(EPOCH FROM (:c - started_at)) AS integer),"
                " error_message = :m, error_details = CAST(:e AS jsonb),"
                " summary_json = coalesce(summary_json, '{}'::jsonb)"
                "   || jsonb_build_object('stage', 'failed', 'completed_at', CAST(:ci AS text),"
                "                         'error', CAST(:e AS jsonb)),"
                " updated_at = now() WHERE id = :id AND sync_status = 'started'"),
                {"c": now, "ci": _iso(now), "m": reason, "e": json.dumps(error), "id": row.id},
            ).rowcount
            if updated:
                notify(conn, [payload("sync_failed", at=now, sync_log_id=row.id,
                                      dagster_run_id=row.dagster_run_id, status="failed",
                                      error_code="RunDied", message=reason)])
        if updated:
            closed.append(row.id)
    return closed
