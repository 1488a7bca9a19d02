"""Exception types for WorkStudio calls, and the row-issue record of the transforms.

Pure: no I/O. The exceptions live in the rules layer because envelope parsing (pure) raises
them; the HTTP client (layer 2) raises the same types.

No exception here ever receives a password: callers pass names (protocol, view, username)
and server text, which the client redacts before it gets here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["warning", "error"]

_MAX_TEXT = 500  # server text is untrusted and may be huge; keep messages readable


def _short(text: object, limit: int = _MAX_TEXT) -> str:
    s = str(text)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def describe_call(protocol: str, view: str | None = None, filter_value: str | None = None) -> str:
    """A human label for one API call: ``GETVIEWDATA view={...} filter='ACTIV'``."""
    parts = [protocol]
    if view:
        parts.append(f"view={view}")
    if filter_value is not None:
        parts.append(f"filter={filter_value!r}")
    return " ".join(parts)


class WorkStudioError(Exception):
    """Base of every WorkStudio failure."""


class WorkStudioProtocolError(WorkStudioError):
    """The service answered with an ERROR envelope (often at HTTP 200). Not retried."""

    def __init__(self, protocol: str, view: str | None, server_message: str | None) -> None:
        self.protocol = protocol
        self.view = view
        self.server_message = None if server_message is None else _short(server_message)
        super().__init__(
            f"WorkStudio returned an ERROR envelope for {describe_call(protocol, view)}: "
            f"{self.server_message or '(no errorMessage)'}"
        )

    def __reduce__(self):  # keep pickling working (custom __init__ signature)
        return (type(self), (self.protocol, self.view, self.server_message))


class WorkStudioAuthError(WorkStudioError):
    """HTTP 401: the credentials were rejected. Never retried."""

    def __init__(self, protocol: str, username: str | None, view: str | None = None) -> None:
        self.protocol = protocol
        self.username = username
        self.view = view
        super().__init__(
            f"WorkStudio rejected the credentials of user {username!r} (HTTP 401) on "
            f"{describe_call(protocol, view)}; not retried"
        )

    def __reduce__(self):
        return (type(self), (self.protocol, self.username, self.view))


class WorkStudioUnavailable(WorkStudioError):
    """Transient failures (5xx, 429, connection errors, timeouts) outlasted every retry."""

    def __init__(
        self,
        protocol: str,
        view: str | None,
        filter_value: str | None,
        attempts: int,
        last_cause: str,
    ) -> None:
        self.protocol = protocol
        self.view = view
        self.filter_value = filter_value
        self.attempts = attempts
        self.last_cause = _short(last_cause)
        super().__init__(
            f"WorkStudio unavailable: {describe_call(protocol, view, filter_value)} failed "
            f"after {attempts} attempt(s); last cause: {self.last_cause}"
        )

    def __reduce__(self):
        return (
            type(self),
            (self.protocol, self.view, self.filter_value, self.attempts, self.last_cause),
        )


class WorkStudioBadResponse(WorkStudioError):
    """A response that is not a usable envelope: null, not JSON, missing parts, ragged rows."""

    def __init__(self, protocol: str, view: str | None, problem: str) -> None:
        self.protocol = protocol
        self.view = view
        self.problem = _short(problem)
        super().__init__(
            f"Bad WorkStudio response to {describe_call(protocol, view)}: {self.problem}"
        )

    def __reduce__(self):
        return (type(self), (self.protocol, self.view, self.problem))


class WorkStudioHTTPError(WorkStudioError):
    """A non-transient HTTP status other than 401 (400, 403, 404, ...). Not retried."""

    def __init__(
        self,
        protocol: str,
        view: str | None,
        filter_value: str | None,
        status_code: int,
        detail: str = "",
    ) -> None:
        self.protocol = protocol
        self.view = view
        self.filter_value = filter_value
        self.status_code = status_code
        self.detail = _short(detail, 200)
        call = describe_call(protocol, view, filter_value)
        msg = f"WorkStudio answered HTTP {status_code} to {call}"
        super().__init__(msg + (f": {self.detail}" if self.detail else ""))

    def __reduce__(self):
        return (
            type(self),
            (self.protocol, self.view, self.filter_value, self.status_code, self.detail),
        )


def _short_repr(value: Any, limit: int = 200) -> str:
    r = repr(value)
    return r if len(r) <= limit else r[: limit - 3] + "..."


@dataclass(frozen=True)
class RowIssue:
    """One problem found in one source row: reported, never silently swallowed.

    ``row_number`` is 1-based (the first ``Data`` row of the envelope is row 1); None for an
    issue about the listing as a whole. ``value`` is stored as the ``repr`` of the offending
    value, truncated to 200 characters, so ``''`` and ``None`` stay distinguishable.
    ``key`` identifies the record where known (job GUID, unit id); ``code`` is a stable
    machine-readable kind for summaries (``{type, code, message}``).
    """

    row_number: int | None
    column: str | None
    value: Any
    reason: str
    severity: Severity = "warning"
    key: str | None = None
    code: str = field(default="row_issue")

    def __post_init__(self) -> None:
        if self.severity not in ("warning", "error"):
            raise ValueError(f"severity must be 'warning' or 'error', not {self.severity!r}")
        object.__setattr__(self, "value", _short_repr(self.value))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field."""
        return {
            "row_number": self.row_number,
            "column": self.column,
            "value": self.value,
            "reason": self.reason,
            "severity": self.severity,
            "key": self.key,
            "code": self.code,
        }


class WorkStudioSchemaError(WorkStudioBadResponse):
    """A view's heading lacks a column the pipeline reads: the view's schema changed.

    Never retried and never downgraded to a per-item warning: every later call would read the
    same schema, so the sync fails before it writes anything.
    """
