"""The warehouse schema: migrations, the seed's tables/indexes/constraints, reference data,
the common queries, and the migrate API (idempotence, downgrade, advisory lock).

Expectations are written out here (COLUMNS, INDEXES, FOREIGN_KEYS), transcribed from the
schema reference (seed 002) and the project's additions, never read back from the database.
"""

from __future__ import annotations

import re
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from ws_tracker.rules import catalog
from ws_tracker.warehouse import migrate
from ws_tracker.warehouse.engine import make_engine

REPO = Path(__file__).resolve().parents[1]
QUERIES_DIR = REPO / "sql" / "common_queries"
SEED_FILE = Path("/work/shared/seeds/002_81c15ffd22070d2b.txt")

# --------------------------------------------------------------------------------------------
# Expected columns: "column | type | nullable [| default]". Sections marked (seed) are the
# seed's full column tables verbatim plus the listed additions; (brief) tables are defined by
# the project brief (the seed only shows them in its ERD).
# --------------------------------------------------------------------------------------------
COLUMNS = """
## circuits (seed)
id | bigint | No
job_guid | varchar | No
work_order | varchar(20) | No
extension | varchar(5) | Yes
parent_circuit_id | bigint | Yes
region_id | bigint | No
title | varchar | No
contractor | varchar(50) | Yes
cycle_type | varchar(100) | Yes
total_miles | decimal(10,2) | No | 0
miles_planned | decimal(10,2) | No | 0
percent_complete | decimal(5,2) | No | 0
total_acres | decimal(10,2) | No | 0
start_date | date | Yes
api_modified_date | date | No
api_status | varchar(20) | No
api_data_json | jsonb | Yes
user_modified_fields | jsonb | Yes
last_user_modified_at | timestamp | Yes
last_user_modified_by | bigint | Yes
last_synced_at | timestamp | Yes
last_planned_units_synced_at | timestamp | Yes
planned_units_sync_enabled | boolean | No | true
is_excluded | boolean | No | false
exclusion_reason | varchar | Yes
excluded_by | bigint | Yes
excluded_at | timestamp | Yes
created_at | timestamp | Yes | now()
updated_at | timestamp | Yes | now()
deleted_at | timestamp | Yes
+ api_modified_at | timestamp | Yes
+ api_version | varchar(50) | Yes
+ job_type | varchar(100) | Yes
+ taken_by | varchar | Yes
+ last_planned_units_version | varchar(50) | Yes
data_import_id | bigint | Yes

## circuit_aggregates (seed)
id | bigint | No
circuit_id | bigint | No
aggregate_date | date | No
is_rollup | boolean | No | false
total_miles | decimal(10,2) | No
miles_planned | decimal(10,2) | No
miles_remaining | decimal(10,2) | No
total_units | integer | No | 0
total_linear_ft | decimal(12,2) | No | 0
total_acres | decimal(12,4) | No | 0
total_trees | integer | No | 0
units_approved | integer | No | 0
units_refused | integer | No | 0
units_pending | integer | No | 0
unit_counts_by_type | jsonb | Yes
linear_ft_by_type | jsonb | Yes
acres_by_type | jsonb | Yes
planner_distribution | jsonb | Yes
created_at | timestamp | Yes
updated_at | timestamp | Yes
+ units_by_permission | jsonb | Yes
+ planned_units_snapshot_id | bigint | Yes

## circuit_snapshots (seed)
id | bigint | No
circuit_id | bigint | No
snapshot_type | varchar | No
snapshot_date | date | No
miles_planned | decimal(10,2) | Yes
percent_complete | decimal(5,2) | Yes
api_status | varchar(20) | Yes
workflow_stage | varchar | Yes
total_units | integer | Yes
total_linear_ft | decimal(12,2) | Yes
total_acres | decimal(12,4) | Yes
total_trees | integer | Yes
units_approved | integer | Yes
units_refused | integer | Yes
units_pending | integer | Yes
metrics_json | jsonb | Yes
created_by | bigint | Yes
notes | text | Yes
created_at | timestamp | Yes
updated_at | timestamp | Yes

## circuit_ui_states (seed)
id | bigint | No
circuit_id | bigint | No
workflow_stage | varchar | No
stage_position | integer | No | 0
stage_changed_at | timestamp | Yes
stage_changed_by | bigint | Yes
is_hidden | boolean | No | false
is_pinned | boolean | No | false
custom_color | varchar(20) | Yes
notes | text | Yes
created_at | timestamp | Yes
updated_at | timestamp | Yes
stage_source | varchar(10) | No | 'api'
stage_api_status | varchar(20) | Yes

## regions (seed)
id | bigint | No
name | varchar | No
code | varchar | No
sort_order | integer | No | 0
is_active | boolean | No | true
created_at | timestamp | Yes
updated_at | timestamp | Yes

## sync_logs (seed)
id | bigint | No
sync_type | varchar | No
sync_status | varchar | No
sync_trigger | varchar | No
region_id | bigint | Yes
api_status_filter | varchar | Yes
started_at | timestamp | Yes
completed_at | timestamp | Yes
duration_seconds | integer | Yes
circuits_processed | integer | Yes
circuits_created | integer | Yes
circuits_updated | integer | Yes
aggregates_created | integer | Yes
error_message | text | Yes
error_details | jsonb | Yes
triggered_by | bigint | Yes
context_json | jsonb | Yes
created_at | timestamp | Yes
updated_at | timestamp | Yes
+ summary_json | jsonb | Yes
+ dagster_run_id | varchar | Yes

## users (seed)
id | bigint | No
name | varchar | No
email | varchar | No
email_verified_at | timestamp | Yes
password | varchar | No
remember_token | varchar(100) | Yes
two_factor_secret | text | Yes
two_factor_recovery_codes | text | Yes
two_factor_confirmed_at | timestamp | Yes
ws_credentials_fail_count | integer | No
ws_credentials_last_used_at | timestamp | Yes
ws_credentials_failed_at | timestamp | Yes
ws_user_guid | varchar | Yes
ws_username | varchar | Yes
is_ws_linked | boolean | No | false
ws_linked_at | timestamp | Yes
default_region_id | bigint | Yes
created_at | timestamp | Yes
updated_at | timestamp | Yes
+ is_admin | boolean | No | false

## unit_types (seed)
id | bigint | No
code | varchar | No
name | varchar | No
category | varchar | No
measurement_type | varchar | No
dbh_min | decimal(5,2) | Yes
dbh_max | decimal(5,2) | Yes
species | varchar | Yes
sort_order | integer | No
is_active | boolean | No
created_at | timestamp | Yes
updated_at | timestamp | Yes

## api_status_configs (seed)
id | bigint | No
api_status | varchar | No
display_name | varchar | No
sync_frequency | varchar | No
sync_planned_units | boolean | No
is_active | boolean | No
sort_order | integer | No
created_at | timestamp | Yes
updated_at | timestamp | Yes

## permission_statuses (seed)
id | bigint | No
name | varchar | No
code | varchar | No
color | varchar(20) | Yes
sort_order | integer | No
is_active | boolean | No
created_at | timestamp | Yes
updated_at | timestamp | Yes

## circuit_user (brief)
id | bigint | No
circuit_id | bigint | No
user_id | bigint | No
assignment_source | varchar | No | 'api_sync'
assigned_at | timestamp | Yes
created_at | timestamp | Yes
updated_at | timestamp | Yes

## user_ws_credentials (brief)
id | bigint | No
user_id | bigint | No
encrypted_username | text | No
encrypted_password | text | No
is_valid | boolean | No | true
validated_at | timestamp | Yes
last_used_at | timestamp | Yes
fail_count | integer | No | 0
created_at | timestamp | Yes
updated_at | timestamp | Yes

## user_regions (brief)
id | bigint | No
user_id | bigint | No
region_id | bigint | No
created_at | timestamp | Yes
updated_at | timestamp | Yes

## unlinked_planners (brief)
id | bigint | No
ws_user_guid | varchar | Yes
ws_username | varchar | No
display_name | varchar | Yes
circuit_count | integer | No | 0
first_seen_at | timestamp | Yes
last_seen_at | timestamp | Yes
linked_to_user_id | bigint | Yes
linked_at | timestamp | Yes
created_at | timestamp | Yes
updated_at | timestamp | Yes

## planned_units_snapshots (brief)
id | bigint | No
circuit_id | bigint | No
work_order | varchar(20) | No
extension | varchar(5) | Yes
snapshot_trigger | varchar | No
content_hash | varchar(64) | No
unit_count | integer | No | 0
api_status | varchar(20) | Yes
percent_complete | decimal(5,2) | Yes
captured_at | timestamp | No
raw_json | jsonb | No
dagster_run_id | varchar | Yes
created_by | bigint | Yes
created_at | timestamp | Yes
updated_at | timestamp | Yes
data_import_id | bigint | Yes

## planner_daily_aggregates (brief)
id | bigint | No
user_id | bigint | Yes
planner_name | varchar | No
region_id | bigint | No
aggregate_date | date | No
circuits_worked | integer | No | 0
total_units_assessed | integer | No | 0
total_linear_ft | decimal(12,2) | No | 0
total_acres | decimal(12,4) | No | 0
total_trees | integer | No | 0
stations_worked | integer | No | 0
span_miles | decimal(10,4) | No | 0
circuit_breakdown | jsonb | Yes
created_at | timestamp | Yes
updated_at | timestamp | Yes

## planner_weekly_aggregates (brief)
id | bigint | No
user_id | bigint | Yes
planner_name | varchar | No
region_id | bigint | No
week_starting | date | No
week_ending | date | No
days_worked | integer | No | 0
circuits_worked | integer | No | 0
total_units_assessed | integer | No | 0
total_linear_ft | decimal(12,2) | No | 0
total_acres | decimal(12,4) | No | 0
total_trees | integer | No | 0
stations_worked | integer | No | 0
span_miles | decimal(10,4) | No | 0
miles_delta | decimal(10,2) | No | 0
met_weekly_target | boolean | No | false
daily_breakdown | jsonb | Yes
created_at | timestamp | Yes
updated_at | timestamp | Yes

## regional_daily_aggregates (brief)
id | bigint | No
region_id | bigint | No
aggregate_date | date | No
total_circuits | integer | No | 0
active_circuits | integer | No | 0
qc_circuits | integer | No | 0
rework_circuits | integer | No | 0
closed_circuits | integer | No | 0
excluded_circuits | integer | No | 0
total_miles | decimal(12,2) | No | 0
miles_planned | decimal(12,2) | No | 0
miles_remaining | decimal(12,2) | No | 0
avg_percent_complete | decimal(5,2) | No | 0
total_units | integer | No | 0
total_linear_ft | decimal(14,2) | No | 0
total_acres | decimal(14,4) | No | 0
total_trees | integer | No | 0
units_approved | integer | No | 0
units_refused | integer | No | 0
units_pending | integer | No | 0
active_planners | integer | No | 0
status_breakdown | jsonb | Yes
permission_breakdown | jsonb | Yes
unit_counts_by_type | jsonb | Yes
created_at | timestamp | Yes
updated_at | timestamp | Yes

## regional_weekly_aggregates (brief)
id | bigint | No
region_id | bigint | No
week_starting | date | No
week_ending | date | No
total_circuits | integer | No | 0
active_circuits | integer | No | 0
qc_circuits | integer | No | 0
rework_circuits | integer | No | 0
closed_circuits | integer | No | 0
excluded_circuits | integer | No | 0
total_miles | decimal(12,2) | No | 0
miles_planned | decimal(12,2) | No | 0
miles_remaining | decimal(12,2) | No | 0
avg_percent_complete | decimal(5,2) | No | 0
total_units | integer | No | 0
total_linear_ft | decimal(14,2) | No | 0
total_acres | decimal(14,4) | No | 0
total_trees | integer | No | 0
units_approved | integer | No | 0
units_refused | integer | No | 0
units_pending | integer | No | 0
active_planners | integer | No | 0
units_added | integer | No | 0
miles_delta | decimal(12,2) | No | 0
daily_breakdown | jsonb | Yes
status_breakdown | jsonb | Yes
created_at | timestamp | Yes
updated_at | timestamp | Yes

## circuit_history (brief)
id | bigint | No
circuit_id | bigint | No
valid_from | timestamp | No
valid_to | timestamp | Yes
state_hash | varchar(64) | No
job_guid | varchar | No
work_order | varchar(20) | No
extension | varchar(5) | Yes
parent_circuit_id | bigint | Yes
region_id | bigint | No
api_status | varchar(20) | No
title | varchar | Yes
contractor | varchar(50) | Yes
cycle_type | varchar(100) | Yes
job_type | varchar(100) | Yes
total_miles | decimal(10,2) | No | 0
miles_planned | decimal(10,2) | No | 0
percent_complete | decimal(5,2) | No | 0
total_acres | decimal(10,2) | No | 0
start_date | date | Yes
api_modified_date | date | Yes
api_modified_at | timestamp | Yes
api_version | varchar(50) | Yes
taken_by | varchar | Yes
dagster_run_id | varchar | Yes
created_at | timestamp | No | now()
data_import_id | bigint | Yes

## circuit_stage_changes (brief)
id | bigint | No
circuit_id | bigint | No
from_stage | varchar(30) | Yes
to_stage | varchar(30) | No
source | varchar(10) | No
api_status | varchar(20) | Yes
changed_at | timestamp | No
changed_by | bigint | Yes
dagster_run_id | varchar(64) | Yes
recorded_at | timestamp | No | now()

## quarantined_rows (brief)
id | bigint | No
sync_log_id | bigint | Yes
dagster_run_id | varchar(64) | Yes
source | varchar(30) | No
view_guid | varchar(64) | Yes
filter_value | varchar(100) | Yes
row_number | integer | Yes
column_name | text | Yes
value | text | Yes
reason | text | No
severity | varchar(10) | No
code | varchar(50) | No
row_key | varchar(100) | Yes
raw_row | jsonb | Yes
created_at | timestamp | No | now()

## data_imports (brief)
id | bigint | No
status | varchar(20) | No | 'processing'
kind | varchar(20) | No
file_name | text | No
file_path | text | Yes
file_size | bigint | Yes
content_hash | varchar(64) | No
as_of_date | date | Yes
captured_at | timestamp | Yes
source | varchar(20) | No | 'cli'
total_rows | integer | No | 0
valid_rows | integer | No | 0
invalid_rows | integer | No | 0
warning_rows | integer | No | 0
unknown_unit_codes | integer | No | 0
unknown_regions | integer | No | 0
records_loaded | integer | No | 0
imported_by | text | Yes
imported_by_user_id | bigint | Yes
dagster_run_id | varchar(64) | Yes
error_message | text | Yes
summary | jsonb | No | '{}'
started_at | timestamp | Yes
finished_at | timestamp | Yes
created_at | timestamp | No | now()
updated_at | timestamp | No | now()

## import_staging_rows (brief)
id | bigint | No
data_import_id | bigint | No
row_number | integer | No
line_number | integer | Yes
row_key | text | Yes
unit_id | bigint | Yes
valid | boolean | No
raw_row | jsonb | No
normalised | jsonb | Yes
issues | jsonb | No | '[]'
created_at | timestamp | No | now()

## audit_log (brief)
id | bigint | No
occurred_at | timestamp | No | now()
actor_user_id | bigint | Yes
actor | varchar | No
action | varchar(50) | No
entity_type | varchar(30) | No
entity_id | bigint | Yes
entity_key | varchar | Yes
before | jsonb | Yes
after | jsonb | Yes

## analyst_logins (brief)
id | bigint | No
login | varchar(63) | No
user_id | bigint | No
granted_by | bigint | Yes
granted_at | timestamp | No | now()
created_at | timestamp | Yes | now()
updated_at | timestamp | Yes | now()
"""

# The 19 tables of the seed's ERD / column tables, plus circuit_history (the business rules),
# circuit_stage_changes (workflow stage history) and quarantined_rows (bad rows kept).
SEED_TABLES = {
    "regions", "users", "unit_types", "api_status_configs", "permission_statuses",
    "circuits", "circuit_ui_states", "circuit_user", "circuit_aggregates", "circuit_snapshots",
    "planned_units_snapshots", "sync_logs", "user_ws_credentials", "user_regions",
    "unlinked_planners", "planner_daily_aggregates", "planner_weekly_aggregates",
    "regional_daily_aggregates", "regional_weekly_aggregates",
}
ALL_TABLES = SEED_TABLES | {"circuit_history", "circuit_stage_changes", "quarantined_rows"}
ALL_TABLES |= {"audit_log", "analyst_logins"}  # 0008: audit trail, region-limited logins
ALL_TABLES |= {"data_imports", "import_staging_rows"}  # 0007: historical imports

# (index name, table, columns in order, unique). The first block is named by the seed.
INDEXES = [
    ("circuits_job_guid_unique", "circuits", ["job_guid"], True),
    ("circuits_work_order_index", "circuits", ["work_order"], False),
    ("circuits_region_id_api_status_index", "circuits", ["region_id", "api_status"], False),
    ("circuits_api_modified_date_index", "circuits", ["api_modified_date"], False),
    ("circuits_api_status_deleted_at_index", "circuits", ["api_status", "deleted_at"], False),
    ("circuits_last_user_modified_at_index", "circuits", ["last_user_modified_at"], False),
    ("circuits_is_excluded_index", "circuits", ["is_excluded"], False),
    ("circuit_aggregates_unique", "circuit_aggregates",
     ["circuit_id", "aggregate_date", "is_rollup"], True),
    ("circuit_aggregates_aggregate_date_index", "circuit_aggregates", ["aggregate_date"], False),
    ("circuit_aggregates_circuit_id_aggregate_date_index", "circuit_aggregates",
     ["circuit_id", "aggregate_date"], False),
    ("circuit_snapshots_unique", "circuit_snapshots",
     ["circuit_id", "snapshot_type", "snapshot_date"], True),
    ("circuit_snapshots_snapshot_date_snapshot_type_index", "circuit_snapshots",
     ["snapshot_date", "snapshot_type"], False),
    # --- unique keys the seed states in words, and the brief's keys (Laravel-style names)
    ("regions_name_unique", "regions", ["name"], True),
    ("regions_code_unique", "regions", ["code"], True),
    ("users_email_unique", "users", ["email"], True),
    ("users_ws_username_index", "users", ["ws_username"], False),
    ("unit_types_code_unique", "unit_types", ["code"], True),
    ("api_status_configs_api_status_unique", "api_status_configs", ["api_status"], True),
    ("permission_statuses_code_unique", "permission_statuses", ["code"], True),
    ("circuit_ui_states_circuit_id_unique", "circuit_ui_states", ["circuit_id"], True),
    ("circuit_user_circuit_id_user_id_unique", "circuit_user", ["circuit_id", "user_id"], True),
    ("circuit_user_user_id_index", "circuit_user", ["user_id"], False),
    ("user_ws_credentials_user_id_unique", "user_ws_credentials", ["user_id"], True),
    ("user_regions_user_id_region_id_unique", "user_regions", ["user_id", "region_id"], True),
    ("unlinked_planners_ws_username_unique", "unlinked_planners", ["ws_username"], True),
    ("planned_units_snapshots_circuit_id_captured_at_unique", "planned_units_snapshots",
     ["circuit_id", "captured_at"], True),
    ("planned_units_snapshots_content_hash_index", "planned_units_snapshots",
     ["content_hash"], False),
    ("sync_logs_dagster_run_id_index", "sync_logs", ["dagster_run_id"], False),
    ("planner_daily_aggregates_unique", "planner_daily_aggregates",
     ["planner_name", "region_id", "aggregate_date"], True),
    ("planner_daily_aggregates_aggregate_date_index", "planner_daily_aggregates",
     ["aggregate_date"], False),
    ("planner_daily_aggregates_user_id_index", "planner_daily_aggregates", ["user_id"], False),
    ("planner_weekly_aggregates_unique", "planner_weekly_aggregates",
     ["planner_name", "region_id", "week_ending"], True),
    ("regional_daily_aggregates_region_id_aggregate_date_unique", "regional_daily_aggregates",
     ["region_id", "aggregate_date"], True),
    ("regional_daily_aggregates_aggregate_date_index", "regional_daily_aggregates",
     ["aggregate_date"], False),
    ("regional_weekly_aggregates_region_id_week_ending_unique", "regional_weekly_aggregates",
     ["region_id", "week_ending"], True),
    ("circuit_history_circuit_id_valid_from_unique", "circuit_history",
     ["circuit_id", "valid_from"], True),
    ("circuit_history_circuit_id_valid_to_index", "circuit_history",
     ["circuit_id", "valid_to"], False),
    ("audit_log_entity_type_entity_id_index", "audit_log", ["entity_type", "entity_id"], False),
    ("audit_log_occurred_at_index", "audit_log", ["occurred_at"], False),
    ("analyst_logins_login_unique", "analyst_logins", ["login"], True),
    ("data_imports_kind_content_hash_unique", "data_imports", ["kind", "content_hash"], True),
    ("data_imports_as_of_date_index", "data_imports", ["as_of_date"], False),
    ("data_imports_status_index", "data_imports", ["status"], False),
    ("import_staging_rows_import_key_index", "import_staging_rows",
     ["data_import_id", "row_key", "row_number"], False),
    ("import_staging_rows_import_row_index", "import_staging_rows",
     ["data_import_id", "row_number"], False),
    ("circuits_data_import_id_index", "circuits", ["data_import_id"], False),
    ("circuit_history_data_import_id_index", "circuit_history", ["data_import_id"], False),
    ("planned_units_snapshots_data_import_id_index", "planned_units_snapshots",
     ["data_import_id"], False),
    ("analyst_logins_user_id_index", "analyst_logins", ["user_id"], False),
]
SEED_INDEX_NAMES = [i[0] for i in INDEXES[:12]]

# (constraint name, table, column, referenced table, ON DELETE rule)
FOREIGN_KEYS = {
    ("data_imports_imported_by_user_id_foreign", "data_imports", "imported_by_user_id", "users",
     "SET NULL"),
    ("import_staging_rows_data_import_id_foreign", "import_staging_rows", "data_import_id",
     "data_imports", "CASCADE"),
    ("circuits_data_import_id_foreign", "circuits", "data_import_id", "data_imports", "SET NULL"),
    ("circuit_history_data_import_id_foreign", "circuit_history", "data_import_id",
     "data_imports", "SET NULL"),
    ("planned_units_snapshots_data_import_id_foreign", "planned_units_snapshots",
     "data_import_id", "data_imports", "SET NULL"),
    ("audit_log_actor_user_id_foreign", "audit_log", "actor_user_id", "users", "SET NULL"),
    ("analyst_logins_user_id_foreign", "analyst_logins", "user_id", "users", "CASCADE"),
    ("analyst_logins_granted_by_foreign", "analyst_logins", "granted_by", "users", "SET NULL"),
    ("users_default_region_id_foreign", "users", "default_region_id", "regions", "SET NULL"),
    ("circuits_parent_circuit_id_foreign", "circuits", "parent_circuit_id", "circuits", "SET NULL"),
    ("circuits_region_id_foreign", "circuits", "region_id", "regions", "NO ACTION"),
    ("circuits_last_user_modified_by_foreign", "circuits", "last_user_modified_by", "users",
     "SET NULL"),
    ("circuits_excluded_by_foreign", "circuits", "excluded_by", "users", "SET NULL"),
    ("circuit_ui_states_circuit_id_foreign", "circuit_ui_states", "circuit_id", "circuits",
     "CASCADE"),
    ("circuit_ui_states_stage_changed_by_foreign", "circuit_ui_states", "stage_changed_by",
     "users", "SET NULL"),
    ("circuit_user_circuit_id_foreign", "circuit_user", "circuit_id", "circuits", "CASCADE"),
    ("circuit_user_user_id_foreign", "circuit_user", "user_id", "users", "CASCADE"),
    ("user_ws_credentials_user_id_foreign", "user_ws_credentials", "user_id", "users", "CASCADE"),
    ("user_regions_user_id_foreign", "user_regions", "user_id", "users", "CASCADE"),
    ("user_regions_region_id_foreign", "user_regions", "region_id", "regions", "CASCADE"),
    ("unlinked_planners_linked_to_user_id_foreign", "unlinked_planners", "linked_to_user_id",
     "users", "SET NULL"),
    ("planned_units_snapshots_circuit_id_foreign", "planned_units_snapshots", "circuit_id",
     "circuits", "CASCADE"),
    ("planned_units_snapshots_created_by_foreign", "planned_units_snapshots", "created_by",
     "users", "SET NULL"),
    ("circuit_aggregates_circuit_id_foreign", "circuit_aggregates", "circuit_id", "circuits",
     "CASCADE"),
    ("circuit_aggregates_planned_units_snapshot_id_foreign", "circuit_aggregates",
     "planned_units_snapshot_id", "planned_units_snapshots", "SET NULL"),
    ("circuit_snapshots_circuit_id_foreign", "circuit_snapshots", "circuit_id", "circuits",
     "CASCADE"),
    ("circuit_snapshots_created_by_foreign", "circuit_snapshots", "created_by", "users",
     "SET NULL"),
    ("sync_logs_region_id_foreign", "sync_logs", "region_id", "regions", "SET NULL"),
    ("sync_logs_triggered_by_foreign", "sync_logs", "triggered_by", "users", "SET NULL"),
    ("planner_daily_aggregates_user_id_foreign", "planner_daily_aggregates", "user_id", "users",
     "SET NULL"),
    ("planner_daily_aggregates_region_id_foreign", "planner_daily_aggregates", "region_id",
     "regions", "NO ACTION"),
    ("planner_weekly_aggregates_user_id_foreign", "planner_weekly_aggregates", "user_id",
     "users", "SET NULL"),
    ("planner_weekly_aggregates_region_id_foreign", "planner_weekly_aggregates", "region_id",
     "regions", "NO ACTION"),
    ("regional_daily_aggregates_region_id_foreign", "regional_daily_aggregates", "region_id",
     "regions", "NO ACTION"),
    ("regional_weekly_aggregates_region_id_foreign", "regional_weekly_aggregates", "region_id",
     "regions", "NO ACTION"),
    ("circuit_history_circuit_id_foreign", "circuit_history", "circuit_id", "circuits",
     "CASCADE"),
    ("circuit_history_region_id_foreign", "circuit_history", "region_id", "regions",
     "NO ACTION"),
    ("circuit_stage_changes_circuit_id_foreign", "circuit_stage_changes", "circuit_id", "circuits",
     "CASCADE"),
    ("circuit_stage_changes_changed_by_foreign", "circuit_stage_changes", "changed_by", "users",
     "SET NULL"),
    ("quarantined_rows_sync_log_id_foreign", "quarantined_rows", "sync_log_id", "sync_logs",
     "SET NULL"),
}

# (constraint, table, column, allowed values, a rejected value)
CHECKS = [
    ("circuit_snapshots_snapshot_type_check", "circuit_snapshots", "snapshot_type",
     ("daily", "status_change", "manual"), "weekly"),
    ("circuit_snapshots_workflow_stage_check", "circuit_snapshots", "workflow_stage",
     ("active", "pending_permissions", "qc", "rework", "closed"), "ACTIV"),
    ("circuit_ui_states_workflow_stage_check", "circuit_ui_states", "workflow_stage",
     ("active", "pending_permissions", "qc", "rework", "closed"), "done"),
    ("sync_logs_sync_type_check", "sync_logs", "sync_type",
     ("circuit_list", "aggregates", "full", "snapshots", "rollups"), "everything"),
    ("sync_logs_sync_status_check", "sync_logs", "sync_status",
     ("started", "completed", "warning", "failed"), "running"),
    ("sync_logs_sync_trigger_check", "sync_logs", "sync_trigger",
     ("scheduled", "manual", "workflow_event", "backfill"), "cron"),
    ("planned_units_snapshots_snapshot_trigger_check", "planned_units_snapshots",
     "snapshot_trigger",
     ("status_to_qc", "milestone_50", "milestone_100", "workflow_event", "manual", "scheduled",
      "import"), "milestone_75"),
    ("circuit_user_assignment_source_check", "circuit_user", "assignment_source",
     ("api_sync", "manual"), "guess"),
]

# An insert per checked table, with :v as the checked value (ids from the `base` fixture).
CHECK_INSERTS = {
    ("circuit_snapshots", "snapshot_type"):
        "INSERT INTO circuit_snapshots (circuit_id, snapshot_type, snapshot_date) "
        "VALUES (:cid, :v, DATE '2026-01-05')",
    ("circuit_snapshots", "workflow_stage"):
        "INSERT INTO circuit_snapshots (circuit_id, snapshot_type, snapshot_date, workflow_stage) "
        "VALUES (:cid, 'daily', DATE '2026-01-05', :v)",
    ("circuit_ui_states", "workflow_stage"):
        "INSERT INTO circuit_ui_states (circuit_id, workflow_stage) VALUES (:cid, :v)",
    ("sync_logs", "sync_type"):
        "INSERT INTO sync_logs (sync_type, sync_status, sync_trigger) "
        "VALUES (:v, 'started', 'manual')",
    ("sync_logs", "sync_status"):
        "INSERT INTO sync_logs (sync_type, sync_status, sync_trigger) "
        "VALUES ('full', :v, 'manual')",
    ("sync_logs", "sync_trigger"):
        "INSERT INTO sync_logs (sync_type, sync_status, sync_trigger) "
        "VALUES ('full', 'started', :v)",
    ("planned_units_snapshots", "snapshot_trigger"):
        "INSERT INTO planned_units_snapshots (circuit_id, work_order, snapshot_trigger, "
        "content_hash, captured_at, raw_json) VALUES (:cid, '2025-0001', :v, 'abc', now(), '[]')",
    ("circuit_user", "assignment_source"):
        "INSERT INTO circuit_user (circuit_id, user_id, assignment_source) VALUES (:cid, :uid, :v)",
}


def _parse_columns(text: str) -> dict[str, dict[str, tuple]]:
    tables: dict[str, dict[str, tuple]] = {}
    current = None
    for raw in text.strip().splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("## "):
            current = line[3:].split()[0]
            tables[current] = {}
            continue
        parts = [p.strip() for p in line.lstrip("+").split("|")]
        name, typ, nullable = parts[0], parts[1], parts[2]
        default = parts[3] if len(parts) > 3 else None
        assert nullable in ("Yes", "No"), line
        tables[current][name] = (typ, nullable == "Yes", default)
    return tables


EXPECTED = _parse_columns(COLUMNS)


def _info_type(seed_type: str) -> tuple:
    """(data_type, character_maximum_length, numeric_precision, numeric_scale) for a seed type."""
    if m := re.fullmatch(r"varchar\((\d+)\)", seed_type):
        return ("character varying", int(m[1]), None, None)
    if m := re.fullmatch(r"decimal\((\d+),(\d+)\)", seed_type):
        return ("numeric", None, int(m[1]), int(m[2]))
    simple = {
        "varchar": ("character varying", None, None, None),
        "bigint": ("bigint", None, 64, 0),
        "integer": ("integer", None, 32, 0),
        "boolean": ("boolean", None, None, None),
        "date": ("date", None, None, None),
        "text": ("text", None, None, None),
        "jsonb": ("jsonb", None, None, None),
        # Decision recorded in 0001: seed "timestamp" = timestamptz (UTC instants).
        "timestamp": ("timestamp with time zone", None, None, None),
    }
    return simple[seed_type]


def _normalise_default(default: str | None) -> str | None:
    if default is None:
        return None
    return re.sub(r"::[a-z ]+$", "", default)  # 'api_sync'::character varying -> 'api_sync'


def _public_tables(conn) -> set[str]:
    return set(
        conn.execute(
            sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ).scalars()
    )


def _indexes(conn) -> dict[str, tuple[str, list[str], bool]]:
    rows = conn.execute(
        sa.text(
            """
            SELECT i.relname, t.relname, ix.indisunique,
                   array_agg(a.attname ORDER BY k.ord)
            FROM pg_index ix
            JOIN pg_class i ON i.oid = ix.indexrelid
            JOIN pg_class t ON t.oid = ix.indrelid
            JOIN pg_namespace n ON n.oid = t.relnamespace
            CROSS JOIN LATERAL unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ord)
            JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
            WHERE n.nspname = 'public'
            GROUP BY i.relname, t.relname, ix.indisunique
            """
        )
    )
    return {name: (table, list(cols), unique) for name, table, unique, cols in rows}


def _fingerprint(url: str) -> dict:
    """Everything a migration could change: tables, columns, indexes, constraints, ref rows."""
    eng = make_engine(url, poolclass=NullPool)
    try:
        with eng.connect() as conn:
            cols = conn.execute(
                sa.text(
                    "SELECT table_name, column_name, data_type, is_nullable, column_default "
                    "FROM information_schema.columns WHERE table_schema = 'public' "
                    "ORDER BY 1, 2"
                )
            ).all()
            cons = conn.execute(
                sa.text(
                    "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE connamespace = 'public'::regnamespace ORDER BY 1"
                )
            ).all()
            ref = {
                t: conn.execute(sa.text(f"SELECT count(*), max(id) FROM {t}")).one()
                for t in ("regions", "unit_types", "permission_statuses", "api_status_configs")
            }
            return {
                "tables": _public_tables(conn),
                "columns": cols,
                "indexes": _indexes(conn),
                "constraints": cons,
                "ref": ref,
            }
    finally:
        eng.dispose()


# ------------------------------------------------------------------------------------ fixtures

@pytest.fixture
def base(engine):
    """A user and an ACTIV circuit in the first seeded region; returns their ids."""
    with engine.begin() as conn:
        region_id = conn.execute(sa.text("SELECT id FROM regions WHERE code = 'CEN'")).scalar_one()
        uid = conn.execute(
            sa.text(
                "INSERT INTO users (name, email, password, ws_username) "
                "VALUES ('Derek Cinicola', 'derek@example.com', 'x', 'ASPLUNDH\\dcinicola') "
                "RETURNING id"
            )
        ).scalar_one()
        cid = conn.execute(
            sa.text(
                "INSERT INTO circuits (job_guid, work_order, extension, region_id, title, "
                "api_modified_date, api_status, total_miles, miles_planned, percent_complete) "
                "VALUES ('{G-1}', '2025-1930', '@', :r, 'LINE 1', DATE '2026-01-05', 'ACTIV', "
                "10, 4, 40) RETURNING id"
            ),
            {"r": region_id},
        ).scalar_one()
    return {"region_id": region_id, "uid": uid, "cid": cid}


# --------------------------------------------------------------------------------------- tests

def test_heads_is_single_linear_head():
    assert migrate.heads() == ["0008_people_access"]


def test_upgrade_from_empty_creates_every_table_and_versions_in_our_table(empty_db_url):
    eng = make_engine(empty_db_url, poolclass=NullPool)
    try:
        with eng.connect() as conn:
            assert _public_tables(conn) == set()
        assert migrate.current(empty_db_url) is None

        migrate.upgrade(empty_db_url)

        with eng.connect() as conn:
            tables = _public_tables(conn)
            assert tables == ALL_TABLES | {migrate.VERSION_TABLE}
            assert len(SEED_TABLES) == 19
            # Our own version table, never Dagster's alembic_version.
            assert migrate.VERSION_TABLE == "ws_tracker_alembic_version"
            assert "alembic_version" not in tables
            versions = conn.execute(
                sa.text("SELECT version_num FROM ws_tracker_alembic_version")
            ).scalars().all()
            assert versions == migrate.heads()
    finally:
        eng.dispose()
    assert migrate.current(empty_db_url) == "0008_people_access"


def test_step_by_step_upgrade_schema_then_reference_data(empty_db_url):
    migrate.upgrade(empty_db_url, "0001_initial_schema")
    assert migrate.current(empty_db_url) == "0001_initial_schema"
    eng = make_engine(empty_db_url, poolclass=NullPool)
    try:
        with eng.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM regions")).scalar() == 0
        migrate.upgrade(empty_db_url)
        with eng.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM regions")).scalar() == len(
                catalog.KNOWN_REGIONS
            )
    finally:
        eng.dispose()


def test_every_expected_table_is_described():
    assert set(EXPECTED) == ALL_TABLES


@pytest.mark.parametrize("table", sorted(ALL_TABLES))
def test_columns_types_nullability_and_defaults(engine, table):
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT column_name, data_type, character_maximum_length, numeric_precision, "
                "numeric_scale, is_nullable, column_default, is_identity "
                "FROM information_schema.columns "
                "WHERE table_schema = 'public' AND table_name = :t"
            ),
            {"t": table},
        ).all()
    actual = {r.column_name: r for r in rows}
    expected = EXPECTED[table]
    assert set(actual) == set(expected), (
        f"missing {sorted(set(expected) - set(actual))}, extra {sorted(set(actual) - set(expected))}"
    )
    for name, (seed_type, nullable, default) in expected.items():
        r = actual[name]
        data_type, length, precision, scale = _info_type(seed_type)
        assert r.data_type == data_type, (table, name)
        assert r.character_maximum_length == length, (table, name)
        if data_type in ("numeric", "bigint", "integer"):
            assert (r.numeric_precision, r.numeric_scale) == (precision, scale), (table, name)
        assert r.is_nullable == ("YES" if nullable else "NO"), (table, name)
        if default is not None:
            assert _normalise_default(r.column_default) == default, (table, name)
    # bigint identity primary key `id`
    assert actual["id"].is_identity == "YES"
    with engine.connect() as conn:
        pk = conn.execute(
            sa.text(
                "SELECT a.attname FROM pg_index ix JOIN pg_attribute a "
                "ON a.attrelid = ix.indrelid AND a.attnum = ANY(ix.indkey) "
                "WHERE ix.indrelid = CAST(:t AS regclass) AND ix.indisprimary"
            ),
            {"t": table},
        ).scalars().all()
    assert pk == ["id"]


def test_seed_created_at_defaults_apply_to_plain_sql_inserts(engine):
    with engine.begin() as conn:
        row = conn.execute(
            sa.text(
                "INSERT INTO regions (name, code) VALUES ('Test', 'TST') "
                "RETURNING created_at, updated_at, sort_order, is_active"
            )
        ).one()
    assert row.created_at is not None and row.updated_at is not None
    assert row.created_at.tzinfo is not None  # timestamptz
    assert (row.sort_order, row.is_active) == (0, True)


def test_indexes_exist_with_names_columns_and_uniqueness(engine):
    assert len(SEED_INDEX_NAMES) == 12
    with engine.connect() as conn:
        actual = _indexes(conn)
    for name, table, cols, unique in INDEXES:
        assert name in actual, f"index {name} missing"
        assert actual[name] == (table, cols, unique), name


def test_seed_index_names_are_visible_in_pg_indexes(engine):
    with engine.connect() as conn:
        names = set(
            conn.execute(
                sa.text("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
            ).scalars()
        )
    assert set(SEED_INDEX_NAMES) <= names


def test_unique_keys_reject_duplicates(engine, base):
    with engine.connect() as conn:
        conn.execute(
            sa.text("INSERT INTO circuit_aggregates (circuit_id, aggregate_date) "
                    "VALUES (:c, DATE '2026-01-05')"),
            {"c": base["cid"]},
        )
        # is_rollup is part of the key: the EOD rollup of the same day is a second row.
        conn.execute(
            sa.text("INSERT INTO circuit_aggregates (circuit_id, aggregate_date, is_rollup) "
                    "VALUES (:c, DATE '2026-01-05', true)"),
            {"c": base["cid"]},
        )
        with pytest.raises(sa.exc.IntegrityError) as err:
            conn.execute(
                sa.text("INSERT INTO circuit_aggregates (circuit_id, aggregate_date) "
                        "VALUES (:c, DATE '2026-01-05')"),
                {"c": base["cid"]},
            )
        assert err.value.orig.diag.constraint_name == "circuit_aggregates_unique"
        conn.rollback()


def test_foreign_keys_and_on_delete_rules(engine):
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                """
                SELECT c.conname, t.relname, a.attname, r.relname,
                       CASE c.confdeltype WHEN 'a' THEN 'NO ACTION' WHEN 'r' THEN 'RESTRICT'
                            WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL'
                            WHEN 'd' THEN 'SET DEFAULT' END
                FROM pg_constraint c
                JOIN pg_class t ON t.oid = c.conrelid
                JOIN pg_class r ON r.oid = c.confrelid
                JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
                WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
                """
            )
        ).all()
    assert {tuple(r) for r in rows} == FOREIGN_KEYS


def test_on_delete_behaviour(engine, base):
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE circuits SET last_user_modified_by = :u WHERE id = :c"),
            {"u": base["uid"], "c": base["cid"]},
        )
        conn.execute(
            sa.text("INSERT INTO circuit_aggregates (circuit_id, aggregate_date) "
                    "VALUES (:c, DATE '2026-01-05')"),
            {"c": base["cid"]},
        )
        conn.execute(sa.text("DELETE FROM users WHERE id = :u"), {"u": base["uid"]})
        assert conn.execute(
            sa.text("SELECT last_user_modified_by FROM circuits WHERE id = :c"), {"c": base["cid"]}
        ).scalar() is None
        # A region with circuits cannot be deleted by accident.
        with pytest.raises(sa.exc.IntegrityError):
            with conn.begin_nested():
                conn.execute(sa.text("DELETE FROM regions WHERE id = :r"), {"r": base["region_id"]})
        conn.execute(sa.text("DELETE FROM circuits WHERE id = :c"), {"c": base["cid"]})
        assert conn.execute(sa.text("SELECT count(*) FROM circuit_aggregates")).scalar() == 0


@pytest.mark.parametrize("name,table,column,allowed,rejected", CHECKS, ids=[c[0] for c in CHECKS])
def test_check_constraints(engine, base, name, table, column, allowed, rejected):
    sql = sa.text(CHECK_INSERTS[(table, column)])
    params = {"cid": base["cid"], "uid": base["uid"]}
    with engine.connect() as conn:
        for value in allowed:
            with conn.begin_nested() as sp:
                conn.execute(sql, {**params, "v": value})
                sp.rollback()
        with pytest.raises(sa.exc.IntegrityError) as err:
            conn.execute(sql, {**params, "v": rejected})
        assert err.value.orig.diag.constraint_name == name
        conn.rollback()


def test_weekly_tables_require_sunday_to_saturday_weeks(engine, base):
    sql = sa.text(
        "INSERT INTO regional_weekly_aggregates (region_id, week_starting, week_ending) "
        "VALUES (:r, :s, :e)"
    )
    with engine.connect() as conn:
        conn.execute(sql, {"r": base["region_id"], "s": "2026-01-11", "e": "2026-01-17"})
        with pytest.raises(sa.exc.IntegrityError) as err:  # Monday..Sunday
            conn.execute(sql, {"r": base["region_id"], "s": "2026-01-12", "e": "2026-01-18"})
        assert err.value.orig.diag.constraint_name == "regional_weekly_aggregates_week_check"
        conn.rollback()


def test_circuit_history_validity_periods(engine, base):
    sql = sa.text(
        "INSERT INTO circuit_history (circuit_id, valid_from, valid_to, state_hash, job_guid, "
        "work_order, region_id, api_status) "
        "VALUES (:c, :f, :t, 'h', '{G-1}', '2025-1930', :r, 'ACTIV')"
    )
    p = {"c": base["cid"], "r": base["region_id"]}
    with engine.connect() as conn:
        conn.execute(sql, {**p, "f": "2026-01-01T00:00Z", "t": "2026-01-02T00:00Z"})
        conn.execute(sql, {**p, "f": "2026-01-02T00:00Z", "t": None})
        with pytest.raises(sa.exc.IntegrityError) as err:  # empty period
            with conn.begin_nested():
                conn.execute(sql, {**p, "f": "2026-01-03T00:00Z", "t": "2026-01-03T00:00Z"})
        assert err.value.orig.diag.constraint_name == "circuit_history_valid_to_check"
        with pytest.raises(sa.exc.IntegrityError) as err:  # a second open version
            with conn.begin_nested():
                conn.execute(sql, {**p, "f": "2026-01-04T00:00Z", "t": None})
        assert err.value.orig.diag.constraint_name == "circuit_history_circuit_id_current_unique"
        conn.rollback()


def test_reference_data_matches_catalog(engine):
    with engine.connect() as conn:
        regions = conn.execute(
            sa.text("SELECT name, code, sort_order, is_active FROM regions ORDER BY sort_order")
        ).all()
        units = conn.execute(
            sa.text(
                "SELECT code, name, category, measurement_type, dbh_min, dbh_max, species, "
                "sort_order, is_active FROM unit_types ORDER BY sort_order"
            )
        ).all()
        perms = conn.execute(
            sa.text("SELECT code, name, color, is_active FROM permission_statuses "
                    "ORDER BY sort_order")
        ).all()
        configs = conn.execute(
            sa.text("SELECT api_status, display_name, sync_frequency, sync_planned_units, "
                    "is_active FROM api_status_configs ORDER BY sort_order")
        ).all()
    assert [tuple(r) for r in regions] == [
        (n, c, i, True) for i, (n, c) in enumerate(catalog.KNOWN_REGIONS, 1)
    ]

    def dec(x):
        return None if x is None else Decimal(x)

    assert [tuple(r) for r in units] == [
        (u.code, u.name, u.category, u.measurement_type, dec(u.dbh_min), dec(u.dbh_max),
         u.species, u.sort_order, True)
        for u in catalog.unit_types()
    ]
    assert [tuple(r) for r in perms] == [(c, n, col, True) for c, n, col in
                                        catalog.PERMISSION_STATUSES]
    assert [tuple(r) for r in configs] == [
        (a, d, f, s, True) for a, d, f, s in catalog.API_STATUS_CONFIGS
    ]


QUERY_FILES = [
    "active_circuits_latest_aggregate.sql",
    "regional_summary.sql",
    "sync_history.sql",
    "circuits_with_user_modifications.sql",
]


def test_common_query_files_are_the_seed_verbatim():
    assert sorted(p.name for p in QUERIES_DIR.glob("*.sql")) == sorted(QUERY_FILES)
    if not SEED_FILE.exists():
        pytest.skip("schema reference seed not available on this machine")
    seed = SEED_FILE.read_text()
    blocks = re.findall(r"```sql\n(.*?)```", seed[seed.index("## Common Queries"):], re.S)
    assert sorted(blocks) == sorted((QUERIES_DIR / f).read_text() for f in QUERY_FILES)


def test_common_queries_run_unchanged_on_seeded_data(engine, base):
    with engine.begin() as conn:
        r = {c: i for c, i in conn.execute(sa.text("SELECT code, id FROM regions"))}
        conn.execute(
            sa.text(
                "UPDATE circuits SET user_modified_fields = CAST(:f AS jsonb), "
                "last_user_modified_at = now(), last_user_modified_by = :u WHERE id = :c"
            ),
            {"f": '{"title": {"modified_at": "2026-01-15T10:30:00Z", "modified_by": 1, '
                  '"original_value": "OLD TITLE"}}',
             "u": base["uid"], "c": base["cid"]},
        )
        # two aggregates: the query must pick the latest
        for day, units in (("2026-01-04", 5), ("2026-01-05", 7)):
            conn.execute(
                sa.text("INSERT INTO circuit_aggregates (circuit_id, aggregate_date, total_units, "
                        "units_approved) VALUES (:c, CAST(:d AS date), :n, 2)"),
                {"c": base["cid"], "d": day, "n": units},
            )
        ins = sa.text(
            "INSERT INTO circuits (job_guid, work_order, region_id, title, api_modified_date, "
            "api_status, is_excluded, total_miles, miles_planned, percent_complete, "
            "user_modified_fields) VALUES (:g, :wo, :r, 'T', DATE '2026-01-05', :s, :x, 5, 1, 20, "
            "CAST('{}' AS jsonb))"
        )
        conn.execute(ins, {"g": "{G-2}", "wo": "2025-0002", "r": r["LAN"], "s": "QC", "x": False})
        conn.execute(ins, {"g": "{G-3}", "wo": "2025-0003", "r": r["CEN"], "s": "ACTIV",
                           "x": True})
        conn.execute(ins, {"g": "{G-4}", "wo": "2025-0004", "r": r["CEN"], "s": "ACTIV",
                           "x": False})
        conn.execute(
            sa.text("INSERT INTO sync_logs (sync_type, sync_status, sync_trigger, started_at, "
                    "duration_seconds) VALUES ('full', 'completed', 'scheduled', now(), 12), "
                    "('full', 'failed', 'manual', now() - INTERVAL '10 days', 3)")
        )

    def run(name):
        with engine.connect() as conn:
            # exec_driver_sql: the file goes to PostgreSQL byte for byte
            return conn.exec_driver_sql((QUERIES_DIR / name).read_text()).mappings().all()

    active = run("active_circuits_latest_aggregate.sql")
    assert [(a["work_order"], a["total_units"]) for a in active] == [
        ("2025-0004", None),  # no aggregate: LEFT JOIN LATERAL keeps it
        ("2025-1930", 7),  # latest aggregate of two
    ]

    summary = run("regional_summary.sql")
    assert [s["region_name"] for s in summary] == [n for n, _ in catalog.KNOWN_REGIONS]
    central = summary[0]
    assert (central["active_circuits"], central["qc_circuits"]) == (2, 0)  # excluded left out
    assert central["total_miles"] == Decimal("15.00")
    assert summary[1]["qc_circuits"] == 1

    history = run("sync_history.sql")
    assert [(h["sync_status"], h["duration_seconds"]) for h in history] == [("completed", 12)]

    modified = run("circuits_with_user_modifications.sql")
    assert [(m["work_order"], m["modified_by"]) for m in modified] == [
        ("2025-1930", "Derek Cinicola")
    ]
    assert modified[0]["user_modified_fields"]["title"]["original_value"] == "OLD TITLE"


def test_sync_history_is_independent_of_session_time_zone(engine):
    # timestamptz: "NOW() - INTERVAL '7 days'" compares instants, whatever the session zone.
    with engine.begin() as conn:
        conn.execute(sa.text("SET TIME ZONE 'UTC'"))
        conn.execute(
            sa.text("INSERT INTO sync_logs (sync_type, sync_status, sync_trigger, started_at) "
                    "VALUES ('full', 'completed', 'manual', now() - INTERVAL '7 days' "
                    "+ INTERVAL '2 hours')")
        )
    for zone in ("UTC", "America/New_York", "Asia/Tokyo"):
        with engine.connect() as conn:
            conn.execute(sa.text(f"SET TIME ZONE '{zone}'"))
            rows = conn.exec_driver_sql((QUERIES_DIR / "sync_history.sql").read_text()).all()
            assert len(rows) == 1, zone
            conn.rollback()


def test_upgrade_twice_is_a_no_op(db_url):
    before = _fingerprint(db_url)
    migrate.upgrade(db_url)
    migrate.upgrade(db_url, "head")
    assert _fingerprint(db_url) == before
    assert migrate.current(db_url) == migrate.heads()[0]


def test_reference_data_reseed_is_idempotent_and_keeps_referenced_regions(db_url):
    eng = make_engine(db_url, poolclass=NullPool)
    try:
        with eng.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO circuits (job_guid, work_order, region_id, title, "
                        "api_modified_date, api_status) SELECT '{G-9}', '2025-0009', id, 'T', "
                        "DATE '2026-01-05', 'ACTIV' FROM regions WHERE code = 'LEH'")
            )
        migrate.downgrade(db_url, "0001_initial_schema")
        assert migrate.current(db_url) == "0001_initial_schema"
        with eng.connect() as conn:
            # the region a circuit uses survives; the unused lookups are gone
            assert conn.execute(sa.text("SELECT code FROM regions")).scalars().all() == ["LEH"]
            assert conn.execute(sa.text("SELECT count(*) FROM unit_types")).scalar() == 0
        migrate.upgrade(db_url)  # ON CONFLICT DO NOTHING: LEH is not duplicated
        with eng.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM regions")).scalar() == len(
                catalog.KNOWN_REGIONS
            )
            assert conn.execute(sa.text("SELECT count(*) FROM unit_types")).scalar() == len(
                catalog.unit_types()
            )
    finally:
        eng.dispose()


def test_downgrade_to_base_drops_everything_and_upgrade_restores_it(db_url, base):
    before = _fingerprint(db_url)
    migrate.downgrade(db_url, "base")
    assert migrate.current(db_url) is None
    eng = make_engine(db_url, poolclass=NullPool)
    try:
        with eng.connect() as conn:
            # Alembic keeps its (now empty) version table; nothing else of ours is left.
            assert _public_tables(conn) == {migrate.VERSION_TABLE}
            # identity sequences went with their tables
            assert conn.execute(
                sa.text("SELECT count(*) FROM pg_class c JOIN pg_namespace n "
                        "ON n.oid = c.relnamespace WHERE n.nspname = 'public' "
                        "AND c.relkind = 'S'")
            ).scalar() == 0
    finally:
        eng.dispose()
    migrate.upgrade(db_url)
    after = _fingerprint(db_url)
    assert after["tables"] == before["tables"]
    assert after["columns"] == before["columns"]
    assert after["indexes"] == before["indexes"]
    assert after["constraints"] == before["constraints"]


def test_concurrent_upgrades_both_succeed(empty_db_url):
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def work():
        try:
            barrier.wait()
            migrate.upgrade(empty_db_url)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)  # one upgrade takes about a second
    assert not any(t.is_alive() for t in threads), "an upgrade hung"
    assert not errors, errors
    assert migrate.current(empty_db_url) == migrate.heads()[0]
    eng = make_engine(empty_db_url, poolclass=NullPool)
    try:
        with eng.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM regions")).scalar() == len(
                catalog.KNOWN_REGIONS
            )
            assert conn.execute(
                sa.text("SELECT count(*) FROM ws_tracker_alembic_version")
            ).scalar() == 1
    finally:
        eng.dispose()


def test_upgrade_waits_for_the_advisory_lock(empty_db_url):
    holder = make_engine(empty_db_url, poolclass=NullPool)
    done = threading.Event()
    errors: list[BaseException] = []

    def work():
        try:
            migrate.upgrade(empty_db_url)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            done.set()

    try:
        with holder.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": migrate.LOCK_KEY})
            conn.commit()
            t = threading.Thread(target=work)
            t.start()
            time.sleep(1.5)
            assert not done.is_set(), "upgrade ran while another session held the lock"
            assert migrate.current(empty_db_url) is None
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": migrate.LOCK_KEY})
            conn.commit()
            t.join(timeout=120)
        assert done.is_set() and not errors, errors
        assert migrate.current(empty_db_url) == migrate.heads()[0]
    finally:
        holder.dispose()


def test_failed_migration_releases_the_lock(empty_db_url):
    with pytest.raises(migrate.MigrationError) as err:
        migrate.upgrade(empty_db_url, "no_such_revision")
    assert "no_such_revision" in str(err.value)
    eng = make_engine(empty_db_url, poolclass=NullPool)
    try:
        with eng.connect() as conn:
            assert conn.execute(
                sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": migrate.LOCK_KEY}
            ).scalar() is True
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": migrate.LOCK_KEY})
    finally:
        eng.dispose()
    assert migrate.current(empty_db_url) is None
