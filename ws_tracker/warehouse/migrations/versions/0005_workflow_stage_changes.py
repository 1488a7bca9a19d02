"""Workflow stages: who set a stage, and every stage change as a row.

- ``circuit_ui_states.stage_source``: 'api' (derived from the API state by a sync) or
  'person' (set with ``ws-tracker circuits stage``). A person's stage wins until the API
  status changes; ``stage_changed_by`` names the person when ``--by`` was given.
- ``circuit_ui_states.stage_api_status``: the circuit's api_status when the stage was set, so
  "until the API status changes" is a comparison, whoever looks.
- ``circuit_stage_changes``: one row per stage change (from, to, source, when, by, run). Its
  id is the workflow-stage sensor's cursor; writers take a transaction-level advisory lock
  before inserting, so ids become visible in id order and the sensor never skips one.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import TIMESTAMP

revision: str = "0005_workflow_stage_changes"
down_revision: str | Sequence[str] | None = "0004_analyst_views"
branch_labels = None
depends_on = None

TSTZ = TIMESTAMP(timezone=True)
STAGES = "('active', 'pending_permissions', 'qc', 'rework', 'closed')"


def upgrade() -> None:
    op.add_column("circuit_ui_states", sa.Column(
        "stage_source", sa.String(10), nullable=False, server_default="api"))
    op.create_check_constraint("circuit_ui_states_stage_source_check", "circuit_ui_states",
                               "stage_source IN ('api', 'person')")
    op.add_column("circuit_ui_states", sa.Column("stage_api_status", sa.String(20), nullable=True))
    # Existing rows: a stage_changed_by means a person set it; the status it was set under is
    # the circuit's current one (the best knowledge there is).
    op.execute("UPDATE circuit_ui_states SET stage_source = 'person'"
               " WHERE stage_changed_by IS NOT NULL")
    op.execute("UPDATE circuit_ui_states u SET stage_api_status = c.api_status"
               " FROM circuits c WHERE c.id = u.circuit_id")

    op.create_table(
        "circuit_stage_changes",
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
        sa.Column("circuit_id", sa.BigInteger, nullable=False),
        sa.Column("from_stage", sa.String(30), nullable=True),  # NULL: the circuit's first stage
        sa.Column("to_stage", sa.String(30), nullable=False),
        sa.Column("source", sa.String(10), nullable=False),
        sa.Column("api_status", sa.String(20), nullable=True),
        sa.Column("changed_at", TSTZ, nullable=False),
        sa.Column("changed_by", sa.BigInteger, nullable=True),
        sa.Column("dagster_run_id", sa.String(64), nullable=True),
        sa.Column("recorded_at", TSTZ, nullable=False, server_default=sa.text("now()")),
        sa.ForeignKeyConstraint(["circuit_id"], ["circuits.id"], ondelete="CASCADE",
                                name="circuit_stage_changes_circuit_id_foreign"),
        sa.ForeignKeyConstraint(["changed_by"], ["users.id"], ondelete="SET NULL",
                                name="circuit_stage_changes_changed_by_foreign"),
        sa.CheckConstraint(f"to_stage IN {STAGES}", name="circuit_stage_changes_to_stage_check"),
        sa.CheckConstraint(f"from_stage IS NULL OR from_stage IN {STAGES}",
                           name="circuit_stage_changes_from_stage_check"),
        sa.CheckConstraint("source IN ('api', 'person')", name="circuit_stage_changes_source_check"),
    )
    op.create_index("circuit_stage_changes_circuit_id_changed_at_index", "circuit_stage_changes",
                    ["circuit_id", "changed_at"])
    op.create_index("circuit_stage_changes_to_stage_id_index", "circuit_stage_changes",
                    ["to_stage", "id"])


def downgrade() -> None:
    op.drop_table("circuit_stage_changes")
    op.drop_constraint("circuit_ui_states_stage_source_check", "circuit_ui_states")
    op.drop_column("circuit_ui_states", "stage_api_status")
    op.drop_column("circuit_ui_states", "stage_source")
