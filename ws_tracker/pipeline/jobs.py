"""Jobs over the asset graph, and the run-queue tags that keep syncs from overlapping.

dagster.yaml limits each of the two tag keys below to one run at a time: a circuit-list sync
never overlaps another circuit-list sync, a planned-unit sync never overlaps another one
(whichever job or schedule launched them), and the shared WorkStudio never sees two of a kind.
"""

from __future__ import annotations

import dagster as dg

from ws_tracker.pipeline.assets import (
    circuit_aggregates,
    circuit_snapshots,
    circuits,
    planned_unit_captures,
    planner_daily_aggregates,
    planner_weekly_aggregates,
    regional_daily_aggregates,
    regional_weekly_aggregates,
)

DAILY_DERIVED = (circuit_aggregates, circuit_snapshots, planner_daily_aggregates,
                 regional_daily_aggregates)
from ws_tracker.pipeline.partitions import daily_partitions, weekly_partitions

CIRCUIT_SYNC_TAG = "ws_tracker/circuit_sync"
UNIT_SYNC_TAG = "ws_tracker/unit_sync"

daily_pipeline_job = dg.define_asset_job(
    name="daily_pipeline",
    description="Sync circuits and planned units from WorkStudio, then build that day's "
    "derived numbers. Partitioned by day (America/New_York).",
    selection=dg.AssetSelection.assets(circuits, planned_unit_captures, *DAILY_DERIVED),
    partitions_def=daily_partitions,
    tags={CIRCUIT_SYNC_TAG: "1", UNIT_SYNC_TAG: "1"},
)

circuit_sync_job = dg.define_asset_job(
    name="circuit_sync",
    description="Sync the circuit list of the statuses in the run config (default all four).",
    selection=dg.AssetSelection.assets(circuits),
    tags={CIRCUIT_SYNC_TAG: "1"},
)

unit_sync_job = dg.define_asset_job(
    name="unit_sync",
    description="Capture the planned units of the circuits that need it, then rebuild that "
    "day's derived numbers. Partitioned by day.",
    selection=dg.AssetSelection.assets(planned_unit_captures, *DAILY_DERIVED),
    partitions_def=daily_partitions,
    tags={UNIT_SYNC_TAG: "1"},
)

daily_snapshot_job = dg.define_asset_job(
    name="daily_snapshots",
    description="Rebuild one day's circuit_aggregates and circuit_snapshots from PostgreSQL "
    "(no WorkStudio call). Partitioned by day.",
    selection=dg.AssetSelection.assets(circuit_aggregates, circuit_snapshots),
    partitions_def=daily_partitions,
)

# Everything derived per day, rebuilt from PostgreSQL alone: what `ws-tracker backfill` runs
# (and what a data engineer selects for a backfill in the UI). Single-run backfill policies
# make a range one run.
DERIVED_DAILY_ASSETS = dg.AssetSelection.assets(*DAILY_DERIVED)

derived_daily_job = dg.define_asset_job(
    name="derived_daily",
    description="Rebuild the derived daily partitions (no WorkStudio call); a range runs as one "
    "run, each day in its own transaction.",
    selection=DERIVED_DAILY_ASSETS,
    partitions_def=daily_partitions,
)

DERIVED_WEEKLY_ASSETS = dg.AssetSelection.assets(planner_weekly_aggregates,
                                                 regional_weekly_aggregates)

derived_weekly_job = dg.define_asset_job(
    name="derived_weekly",
    description="Rebuild the weekly rollups (Sunday-Saturday) from the daily tables; a range "
    "runs as one run, each week in its own transaction.",
    selection=DERIVED_WEEKLY_ASSETS,
    partitions_def=weekly_partitions,
)

JOBS = [daily_pipeline_job, circuit_sync_job, unit_sync_job, daily_snapshot_job, derived_daily_job,
        derived_weekly_job]
