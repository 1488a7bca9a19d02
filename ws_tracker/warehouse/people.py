"""People: users, their regions, and the link between a user and a WorkStudio planner.

WorkStudio knows planners only as ``DOMAIN\\user`` (SS_TAKENBY on a circuit, the forester
username on a unit); the project decides who they are. Linking a planner to a user
(``ws-tracker users add ... --ws-username`` or ``ws-tracker users link-planner``):

- sets ``users.ws_username`` / ``is_ws_linked`` / ``ws_linked_at``; from then on every sync
  links the circuits that planner takes (circuit_sync._planners) and every planner rollup
  gives the planner's rows this ``user_id`` (rollups.user_keys matches forester usernames);
- marks the ``unlinked_planners`` row (``linked_to_user_id``, ``linked_at``) when the sync had
  recorded one;
- creates the ``circuit_user`` rows (assignment_source api_sync, as a sync would) for the
  circuits the planner holds now (not deleted);
- re-keys the planner aggregates already stored: daily and weekly rows without a user whose
  planner is this one (the user's name, the username itself, or a forester name the
  planner's units carry in the circuits' latest captures) get the user's id, which is what a
  rebuild of those days would give.

Every change writes an audit_log row in the same transaction. Errors (PeopleError) name what
was wrong and leave nothing half-done: the caller's transaction rolls back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from ws_tracker.rules.circuits import region_key
from ws_tracker.warehouse import audit
from ws_tracker.warehouse.users import UnknownEmailError, user_id_by_email

# Not a password: a marker that this user has no local password (the project has no web login;
# users.password is NOT NULL in the schema reference).
NO_PASSWORD = "!"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_WS_USERNAME = re.compile(r"^[^\\\s]+\\[^\\\s]+$")


class PeopleError(ValueError):
    """A people command was refused; the message names what was wrong."""


@dataclass
class LinkResult:
    user_id: int
    email: str
    ws_username: str
    unlinked_planner_id: int | None = None  # the unlinked_planners row now linked, if any
    circuits_linked: int = 0  # circuit_user rows created
    circuits_held: int = 0  # circuits the planner holds now
    planner_daily_rekeyed: int = 0
    planner_weekly_rekeyed: int = 0
    changed: bool = True


@dataclass
class AddResult:
    user_id: int
    email: str
    regions: list[str] = field(default_factory=list)
    link: LinkResult | None = None


def normalise_email(email: str) -> str:
    text = (email or "").strip()
    if not _EMAIL.match(text):
        raise PeopleError(f"not an email address: {email!r}")
    return text


def normalise_ws_username(username: str) -> str:
    text = (username or "").strip()
    if not _WS_USERNAME.match(text):
        raise PeopleError(f"not a WorkStudio username of the form DOMAIN\\user: '{username}'")
    return text


def resolve_regions(conn: sa.Connection, names: list[str] | tuple[str, ...]) -> dict[int, str]:
    """Region id -> name for each name or code (case- and space-insensitive)."""
    rows = conn.execute(sa.text("SELECT id, name, code FROM regions ORDER BY sort_order, id")).all()
    by_key: dict[str, tuple[int, str]] = {}
    for r in rows:
        by_key.setdefault(region_key(r.code), (r.id, r.name))
        by_key[region_key(r.name)] = (r.id, r.name)
    found: dict[int, str] = {}
    unknown = []
    for name in names:
        hit = by_key.get(region_key(name))
        if hit is None:
            unknown.append(name)
        else:
            found[hit[0]] = hit[1]
    if unknown:
        raise PeopleError(f"unknown region(s): {', '.join(repr(u) for u in unknown)}; known: "
                          + ", ".join(r.name for r in rows))
    return found


def _actor(conn: sa.Connection, by_email: str | None) -> tuple[int | None, str | None]:
    if not by_email:
        return None, None
    uid = user_id_by_email(conn, by_email)
    if uid is None:
        raise PeopleError(f"no user with email {by_email!r} (--by names an existing user)")
    return uid, by_email.strip()


def _user(conn: sa.Connection, email: str):
    row = conn.execute(sa.text(
        "SELECT id, email, name, ws_username, is_ws_linked FROM users WHERE lower(email) = lower(:e)"
        " ORDER BY (email = :e) DESC, id LIMIT 1 FOR UPDATE"), {"e": email.strip()}).one_or_none()
    if row is None:
        raise PeopleError(str(UnknownEmailError(email.strip())))
    return row


def add_user(conn: sa.Connection, email: str, name: str, *, ws_username: str | None = None,
             regions: list[str] | tuple[str, ...] = (), default_region: str | None = None,
             by_email: str | None = None, at: datetime) -> AddResult:
    """Create a user with regions; link the planner ``ws_username`` when given."""
    email = normalise_email(email)
    name = (name or "").strip()
    if not name:
        raise PeopleError("--name must not be empty")
    if ws_username is not None:
        ws_username = normalise_ws_username(ws_username)
    actor_id, actor = _actor(conn, by_email)
    existing = conn.execute(sa.text("SELECT id, email FROM users WHERE lower(email) = lower(:e)"),
                            {"e": email}).first()
    if existing is not None:
        raise PeopleError(f"a user with email {existing.email!r} already exists (id {existing.id})")
    region_ids = resolve_regions(conn, list(regions))
    default_id = None
    if default_region is not None:
        (default_id, default_name), = resolve_regions(conn, [default_region]).items()
        region_ids.setdefault(default_id, default_name)  # a default region is one of the user's
    if ws_username is not None:
        _check_username_free(conn, ws_username, None)
    uid = conn.execute(sa.text(
        "INSERT INTO users (name, email, password, default_region_id, created_at, updated_at)"
        " VALUES (:n, :e, :p, :d, :t, :t) RETURNING id"),
        {"n": name, "e": email, "p": NO_PASSWORD, "d": default_id, "t": at}).scalar_one()
    if region_ids:
        conn.execute(sa.text(
            "INSERT INTO user_regions (user_id, region_id, created_at, updated_at)"
            " VALUES (:u, :r, :t, :t)"),
            [{"u": uid, "r": rid, "t": at} for rid in sorted(region_ids)])
    names = [region_ids[r] for r in sorted(region_ids)]
    audit.record(conn, action="user.add", entity_type="user", entity_id=uid, entity_key=email,
                 after={"email": email, "name": name, "regions": names,
                        "default_region": region_ids.get(default_id) if default_id else None,
                        "ws_username": ws_username},
                 actor_user_id=actor_id, actor=actor, at=at)
    result = AddResult(user_id=uid, email=email, regions=names)
    if ws_username is not None:
        result.link = _link(conn, uid, email, ws_username, None, actor_id, actor, at)
    return result


def _user_state(conn: sa.Connection, uid: int) -> dict:
    row = conn.execute(sa.text(
        "SELECT u.name, d.name AS default_region FROM users u"
        " LEFT JOIN regions d ON d.id = u.default_region_id WHERE u.id = :u"), {"u": uid}).one()
    regions = conn.execute(sa.text(
        "SELECT r.name FROM user_regions ur JOIN regions r ON r.id = ur.region_id"
        " WHERE ur.user_id = :u ORDER BY r.id"), {"u": uid}).scalars().all()
    return {"name": row.name, "regions": list(regions), "default_region": row.default_region}


def update_user(conn: sa.Connection, email: str, *, name: str | None = None,
                regions: list[str] | tuple[str, ...] | None = None,
                default_region: str | None = None, by_email: str | None = None,
                at: datetime) -> tuple[dict, dict]:
    """Change a user's name, regions (``regions`` replaces the set; ``[]`` empties it) or
    default region (which becomes one of their regions). Returns (before, after); both equal
    when nothing changed (then no audit row is written)."""
    if name is None and regions is None and default_region is None:
        raise PeopleError("nothing to update: give --name, --region, --no-regions or "
                          "--default-region")
    if name is not None and not name.strip():
        raise PeopleError("--name must not be empty")
    actor_id, actor = _actor(conn, by_email)
    user = _user(conn, email)
    before = _user_state(conn, user.id)
    wanted = resolve_regions(conn, list(regions)) if regions is not None else None
    default_id = None
    if default_region is not None:
        (default_id, default_name), = resolve_regions(conn, [default_region]).items()
        if wanted is not None:
            wanted.setdefault(default_id, default_name)
    if name is not None:
        conn.execute(sa.text("UPDATE users SET name = :n, updated_at = :t WHERE id = :u"
                             " AND name IS DISTINCT FROM :n"),
                     {"n": name.strip(), "t": at, "u": user.id})
    if wanted is not None:
        conn.execute(sa.text("DELETE FROM user_regions WHERE user_id = :u"
                             " AND NOT (region_id = ANY(:r))"), {"u": user.id, "r": sorted(wanted)})
    add = sorted(wanted) if wanted is not None else ([default_id] if default_id else [])
    if add:
        conn.execute(sa.text(
            "INSERT INTO user_regions (user_id, region_id, created_at, updated_at)"
            " VALUES (:u, :r, :t, :t) ON CONFLICT (user_id, region_id) DO NOTHING"),
            [{"u": user.id, "r": r, "t": at} for r in add])
    if default_id is not None:
        conn.execute(sa.text("UPDATE users SET default_region_id = :d, updated_at = :t"
                             " WHERE id = :u AND default_region_id IS DISTINCT FROM :d"),
                     {"d": default_id, "t": at, "u": user.id})
    elif wanted is not None:  # a default region the user no longer has is cleared
        conn.execute(sa.text("UPDATE users SET default_region_id = NULL, updated_at = :t"
                             " WHERE id = :u AND NOT (default_region_id = ANY(:r))"),
                     {"t": at, "u": user.id, "r": sorted(wanted)})
    after = _user_state(conn, user.id)
    if after != before:
        audit.record(conn, action="user.update", entity_type="user", entity_id=user.id,
                     entity_key=user.email, before=before, after=after,
                     actor_user_id=actor_id, actor=actor, at=at)
    return before, after


def _check_username_free(conn: sa.Connection, ws_username: str, user_id: int | None) -> None:
    other = conn.execute(sa.text(
        "SELECT email FROM users WHERE lower(btrim(ws_username)) = lower(:w)"
        " AND id IS DISTINCT FROM :u"), {"w": ws_username, "u": user_id}).first()
    if other is not None:
        raise PeopleError(f"WorkStudio username '{ws_username}' is already linked to "
                          f"{other.email!r}")


def link_planner(conn: sa.Connection, ws_username: str, email: str, *,
                 by_email: str | None = None, at: datetime) -> LinkResult:
    """Link the WorkStudio planner ``ws_username`` to the existing user ``email``."""
    ws_username = normalise_ws_username(ws_username)
    actor_id, actor = _actor(conn, by_email)
    user = _user(conn, email)
    if user.ws_username and user.ws_username.strip().lower() != ws_username.lower():
        raise PeopleError(f"user {user.email!r} is already linked to WorkStudio username "
                          f"'{user.ws_username.strip()}'; a user has one WorkStudio identity")
    if user.ws_username:
        ws_username = user.ws_username.strip()  # the same identity: keep the stored spelling
    _check_username_free(conn, ws_username, user.id)
    return _link(conn, user.id, user.email, ws_username, user, actor_id, actor, at)


def _link(conn: sa.Connection, uid: int, email: str, ws_username: str, before_row,
          actor_id: int | None, actor: str | None, at: datetime) -> LinkResult:
    result = LinkResult(user_id=uid, email=email, ws_username=ws_username)
    conn.execute(sa.text(
        "UPDATE users SET ws_username = :w, is_ws_linked = true,"
        " ws_linked_at = coalesce(ws_linked_at, :t), updated_at = :t WHERE id = :u"),
        {"w": ws_username, "t": at, "u": uid})
    planner = conn.execute(sa.text(
        "UPDATE unlinked_planners SET linked_to_user_id = :u, linked_at = :t, updated_at = :t"
        " WHERE lower(btrim(ws_username)) = lower(:w)"
        " AND linked_to_user_id IS DISTINCT FROM :u RETURNING id"),
        {"u": uid, "t": at, "w": ws_username}).scalars().all()
    result.unlinked_planner_id = planner[0] if planner else None
    held = conn.execute(sa.text(
        "SELECT id FROM circuits WHERE lower(btrim(taken_by)) = lower(:w) AND deleted_at IS NULL"
        " ORDER BY id"), {"w": ws_username}).scalars().all()
    result.circuits_held = len(held)
    if held:
        result.circuits_linked = len(conn.execute(sa.text(
            "INSERT INTO circuit_user (circuit_id, user_id, assignment_source, assigned_at,"
            " created_at, updated_at) SELECT c, :u, 'api_sync', :t, :t, :t"
            " FROM unnest(CAST(:ids AS bigint[])) AS c"
            " ON CONFLICT (circuit_id, user_id) DO NOTHING RETURNING circuit_id"),
            {"u": uid, "t": at, "ids": held}).all())
    keys = planner_keys(conn, uid, ws_username)
    for table in ("planner_daily_aggregates", "planner_weekly_aggregates"):
        n = conn.execute(sa.text(
            f"UPDATE {table} SET user_id = :u, updated_at = :t"
            " WHERE user_id IS NULL AND lower(btrim(planner_name)) = ANY(:k)"),
            {"u": uid, "t": at, "k": sorted(keys)}).rowcount
        if table == "planner_daily_aggregates":
            result.planner_daily_rekeyed = n
        else:
            result.planner_weekly_rekeyed = n
    before = None
    if before_row is not None:
        before = {"ws_username": before_row.ws_username, "is_ws_linked": before_row.is_ws_linked}
    result.changed = (before_row is None or before != {"ws_username": ws_username, "is_ws_linked": True}
                      or bool(planner) or result.circuits_linked > 0
                      or result.planner_daily_rekeyed > 0 or result.planner_weekly_rekeyed > 0)
    if result.changed:
        audit.record(conn, action="planner.link", entity_type="user", entity_id=uid,
                     entity_key=ws_username, before=before,
                     after={"ws_username": ws_username, "is_ws_linked": True,
                            "unlinked_planner_id": result.unlinked_planner_id,
                            "circuits_linked": result.circuits_linked,
                            "planner_daily_rekeyed": result.planner_daily_rekeyed,
                            "planner_weekly_rekeyed": result.planner_weekly_rekeyed},
                     actor_user_id=actor_id, actor=actor, at=at)
    return result


def planner_keys(conn: sa.Connection, user_id: int, ws_username: str) -> set[str]:
    """Lower-cased planner_name values that belong to this user's planner: the user's name, the
    username (a unit without a forester name is shown under it), every forester name on a unit
    with this forester username in the circuits' latest captures (the rollups' source), and the
    forester name of the circuits the planner takes (as rollups.user_keys matches them)."""
    name = conn.execute(sa.text("SELECT name FROM users WHERE id = :u"), {"u": user_id}).scalar()
    keys = {ws_username.strip().lower()}
    if name and name.strip():
        keys.add(name.strip().lower())
    keys.update(conn.execute(sa.text(
        "SELECT DISTINCT lower(btrim(u ->> 'forester')) FROM"
        " (SELECT DISTINCT ON (circuit_id) raw_json FROM planned_units_snapshots"
        "  ORDER BY circuit_id, captured_at DESC) s"
        " CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(s.raw_json) = 'array'"
        "   THEN s.raw_json ELSE '[]'::jsonb END) AS u"
        " WHERE lower(btrim(u ->> 'forester_username')) = lower(:w)"
        "   AND coalesce(btrim(u ->> 'forester'), '') <> ''"), {"w": ws_username}).scalars())
    # Units without a forester username name the forester only as the circuit does
    # (VEGJOB_FORESTER on the circuits the planner takes): rollups.user_keys uses it too.
    keys.update(conn.execute(sa.text(
        "SELECT DISTINCT lower(btrim(api_data_json ->> 'VEGJOB_FORESTER')) FROM circuits"
        " WHERE lower(btrim(taken_by)) = lower(:w)"
        " AND coalesce(btrim(api_data_json ->> 'VEGJOB_FORESTER'), '') <> ''"),
        {"w": ws_username}).scalars())
    return keys


@dataclass
class UserRow:
    id: int
    email: str
    name: str
    ws_username: str | None
    is_admin: bool
    regions: list[str]
    default_region: str | None
    credentials: str  # valid | invalid | none
    logins: list[str]


def list_users(conn: sa.Connection) -> list[UserRow]:
    rows = conn.execute(sa.text(
        "SELECT u.id, u.email, u.name, u.ws_username, u.is_admin, d.name AS default_region,"
        " coalesce((SELECT array_agg(r.name ORDER BY r.sort_order, r.name) FROM user_regions ur"
        "   JOIN regions r ON r.id = ur.region_id WHERE ur.user_id = u.id), '{}') AS regions,"
        " CASE WHEN c.id IS NULL THEN 'none' WHEN c.is_valid THEN 'valid' ELSE 'invalid' END AS cred,"
        " coalesce((SELECT array_agg(a.login ORDER BY a.login) FROM analyst_logins a"
        "   WHERE a.user_id = u.id), '{}') AS logins"
        " FROM users u LEFT JOIN regions d ON d.id = u.default_region_id"
        " LEFT JOIN user_ws_credentials c ON c.user_id = u.id ORDER BY u.email")).all()
    return [UserRow(r.id, r.email, r.name, r.ws_username, r.is_admin, list(r.regions),
                    r.default_region, r.cred, list(r.logins)) for r in rows]
