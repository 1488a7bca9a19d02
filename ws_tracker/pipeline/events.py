"""Our events (ws_tracker.warehouse.events) as Dagster events, visible in the run's log.

Each event kind a step produced becomes one AssetObservation of the step's asset, with the
kind, how many there were and the payloads (the same JSON listeners get from NOTIFY). One
observation per kind rather than one per circuit keeps a 5,000-circuit sync's event log
readable; nothing is dropped, the payloads are all there.
"""

from __future__ import annotations

from typing import Any, Iterable

import dagster as dg


def log_events(context: dg.AssetExecutionContext, events: Iterable[dict[str, Any]]) -> int:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_kind.setdefault(event["event"], []).append(event)
    for kind, items in by_kind.items():
        metadata: dict[str, Any] = {
            "event": dg.MetadataValue.text(kind),
            "count": dg.MetadataValue.int(len(items)),
            "payloads": dg.MetadataValue.json(items),
        }
        context.log_event(dg.AssetObservation(
            asset_key=context.asset_key,
            partition=context.partition_key if context.has_partition_key else None,
            description=f"ws_tracker event {kind} x{len(items)}", metadata=metadata))
    return sum(len(v) for v in by_kind.values())
