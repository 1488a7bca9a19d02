"""Dagster resource that builds :class:`WorkStudioClient` instances.

Built by the definitions with ``dg.EnvVar("WORKSTUDIO_BASE_URL")`` etc., so no secret is read
at import time and none is shown in the UI (Dagster shows the variable's name).
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from ws_tracker.workstudio.client import WorkStudioClient


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
    # Politeness defaults for a shared, slow service: at most 4 calls in flight and request
    # starts spaced to 5 per second. A day's sync is then bounded by the API's latency.
    max_concurrency: int = Field(default=4, ge=1, description="Planned-unit fetches in flight")
    requests_per_second: float = Field(default=5.0, gt=0, description="Request starts per second")

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
            requests_per_second=self.requests_per_second,
            max_connections=self.max_concurrency,
            logger=dg.get_dagster_logger("ws_tracker.workstudio"),
        )
