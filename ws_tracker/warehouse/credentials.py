"""Per-user WorkStudio credentials, encrypted at rest in ``user_ws_credentials``.

Encryption is Fernet (``cryptography``: AES-128-CBC + HMAC-SHA256, versioned tokens), never
hand-rolled. The key comes from the environment variable ``WS_TRACKER_SECRET_KEY``, read on
every call (never at import), and there is no plaintext fallback: without a usable key every
function that needs one raises ``CredentialsKeyError``.

Key rotation
------------
The variable holds one key or several, comma-separated. The first is the current key (all new
encryption uses it); the others are old keys still accepted for decryption (``MultiFernet``).
To rotate:

1. ``ws-tracker credentials new-key`` (or ``new_key()``) prints a fresh key NEW.
2. Set ``WS_TRACKER_SECRET_KEY=NEW,OLD`` everywhere the pipeline runs.
3. Call ``rotate_keys(conn)`` inside a transaction: every row is re-encrypted with NEW.
   It is all-or-nothing: a row no configured key decrypts aborts it (the caller's
   transaction rolls back) and nothing is re-encrypted.
4. Set ``WS_TRACKER_SECRET_KEY=NEW``; OLD can be destroyed.

Auth outcomes
-------------
``record_auth_failure`` (HTTP 401: never retried, see the API spec) marks the row invalid, so
``load_user_credentials`` refuses it until the user sets credentials again
(``set_user_credentials`` makes the row valid and zeroes its ``fail_count``).
``record_auth_success`` marks the row valid and stamps the use; both fail counters are left as
they are (``users.ws_credentials_fail_count`` is a lifetime count of rejected logins, the row's
``fail_count`` counts rejections of the credentials currently stored).

No password, username, ciphertext or key ever reaches an exception message or a log line;
users are named by email or id only.
"""

from __future__ import annotations

import hmac
import logging
import os
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from ws_tracker.warehouse import audit

log = logging.getLogger(__name__)

ENV_VAR = "WS_TRACKER_SECRET_KEY"
_NEW_KEY_HINT = "generate one with `ws-tracker credentials new-key`"


# ---------------------------------------------------------------------------- exceptions

class CredentialsError(Exception):
    """Base of every credentials failure. Messages never hold a secret."""


class CredentialsKeyError(CredentialsError):
    """WS_TRACKER_SECRET_KEY is missing, empty or malformed."""


class CredentialsDecryptError(CredentialsError):
    """Stored credentials cannot be decrypted with the configured key(s)."""


class _ByEmail(CredentialsError):
    _template = "{email}"

    def __init__(self, email: str) -> None:
        self.email = email
        super().__init__(self._template.format(email=email))

    def __reduce__(self):  # keep pickling working (custom __init__ signature)
        return (type(self), (self.email,))


class UnknownUserError(_ByEmail, LookupError):
    _template = "no user with email {email!r} in users"


class AmbiguousUserError(_ByEmail, LookupError):
    _template = (
        "several users match email {email!r} case-insensitively and none exactly; "
        "use the exact email"
    )


class NoCredentialsError(_ByEmail, LookupError):
    _template = "user {email!r} has no WorkStudio credentials stored; set them first"


class CredentialsInvalidError(_ByEmail):
    _template = (
        "the WorkStudio credentials of user {email!r} were rejected (HTTP 401) and are marked "
        "invalid; set them again before they are used"
    )


# ---------------------------------------------------------------------------- keys & crypto

def new_key() -> str:
    """A fresh Fernet key (url-safe base64 text), for WS_TRACKER_SECRET_KEY."""
    return Fernet.generate_key().decode("ascii")


def load_keys() -> MultiFernet:
    """The configured keys, read from the environment now; the first one encrypts."""
    raw = os.environ.get(ENV_VAR, "")
    if not raw.strip():
        raise CredentialsKeyError(
            f"{ENV_VAR} is not set (or empty): WorkStudio credentials are stored encrypted and "
            f"need a key; {_NEW_KEY_HINT} and set {ENV_VAR} to it"
        )
    parts = [p.strip() for p in raw.split(",")]
    fernets: list[Fernet] = []
    for position, part in enumerate(parts, start=1):
        where = f"key {position} of {len(parts)} in {ENV_VAR}"
        if not part:
            raise CredentialsKeyError(
                f"{where} is empty (keys are comma-separated, current key first)"
            )
        try:
            fernets.append(Fernet(part))
        except (ValueError, TypeError):  # binascii.Error is a ValueError
            # `from None`: nothing that saw the key value is chained to the error.
            raise CredentialsKeyError(
                f"{where} is not a valid Fernet key (32 url-safe base64-encoded bytes); "
                f"{_NEW_KEY_HINT}"
            ) from None
    return MultiFernet(fernets)


_DECRYPT_FAILED = (
    "stored WorkStudio credentials cannot be decrypted with the configured key(s) in "
    f"{ENV_VAR}: the key was changed or lost, or an old key was dropped before rotate_keys "
    "ran; restore the key (an old key may follow the current one, comma-separated) or set "
    "the credentials again"
)


def encrypt(text: str, keys: MultiFernet | None = None) -> str:
    """Fernet token (text) for ``text``, made with the current (first) key."""
    if keys is None:
        keys = load_keys()
    return keys.encrypt(text.encode("utf-8")).decode("ascii")


def decrypt(token: str, keys: MultiFernet | None = None) -> str:
    """The text inside a token made by ``encrypt`` with any configured key."""
    if keys is None:
        keys = load_keys()
    try:
        return keys.decrypt(token.encode("utf-8")).decode("utf-8")
    except (InvalidToken, UnicodeError):
        raise CredentialsDecryptError(_DECRYPT_FAILED) from None


class Secret:
    """A string that shows as ``***``; ``reveal()`` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "***"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return "***"

    def __setattr__(self, name, value):
        raise AttributeError("Secret is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode("utf-8"), other._value.encode("utf-8"))

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self):
        # Pickling (Dagster pickles across processes) would otherwise go through __slots__
        # state; be explicit. The pickle holds the plain value: never persist one.
        return (Secret, (self._value,))


@dataclass(frozen=True)
class UserCredentials:
    """One user's decrypted WorkStudio login. ``repr`` shows the password as ``***``."""

    user_id: int
    email: str
    username: str  # DOMAIN\\user; not a secret (it is stored encrypted all the same)
    password: Secret


# ---------------------------------------------------------------------------- database

def _find_user(conn: sa.Connection, email: str) -> tuple[int, str]:
    """(id, stored email) of the user with this email, case-insensitively.

    ``users.email`` is unique case-sensitively, so two rows may differ only by case: an exact
    match wins, otherwise a single case-insensitive match, otherwise AmbiguousUserError.
    """
    rows = conn.execute(
        sa.text(
            "SELECT id, email FROM users WHERE lower(email) = lower(:email) "
            "ORDER BY (email = :email) DESC, id"
        ),
        {"email": email},
    ).all()
    if not rows:
        raise UnknownUserError(email)
    if len(rows) > 1 and rows[0].email != email:
        raise AmbiguousUserError(email)
    return int(rows[0].id), rows[0].email


def set_user_credentials(conn: sa.Connection, email: str, username: str, password: str) -> int:
    """Store (insert or replace) a user's WorkStudio credentials; returns the user id.

    Runs in the caller's transaction. The row becomes valid with ``fail_count`` 0 and
    ``validated_at`` NULL (not checked against WorkStudio yet); ``last_used_at`` is kept.
    ``users`` is not touched (``users.ws_username`` is the planner link, another concept).
    """
    if not username:
        raise ValueError("the WorkStudio username must not be empty")
    if not password:
        raise ValueError("the WorkStudio password must not be empty")
    keys = load_keys()  # before any write: no key, no row
    user_id, _ = _find_user(conn, email)
    conn.execute(
        sa.text(
            """
            INSERT INTO user_ws_credentials
                (user_id, encrypted_username, encrypted_password, is_valid, fail_count,
                 validated_at, created_at, updated_at)
            VALUES (:user_id, :enc_user, :enc_pass, true, 0, NULL, now(), now())
            ON CONFLICT (user_id) DO UPDATE SET
                encrypted_username = EXCLUDED.encrypted_username,
                encrypted_password = EXCLUDED.encrypted_password,
                is_valid = true,
                fail_count = 0,
                validated_at = NULL,
                updated_at = now()
            """
        ),
        {
            "user_id": user_id,
            "enc_user": encrypt(username, keys),
            "enc_pass": encrypt(password, keys),
        },
    )
    audit.record(conn, action="credentials.set", entity_type="user", entity_id=user_id,
                 entity_key=email.strip(), after={"is_valid": True, "fail_count": 0})
    log.info("stored WorkStudio credentials for user id %s", user_id)
    return user_id


def load_user_credentials(conn: sa.Connection, email: str, *,
                          allow_invalid: bool = False) -> UserCredentials:
    """A user's decrypted credentials; refuses ones marked invalid by a 401 (unless
    ``allow_invalid``: a deliberate ``credentials check`` may try them once more)."""
    user_id, stored_email = _find_user(conn, email)
    row = conn.execute(
        sa.text(
            "SELECT encrypted_username, encrypted_password, is_valid "
            "FROM user_ws_credentials WHERE user_id = :user_id"
        ),
        {"user_id": user_id},
    ).one_or_none()
    if row is None:
        raise NoCredentialsError(stored_email)
    if not row.is_valid and not allow_invalid:
        raise CredentialsInvalidError(stored_email)
    keys = load_keys()
    return UserCredentials(
        user_id=user_id,
        email=stored_email,
        username=decrypt(row.encrypted_username, keys),
        password=Secret(decrypt(row.encrypted_password, keys)),
    )


def record_auth_failure(engine: sa.Engine, user_id: int, at: datetime | None = None, *,
                        checked: bool = False) -> None:
    """WorkStudio rejected the user's credentials (HTTP 401): mark them invalid.

    Own transaction, so it sticks even when the caller's work rolls back. Increments
    ``user_ws_credentials.fail_count`` and ``users.ws_credentials_fail_count``, sets
    ``users.ws_credentials_failed_at`` to ``at`` (default: the database's now()). A missing
    user or row is not an error (the failure being reported must not be masked).
    ``checked``: the rejection came from ``credentials check``, so ``validated_at`` (when the
    credentials were last verified, whatever the outcome) is set to ``at`` too.
    """
    params = {"user_id": user_id, "at": at, "checked": checked}
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE user_ws_credentials SET is_valid = false, fail_count = fail_count + 1, "
                "validated_at = CASE WHEN :checked THEN COALESCE(CAST(:at AS timestamptz), now()) "
                "ELSE validated_at END, updated_at = now() WHERE user_id = :user_id"
            ),
            params,
        )
        conn.execute(
            sa.text(
                "UPDATE users SET ws_credentials_fail_count = ws_credentials_fail_count + 1, "
                "ws_credentials_failed_at = COALESCE(CAST(:at AS timestamptz), now()), "
                "updated_at = now() WHERE id = :user_id"
            ),
            params,
        )
    log.warning("WorkStudio credentials of user id %s rejected; marked invalid", user_id)


def record_auth_success(engine: sa.Engine, user_id: int, at: datetime | None = None) -> None:
    """WorkStudio accepted the user's credentials: mark them valid and stamp the use.

    Own transaction. Sets ``is_valid`` true and ``validated_at`` = ``last_used_at`` = ``at``
    (default now()) on the row, ``users.ws_credentials_last_used_at`` = ``at``. Neither fail
    counter is reset (``users.ws_credentials_fail_count`` is a lifetime count;
    ``set_user_credentials`` zeroes the row's).
    """
    params = {"user_id": user_id, "at": at}
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE user_ws_credentials SET is_valid = true, "
                "validated_at = COALESCE(CAST(:at AS timestamptz), now()), "
                "last_used_at = COALESCE(CAST(:at AS timestamptz), now()), "
                "updated_at = now() WHERE user_id = :user_id"
            ),
            params,
        )
        conn.execute(
            sa.text(
                "UPDATE users SET "
                "ws_credentials_last_used_at = COALESCE(CAST(:at AS timestamptz), now()), "
                "updated_at = now() WHERE id = :user_id"
            ),
            params,
        )


def rotate_keys(conn: sa.Connection) -> int:
    """Re-encrypt every stored credential with the current (first) key; returns the count.

    Run in a transaction with ``WS_TRACKER_SECRET_KEY=NEW,OLD``; afterwards OLD may go.
    All-or-nothing: if any row decrypts with none of the keys, CredentialsDecryptError
    (naming the user ids) is raised before anything is written.
    """
    keys = load_keys()
    rows = conn.execute(
        sa.text(
            "SELECT id, user_id, encrypted_username, encrypted_password "
            "FROM user_ws_credentials ORDER BY id FOR UPDATE"
        )
    ).all()
    updates: list[dict] = []
    bad: list[int] = []
    for row in rows:
        try:
            updates.append(
                {
                    "id": row.id,
                    "enc_user": keys.rotate(row.encrypted_username.encode("ascii")).decode("ascii"),
                    "enc_pass": keys.rotate(row.encrypted_password.encode("ascii")).decode("ascii"),
                }
            )
        except (InvalidToken, UnicodeError):
            bad.append(int(row.user_id))
    if bad:
        raise CredentialsDecryptError(
            f"{_DECRYPT_FAILED} (user ids {', '.join(map(str, bad))}); nothing was rotated"
        )
    if updates:
        conn.execute(
            sa.text(
                "UPDATE user_ws_credentials SET encrypted_username = :enc_user, "
                "encrypted_password = :enc_pass WHERE id = :id"
            ),
            updates,
        )
    audit.record(conn, action="credentials.rotate", entity_type="user_ws_credentials",
                 after={"rows_reencrypted": len(updates)})
    log.info("re-encrypted %d WorkStudio credential row(s) with the current key", len(updates))
    return len(updates)


# ---------------------------------------------------------------------------- check & list

@dataclass(frozen=True)
class CheckResult:
    """The outcome of ``check_user_credentials``. ``valid`` None: WorkStudio could not be
    asked (network, server or protocol error), nothing was recorded."""

    user_id: int
    email: str
    valid: bool | None
    message: str


def check_user_credentials(engine: sa.Engine, email: str, base_url: str, *,
                           at: datetime | None = None, max_attempts: int = 3,
                           backoff_base: float = 0.5, client_factory=None) -> CheckResult:
    """Verify a user's stored credentials against WorkStudio (GETQUERY ``SELECT TOP 1 1 AS
    test``, the spec's check) and record the outcome.

    Accepted: is_valid true, validated_at (and last_used_at) = ``at``. HTTP 401: is_valid
    false, fail_count + 1, validated_at = ``at``, and the user's lifetime counter. Anything
    else (the service unreachable, 5xx after retries, an ERROR envelope) is reported with
    ``valid`` None and recorded nowhere: it says nothing about the credentials. The check is
    tried even when the stored credentials are marked invalid: it is one deliberate attempt.
    """
    from ws_tracker.rules.errors import WorkStudioAuthError, WorkStudioError
    from ws_tracker.workstudio.client import WorkStudioClient

    with engine.connect() as conn:
        creds = load_user_credentials(conn, email, allow_invalid=True)
    factory = client_factory or (lambda u, p: WorkStudioClient(
        base_url, u, p, max_attempts=max_attempts, backoff_base=backoff_base,
        connect_timeout=10.0, read_timeout=30.0, query_timeout=30.0))
    try:
        with factory(creds.username, creds.password.reveal()) as client:
            client.check_credentials()
    except WorkStudioAuthError:
        record_auth_failure(engine, creds.user_id, at, checked=True)
        valid, message = False, "rejected by WorkStudio (HTTP 401); marked invalid"
    except WorkStudioError as exc:
        # Messages of the client never hold the password (it redacts them).
        return CheckResult(creds.user_id, creds.email, None,
                           f"could not check: {type(exc).__name__}: {exc}")
    else:
        record_auth_success(engine, creds.user_id, at)
        valid, message = True, "accepted by WorkStudio; marked valid"
    with engine.begin() as conn:
        audit.record(conn, action="credentials.check", entity_type="user",
                     entity_id=creds.user_id, entity_key=creds.email, after={"is_valid": valid},
                     at=at)
    return CheckResult(creds.user_id, creds.email, valid, message)


@dataclass(frozen=True)
class CredentialsRow:
    email: str
    name: str
    is_valid: bool
    validated_at: datetime | None
    last_used_at: datetime | None
    fail_count: int
    updated_at: datetime | None


def list_credentials(conn: sa.Connection) -> list[CredentialsRow]:
    """Who has stored credentials and their state; reads no encrypted column."""
    rows = conn.execute(sa.text(
        "SELECT u.email, u.name, c.is_valid, c.validated_at, c.last_used_at, c.fail_count,"
        " c.updated_at FROM user_ws_credentials c JOIN users u ON u.id = c.user_id"
        " ORDER BY u.email")).all()
    return [CredentialsRow(*r) for r in rows]
