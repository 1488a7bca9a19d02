"""Writing CSV files in the shape of WorkStudio's own exports (tests, benchmarks, demos).

A saved view is its heading and its rows as the API sends them: wrapped dates, "" for NULL,
trailing spaces, numbers sometimes as text; the file adds a UTF-8 byte order mark, CRLF line
ends and quotes around fields that need them. Geometry cells are written as their JSON text.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ws_tracker.workstudio.protocol import CIRCUIT_LIST_HEADING, SYNCED_STATUSES

__all__ = ["cell", "world_exports", "write_csv"]

NY = ZoneInfo("America/New_York")


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def write_csv(path: str | Path, heading: list[str], rows: Iterable[list[Any]], *,
              bom: bool = True) -> int:
    """Write one export; returns the number of data rows."""
    n = 0
    with open(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\r\n")
        writer.writerow(heading)
        for row in rows:
            writer.writerow([cell(v) for v in row])
            n += 1
    return n


def world_exports(world, day: date, directory: str | Path, *,
                  unit_statuses: tuple[str, ...] = ("ACTIV", "QC", "REWRK"),
                  at: datetime | None = None) -> tuple[Path, Path]:
    """The circuit list (all synced statuses) and the planned units of the jobs in
    ``unit_statuses`` (what a live sync captures), as the simulator ``world`` shows them at
    17:30 New York on ``day``: ``circuits_<day>.csv`` and ``planned_units_<day>.csv``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    world.set_clock(at or datetime.combine(day, datetime.min.time().replace(hour=17, minute=30),
                                           NY).astimezone(timezone.utc))
    circuit_rows: list[list[Any]] = []
    for status in SYNCED_STATUSES:
        circuit_rows += world.circuit_rows(status)
    circuits_path = directory / f"circuits_{day.isoformat()}.csv"
    write_csv(circuits_path, list(CIRCUIT_LIST_HEADING), circuit_rows)
    wanted = {(r[1], r[2] or "@") for r in circuit_rows if r[4] in unit_statuses}
    heading = world.planned_units_heading()
    wo_col, ext_col = heading.index("SS_WO"), heading.index("SS_EXT")

    def unit_rows():
        for work_order in sorted({wo for wo, _ in wanted}):
            for row in world.planned_unit_rows(work_order):
                if (row[wo_col], row[ext_col] or "@") in wanted:
                    yield row

    units_path = directory / f"planned_units_{day.isoformat()}.csv"
    write_csv(units_path, heading, unit_rows())
    return circuits_path, units_path
