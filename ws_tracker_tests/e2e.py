"""Helpers for end-to-end tests: the simulator over real HTTP and one materialization."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

import dagster as dg
import sqlalchemy as sa

from ws_tracker.pipeline.assets import DAILY_ASSETS, circuits, planned_unit_captures
from ws_tracker.pipeline.checks import CHECKS

DAILY_CHECK_KEYS = {key for c in CHECKS for key in c.check_keys
                    if key.asset_key in {a.key for a in DAILY_ASSETS}}
from ws_tracker.pipeline.resources import ClockResource
from ws_tracker.simulator.server import SimulatorServer
from ws_tracker.simulator.world import World, WorldConfig
from ws_tracker.warehouse.resource import WarehouseResource
from ws_tracker.workstudio.resource import WorkStudioResource

NY = ZoneInfo("America/New_York")
USER = "ASPLUNDH\\e2e"
PASSWORD = "e2e-Secret-Pa55"
SYNC_TIME = time(17, 30)


def sync_instant(day: date) -> datetime:
    return datetime.combine(day, SYNC_TIME, NY).astimezone(timezone.utc)


@dataclass
class Harness:
    """A simulator and a database; ``run(day)`` syncs as the pipeline would at 17:30 that day."""

    server: SimulatorServer
    world: World
    db_url: str
    password: str = PASSWORD
    max_attempts: int = 2
    read_timeout: float = 60.0

    def run(self, day: date, *, force: bool = False, trigger: str = "scheduled",
            raise_on_error: bool = True, run_as: str | None = None,
            at: datetime | None = None) -> dg.ExecuteInProcessResult:
        """Run every asset for ``day``, at 17:30 New York that day unless ``at`` says when."""
        at = at or sync_instant(day)
        self.world.set_clock(at)
        resources = {
            "workstudio": WorkStudioResource(base_url=self.server.base_url, username=USER,
                                             password=self.password, backoff_base=0.01,
                                             backoff_max=0.05, max_attempts=self.max_attempts,
                                             read_timeout=self.read_timeout,
                                             requests_per_second=1000.0),
            "warehouse": WarehouseResource(database_url=self.db_url),
            "clock": ClockResource(frozen_at=at.isoformat()),
        }
        run_config = {"ops": {
            "circuits": {"config": {"force": force, "run_as": run_as}},
            "planned_unit_captures": {"config": {"force": force, "run_as": run_as}},
        }}
        # The sync trigger is derived from how Dagster launched the run: the tags a schedule
        # or a sensor puts on it, none for a person.
        tags = {"scheduled": {"dagster/schedule_name": "unit_sync_schedule"},
                "workflow_event": {"dagster/sensor_name": "workflow_stage_sensor"},
                "manual": {}}[trigger]
        checks = [c for c in CHECKS if not c.check_keys.isdisjoint(DAILY_CHECK_KEYS)]
        return dg.materialize([circuits, planned_unit_captures, *DAILY_ASSETS, *checks],
                              partition_key=day.isoformat(), resources=resources,
                              run_config=run_config, raise_on_error=raise_on_error, tags=tags)


def start_harness(db_url: str, accounts: dict | None = None, **world_kwargs) -> Harness:
    world = World(WorldConfig(**world_kwargs))
    server = SimulatorServer(world, accounts={USER: PASSWORD, **(accounts or {})}).start()
    return Harness(server, world, db_url)


def dump_tables(engine: sa.Engine, tables: list[str]) -> dict[str, list[tuple]]:
    """Every row of each table, ordered by id: the thing a re-run must leave as it was."""
    out = {}
    with engine.connect() as conn:
        for table in tables:
            out[table] = [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY id"))]
    return out


def value_rows(engine: sa.Engine, tables, volatile) -> dict[str, list[tuple]]:
    """Each table's rows without the ``volatile`` columns (surrogate ids, run ids, write times),
    as sorted tuples of reprs: what two builds of the same facts must agree on."""
    out = {}
    with engine.connect() as conn:
        for table in tables:
            result = conn.execute(sa.text(f"SELECT * FROM {table}"))
            keep = [i for i, c in enumerate(result.keys()) if c not in volatile]
            out[table] = sorted(tuple(repr(r[i]) for i in keep) for r in result)
    return out
