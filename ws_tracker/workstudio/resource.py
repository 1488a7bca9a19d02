"""Dagster resource that builds :class:`WorkStudioClient` instances.

Built by the definitions with ``dg.EnvVar("WORKSTUDIO_BASE_URL")`` etc., so no secret is read
at import time and none is shown in the UI (Dagster shows the variable's name).
"""

from __future__ import annotations

import os

import dagster as dg
from pydantic import Field

from ws_tracker.workstudio.client import WorkStudioClient

ENV_MAX_CONCURRENCY = "WORKSTUDIO_MAX_CONCURRENCY"
ENV_RATE = "WORKSTUDIO_REQUESTS_PER_SECOND"
# Politeness is the concurrency: at most 4 calls in flight, so a slow WorkStudio sees at most 4
# at a time. The rate limit is the safety net when answers come fast (or fail fast): 25 starts
# a second, which 4 calls in flight reach at 160 ms per call. At 5/s (the first default) the
# starts, not WorkStudio, set the pace: a fetch at 200 ms took 4x the ideal (BENCHMARKS.md).
DEFAULT_CONCURRENCY = 4
DEFAULT_RATE = 25.0


def _env_number(name: str, kind, default):
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a {kind.__name__}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {raw!r}")
    return value


class WorkStudioResource(dg.ConfigurableResource):
    """Connection settings for the WorkStudio DDOProtocol API."""

    base_url: str = Field(description="Service root; calls go to {base_url}/DDOProtocol/...")
    username: str = Field(description="DOMAIN\\user of the service account")
    # repr=False: a resource repr (logs, debuggers, errors) must never show the password.
    password: str = Field(repr=False, description="Password of the service account")
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    query_timeout: float = Field(default=120.0, description="Read timeout of GETQUERY calls")
    max_attempts: int = 5
    backoff_base: float = 1.0
    backoff_max: float = 30.0
    # Politeness for a shared, slow service: at most 4 calls in flight and at most 25 request
    # starts per second by default. None: WORKSTUDIO_MAX_CONCURRENCY /
    # WORKSTUDIO_REQUESTS_PER_SECOND (read when a client is built), else those defaults.
    max_concurrency: int | None = Field(default=None, ge=1,
                                        description="Planned-unit fetches in flight")
    requests_per_second: float | None = Field(default=None, gt=0,
                                              description="Request starts per second")

    def concurrency(self) -> int:
        return self.max_concurrency or _env_number(ENV_MAX_CONCURRENCY, int, DEFAULT_CONCURRENCY)

    def rate(self) -> float:
        return self.requests_per_second or _env_number(ENV_RATE, float, DEFAULT_RATE)

    def get_client(self, username: str | None = None, password: str | None = None) -> WorkStudioClient:
        """A new client (the caller closes it, e.g. ``with resource.get_client() as c:``).

        ``username``/``password`` replace the system credentials (a sync run as a user).
        """
        return WorkStudioClient(
            self.base_url,
            username or self.username,
            password if username else self.password,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            query_timeout=self.query_timeout,
            max_attempts=self.max_attempts,
            backoff_base=self.backoff_base,
            backoff_max=self.backoff_max,
            requests_per_second=self.rate(),
            max_connections=self.concurrency(),
            logger=dg.get_dagster_logger("ws_tracker.workstudio"),
        )
