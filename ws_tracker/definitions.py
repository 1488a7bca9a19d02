"""The Dagster code location: merges assets, jobs and resources; no logic of its own.

Nothing here reads the environment or opens a connection at import time: EnvVar values are
resolved when a run starts, and the warehouse resolves its URL on first use.
"""

from __future__ import annotations

import dagster as dg

from ws_tracker.config import ENV_WS_BASE_URL, ENV_WS_PASSWORD, ENV_WS_USERNAME
from ws_tracker.pipeline.assets import ASSETS
from ws_tracker.pipeline.checks import CHECKS
from ws_tracker.pipeline.import_sensor import IMPORT_JOBS, IMPORT_SENSORS
from ws_tracker.pipeline.jobs import JOBS
from ws_tracker.pipeline.resources import ClockResource
from ws_tracker.pipeline.schedules import SCHEDULES
from ws_tracker.pipeline.sensors import SENSORS
from ws_tracker.warehouse.resource import WarehouseResource
from ws_tracker.workstudio.resource import WorkStudioResource


def build_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=ASSETS,
        asset_checks=CHECKS,
        jobs=JOBS + IMPORT_JOBS,
        schedules=SCHEDULES,
        sensors=SENSORS + IMPORT_SENSORS,
        resources={
            "workstudio": WorkStudioResource(
                base_url=dg.EnvVar(ENV_WS_BASE_URL),
                username=dg.EnvVar(ENV_WS_USERNAME),
                password=dg.EnvVar(ENV_WS_PASSWORD),
            ),
            "warehouse": WarehouseResource(),
            "clock": ClockResource(),
        },
    )


defs = build_definitions()
