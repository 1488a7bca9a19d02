"""WS-Tracker: WorkStudio (DDOProtocol) -> Dagster -> PostgreSQL.

Layers, imports pointing down only:
1. ``ws_tracker.rules``      pure rules, no I/O (decoding, normalisation, aggregation)
2. ``ws_tracker.workstudio`` and ``ws_tracker.warehouse``: the edges (HTTP client, PostgreSQL)
3. ``ws_tracker.pipeline``   Dagster definitions (assets, jobs, partitions, resources)
4. entry points: ``ws_tracker.definitions``, ``ws_tracker.cli``, ``ws_tracker.simulator``
"""

__version__ = "0.1.0"
