"""quarantined_rows: every bad row a sync received, with why, where and the row itself.

A row that could not be used (no job GUID, no unit id: severity 'error', the row is not
stored) or that was stored with a replacement value (a number that does not parse stored as
0, a date that does not parse stored as NULL: severity 'warning') is kept here with the
reason, the column, the value, its 1-based row number in the response and the raw row, next
to the sync log that received it. Nothing is silently dropped; the sync log's summary counts
them and lists the first ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP

revision: str = "0006_quarantined_rows"
down_revision: str | Sequence[str] | None = "0005_workflow_stage_changes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quarantined_rows",
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
        sa.Column("sync_log_id", sa.BigInteger, nullable=True),
        sa.Column("dagster_run_id", sa.String(64), nullable=True),
        sa.Column("source", sa.String(30), nullable=False),  # circuit_list | planned_units
        sa.Column("view_guid", sa.String(64), nullable=True),
        sa.Column("filter_value", sa.String(100), nullable=True),  # status or work order
        sa.Column("row_number", sa.Integer, nullable=True),
        sa.Column("column_name", sa.Text, nullable=True),
        sa.Column("value", sa.Text, nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("code", sa.String(50), nullable=False),
        sa.Column("row_key", sa.String(100), nullable=True),  # job GUID or unit id, where known
        sa.Column("raw_row", JSONB, nullable=True),
        sa.Column("created_at", TIMESTAMP(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.ForeignKeyConstraint(["sync_log_id"], ["sync_logs.id"], ondelete="SET NULL",
                                name="quarantined_rows_sync_log_id_foreign"),
        sa.CheckConstraint("severity IN ('warning', 'error')", name="quarantined_rows_severity_check"),
    )
    op.create_index("quarantined_rows_sync_log_id_index", "quarantined_rows", ["sync_log_id"])
    op.create_index("quarantined_rows_created_at_index", "quarantined_rows", ["created_at"])


def downgrade() -> None:
    op.drop_table("quarantined_rows")
