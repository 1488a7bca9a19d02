"""warehouse/batch.py: COPY with reserved ids, set-based updates from one JSON parameter."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from ws_tracker.warehouse.batch import copy_rows, reserve_ids, update_rows

T = datetime(2026, 3, 4, 22, 30, 15, 123456, tzinfo=timezone.utc)
D = date(2026, 3, 4)


def _region(conn) -> int:
    return conn.execute(sa.text("SELECT min(id) FROM regions")).scalar_one()


def test_copy_rows_with_reserved_ids_then_update_rows_round_trip_every_type(engine):
    with engine.begin() as conn:
        region = _region(conn)
        ids = reserve_ids(conn, "circuits", 3)
        assert ids == sorted(ids) and len(set(ids)) == 3
        written = copy_rows(conn, "circuits", (
            "id", "job_guid", "work_order", "region_id", "title", "total_miles", "start_date",
            "api_modified_date", "api_modified_at", "api_data_json", "api_status"), [
            (ids[0], "{A}", "WO-1", region, "Tab\there, quote ' and \\ backslash", 12.35,
             date(2026, 1, 5), D, T, '{"k": "v\\u00e9", "n": [1, 2]}', "ACTIV"),
            (ids[1], "{B}", "WO-2", region, "B", 0, None, D, None, "{}", "QC"),
            (ids[2], "{C}", "WO-3", region, "Line\nbreak", 0, date(2026, 2, 1), D, T, "[]", "CLOSE"),
        ])
        assert written == 3
        assert copy_rows(conn, "circuits", ("id",), iter([])) == 0  # no COPY at all
        changed = update_rows(conn, "circuits", "id", (
            "title", "total_miles", "start_date", "api_modified_at", "api_data_json",
            "user_modified_fields"), [
            {"id": ids[1], "title": "Now 'titled'", "total_miles": Decimal("7.50"),
             "start_date": date(2026, 3, 1), "api_modified_at": T,
             "api_data_json": {"nested": {"x": None}}, "user_modified_fields": None},
            {"id": ids[2], "title": "", "total_miles": 1.25, "start_date": None,
             "api_modified_at": None, "api_data_json": ["a"], "user_modified_fields": None},
        ], also="updated_at = now()")
        assert changed == 2
        rows = {r.id: r for r in conn.execute(sa.text(
            "SELECT id, title, total_miles, start_date, api_modified_at, api_data_json,"
            " user_modified_fields FROM circuits WHERE id = ANY(:ids)"), {"ids": ids})}
    assert rows[ids[0]].title == "Tab\there, quote ' and \\ backslash"
    assert float(rows[ids[0]].total_miles) == 12.35
    assert rows[ids[0]].start_date == date(2026, 1, 5) and rows[ids[0]].api_modified_at == T
    assert rows[ids[0]].api_data_json == {"k": "v\u00e9", "n": [1, 2]}
    assert rows[ids[1]].title == "Now 'titled'" and rows[ids[1]].total_miles == Decimal("7.50")
    assert rows[ids[1]].start_date == date(2026, 3, 1) and rows[ids[1]].api_modified_at == T
    assert rows[ids[1]].api_data_json == {"nested": {"x": None}}
    assert rows[ids[1]].user_modified_fields is None  # JSON null -> SQL NULL, not 'null'
    assert rows[ids[2]].title == "" and rows[ids[2]].start_date is None
    assert rows[ids[2]].api_modified_at is None and float(rows[ids[2]].total_miles) == 1.25
    assert rows[ids[2]].api_data_json == ["a"]


def test_names_that_are_not_plain_identifiers_are_refused(engine):
    with engine.begin() as conn:
        with pytest.raises(ValueError, match="not a plain SQL identifier: 'title; DROP'"):
            update_rows(conn, "circuits", "id", ("title; DROP",), [{"id": 1}])
        with pytest.raises(ValueError, match="not a plain SQL identifier"):
            copy_rows(conn, "circuits (id) FROM STDIN; --", ("id",), [(1,)])


def test_update_rows_refuses_nan_and_unknown_types(engine):
    with engine.begin() as conn:
        with pytest.raises(ValueError, match="Out of range float values"):
            update_rows(conn, "circuits", "id", ("total_miles",),
                        [{"id": 1, "total_miles": float("nan")}])
        with pytest.raises(TypeError, match="cannot send a set value as a row field"):
            update_rows(conn, "circuits", "id", ("title",), [{"id": 1, "title": {1}}])
