"""Events: PostgreSQL NOTIFY on channel ``ws_tracker_events`` with a JSON payload.

Any client can ``LISTEN ws_tracker_events`` and react without polling. A notification sent
inside a transaction is delivered when (and only if) that transaction commits, so listeners
never hear of rows that were rolled back. The same events are also logged as Dagster events
(AssetObservation with metadata) by the assets; see ``ws_tracker.pipeline.events``.

Every payload is a JSON object with at least ``event`` (one of EVENT_KINDS), ``version`` (1)
and ``at`` (UTC ISO-8601). The per-kind fields are listed in README.md ("Events").
"""

from __future__ import annotations

import json
from functools import lru_cache
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

CHANNEL = "ws_tracker_events"
PAYLOAD_VERSION = 1
EVENT_KINDS = ("sync_started", "sync_completed", "sync_failed", "planned_units_synced",
               "workflow_changed", "circuit_updated")
# PostgreSQL refuses a payload of 8000 bytes or more; ours stay far below (no unit lists),
# and a text field that would push one over is cut rather than losing the event.
MAX_PAYLOAD_BYTES = 7900
# One encoder for every payload: json.dumps with options builds a new encoder per call, and a
# large first sync encodes ~10,000 payloads.
_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"))


@lru_cache(maxsize=256)
def _utc_text(value: datetime) -> str:
    # Cached: a sync stamps thousands of events with the same instant (its clock).
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def payload(kind: str, at: datetime | None = None, **fields: Any) -> dict[str, Any]:
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {kind!r}; expected one of {EVENT_KINDS}")
    out = {"event": kind, "version": PAYLOAD_VERSION,
           "at": _utc_text(at or datetime.now(timezone.utc))}
    for k, v in fields.items():
        out[k] = _utc_text(v) if isinstance(v, datetime) else v
    return out


def encode(event: dict[str, Any]) -> str:
    text = _ENCODER.encode(event)
    if len(text.encode()) < MAX_PAYLOAD_BYTES:
        return text
    cut = dict(event)
    for key in ("message", "error_message"):
        if isinstance(cut.get(key), str):
            cut[key] = cut[key][:500] + "..."
    cut["truncated"] = True
    text = _ENCODER.encode(cut)
    if len(text.encode()) >= MAX_PAYLOAD_BYTES:
        raise ValueError(f"{event['event']} payload is {len(text.encode())} bytes; NOTIFY allows "
                         f"fewer than 8000")
    return text


def notify(conn: sa.Connection, events: list[dict[str, Any]]) -> None:
    """Queue the events on ``conn``'s transaction (delivered at its commit)."""
    if events:
        # One JSON array of the payloads, not a text[] parameter: psycopg quotes every element
        # of a text array in Python (a regex per element), which for the ~10,000 payloads of a
        # large first sync cost more than everything else the sync sends. The array is the
        # encoded payloads joined, not encoded again: `json` (unlike jsonb) keeps each
        # element's text as written, so every notification carries exactly encode()'s text.
        conn.execute(sa.text("SELECT pg_notify(:channel, p::text)"
                             " FROM json_array_elements(CAST(:ps AS json))"
                             " WITH ORDINALITY AS t(p, n) ORDER BY n"),
                     {"channel": CHANNEL, "ps": "[" + ",".join(encode(e) for e in events) + "]"})
