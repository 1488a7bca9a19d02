"""Reference data: unit types, permission statuses, API status configs, known regions.

Pure data, used by the aggregation rules, seeded into PostgreSQL by the migrations, and used by
the simulator to build its world. See ../shared/spec/workstudio-api.md ("Unit types").
"""

from __future__ import annotations

from dataclasses import dataclass

# category -> what a unit of that category measures (column of the planned-units view)
CATEGORY_MEASURE = {
    "VLG": "linear_ft",  # JOBVEGETATIONUNITS_LENGTHWRK, feet
    "VAR": "acres",  # JOBVEGETATIONUNITS_ACRES
    "VCT": "trees",  # JOBVEGETATIONUNITS_NUMTREES
    "VNW": "none",
    "VSA": "none",
}

UNIT_CODES_BY_CATEGORY: dict[str, tuple[str, ...]] = {
    "VLG": ("SPM", "SPB", "SPE", "MPM", "MPB", "MPE", "MPME", "MPBE", "MST", "OHT", "SIDET",
            "SOHT", "STB", "STM", "TTS"),
    "VAR": ("HCB", "BRUSH", "BRUSHTRIM", "MOW", "HERBNA", "HERBA", "HERBS", "Herb-Sub", "T&M"),
    "VCT": ("REM612", "REM1218", "REM1824", "REM2430", "REM3036", "REM36", "REM>30",
            "ASH612", "ASH1218", "ASH1824", "ASH2430", "ASH3036", "ASH36", "BTR", "VPS"),
    "VNW": ("NW", "NOT"),
    "VSA": ("SENSI",),
}

# code -> category; an unknown code still counts as a unit but measures nothing.
UNIT_CATEGORY: dict[str, str] = {
    code: category for category, codes in UNIT_CODES_BY_CATEGORY.items() for code in codes
}

# The categories the planned-units view returns (non-work VNW/VSA are excluded server-side).
WORK_CATEGORIES = ("VLG", "VAR", "VCT")

_DBH = {"612": (6, 12), "1218": (12, 18), "1824": (18, 24), "2430": (24, 30),
        "3036": (30, 36), "36": (36, None), ">30": (30, None)}


@dataclass(frozen=True)
class UnitType:
    code: str
    name: str
    category: str
    measurement_type: str  # linear_ft | acres | count | none
    dbh_min: float | None
    dbh_max: float | None
    species: str | None
    sort_order: int


def unit_types() -> list[UnitType]:
    """The unit_types reference rows, in catalogue order."""
    rows: list[UnitType] = []
    order = 0
    for category, codes in UNIT_CODES_BY_CATEGORY.items():
        measure = {"VLG": "linear_ft", "VAR": "acres", "VCT": "count"}.get(category, "none")
        for code in codes:
            order += 1
            dbh_min = dbh_max = None
            species = None
            for prefix in ("REM", "ASH"):
                if code.startswith(prefix) and code[len(prefix):] in _DBH:
                    dbh_min, dbh_max = _DBH[code[len(prefix):]]
                    species = "Ash" if prefix == "ASH" else None
            name = {
                "VLG": f"{code} (linear feet)",
                "VAR": f"{code} (acres)",
                "VCT": f"{code} (trees)",
                "VNW": f"{code} (no work)",
                "VSA": f"{code} (sensitive)",
            }[category]
            rows.append(UnitType(code, name, category, measure, dbh_min, dbh_max, species, order))
    return rows


# Permission statuses as WorkStudio writes them (VEGUNIT_PERMSTAT); "" means Pending.
PERMISSION_STATUSES: tuple[tuple[str, str, str], ...] = (
    # (code, name, color)
    ("pending", "Pending", "#f59e0b"),
    ("approved", "Approved", "#16a34a"),
    ("refused", "Refused", "#dc2626"),
    ("no_contact", "No Contact", "#6b7280"),
    ("deferred", "Deferred", "#8b5cf6"),
    ("ppl_approved", "PPL Approved", "#0ea5e9"),
    ("na", "N/A", "#9ca3af"),
)

# api_status -> (display name, sync frequency, sync planned units)
API_STATUS_CONFIGS: tuple[tuple[str, str, str, bool], ...] = (
    ("ACTIV", "In Progress", "twice_daily", True),
    ("QC", "QC", "weekly", True),
    ("REWRK", "Rework", "weekly", True),
    ("CLOSE", "Closed", "weekly", False),
)

# Regions seen in the real service; new ones are created when the API names them.
KNOWN_REGIONS: tuple[tuple[str, str], ...] = (
    ("Central", "CEN"),
    ("Lancaster", "LAN"),
    ("Lehigh", "LEH"),
    ("Harrisburg", "HAR"),
    ("Northeast", "NE"),
    ("Susquehanna", "SUS"),
    ("Distribution", "DIST"),
)

WORKFLOW_STAGES = ("active", "pending_permissions", "qc", "rework", "closed")
STAGE_FOR_STATUS = {"ACTIV": "active", "QC": "qc", "REWRK": "rework", "CLOSE": "closed"}
