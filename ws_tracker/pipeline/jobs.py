"""Jobs over the asset graph."""

from __future__ import annotations

import dagster as dg

from ws_tracker.pipeline.assets import circuit_aggregates, circuits, planned_unit_captures
from ws_tracker.pipeline.partitions import daily_partitions

# Run-queue tag: dagster.yaml limits runs that carry it to one per value, so two WorkStudio
# syncs of the same kind never overlap.
WORKSTUDIO_TAG = "ws_tracker/workstudio"

daily_pipeline_job = dg.define_asset_job(
    name="daily_pipeline",
    description="Sync circuits and planned units from WorkStudio, then build that day's "
    "circuit_aggregates. Partitioned by day (America/New_York).",
    selection=dg.AssetSelection.assets(circuits, planned_unit_captures, circuit_aggregates),
    partitions_def=daily_partitions,
    tags={WORKSTUDIO_TAG: "daily_pipeline"},
)

JOBS = [daily_pipeline_job]
