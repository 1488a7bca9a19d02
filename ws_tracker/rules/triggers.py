"""Why a planned-unit capture was taken (planned_units_snapshots.snapshot_trigger).

Decided against the circuit's state at its previous capture, i.e. before this sync (the
earlier system compared the circuit with itself, so QC and milestone triggers never fired).
"""

from __future__ import annotations

RUN_TRIGGERS = ("workflow_event", "manual", "scheduled")


def decide_trigger(prev_status: str | None, prev_percent: float | None, status: str,
                   percent: float, run_trigger: str = "scheduled") -> str:
    """status_to_qc > milestone_100 > milestone_50 > the run's own trigger.

    With no previous capture nothing was crossed: the run's trigger applies.
    """
    if run_trigger not in RUN_TRIGGERS:
        raise ValueError(f"unknown run trigger {run_trigger!r}; expected one of {RUN_TRIGGERS}")
    if prev_status is not None:
        if status == "QC" and prev_status != "QC":
            return "status_to_qc"
        if prev_percent is not None:
            if prev_percent < 100 <= percent:
                return "milestone_100"
            if prev_percent < 50 <= percent:
                return "milestone_50"
    return run_trigger
