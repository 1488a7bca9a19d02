"""Workflow stages (circuit_ui_states.workflow_stage), per business-rules.md.

The stage follows api_status (ACTIV -> active, QC -> qc, REWRK -> rework, CLOSE -> closed); an
ACTIV circuit that is 100 % planned with pending permission units is pending_permissions. A
stage a person set wins until the API status changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from ws_tracker.rules.aggregates import permission_class
from ws_tracker.rules.catalog import STAGE_FOR_STATUS, WORKFLOW_STAGES

PENDING_PERMISSIONS = "pending_permissions"
FULLY_PLANNED_PERCENT = 100


def pending_units(permission_statuses: Iterable[str | None]) -> int:
    """How many units await a permission ("", None or "pending", as counted in aggregates)."""
    return sum(1 for s in permission_statuses if permission_class(s) == "pending")


def derived_stage(api_status: str, percent_complete: float | None, pending: int) -> str:
    """The stage the API state implies."""
    stage = STAGE_FOR_STATUS.get(api_status, "active")
    if (stage == "active" and percent_complete is not None
            and percent_complete >= FULLY_PLANNED_PERCENT and pending > 0):
        return PENDING_PERMISSIONS
    return stage


@dataclass(frozen=True)
class StageDecision:
    stage: str          # the stage the circuit should have
    source: str         # 'api' or 'person'
    changed: bool       # stage differs from the current one (a change to record)
    rewrite: bool       # the row needs writing (stage, source or stage_api_status moved)


def decide_stage(current: str | None, source: str | None, stage_api_status: str | None,
                 api_status: str, derived: str) -> StageDecision:
    """What a sync does with a circuit's stage.

    ``current``/``source``/``stage_api_status`` describe the stored UI state (None: none yet).
    A person's stage is kept while the API status is the one it was set under; once the
    status moves, the derived stage takes over (and the stage becomes the API's again).
    """
    if current is None:
        return StageDecision(derived, "api", True, True)
    if source == "person" and stage_api_status == api_status:
        return StageDecision(current, "person", False, False)
    return StageDecision(derived, "api", derived != current,
                         derived != current or source != "api" or stage_api_status != api_status)


def check_stage(stage: str) -> str:
    """A stage name as a person types it (case and spaces ignored), or ValueError."""
    name = stage.strip().lower().replace("-", "_").replace(" ", "_")
    if name not in WORKFLOW_STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(WORKFLOW_STAGES)}")
    return name
