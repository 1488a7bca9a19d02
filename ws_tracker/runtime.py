"""What the entry points share: resolve the database, Dagster's home and storage, WorkStudio.

Zero-setup defaults: no WS_TRACKER_DATABASE_URL -> the embedded PostgreSQL under
WS_TRACKER_HOME; no DAGSTER_PG_URL -> database ``dagster`` on the warehouse's server; no
DAGSTER_HOME -> WS_TRACKER_HOME/dagster with the repository's dagster.yaml; no
WORKSTUDIO_BASE_URL -> the bundled simulator on a free loopback port. Each default is written
into os.environ so child processes (``dagster dev``) see the same choices.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from ws_tracker import config
from ws_tracker.warehouse.engine import ensure_database, redact, with_database
from ws_tracker.warehouse.resource import resolve_database_url
from ws_tracker.workstudio.resource import ENV_RATE

NY = ZoneInfo(config.TIMEZONE)
REPO_ROOT = Path(__file__).resolve().parent.parent
# When the bundled simulator stands in for WorkStudio and a past day is asked for, the world
# and the pipeline clock are set to that day's afternoon sync time.
SIMULATED_SYNC_TIME = config.EVENING_SYNC_TIME


@dataclass
class Runtime:
    database_url: str
    dagster_pg_url: str
    dagster_home: Path
    workstudio_base_url: str | None
    simulator: object | None = None  # SimulatorServer when we started one
    frozen_at: str | None = None  # the pipeline clock, when pinned
    _saved_env: dict[str, str | None] | None = None

    def describe(self) -> dict[str, str]:
        return {
            "warehouse": redact(self.database_url),
            "dagster storage": redact(self.dagster_pg_url),
            "DAGSTER_HOME": str(self.dagster_home),
            "WorkStudio": self.workstudio_base_url or "(not configured)",
            "simulator": "bundled, started by this command" if self.simulator else "no",
        }

    def close(self) -> None:
        """Stop what this runtime started and restore the environment it changed."""
        if self.simulator is not None:
            self.simulator.stop()
            self.simulator = None
        for key, value in (self._saved_env or {}).items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = None

    def __enter__(self) -> "Runtime":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def today_ny() -> date:
    return datetime.now(NY).date()


def dagster_yaml_source() -> Path:
    path = REPO_ROOT / "dagster.yaml"
    if not path.exists():
        raise FileNotFoundError(
            f"dagster.yaml not found at {path}; set DAGSTER_HOME to a directory holding one"
        )
    return path


def prepare_dagster(database_url: str) -> tuple[str, Path]:
    """Set DAGSTER_PG_URL and DAGSTER_HOME (when unset) and return them."""
    pg_url = os.environ.get(config.ENV_DAGSTER_PG_URL, "").strip()
    if not pg_url:
        pg_url = with_database(database_url, "dagster")
        ensure_database(pg_url)
        os.environ[config.ENV_DAGSTER_PG_URL] = pg_url
    home_env = os.environ.get(config.ENV_DAGSTER_HOME, "").strip()
    if home_env:
        dagster_home = Path(home_env)
    else:
        dagster_home = config.home_dir() / "dagster"
        dagster_home.mkdir(parents=True, exist_ok=True)
        src = dagster_yaml_source()
        dst = dagster_home / "dagster.yaml"
        if not dst.exists() or dst.read_bytes() != src.read_bytes():
            shutil.copyfile(src, dst)
        os.environ[config.ENV_DAGSTER_HOME] = str(dagster_home)
    return pg_url, dagster_home


def start_simulator(clock: datetime | None = None, *, seed: int = 7, circuits: int = 150,
                    faults: list[str] | None = None):
    """Start the bundled WorkStudio simulator on a free loopback port (background thread)."""
    from ws_tracker.simulator.faults import FaultPlan
    from ws_tracker.simulator.server import SimulatorServer
    from ws_tracker.simulator.world import World, WorldConfig

    world = World(WorldConfig(seed=seed, circuits=circuits))
    if clock is not None:
        world.set_clock(clock)
    server = SimulatorServer(
        world, host="127.0.0.1", port=0,
        accounts={config.SIMULATOR_USERNAME: config.SIMULATOR_PASSWORD},
        faults=FaultPlan.from_specs(faults or [], seed=seed),
    ).start()
    return server


def prepare(*, day: date | None = None, need_workstudio: bool = True,
            migrate: bool = True, faults: list[str] | None = None) -> Runtime:
    """Resolve everything a command needs; start what is missing. ``faults`` are fault specs
    for the bundled simulator (refused against a real WorkStudio)."""
    from ws_tracker.simulator.faults import FaultPlan
    from ws_tracker.warehouse.migrate import upgrade

    if faults:
        FaultPlan.from_specs(faults)  # a bad spec fails before anything starts

    saved = {k: os.environ.get(k) for k in (
        config.ENV_DATABASE_URL, config.ENV_DAGSTER_PG_URL, config.ENV_DAGSTER_HOME,
        config.ENV_WS_BASE_URL, config.ENV_WS_USERNAME, config.ENV_WS_PASSWORD, ENV_RATE)}
    database_url = resolve_database_url()
    os.environ[config.ENV_DATABASE_URL] = database_url
    if migrate:
        upgrade(database_url)
    pg_url, dagster_home = prepare_dagster(database_url)
    runtime = Runtime(database_url, pg_url, dagster_home, None, _saved_env=saved)
    if not need_workstudio:
        return runtime
    settings = config.workstudio_settings()
    if settings.configured and faults:
        raise ValueError("--fault injects faults into the bundled simulator; WORKSTUDIO_BASE_URL "
                         "points at a real WorkStudio")
    if settings.configured:
        runtime.workstudio_base_url = settings.base_url
        missing = [n for n, v in ((config.ENV_WS_USERNAME, settings.username),
                                  (config.ENV_WS_PASSWORD, settings.password)) if not v]
        if missing:
            raise ValueError(f"WORKSTUDIO_BASE_URL is set but {', '.join(missing)} is not")
        return runtime
    clock = None
    if day is not None and day != today_ny():
        clock = datetime.combine(day, SIMULATED_SYNC_TIME, NY).astimezone(timezone.utc)
        runtime.frozen_at = clock.isoformat()
    runtime.simulator = start_simulator(clock, faults=faults)
    runtime.workstudio_base_url = runtime.simulator.base_url
    os.environ[config.ENV_WS_BASE_URL] = runtime.simulator.base_url
    os.environ[config.ENV_WS_USERNAME] = config.SIMULATOR_USERNAME
    os.environ[config.ENV_WS_PASSWORD] = config.SIMULATOR_PASSWORD
    # Our own simulator on loopback needs no politeness towards other tenants.
    os.environ.setdefault(ENV_RATE, "200")
    return runtime
