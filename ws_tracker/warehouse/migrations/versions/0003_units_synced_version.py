"""circuits.last_planned_units_version: WSREQ_VERSION when the units were last fetched.

A circuit needs its planned units fetched again when SS_EDITDATE *or* WSREQ_VERSION moved
since its last capture (business-rules.md); the version half needs the value at that time.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_units_synced_version"
down_revision: str | Sequence[str] | None = "0002_reference_data"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("circuits", sa.Column("last_planned_units_version", sa.String(50), nullable=True))


def downgrade() -> None:
    op.drop_column("circuits", "last_planned_units_version")
