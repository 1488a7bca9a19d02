"""audit_log: one row per change a person makes to what the project owns (migration 0008).

People, planner links, credentials (never their values), circuit exclusions and analyst
access. Each row says who (``actor_user_id`` and ``actor``: the --by email, else the database
role that made the change), when, what (``action``, ``entity_type``, ``entity_id``,
``entity_key``), and the state ``before`` and ``after`` as JSON. Written in the caller's
transaction, so a change and its audit row land together or not at all.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa


def _json(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, sort_keys=True,
                      default=lambda v: v.isoformat() if isinstance(v, (date, datetime)) else str(v))


def record(conn: sa.Connection, *, action: str, entity_type: str, entity_id: int | None = None,
           entity_key: str | None = None, before: Any = None, after: Any = None,
           actor_user_id: int | None = None, actor: str | None = None,
           at: datetime | None = None) -> int:
    """Append one audit row; returns its id. Never pass a secret in ``before``/``after``."""
    return conn.execute(sa.text(
        "INSERT INTO audit_log (occurred_at, actor_user_id, actor, action, entity_type, entity_id,"
        " entity_key, before, after) VALUES (coalesce(CAST(:at AS timestamptz), now()), :uid,"
        " coalesce(:actor, CAST(current_user AS varchar)), :action, :etype, :eid, :ekey,"
        " CAST(:before AS jsonb), CAST(:after AS jsonb)) RETURNING id"),
        {"at": at, "uid": actor_user_id, "actor": actor, "action": action, "etype": entity_type,
         "eid": entity_id, "ekey": entity_key, "before": _json(before), "after": _json(after)},
    ).scalar_one()
