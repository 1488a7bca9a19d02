"""People (users): lookups shared by every command that records who did something."""

from __future__ import annotations

import sqlalchemy as sa


class UnknownEmailError(LookupError):
    def __init__(self, email: str, what: str = "") -> None:
        self.email = email
        super().__init__(f"no user with email {email!r}{what}; add one with "
                         "`ws-tracker users add EMAIL --name NAME`")


def user_id_by_email(conn: sa.Connection, email: str) -> int | None:
    """The users.id of ``email`` (case and surrounding spaces ignored), or None."""
    return conn.execute(sa.text("SELECT id FROM users WHERE lower(email) = lower(:e)"
                                " ORDER BY (email = :e) DESC, id LIMIT 1"),
                        {"e": email.strip()}).scalar()


def require_user(conn: sa.Connection, email: str, what: str = "") -> int:
    """The users.id of ``email``; UnknownEmailError (naming it) when there is none."""
    uid = user_id_by_email(conn, email)
    if uid is None:
        raise UnknownEmailError(email.strip(), what)
    return uid
