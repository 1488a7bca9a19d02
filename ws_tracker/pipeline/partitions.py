"""The one daily and the one weekly partitions definition (America/New_York).

Defined once: mixing start dates splits backfills into odd chunks. end_offset=1 makes today's
partition available, so the morning and afternoon runs can build today's numbers.
"""

from __future__ import annotations

import dagster as dg

TIMEZONE = "America/New_York"
START_DATE = "2025-01-01"

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=START_DATE, timezone=TIMEZONE, end_offset=1
)

# Weeks run Sunday to Saturday (business-rules.md); the partition key is the Sunday and
# week_ending is the Saturday. 2024-12-29 is the Sunday on or before START_DATE's week.
weekly_partitions = dg.WeeklyPartitionsDefinition(
    start_date="2024-12-29", timezone=TIMEZONE, day_offset=0, end_offset=1
)
