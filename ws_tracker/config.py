"""Settings read from the environment at call time, never at import time.

Every environment variable the project reads is listed here (and in README.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import time
from pathlib import Path

ENV_DATABASE_URL = "WS_TRACKER_DATABASE_URL"
ENV_HOME = "WS_TRACKER_HOME"
ENV_DAGSTER_PG_URL = "DAGSTER_PG_URL"
ENV_DAGSTER_HOME = "DAGSTER_HOME"
ENV_WS_BASE_URL = "WORKSTUDIO_BASE_URL"
ENV_WS_USERNAME = "WORKSTUDIO_USERNAME"
ENV_WS_PASSWORD = "WORKSTUDIO_PASSWORD"

# The account the bundled simulator accepts, used when no WorkStudio is configured.
SIMULATOR_USERNAME = "ASPLUNDH\\wstracker"
SIMULATOR_PASSWORD = "wstracker-sim"

TIMEZONE = "America/New_York"
# The evening unit sync's time of day (New York): the instant a past day stands for, for a
# simulated run of that day (`ws-tracker run --date`) and for an import dated that day.
EVENING_SYNC_TIME = time(17, 30)


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def home_dir() -> Path:
    """WS_TRACKER_HOME (default ``.ws_tracker`` in the working directory), created if missing."""
    path = Path(_env(ENV_HOME) or ".ws_tracker").expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class WorkStudioSettings:
    base_url: str | None
    username: str | None
    password: str | None

    @property
    def configured(self) -> bool:
        return self.base_url is not None

    def __repr__(self) -> str:  # never show the password
        return f"WorkStudioSettings(base_url={self.base_url!r}, username={self.username!r})"


def workstudio_settings() -> WorkStudioSettings:
    return WorkStudioSettings(_env(ENV_WS_BASE_URL), _env(ENV_WS_USERNAME), _env(ENV_WS_PASSWORD))


def database_url_from_env() -> str | None:
    return _env(ENV_DATABASE_URL)
