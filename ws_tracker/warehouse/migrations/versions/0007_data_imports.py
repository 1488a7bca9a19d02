"""data_imports and the import staging tables (issue 8). Filled in by the imports work."""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0007_data_imports"
down_revision: str | Sequence[str] | None = "0006_quarantined_rows"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
