"""Resources that are not an edge of their own: the pipeline clock."""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg


class ClockResource(dg.ConfigurableResource):
    """When the live assets say they observed WorkStudio.

    Production leaves ``frozen_at`` empty (real UTC time). Tests and the bundled simulator set
    it, so that the simulated world and the pipeline agree on what "now" is.
    """

    frozen_at: str | None = None

    def now(self) -> datetime:
        if not self.frozen_at:
            return datetime.now(timezone.utc)
        value = datetime.fromisoformat(self.frozen_at)
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)
