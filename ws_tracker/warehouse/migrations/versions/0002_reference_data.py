"""Reference data: regions, unit types, permission statuses, API status configs.

Revision ID: 0002_reference_data
Revises: 0001_initial_schema
Create Date: 2026-01-20

The values are copied from ws_tracker/rules/catalog.py (as of this revision) rather than
imported: a migration is a frozen snapshot, and importing application code from one breaks
the day that code changes shape. ws_tracker_tests/test_schema.py compares the seeded rows with
the catalogue, so drift between the two fails a test; a catalogue change ships as a new
revision.

Inserts use ON CONFLICT DO NOTHING: re-running is safe, and a row an operator already has
(e.g. a region the API created first) is left as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_reference_data"
down_revision: str | Sequence[str] | None = "0001_initial_schema"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (name, code, sort_order): catalog.KNOWN_REGIONS, in that order
REGIONS = (
    ('Central', 'CEN', 1),
    ('Lancaster', 'LAN', 2),
    ('Lehigh', 'LEH', 3),
    ('Harrisburg', 'HAR', 4),
    ('Northeast', 'NE', 5),
    ('Susquehanna', 'SUS', 6),
    ('Distribution', 'DIST', 7),
)

# (code, name, category, measurement_type, dbh_min, dbh_max, species, sort_order):
# catalog.unit_types()
UNIT_TYPES = (
    ('SPM', 'SPM (linear feet)', 'VLG', 'linear_ft', None, None, None, 1),
    ('SPB', 'SPB (linear feet)', 'VLG', 'linear_ft', None, None, None, 2),
    ('SPE', 'SPE (linear feet)', 'VLG', 'linear_ft', None, None, None, 3),
    ('MPM', 'MPM (linear feet)', 'VLG', 'linear_ft', None, None, None, 4),
    ('MPB', 'MPB (linear feet)', 'VLG', 'linear_ft', None, None, None, 5),
    ('MPE', 'MPE (linear feet)', 'VLG', 'linear_ft', None, None, None, 6),
    ('MPME', 'MPME (linear feet)', 'VLG', 'linear_ft', None, None, None, 7),
    ('MPBE', 'MPBE (linear feet)', 'VLG', 'linear_ft', None, None, None, 8),
    ('MST', 'MST (linear feet)', 'VLG', 'linear_ft', None, None, None, 9),
    ('OHT', 'OHT (linear feet)', 'VLG', 'linear_ft', None, None, None, 10),
    ('SIDET', 'SIDET (linear feet)', 'VLG', 'linear_ft', None, None, None, 11),
    ('SOHT', 'SOHT (linear feet)', 'VLG', 'linear_ft', None, None, None, 12),
    ('STB', 'STB (linear feet)', 'VLG', 'linear_ft', None, None, None, 13),
    ('STM', 'STM (linear feet)', 'VLG', 'linear_ft', None, None, None, 14),
    ('TTS', 'TTS (linear feet)', 'VLG', 'linear_ft', None, None, None, 15),
    ('HCB', 'HCB (acres)', 'VAR', 'acres', None, None, None, 16),
    ('BRUSH', 'BRUSH (acres)', 'VAR', 'acres', None, None, None, 17),
    ('BRUSHTRIM', 'BRUSHTRIM (acres)', 'VAR', 'acres', None, None, None, 18),
    ('MOW', 'MOW (acres)', 'VAR', 'acres', None, None, None, 19),
    ('HERBNA', 'HERBNA (acres)', 'VAR', 'acres', None, None, None, 20),
    ('HERBA', 'HERBA (acres)', 'VAR', 'acres', None, None, None, 21),
    ('HERBS', 'HERBS (acres)', 'VAR', 'acres', None, None, None, 22),
    ('Herb-Sub', 'Herb-Sub (acres)', 'VAR', 'acres', None, None, None, 23),
    ('T&M', 'T&M (acres)', 'VAR', 'acres', None, None, None, 24),
    ('REM612', 'REM612 (trees)', 'VCT', 'count', 6, 12, None, 25),
    ('REM1218', 'REM1218 (trees)', 'VCT', 'count', 12, 18, None, 26),
    ('REM1824', 'REM1824 (trees)', 'VCT', 'count', 18, 24, None, 27),
    ('REM2430', 'REM2430 (trees)', 'VCT', 'count', 24, 30, None, 28),
    ('REM3036', 'REM3036 (trees)', 'VCT', 'count', 30, 36, None, 29),
    ('REM36', 'REM36 (trees)', 'VCT', 'count', 36, None, None, 30),
    ('REM>30', 'REM>30 (trees)', 'VCT', 'count', 30, None, None, 31),
    ('ASH612', 'ASH612 (trees)', 'VCT', 'count', 6, 12, 'Ash', 32),
    ('ASH1218', 'ASH1218 (trees)', 'VCT', 'count', 12, 18, 'Ash', 33),
    ('ASH1824', 'ASH1824 (trees)', 'VCT', 'count', 18, 24, 'Ash', 34),
    ('ASH2430', 'ASH2430 (trees)', 'VCT', 'count', 24, 30, 'Ash', 35),
    ('ASH3036', 'ASH3036 (trees)', 'VCT', 'count', 30, 36, 'Ash', 36),
    ('ASH36', 'ASH36 (trees)', 'VCT', 'count', 36, None, 'Ash', 37),
    ('BTR', 'BTR (trees)', 'VCT', 'count', None, None, None, 38),
    ('VPS', 'VPS (trees)', 'VCT', 'count', None, None, None, 39),
    ('NW', 'NW (no work)', 'VNW', 'none', None, None, None, 40),
    ('NOT', 'NOT (no work)', 'VNW', 'none', None, None, None, 41),
    ('SENSI', 'SENSI (sensitive)', 'VSA', 'none', None, None, None, 42),
)

# (code, name, color, sort_order): catalog.PERMISSION_STATUSES, in that order
PERMISSION_STATUSES = (
    ('pending', 'Pending', '#f59e0b', 1),
    ('approved', 'Approved', '#16a34a', 2),
    ('refused', 'Refused', '#dc2626', 3),
    ('no_contact', 'No Contact', '#6b7280', 4),
    ('deferred', 'Deferred', '#8b5cf6', 5),
    ('ppl_approved', 'PPL Approved', '#0ea5e9', 6),
    ('na', 'N/A', '#9ca3af', 7),
)

# (api_status, display_name, sync_frequency, sync_planned_units, sort_order):
# catalog.API_STATUS_CONFIGS, in that order
API_STATUS_CONFIGS = (
    ('ACTIV', 'In Progress', 'twice_daily', True, 1),
    ('QC', 'QC', 'weekly', True, 2),
    ('REWRK', 'Rework', 'weekly', True, 3),
    ('CLOSE', 'Closed', 'weekly', False, 4),
)

# Tables whose rows point at a region; downgrade keeps any seeded region still referenced.
_REGION_REFERENCES = (
    ("users", "default_region_id"),
    ("circuits", "region_id"),
    ("user_regions", "region_id"),
    ("sync_logs", "region_id"),
    ("planner_daily_aggregates", "region_id"),
    ("planner_weekly_aggregates", "region_id"),
    ("regional_daily_aggregates", "region_id"),
    ("regional_weekly_aggregates", "region_id"),
    ("circuit_history", "region_id"),
)


def _insert(sql: str, rows: list[dict]) -> None:
    op.get_bind().execute(sa.text(sql), rows)


def upgrade() -> None:
    _insert(
        "INSERT INTO regions (name, code, sort_order, is_active) "
        "VALUES (:name, :code, :sort_order, true) ON CONFLICT DO NOTHING",
        [dict(name=n, code=c, sort_order=o) for n, c, o in REGIONS],
    )
    _insert(
        "INSERT INTO unit_types (code, name, category, measurement_type, dbh_min, dbh_max, "
        "species, sort_order, is_active) VALUES (:code, :name, :category, :measurement_type, "
        ":dbh_min, :dbh_max, :species, :sort_order, true) ON CONFLICT DO NOTHING",
        [
            dict(code=c, name=n, category=cat, measurement_type=m, dbh_min=lo, dbh_max=hi,
                 species=sp, sort_order=o)
            for c, n, cat, m, lo, hi, sp, o in UNIT_TYPES
        ],
    )
    _insert(
        "INSERT INTO permission_statuses (code, name, color, sort_order, is_active) "
        "VALUES (:code, :name, :color, :sort_order, true) ON CONFLICT DO NOTHING",
        [dict(code=c, name=n, color=col, sort_order=o) for c, n, col, o in PERMISSION_STATUSES],
    )
    _insert(
        "INSERT INTO api_status_configs (api_status, display_name, sync_frequency, "
        "sync_planned_units, is_active, sort_order) VALUES (:api_status, :display_name, "
        ":sync_frequency, :sync_planned_units, true, :sort_order) ON CONFLICT DO NOTHING",
        [
            dict(api_status=a, display_name=d, sync_frequency=f, sync_planned_units=s,
                 sort_order=o)
            for a, d, f, s, o in API_STATUS_CONFIGS
        ],
    )


def downgrade() -> None:
    bind = op.get_bind()
    bind.execute(
        sa.text("DELETE FROM unit_types WHERE code = ANY(:codes)"),
        {"codes": [r[0] for r in UNIT_TYPES]},
    )
    bind.execute(
        sa.text("DELETE FROM permission_statuses WHERE code = ANY(:codes)"),
        {"codes": [r[0] for r in PERMISSION_STATUSES]},
    )
    bind.execute(
        sa.text("DELETE FROM api_status_configs WHERE api_status = ANY(:codes)"),
        {"codes": [r[0] for r in API_STATUS_CONFIGS]},
    )
    # Regions are also created by syncs and referenced by data: remove a seeded region only
    # when nothing points at it (never cascade or null out real rows on a downgrade).
    unreferenced = " ".join(
        f"AND NOT EXISTS (SELECT 1 FROM {t} x WHERE x.{c} = r.id)" for t, c in _REGION_REFERENCES
    )
    bind.execute(
        sa.text(f"DELETE FROM regions r WHERE r.code = ANY(:codes) {unreferenced}"),
        {"codes": [r[1] for r in REGIONS]},
    )
