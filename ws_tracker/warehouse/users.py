"""People (users): lookups shared by every command that records who did something."""

from __future__ import annotations

import sqlalchemy as sa


def user_id_by_email(conn: sa.Connection, email: str) -> int | None:
    """The users.id of ``email`` (case and surrounding spaces ignored), or None."""
    return conn.execute(sa.text("SELECT id FROM users WHERE lower(email) = lower(:e)"),
                        {"e": email.strip()}).scalar()
