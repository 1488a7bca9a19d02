"""Data checks over the derived tables, one function per rule, for the days given.

Each returns a list of violations (dicts naming the row and what is wrong); empty = passed.
The Dagster asset checks (ws_tracker/pipeline/checks.py) are thin wrappers over these, so the
rules can be tested by breaking the data they guard.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa

MAX_LISTED = 20


def _rows(conn: sa.Connection, sql: str, **params: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(sa.text(sql), params).mappings().fetchmany(MAX_LISTED)]


def permissions_within_total(conn: sa.Connection, days: list[date]) -> list[dict[str, Any]]:
    """approved + pending + refused <= total_units on every circuit aggregate."""
    return _rows(conn, """
        SELECT circuit_id, aggregate_date::text AS day, total_units,
               units_approved + units_pending + units_refused AS classified
        FROM circuit_aggregates WHERE aggregate_date = ANY(:d)
          AND units_approved + units_pending + units_refused > total_units
        ORDER BY aggregate_date, circuit_id""", d=days)


def type_counts_sum_to_total(conn: sa.Connection, days: list[date]) -> list[dict[str, Any]]:
    """The per-type unit counts add up to total_units."""
    return _rows(conn, """
        SELECT a.circuit_id, a.aggregate_date::text AS day, a.total_units, t.by_type
        FROM circuit_aggregates a
        CROSS JOIN LATERAL (SELECT coalesce(sum(value::int), 0) AS by_type
                            FROM jsonb_each_text(coalesce(a.unit_counts_by_type, '{}'))) t
        WHERE a.aggregate_date = ANY(:d) AND t.by_type <> a.total_units
        ORDER BY a.aggregate_date, a.circuit_id""", d=days)


def duplicate_keys(conn: sa.Connection, table: str, key: tuple[str, ...], day_column: str,
                   days: list[date]) -> list[dict[str, Any]]:
    """No natural key appears twice (the unique indexes say so; this says it to the UI)."""
    cols = ", ".join(key)
    return _rows(conn, f"""
        SELECT {cols}, count(*) AS copies FROM {table} WHERE {day_column} = ANY(:d)
        GROUP BY {cols} HAVING count(*) > 1""", d=days)


def snapshots_cover_open_circuits(conn: sa.Connection, days: list[date], window_ends: list
                                  ) -> list[dict[str, Any]]:
    """Every non-deleted, non-excluded circuit not CLOSE at the end of a built day has its
    daily snapshot for that day."""
    missing: list[dict[str, Any]] = []
    for day, end in zip(days, window_ends):
        missing += _rows(conn, """
            SELECT c.id AS circuit_id, c.job_guid, CAST(:d AS date)::text AS day, h.api_status
            FROM circuits c
            JOIN LATERAL (SELECT api_status FROM circuit_history h WHERE h.circuit_id = c.id
                          AND h.valid_from < :end ORDER BY h.valid_from DESC LIMIT 1) h ON true
            WHERE c.deleted_at IS NULL AND NOT c.is_excluded AND h.api_status <> 'CLOSE'
              AND NOT EXISTS (SELECT 1 FROM circuit_snapshots s WHERE s.circuit_id = c.id
                              AND s.snapshot_type = 'daily' AND s.snapshot_date = :d)""",
                         d=day, end=end)
    return missing[:MAX_LISTED]


def regional_units_exclude_excluded(conn: sa.Connection, days: list[date]) -> list[dict[str, Any]]:
    """A region's unit total for a day is the sum over its non-excluded, non-deleted circuits'
    aggregates that day: an excluded circuit never reaches a rollup."""
    return _rows(conn, """
        WITH per_circuit AS (
            SELECT a.aggregate_date, coalesce(h.region_id, c.region_id) AS region_id,
                   a.total_units
            FROM circuit_aggregates a JOIN circuits c ON c.id = a.circuit_id
            LEFT JOIN LATERAL (SELECT region_id FROM circuit_history h WHERE h.circuit_id = c.id
                               AND h.valid_from < (a.aggregate_date + 1)::timestamp
                                                  AT TIME ZONE 'America/New_York'
                               ORDER BY h.valid_from DESC LIMIT 1) h ON true
            WHERE a.aggregate_date = ANY(:d) AND NOT a.is_rollup
              AND c.deleted_at IS NULL AND NOT c.is_excluded)
        SELECT r.region_id, r.aggregate_date::text AS day, r.total_units,
               coalesce(sum(p.total_units), 0) AS expected
        FROM regional_daily_aggregates r
        LEFT JOIN per_circuit p ON p.region_id = r.region_id AND p.aggregate_date = r.aggregate_date
        WHERE r.aggregate_date = ANY(:d)
        GROUP BY r.region_id, r.aggregate_date, r.total_units
        HAVING r.total_units <> coalesce(sum(p.total_units), 0)""", d=days)


def planner_work_excludes_excluded(conn: sa.Connection, days: list[date]) -> list[dict[str, Any]]:
    """No planner's daily circuit_breakdown names an excluded or deleted circuit."""
    return _rows(conn, """
        SELECT p.planner_name, p.aggregate_date::text AS day, k.key AS circuit
        FROM planner_daily_aggregates p
        CROSS JOIN LATERAL jsonb_object_keys(coalesce(p.circuit_breakdown, '{}')) AS k(key)
        JOIN circuits c ON c.work_order = split_part(k.key, '/', 1)
         AND coalesce(c.extension, '@') = coalesce(nullif(split_part(k.key, '/', 2), ''), '@')
        WHERE p.aggregate_date = ANY(:d) AND (c.is_excluded OR c.deleted_at IS NOT NULL)""",
                 d=days)


def weekly_sums_match_days(conn: sa.Connection, weeks: list[date]) -> list[dict[str, Any]]:
    """A planner's weekly units, feet and days worked equal the sums over their daily rows."""
    return _rows(conn, """
        SELECT w.planner_name, w.region_id, w.week_starting::text AS week,
               w.total_units_assessed, coalesce(sum(d.total_units_assessed), 0) AS daily_units,
               w.days_worked, count(d.id) AS daily_rows
        FROM planner_weekly_aggregates w
        LEFT JOIN planner_daily_aggregates d ON d.planner_name = w.planner_name
         AND d.region_id = w.region_id AND d.aggregate_date BETWEEN w.week_starting AND w.week_ending
        WHERE w.week_starting = ANY(:w)
        GROUP BY w.id
        HAVING w.total_units_assessed <> coalesce(sum(d.total_units_assessed), 0)
            OR w.total_linear_ft <> coalesce(sum(d.total_linear_ft), 0)
            OR w.days_worked <> count(d.id)""", w=weeks)
