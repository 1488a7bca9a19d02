"""The WorkStudio DDOProtocol HTTP client: auth, retries with backoff, error envelopes.

Layer 2 (an edge). Parsing is delegated to the pure ``ws_tracker.rules.envelope``.
See spec/workstudio-api.md ("Transport", "Errors").

Retry policy, in one place:
- transient, retried: HTTP 5xx, HTTP 429, connection errors, timeouts. Wait before retry
  ``n`` is ``min(backoff_base * 2**(n-1), backoff_max)`` (1, 2, 4, 8, ... s). A
  ``Retry-After`` header (seconds or an HTTP date) raises that wait to its value but never
  lowers it (the service is shared: never faster than our own backoff), and is capped at
  ``2 * backoff_max`` so one header cannot stall a run for hours.
- at once, never retried: 401 (WorkStudioAuthError; the client then refuses further calls,
  since repeating bad credentials can lock the account), other 4xx (WorkStudioHTTPError), an
  ERROR envelope (WorkStudioProtocolError), and a null / non-JSON / malformed body
  (WorkStudioBadResponse): the service answered, and asking again gives the same answer.
- ``max_attempts`` counts all tries; when they are used up: WorkStudioUnavailable.

The password never appears in a message, a log line or a repr: it is held in a wrapper
whose repr is masked, and any server text is redacted before it reaches an exception.
"""

from __future__ import annotations

import email.utils
import logging
import math
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import httpx

from ws_tracker.rules.envelope import DataSet, parse_envelope, parse_heartbeat
from ws_tracker.rules.errors import (
    WorkStudioAuthError,
    WorkStudioBadResponse,
    WorkStudioError,
    WorkStudioSchemaError,
    WorkStudioHTTPError,
    WorkStudioUnavailable,
    describe_call,
)
from ws_tracker.workstudio import protocol as ddo

__all__ = ["WorkStudioClient", "parse_retry_after"]

_TRANSIENT_EXCEPTIONS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_CTE = re.compile(r"^\s*WITH\b", re.IGNORECASE)


class _Secret:
    """Holds a secret; its repr and str are masked so it cannot leak by accident."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date); None when absent/unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max((when - now).total_seconds(), 0.0)


class RateLimiter:
    """Paces request starts to at most ``per_second`` across all threads of one client.

    Politeness by design: the service is shared and slow, so however many fetches run at once
    (bounded concurrency), their starts are spaced evenly instead of arriving in bursts.
    """

    def __init__(self, per_second: float | None, *, sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if per_second is not None and per_second <= 0:
            raise ValueError("requests per second must be positive (or None for no limit)")
        self.interval = 1.0 / per_second if per_second else 0.0
        self._sleep = sleep
        self._monotonic = monotonic
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for this request's slot; returns the seconds waited."""
        if not self.interval:
            return 0.0
        with self._lock:
            now = self._monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        wait = start - now
        if wait > 0:
            self._sleep(wait)
        return wait


class WorkStudioClient:
    """A synchronous DDOProtocol client. Use as a context manager, or call :meth:`close`.

    Thread-safe: the planned-unit fetches share one client (one connection pool, one rate
    limit) across a bounded pool of threads.
    """

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        query_timeout: float = 120.0,
        max_attempts: int = 5,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
        logger: logging.Logger | logging.LoggerAdapter | None = None,
        clock: Callable[[], datetime] | None = None,
        requests_per_second: float | None = None,
        max_connections: int = 8,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.username = username
        self._password = _Secret(password)
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._sleep = sleep
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._log = logger or logging.getLogger(__name__)
        self._timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        self._query_timeout = httpx.Timeout(query_timeout, connect=connect_timeout)
        self._http = httpx.Client(
            auth=httpx.BasicAuth(username, password),
            timeout=self._timeout,
            transport=transport,
            headers={"Accept": "application/json"},
            limits=httpx.Limits(max_connections=max_connections,
                                max_keepalive_connections=max_connections),
        )
        self._rate = RateLimiter(requests_per_second, sleep=sleep)
        self._lock = threading.Lock()
        self.calls = 0  # HTTP requests made (every attempt counts), for metrics
        self.auth_failed = False

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> WorkStudioClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return (f"WorkStudioClient(base_url={self.base_url!r}, username={self.username!r}, "
                f"calls={self.calls})")

    # -- public calls ----------------------------------------------------------------------
    def heartbeat(self) -> None:
        """POST HEARTBEAT (no body); returns when the service answers ``{"protocol": "OK"}``."""
        payload = self._call("HEARTBEAT", None, view=None, filter_value=None,
                             timeout=self._timeout)
        parse_heartbeat(self._scrub(payload), protocol="HEARTBEAT")

    def get_view_data(self, body: dict[str, Any]) -> DataSet:
        """POST a GETVIEWDATA body (see ``protocol.circuit_list_request``) and parse it."""
        body = dict(body)
        body.setdefault("Protocol", "GETVIEWDATA")
        if str(body["Protocol"]).upper() != "GETVIEWDATA":
            raise ValueError(f"get_view_data needs a GETVIEWDATA body, not {body['Protocol']!r}")
        view = body.get("ViewDefinitionGuid")
        view_filter = body.get("ViewFilter") or {}
        filter_value = view_filter.get("FilterValue") if isinstance(view_filter, dict) else None
        payload = self._call("GETVIEWDATA", body, view=view, filter_value=filter_value,
                             timeout=self._timeout)
        return parse_envelope(self._scrub(payload), protocol="GETVIEWDATA", view=view)

    def get_query(self, sql: str) -> DataSet:
        """Run read-only T-SQL through GETQUERY (credentials repeated in DBParameters).

        The SQL goes in the body's ``SQL`` key. A query starting with ``WITH`` is refused:
        GETQUERY silently returns nothing for CTEs, which would read as "no rows".
        """
        if _CTE.match(sql):
            raise ValueError("GETQUERY silently returns no rows for CTEs (WITH ... AS); "
                             "rewrite the query with subqueries")
        body = {
            "Protocol": "GETQUERY",
            "SQL": sql,
            "DBParameters": (f"USER NAME={self.username}\r\n"
                             f"PASSWORD={self._password.reveal()}\r\n"),
            "ResultFormat": "DDOTable",
        }
        payload = self._call("GETQUERY", body, view=None, filter_value=None,
                             timeout=self._query_timeout)
        return parse_envelope(self._scrub(payload), protocol="GETQUERY")

    def check_credentials(self) -> None:
        """The spec's credential check: GETQUERY ``SELECT TOP 1 1 AS test``."""
        self.get_query("SELECT TOP 1 1 AS test")

    def circuits_by_status(self, status: str) -> DataSet:
        """The circuit list view filtered by one job status (ACTIV, QC, ...)."""
        dataset = self.get_view_data(ddo.circuit_list_request(status))
        _require(dataset, ddo.CIRCUIT_LIST_REQUIRED, ddo.CIRCUIT_LIST_HEADING,
                 ddo.CIRCUIT_LIST_VIEW, f"status {status}")
        return dataset

    def planned_units(self, work_order: str) -> DataSet:
        """The planned-units view for one work order (all its jobs; split by SS_EXT)."""
        dataset = self.get_view_data(ddo.planned_units_request(work_order))
        _require(dataset, ddo.PLANNED_UNITS_REQUIRED,
                 ddo.PLANNED_UNITS_HEADING + list(ddo.PLANNED_UNITS_OPTIONAL),
                 ddo.PLANNED_UNITS_VIEW, f"work order {work_order}")
        return dataset

    # -- internals -------------------------------------------------------------------------
    def _redact(self, text: str) -> str:
        secret = self._password.reveal()
        return text.replace(secret, "***") if secret else text

    def _scrub(self, payload: Any) -> Any:
        """Redact the password from an envelope's top-level strings (errorMessage, ...).

        Done before parsing so that no exception holding the secret is ever created (one
        rebuilt afterwards would still carry the original in ``__context__``). Rows are nested
        and left alone: data never legitimately contains the password.
        """
        if not isinstance(payload, dict):
            return payload
        return {k: self._redact(v) if isinstance(v, str) else v for k, v in payload.items()}

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        delay = min(self.backoff_base * 2 ** (attempt - 1), self.backoff_max)
        if retry_after is not None:
            delay = min(max(delay, retry_after), self.backoff_max * 2)
        return delay

    def _call(
        self,
        protocol: str,
        body: dict[str, Any] | None,
        *,
        view: str | None,
        filter_value: str | None,
        timeout: httpx.Timeout,
    ) -> Any:
        """POST with retries; returns the decoded JSON payload (possibly None)."""
        call = describe_call(protocol, view, filter_value)
        if self.auth_failed:
            raise WorkStudioAuthError(protocol, self.username, view)
        url = f"{self.base_url}/DDOProtocol/{protocol}"
        last_cause = "no attempt made"
        for attempt in range(1, self.max_attempts + 1):
            self._rate.acquire()
            with self._lock:
                self.calls += 1
            retry_after: float | None = None
            try:
                response = self._http.post(url, json=body, timeout=timeout)
            except _TRANSIENT_EXCEPTIONS as exc:
                last_cause = self._redact(f"{type(exc).__name__}: {exc}")
            except httpx.HTTPError as exc:
                # Unsupported scheme, invalid URL, ...: configuration, not the weather.
                raise WorkStudioError(
                    self._redact(f"{call} could not be sent: {type(exc).__name__}: {exc}")
                ) from None
            else:
                status = response.status_code
                if status == 401:
                    self.auth_failed = True
                    raise WorkStudioAuthError(protocol, self.username, view)
                if status == 429 or status >= 500:
                    last_cause = f"HTTP {status}"
                    retry_after = parse_retry_after(response.headers.get("Retry-After"),
                                                    self._clock())
                elif not 200 <= status < 300:
                    detail = self._redact(response.text[:200]) if response.content else ""
                    raise WorkStudioHTTPError(protocol, view, filter_value, status, detail)
                else:
                    return self._decode_json(response, protocol, view)
            if attempt == self.max_attempts:
                break
            delay = self._backoff(attempt, retry_after)
            self._log.warning(
                "WorkStudio %s: attempt %d/%d failed (%s); retrying in %.1f s",
                call, attempt, self.max_attempts, last_cause, delay,
            )
            self._sleep(delay)
        raise WorkStudioUnavailable(protocol, view, filter_value, self.max_attempts, last_cause)

    @staticmethod
    def _decode_json(response: httpx.Response, protocol: str, view: str | None) -> Any:
        if not response.content.strip():
            raise WorkStudioBadResponse(protocol, view, f"empty body (HTTP {response.status_code})")
        try:
            return response.json()
        # JSONDecodeError and UnicodeDecodeError are ValueErrors; a body nested deeper than the
        # parser's recursion limit raises RecursionError: all are a bad response.
        except (ValueError, RecursionError):
            ctype = response.headers.get("Content-Type", "?")
            raise WorkStudioBadResponse(
                protocol, view, f"body is not JSON (HTTP {response.status_code}, {ctype})"
            ) from None


def _require(dataset: DataSet, required, known, view: str, what: str) -> None:
    """A heading that lacks a column we read is a schema change: fail before any write.

    An empty answer with no heading at all carries no rows to misread and passes.
    """
    if not dataset.heading and not dataset.rows:
        return
    missing = [c for c in required if c not in set(dataset.heading)]
    if missing:
        new = [c for c in dataset.heading if c not in set(known)]
        raise WorkStudioSchemaError(
            "GETVIEWDATA", view,
            f"the view's schema changed ({what}): missing required columns {missing}"
            + (f"; columns we do not know: {new[:5]}" if new else ""))
