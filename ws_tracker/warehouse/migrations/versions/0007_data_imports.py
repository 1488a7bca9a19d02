"""data_imports and the import staging tables (issue 8: historical imports).

- ``data_imports``: one row per imported file (kind + content hash): as-of date, counts, who,
  when, the status contract (processing -> queued -> transforming -> transformed | failed) and
  its structured ``summary`` JSON (after seed 003). Re-importing the same file reuses its row.
- ``import_staging_rows``: every row of the file as read (raw JSON), as normalised, whether it
  is valid and its issues (row number, column, value, why). Invalid rows and rows with issues
  stay after the load; nothing is silently dropped.
- Lineage: a nullable ``data_import_id`` on the tables an import writes (circuits it created or
  last wrote, circuit_history versions, planned_units_snapshots). ON DELETE SET NULL: deleting
  an import record never deletes warehouse data by accident; replacing an import's rows is the
  loader's explicit work (delete-before-insert in one transaction).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP

revision: str = "0007_data_imports"
down_revision: str | Sequence[str] | None = "0006_quarantined_rows"
branch_labels = None
depends_on = None

TSTZ = TIMESTAMP(timezone=True)
NOW = sa.text("now()")
STATUSES = ("processing", "queued", "transforming", "transformed", "failed")
KINDS = ("circuits", "planned_units")
LINEAGE_TABLES = ("circuits", "circuit_history", "planned_units_snapshots")


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "data_imports",
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
        sa.Column("status", sa.String(20), nullable=False, server_default="processing"),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("file_name", sa.Text, nullable=False),
        sa.Column("file_path", sa.Text, nullable=True),
        sa.Column("file_size", sa.BigInteger, nullable=True),
        sa.Column("content_hash", sa.String(64), nullable=False),  # SHA-256 of the file's bytes
        sa.Column("as_of_date", sa.Date, nullable=True),  # NULL only for a failed import
        sa.Column("captured_at", TSTZ, nullable=True),  # the instant the rows are dated
        sa.Column("source", sa.String(20), nullable=False, server_default="cli"),  # cli | sensor
        sa.Column("total_rows", sa.Integer, nullable=False, server_default="0"),
        sa.Column("valid_rows", sa.Integer, nullable=False, server_default="0"),
        sa.Column("invalid_rows", sa.Integer, nullable=False, server_default="0"),
        sa.Column("warning_rows", sa.Integer, nullable=False, server_default="0"),
        sa.Column("unknown_unit_codes", sa.Integer, nullable=False, server_default="0"),
        sa.Column("unknown_regions", sa.Integer, nullable=False, server_default="0"),
        sa.Column("records_loaded", sa.Integer, nullable=False, server_default="0"),
        sa.Column("imported_by", sa.Text, nullable=True),  # email or OS user, as given
        sa.Column("imported_by_user_id", sa.BigInteger, nullable=True),
        sa.Column("dagster_run_id", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("summary", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("started_at", TSTZ, nullable=True),
        sa.Column("finished_at", TSTZ, nullable=True),
        sa.Column("created_at", TSTZ, nullable=False, server_default=NOW),
        sa.Column("updated_at", TSTZ, nullable=False, server_default=NOW),
        sa.UniqueConstraint("kind", "content_hash", name="data_imports_kind_content_hash_unique"),
        sa.ForeignKeyConstraint(["imported_by_user_id"], ["users.id"], ondelete="SET NULL",
                                name="data_imports_imported_by_user_id_foreign"),
        sa.CheckConstraint(_in("status", STATUSES), name="data_imports_status_check"),
        sa.CheckConstraint(_in("kind", KINDS), name="data_imports_kind_check"),
    )
    op.create_index("data_imports_as_of_date_index", "data_imports", ["as_of_date"])
    op.create_index("data_imports_status_index", "data_imports", ["status"])

    op.create_table(
        "import_staging_rows",
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
        sa.Column("data_import_id", sa.BigInteger, nullable=False),
        sa.Column("row_number", sa.Integer, nullable=False),  # 1 = the first row after the heading
        sa.Column("line_number", sa.Integer, nullable=True),  # physical line where the row ends
        sa.Column("row_key", sa.Text, nullable=True),  # job GUID, or work order for units
        sa.Column("unit_id", sa.BigInteger, nullable=True),
        sa.Column("valid", sa.Boolean, nullable=False),
        sa.Column("raw_row", JSONB, nullable=False),  # {column: value as read}
        sa.Column("normalised", JSONB, nullable=True),
        sa.Column("issues", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("created_at", TSTZ, nullable=False, server_default=NOW),
        sa.ForeignKeyConstraint(["data_import_id"], ["data_imports.id"], ondelete="CASCADE",
                                name="import_staging_rows_data_import_id_foreign"),
    )
    op.create_index("import_staging_rows_import_key_index", "import_staging_rows",
                    ["data_import_id", "row_key", "row_number"])
    op.create_index("import_staging_rows_import_row_index", "import_staging_rows",
                    ["data_import_id", "row_number"])

    for table in LINEAGE_TABLES:
        op.add_column(table, sa.Column("data_import_id", sa.BigInteger, nullable=True))
        op.create_foreign_key(f"{table}_data_import_id_foreign", table, "data_imports",
                              ["data_import_id"], ["id"], ondelete="SET NULL")
        op.create_index(f"{table}_data_import_id_index", table, ["data_import_id"])


def downgrade() -> None:
    for table in LINEAGE_TABLES:
        op.drop_index(f"{table}_data_import_id_index", table_name=table)
        op.drop_constraint(f"{table}_data_import_id_foreign", table, type_="foreignkey")
        op.drop_column(table, "data_import_id")
    op.drop_table("import_staging_rows")
    op.drop_table("data_imports")
