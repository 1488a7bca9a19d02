"""`ws-tracker import ...` (issue 8): registered into the main parser by ws_tracker.cli."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `import` command group to the top-level subparsers."""
