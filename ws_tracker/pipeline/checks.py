"""Asset checks: the rules a derived number must keep, checked for the days a run built.

Blocking where a wrong number would spread downstream (the rollups read circuit_aggregates),
warning otherwise. Each check names the offending rows in its metadata.
"""

from collections.abc import Callable
from datetime import date

import dagster as dg

from ws_tracker.pipeline.assets import (
    circuit_aggregates,
    circuit_snapshots,
    planner_daily_aggregates,
    planner_weekly_aggregates,
    regional_daily_aggregates,
)
from ws_tracker.pipeline.partitions import daily_partitions, weekly_partitions
from ws_tracker.warehouse import checks as rules
from ws_tracker.warehouse.resource import WarehouseResource

# Check names, as the UI and alerts show them.
PERMISSIONS_WITHIN_TOTAL = "permissions_within_total"
TYPE_COUNTS_SUM_TO_TOTAL = "type_counts_sum_to_total"
NO_DUPLICATE_KEYS = "no_duplicate_keys"
SNAPSHOTS_COVER_OPEN_CIRCUITS = "snapshots_cover_open_circuits"
EXCLUDED_CIRCUITS_LEFT_OUT = "excluded_circuits_left_out"
WEEKLY_SUMS_MATCH_DAYS = "weekly_sums_match_days"


def run_partition_keys(tags, partitions_def=daily_partitions) -> list[str]:
    """The daily partition keys a run built, from its tags (one key or a range).

    The checks themselves are not partitioned (partitioned checks are a Dagster preview
    feature): they check the days the run that executes them built.
    """
    if "dagster/partition" in tags:
        return [tags["dagster/partition"]]
    start = tags.get("dagster/asset_partition_range_start")
    end = tags.get("dagster/asset_partition_range_end")
    if start and end:
        return list(partitions_def.get_partition_keys_in_range(dg.PartitionKeyRange(start, end)))
    return []


def _days(context: dg.AssetCheckExecutionContext):
    windows = [daily_partitions.time_window_for_partition_key(k)
               for k in run_partition_keys(context.run.tags)]
    return [w.start.date() for w in windows], [w.end for w in windows]


def _result(violations: list[dict], what: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=not violations,
        description=f"{len(violations)} row(s) break the rule: {what}" if violations else what,
        metadata={"violations": dg.MetadataValue.int(len(violations)),
                  "examples": dg.MetadataValue.json(violations[:5])},
    )


def _check(asset, name: str, blocking: bool, what: str,
           rule: Callable[..., list[dict]]) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=asset, name=name, blocking=blocking, description=what)
    def _fn(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
        days, ends = _days(context)
        with warehouse.get_engine().connect() as conn:
            return _result(rule(conn, days, ends), what)

    return _fn


@dg.asset_check(asset=planner_weekly_aggregates, name=WEEKLY_SUMS_MATCH_DAYS, blocking=True,
                description="weekly units, feet and days worked equal the sums of their days")
def planner_weekly_sums_match_days(context: dg.AssetCheckExecutionContext,
                                   warehouse: WarehouseResource) -> dg.AssetCheckResult:
    weeks = [date.fromisoformat(k) for k in run_partition_keys(context.run.tags, weekly_partitions)]
    with warehouse.get_engine().connect() as conn:
        return _result(rules.weekly_sums_match_days(conn, weeks),
                       "weekly units, feet and days worked equal the sums of their days")


CHECKS = [
    planner_weekly_sums_match_days,
    _check(circuit_aggregates, PERMISSIONS_WITHIN_TOTAL, True,
           "approved + pending + refused <= total units",
           lambda conn, days, ends: rules.permissions_within_total(conn, days)),
    _check(circuit_aggregates, TYPE_COUNTS_SUM_TO_TOTAL, True,
           "per-type unit counts sum to total units",
           lambda conn, days, ends: rules.type_counts_sum_to_total(conn, days)),
    _check(circuit_aggregates, NO_DUPLICATE_KEYS, True,
           "one row per circuit, day and is_rollup",
           lambda conn, days, ends: rules.duplicate_keys(
               conn, "circuit_aggregates", ("circuit_id", "aggregate_date", "is_rollup"),
               "aggregate_date", days)),
    _check(circuit_snapshots, SNAPSHOTS_COVER_OPEN_CIRCUITS, False,
           "every non-closed, non-excluded circuit has a daily snapshot for a built day",
           rules.snapshots_cover_open_circuits),
    _check(regional_daily_aggregates, EXCLUDED_CIRCUITS_LEFT_OUT, True,
           "regional unit totals are the sums over non-excluded circuits",
           lambda conn, days, ends: rules.regional_units_exclude_excluded(conn, days)),
    _check(planner_daily_aggregates, EXCLUDED_CIRCUITS_LEFT_OUT, True,
           "no planner's work names an excluded or deleted circuit",
           lambda conn, days, ends: rules.planner_work_excludes_excluded(conn, days)),
    _check(planner_daily_aggregates, NO_DUPLICATE_KEYS, True,
           "one row per planner, region and day",
           lambda conn, days, ends: rules.duplicate_keys(
               conn, "planner_daily_aggregates", ("planner_name", "region_id", "aggregate_date"),
               "aggregate_date", days)),
]
