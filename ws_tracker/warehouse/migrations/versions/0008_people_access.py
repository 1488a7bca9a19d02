"""People, exclusion audit and region-scoped access (issue 9). Filled in by the people work."""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0008_people_access"
down_revision: str | Sequence[str] | None = "0007_data_imports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
