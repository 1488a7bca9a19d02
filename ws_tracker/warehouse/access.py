"""Region-scoped PostgreSQL logins for analysts (the RLS model of migration 0008).

``grant`` creates (or updates) a LOGIN role, makes it a member of ``ws_tracker_analyst``
(SELECT on every table and view, nothing else) and of ``ws_tracker_region_scoped`` (marks it
region-limited in every database of the server), and records ``analyst_logins(login,
user_id)`` in this database. Row-level security then limits every per-circuit, per-planner
and per-region table and view to the user's regions (user_regions); a user with no region
sees none of those rows, a user with ``is_admin`` sees all.

On PostgreSQL 16+ the memberships are granted WITH SET FALSE, so the login cannot
``SET ROLE ws_tracker_analyst`` to step out of its limits (older servers: plain GRANT).

``revoke`` removes the mapping, takes the login out of ws_tracker_analyst (no SELECT left
anywhere) and makes it NOLOGIN. The role itself stays (it is cluster-wide; a DBA may DROP it):
a later ``grant`` re-enables it. Roles are cluster-wide, so a login belongs to one analyst
on the whole server; revoking it here revokes it everywhere.

Role names cannot be bound parameters: they are composed with psycopg.sql.Identifier (and
validated against LOGIN_PATTERN first); the optional password is sent as a SCRAM-SHA-256
verifier computed by libpq on this side, so the plaintext never reaches the server, its log
or any table. Creating roles needs CREATEROLE (the embedded server's postgres has it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from psycopg import sql

from ws_tracker.warehouse import audit
from ws_tracker.warehouse.users import user_id_by_email

ANALYST = "ws_tracker_analyst"
SCOPED = "ws_tracker_region_scoped"
LOGIN_PATTERN = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_RESERVED_PREFIXES = ("pg_", "ws_tracker_")


class AccessError(ValueError):
    """An access command was refused; the message names what was wrong."""


@dataclass
class GrantResult:
    login: str
    user_id: int
    email: str
    created_role: bool
    regions: list[str]
    is_admin: bool


@dataclass
class AccessRow:
    login: str
    email: str
    name: str
    is_admin: bool
    regions: list[str]
    can_login: bool
    in_group: bool


def check_login(login: str) -> str:
    text = (login or "").strip()
    if not LOGIN_PATTERN.match(text):
        raise AccessError(f"login name invalid: {login!r} (use 1-63 lower-case letters, digits "
                          "and underscores, not starting with a digit)")
    if text.startswith(_RESERVED_PREFIXES) or text in ("postgres", "public"):
        raise AccessError(f"login name invalid: {login!r} is reserved")
    return text


def _raw(conn: sa.Connection):
    return conn.connection.driver_connection  # the psycopg connection


def _ddl(conn: sa.Connection, statement: sql.Composable) -> None:
    conn.exec_driver_sql(statement.as_string(_raw(conn)),
                         execution_options={"no_parameters": True})


def _user(conn: sa.Connection, email: str):
    row = conn.execute(sa.text(
        "SELECT id, email, name, is_admin FROM users WHERE lower(email) = lower(:e)"
        " ORDER BY (email = :e) DESC, id LIMIT 1 FOR UPDATE"), {"e": email.strip()}).one_or_none()
    if row is None:
        raise AccessError(f"no user with email {email!r}; add one with `ws-tracker users add`")
    return row


def _actor(conn: sa.Connection, by_email: str | None) -> tuple[int | None, str | None]:
    if not by_email:
        return None, None
    uid = user_id_by_email(conn, by_email)
    if uid is None:
        raise AccessError(f"no user with email {by_email!r} (--by names an existing user)")
    return uid, by_email.strip()


def _regions(conn: sa.Connection, user_id: int) -> list[str]:
    return list(conn.execute(sa.text(
        "SELECT r.name FROM user_regions ur JOIN regions r ON r.id = ur.region_id"
        " WHERE ur.user_id = :u ORDER BY r.sort_order, r.name"), {"u": user_id}).scalars())


def grant(conn: sa.Connection, email: str, login: str, *, admin: bool | None = None,
          password: str | None = None, by_email: str | None = None,
          at: datetime) -> GrantResult:
    """Create or update ``login`` as a region-limited analyst login of user ``email``."""
    login = check_login(login)
    actor_id, actor = _actor(conn, by_email)
    user = _user(conn, email)
    mapped = conn.execute(sa.text(
        "SELECT a.user_id, u.email FROM analyst_logins a JOIN users u ON u.id = a.user_id"
        " WHERE a.login = :l"), {"l": login}).one_or_none()
    if mapped is not None and mapped.user_id != user.id:
        raise AccessError(f"login {login!r} is granted to {mapped.email!r}; revoke it first")
    role = conn.execute(sa.text(
        "SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls"
        " AS privileged, rolcanlogin, pg_has_role(oid, :s, 'MEMBER') AS scoped"
        " FROM pg_roles WHERE rolname = :l"), {"l": login, "s": SCOPED}).one_or_none()
    if role is not None and role.privileged:
        raise AccessError(f"login name invalid: role {login!r} exists with administrative "
                          "privileges; choose another --login")
    if role is not None and not role.scoped and mapped is None:
        raise AccessError(f"login name invalid: role {login!r} already exists and is not a "
                          "ws-tracker analyst login; choose another --login")
    before = None
    if mapped is not None:
        before = {"login": login, "can_login": role.rolcanlogin if role else False,
                  "is_admin": user.is_admin}
    name = sql.Identifier(login)
    try:
        if role is None:
            _ddl(conn, sql.SQL("CREATE ROLE {} LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE"
                               " NOREPLICATION NOBYPASSRLS").format(name))
        else:
            _ddl(conn, sql.SQL("ALTER ROLE {} LOGIN INHERIT").format(name))
        if password:
            verifier = _raw(conn).pgconn.encrypt_password(
                password.encode("utf-8"), login.encode("utf-8"), b"scram-sha-256")
            _ddl(conn, sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                name, sql.Literal(verifier.decode("ascii"))))
        modern = int(conn.execute(sa.text("SHOW server_version_num")).scalar_one()) >= 160000
        for group, inherit in ((ANALYST, True), (SCOPED, False)):
            if modern:
                _ddl(conn, sql.SQL("GRANT {} TO {} WITH INHERIT {}, SET FALSE").format(
                    sql.Identifier(group), name, sql.SQL("TRUE" if inherit else "FALSE")))
            else:
                _ddl(conn, sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), name))
    except sa.exc.ProgrammingError as exc:
        if getattr(exc.orig, "sqlstate", None) == "42501":
            raise AccessError("the warehouse role may not create or alter roles (it needs "
                              "CREATEROLE); ask a DBA to run this command") from None
        raise
    conn.execute(sa.text(
        "INSERT INTO analyst_logins (login, user_id, granted_by, granted_at, created_at, updated_at)"
        " VALUES (:l, :u, :b, :t, :t, :t) ON CONFLICT (login) DO UPDATE SET"
        " granted_by = EXCLUDED.granted_by, granted_at = EXCLUDED.granted_at,"
        " updated_at = EXCLUDED.updated_at"),
        {"l": login, "u": user.id, "b": actor_id, "t": at})
    is_admin = user.is_admin
    if admin is not None and admin != user.is_admin:
        conn.execute(sa.text("UPDATE users SET is_admin = :a, updated_at = :t WHERE id = :u"),
                     {"a": admin, "t": at, "u": user.id})
        is_admin = admin
    regions = _regions(conn, user.id)
    audit.record(conn, action="access.grant", entity_type="user", entity_id=user.id,
                 entity_key=login, before=before,
                 after={"login": login, "can_login": True, "is_admin": is_admin,
                        "regions": regions, "password_set": bool(password)},
                 actor_user_id=actor_id, actor=actor, at=at)
    return GrantResult(login, user.id, user.email, role is None, regions, is_admin)


def revoke(conn: sa.Connection, email: str, login: str | None = None, *,
           by_email: str | None = None, at: datetime) -> list[str]:
    """Revoke the analyst login(s) of ``email`` (or just ``login``); returns the logins."""
    actor_id, actor = _actor(conn, by_email)
    user = _user(conn, email)
    logins = list(conn.execute(sa.text(
        "SELECT login FROM analyst_logins WHERE user_id = :u ORDER BY login FOR UPDATE"),
        {"u": user.id}).scalars())
    if login is not None:
        login = check_login(login)
        if login not in logins:
            raise AccessError(f"login {login!r} is not an analyst login of {user.email!r}"
                              + (f" (it has: {', '.join(logins)})" if logins else ""))
        logins = [login]
    if not logins:
        raise AccessError(f"user {user.email!r} has no analyst login to revoke")
    for name in logins:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :l"),
                              {"l": name}).scalar()
        if exists:
            ident = sql.Identifier(name)
            if conn.execute(sa.text("SELECT pg_has_role(:l, :g, 'MEMBER')"),
                            {"l": name, "g": ANALYST}).scalar():
                _ddl(conn, sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(ANALYST), ident))
            _ddl(conn, sql.SQL("ALTER ROLE {} NOLOGIN").format(ident))
        conn.execute(sa.text("DELETE FROM analyst_logins WHERE login = :l"), {"l": name})
        audit.record(conn, action="access.revoke", entity_type="user", entity_id=user.id,
                     entity_key=name, before={"login": name, "can_login": bool(exists)},
                     after={"login": name, "can_login": False, "in_group": False},
                     actor_user_id=actor_id, actor=actor, at=at)
    return logins


def list_access(conn: sa.Connection) -> list[AccessRow]:
    rows = conn.execute(sa.text(
        "SELECT a.login, u.email, u.name, u.is_admin,"
        " coalesce((SELECT array_agg(r.name ORDER BY r.sort_order, r.name) FROM user_regions ur"
        "   JOIN regions r ON r.id = ur.region_id WHERE ur.user_id = u.id), '{}') AS regions,"
        " coalesce(pr.rolcanlogin, false) AS can_login,"
        " CASE WHEN pr.oid IS NULL THEN false ELSE pg_has_role(pr.oid, :g, 'MEMBER') END AS in_group"
        " FROM analyst_logins a JOIN users u ON u.id = a.user_id"
        " LEFT JOIN pg_roles pr ON pr.rolname = a.login ORDER BY a.login"), {"g": ANALYST}).all()
    return [AccessRow(r.login, r.email, r.name, r.is_admin, list(r.regions), r.can_login,
                      r.in_group) for r in rows]
