"""Security properties that hold for the code as a whole: no SQL is built by formatting values
into strings, and every server the project starts listens on loopback (or a unix socket) by
default. (Secrets in outputs: test_reliability.py and test_credentials.py; the analyst role's
read-only grants: test_analyst_sql.py.)"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import sqlalchemy as sa

from ws_tracker.cli import build_parser
from ws_tracker.simulator.server import SimulatorServer

PACKAGE = Path(__file__).resolve().parent.parent / "ws_tracker"
SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER|GRANT|REVOKE|DROP|WHERE|VALUES|SET)\b")

# Every expression formatted into SQL text, reviewed: each yields identifiers (table and column
# names from constants in the code), placeholders, or SQL fragments built from those; values
# always travel as bound parameters. A new entry here needs the same review.
REVIEWED = {
    ("cli.py", "t"),  # table names from cli.TABLES
    ("warehouse/checks.py", "cols"), ("warehouse/checks.py", "day_column"),
    ("warehouse/checks.py", "table"),
    ("warehouse/circuit_snapshots.py", "', '.join(cols)"), ("warehouse/circuit_snapshots.py", "_SELECT"),
    ("warehouse/circuit_snapshots.py", "distinct"), ("warehouse/circuit_snapshots.py", "sets"),
    ("warehouse/circuit_sync.py", "', '.join(_CIRCUIT_COLS)"),
    # batch.py: set-based writes name a table and its columns (code constants, checked against
    # a plain-identifier pattern by batch._names); rows travel as one bound JSON parameter.
    ("warehouse/batch.py", "_expand(table)"), ("warehouse/batch.py", "cols"),
    ("warehouse/batch.py", "key"), ("warehouse/batch.py", "sets"),
    ("warehouse/batch.py", "table"),
    ("warehouse/edits.py", "sets"),  # columns from edits.FIELDS, values bound
    ("warehouse/engine.py", "quoted"),  # CREATE DATABASE: the name quoted as an identifier
    ("warehouse/migrations/versions/0002_reference_data.py", "c"),
    ("warehouse/migrations/versions/0002_reference_data.py", "t"),
    ("warehouse/migrations/versions/0002_reference_data.py", "unreferenced"),
    ("warehouse/migrations/versions/0004_analyst_views.py", "', '.join(SECRET_TABLES)"),
    ("warehouse/migrations/versions/0004_analyst_views.py", "', '.join(USERS_READABLE_COLUMNS)"),
    ("warehouse/migrations/versions/0004_analyst_views.py", "name"),
    ("warehouse/upsert.py", "', '.join(cols)"), ("warehouse/upsert.py", "', '.join(key)"),
    ("warehouse/upsert.py", "distinct"), ("warehouse/upsert.py", "placeholders"),
    ("warehouse/upsert.py", "sets"), ("warehouse/upsert.py", "table"),
    ("warehouse/weekly.py", "', '.join(REGIONAL_STATE_COLUMNS)"),
    # 0008: RLS DDL. Role and policy names and the predicates are module constants; tables
    # and views come from the catalog and are quoted as identifiers (_quote / t).
    ("warehouse/migrations/versions/0008_people_access.py", "ALL_REGIONS"),
    ("warehouse/migrations/versions/0008_people_access.py", "ANALYST"),
    ("warehouse/migrations/versions/0008_people_access.py", "NOT_ANALYST"),
    ("warehouse/migrations/versions/0008_people_access.py", "OPEN_POLICY"),
    ("warehouse/migrations/versions/0008_people_access.py", "REGIONS"),
    ("warehouse/migrations/versions/0008_people_access.py", "SCOPE_POLICY"),
    ("warehouse/migrations/versions/0008_people_access.py", "_quote(view)"),
    ("warehouse/migrations/versions/0008_people_access.py", "predicate"),
    ("warehouse/migrations/versions/0008_people_access.py", "t"),
    ("warehouse/people.py", "table"),  # the two planner aggregate tables, a literal tuple
}


def formatted_into_sql() -> set[tuple[str, str]]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.JoinedStr):
                text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
                if SQL.search(text):
                    rel = path.relative_to(PACKAGE).as_posix()
                    found |= {(rel, ast.unparse(v.value)) for v in node.values
                              if isinstance(v, ast.FormattedValue)}
    return found


def test_no_sql_is_built_by_formatting_values():
    found = formatted_into_sql()
    assert found, "the scan finds the f-strings it is meant to review"
    assert found - REVIEWED == set(), "formatted into SQL text, not reviewed (bind values instead)"


def test_servers_listen_on_loopback_by_default(engine):
    parser = build_parser()
    assert parser.parse_args(["simulator", "serve"]).host == "127.0.0.1"
    assert parser.parse_args(["dev"]).host == "127.0.0.1"
    server = SimulatorServer()
    try:
        assert server.host == "127.0.0.1"
    finally:
        server.stop()
    if engine.url.host is None:  # reached over a unix socket: the embedded server (the default)
        with engine.connect() as conn:
            # No TCP listener at all.
            assert conn.execute(sa.text("SHOW listen_addresses")).scalar() == ""
