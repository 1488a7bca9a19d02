"""Planner work per day ("first unit wins") and regional daily rollups.

Pure tests with hand-written units; warehouse tests on hand-inserted rows with exact expected
rows; and a simulator run over several days checked against an independent computation
written here straight from the stored captures and history.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from ws_tracker.rules.catalog import UNIT_CATEGORY
from ws_tracker.rules.rollups import (
    CircuitDayState,
    CircuitUnits,
    PlannerDay,
    breakdown_key,
    planner_day_work,
    regional_day,
)
from ws_tracker.rules.units import PlannedUnit, unit_to_json
from ws_tracker.warehouse.rollups import build_planner_day, build_regional_day
from ws_tracker_tests.e2e import start_harness

NY = ZoneInfo("America/New_York")
D = date(2026, 3, 4)  # a Wednesday
MILE = 1609.344


def end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), NY).astimezone(timezone.utc)


def u(uid, station, forester, day, code="SPM", *, ft=0.0, acres=0.0, trees=0, span=None,
      username=None, perm=None) -> dict:
    return unit_to_json(PlannedUnit(
        unit_id=uid, station=station, forester=forester, forester_username=username,
        assessed_date=day, unit_code=code, linear_ft=ft, acres=acres, trees=trees,
        span_length_m=span, permission_status=perm))


# ------------------------------------------------------------------------------- pure: planners

def _work(units, day=D, keys=None, circuit_id=1, wo="WO-1", region=1):
    return planner_day_work([CircuitUnits(circuit_id, wo, region, units)], day, keys or {})


def test_station_credited_once_to_its_earliest_units_forester():
    prev = D - timedelta(days=1)
    units = [
        u(1, "10", "Ann", D, "SPM", ft=100, span=50.0),
        u(2, "10", "Bob", D, "HCB", acres=0.5, span=50.0),  # same station, later id: unit only
        u(3, "20", "Bob", prev, "REM612", trees=3, span=80.0),  # station 20 first assessed D-1
        u(4, "20", "Ann", D, "SPM", ft=200, span=80.0),  # unit on D, station already credited
        u(5, "30", "Ann", D, "XYZ", ft=999, acres=9, trees=9),  # unknown code: a unit, no measure
    ]
    day = _work(units)
    assert set(day) == {("Ann", 1), ("Bob", 1)}
    ann, bob = day[("Ann", 1)], day[("Bob", 1)]
    assert (ann.total_units_assessed, ann.total_linear_ft, ann.total_acres, ann.total_trees) == (3, 300.0, 0.0, 0)
    assert (ann.stations_worked, ann.span_miles) == (2, round(50 / MILE, 4))  # 30 has no span
    assert ann.circuit_breakdown == {"WO-1": {"units": 3, "linear_ft": 300.0, "acres": 0.0,
                                              "trees": 0, "stations": 2}}
    assert (bob.total_units_assessed, bob.total_acres, bob.stations_worked, bob.span_miles) == (1, 0.5, 0, 0.0)
    before = _work(units, day=prev)
    assert list(before) == [("Bob", 1)]
    b = before[("Bob", 1)]
    assert (b.total_units_assessed, b.total_trees, b.stations_worked, b.span_miles) == (1, 3, 1, round(80 / MILE, 4))
    # Nothing on a day without assessed units.
    assert _work(units, day=D + timedelta(days=1)) == {}


def test_station_tie_goes_to_the_lowest_unit_id_whatever_the_order():
    units = [u(7, "10", "Cy", D, span=40.0), u(6, "10", "Di", D, span=40.0)]
    for order in (units, units[::-1]):
        day = _work(order)
        assert day[("Di", 1)].stations_worked == 1 and day[("Cy", 1)].stations_worked == 0
        assert day[("Di", 1)].span_miles == round(40 / MILE, 4) and day[("Cy", 1)].span_miles == 0


def test_a_late_unit_counts_on_its_assessed_day_and_can_take_the_station():
    # The latest capture holds a unit assessed on D-2 that synced days later: it counts for
    # D-2 and, being the station's earliest, takes the station from the D unit.
    late = D - timedelta(days=2)
    units = [u(1, "10", "Ann", D, span=30.0), u(9, "10", "Bob", late, span=30.0)]
    assert _work(units)[("Ann", 1)].stations_worked == 0
    day = _work(units, day=late)
    assert day[("Bob", 1)].total_units_assessed == 1 and day[("Bob", 1)].stations_worked == 1


def test_stations_are_per_circuit_and_planners_per_region_and_breakdown_per_job():
    caps = [
        CircuitUnits(1, breakdown_key("2026-0001", "@"), 1, [u(1, "10", "Ann", D, ft=10)]),
        CircuitUnits(2, breakdown_key("2026-0001", "C_a"), 1, [u(2, "10", "Ann", D, ft=20)]),
        CircuitUnits(3, breakdown_key("2026-0002", None), 2, [u(3, "10", "Ann", D, acres=1, code="HCB")]),
    ]
    day = planner_day_work(caps, D, {})
    assert set(day) == {("Ann", 1), ("Ann", 2)}
    a1 = day[("Ann", 1)]
    assert (a1.stations_worked, a1.circuits_worked, a1.total_linear_ft) == (2, 2, 30.0)
    assert set(a1.circuit_breakdown) == {"2026-0001", "2026-0001/C_a"}
    assert day[("Ann", 2)].circuit_breakdown == {"2026-0002": {"units": 1, "linear_ft": 0.0, "acres": 1.0,
                                                               "trees": 0, "stations": 1}}
    assert breakdown_key("2026-0001", "") == "2026-0001"


def test_measures_by_category_and_half_up_rounding():
    units = [u(1, "1", "Ann", D, "SPM", ft=1.005, acres=5, trees=5),  # VLG: feet only
             u(2, "2", "Ann", D, "MOW", ft=5, acres=0.00005, trees=5),  # VAR: acres only
             u(3, "3", "Ann", D, "BTR", ft=5, acres=5, trees=2),  # VCT: trees only
             u(4, "4", "Ann", D, None, ft=5, acres=5, trees=5)]  # no code: a unit, nothing else
    a = _work(units)[("Ann", 1)]
    assert (a.total_units_assessed, a.total_linear_ft, a.total_acres, a.total_trees) == (4, 1.01, 0.0001, 2)


def test_planner_names_trimmed_case_folded_and_mapped_to_users():
    units = [u(1, "1", "ann lee ", D), u(2, "2", "Ann Lee", D), u(3, "3", "Bo Ray", D, username="ASPLUNDH\\bray"),
             u(4, "4", "Cal Ng", D), u(5, "5", None, D, username="ASPLUNDH\\zed"), u(6, "6", None, D)]
    keys = {"ann lee": 11, "asplundh\\bray": 12}
    day = _work(units, keys=keys)
    assert {k: (p.user_id, p.total_units_assessed) for k, p in day.items()} == {
        ("Ann Lee", 1): (11, 2), ("Bo Ray", 1): (12, 1), ("Cal Ng", 1): (None, 1),
        ("ASPLUNDH\\zed", 1): (None, 1), ("(unknown)", 1): (None, 1)}


# ------------------------------------------------------------------------------- pure: regional

def test_regional_day_counts_sums_and_excluded():
    agg = {"total_units": 4, "total_linear_ft": Decimal("10.25"), "total_acres": Decimal("0.5"),
           "total_trees": 2, "units_approved": 1, "units_refused": 1, "units_pending": 2,
           "units_by_permission": {"Approved": 1, "Refused": 1, "Pending": 2},
           "unit_counts_by_type": {"SPM": 3, "HCB": 1}}
    circuits = [
        CircuitDayState(1, 1, "ACTIV", 10, 4, 40, aggregate=agg),
        CircuitDayState(2, 1, "QC", 5, 6, 100, aggregate=agg),  # planned > total: remaining 0
        CircuitDayState(3, 1, "REWRK", 1, 0, 0),
        CircuitDayState(4, 1, "ACTIV", 99, 99, 99, is_excluded=True, aggregate=agg),
        CircuitDayState(5, 2, "CLOSE", 3, 3, 100),
        CircuitDayState(6, 9, "ACTIV", 1, 1, 1),  # not an active region: ignored
    ]
    planners = [PlannerDay("Ann", 1), PlannerDay("Bob", 1), PlannerDay("Ann", 2)]
    out = regional_day([1, 2, 3], circuits, planners)
    assert set(out) == {1, 2, 3}
    r1 = out[1]
    assert (r1.total_circuits, r1.active_circuits, r1.qc_circuits, r1.rework_circuits,
            r1.closed_circuits, r1.excluded_circuits) == (3, 1, 1, 1, 0, 1)
    assert (r1.total_miles, r1.miles_planned, r1.miles_remaining, r1.avg_percent_complete) == (16.0, 10.0, 7.0, 46.67)
    assert (r1.total_units, r1.total_linear_ft, r1.total_acres, r1.total_trees) == (8, 20.5, 1.0, 4)
    assert (r1.units_approved, r1.units_refused, r1.units_pending, r1.active_planners) == (2, 2, 4, 2)
    assert r1.status_breakdown == {"ACTIV": 1, "QC": 1, "REWRK": 1}
    assert r1.permission_breakdown == {"Approved": 2, "Pending": 4, "Refused": 2}
    assert r1.unit_counts_by_type == {"HCB": 2, "SPM": 6}
    assert (out[2].closed_circuits, out[2].active_planners, out[2].avg_percent_complete) == (1, 1, 100.0)
    r3 = out[3]
    assert (r3.total_circuits, r3.avg_percent_complete, r3.status_breakdown, r3.active_planners) == (0, 0.0, {}, 0)


# ------------------------------------------------------------------------------- warehouse, by hand

def _ins(conn, sql, **p):
    result = conn.execute(sa.text(sql), p)
    return result.scalar() if result.returns_rows else None


def _circuit(conn, guid, wo, ext, region, status="ACTIV", *, excluded=False, deleted=False):
    return _ins(conn,
                "INSERT INTO circuits (job_guid, work_order, extension, region_id, title, api_modified_date,"
                " api_status, is_excluded, deleted_at) VALUES (:g, :wo, :ext, :r, :g, :d, :s, :x,"
                " CASE WHEN :gone THEN now() END) RETURNING id",
                g=guid, wo=wo, ext=ext, r=region, d=D, s=status, x=excluded, gone=deleted)


def _history(conn, cid, region, status, frm, to=None, *, total=0, planned=0, pct=0):
    _ins(conn, "INSERT INTO circuit_history (circuit_id, valid_from, valid_to, state_hash, job_guid,"
               " work_order, region_id, api_status, total_miles, miles_planned, percent_complete)"
               " SELECT :c, :f, :t, md5(CAST(:f AS text)), job_guid, work_order, :r, :s, :tm, :mp, :pc"
               " FROM circuits WHERE id = :c",
         c=cid, f=frm, t=to, r=region, s=status, tm=total, mp=planned, pc=pct)


def _capture(conn, cid, at, units):
    _ins(conn, "INSERT INTO planned_units_snapshots (circuit_id, work_order, snapshot_trigger,"
               " content_hash, unit_count, captured_at, raw_json)"
               " SELECT :c, work_order, 'scheduled', md5(:j), :n, :at, CAST(:j AS jsonb) FROM circuits WHERE id = :c",
         c=cid, at=at, j=json.dumps(units), n=len(units))


def _aggregate(conn, cid, day, **v):
    cols = ", ".join(v)
    vals = ", ".join(f"CAST(:{k} AS jsonb)" if isinstance(x, dict) else f":{k}" for k, x in v.items())
    _ins(conn, f"INSERT INTO circuit_aggregates (circuit_id, aggregate_date, {cols}) VALUES (:c, :d, {vals})",
         c=cid, d=day, **{k: json.dumps(x) if isinstance(x, dict) else x for k, x in v.items()})


def at(day: date, hour: int = 18) -> datetime:
    return datetime.combine(day, time(hour), NY)


@pytest.fixture
def world(engine):
    """Hand-written circuits, history, captures and aggregates around day D."""
    prev = D - timedelta(days=1)
    with engine.begin() as conn:
        reg = dict(conn.execute(sa.text("SELECT code, id FROM regions")).all())
        r1, r2 = reg["CEN"], reg["LAN"]
        conn.execute(sa.text("UPDATE regions SET is_active = false WHERE code = 'DIST'"))
        alice = _ins(conn, "INSERT INTO users (name, email, password) VALUES ('Alice Able', 'a@x', 'x') RETURNING id")
        bob = _ins(conn, "INSERT INTO users (name, email, password, ws_username)"
                         " VALUES ('Robert B', 'b@x', 'x', 'ASPLUNDH\\bbaker') RETURNING id")
        # c1 was in CEN and ACTIV at the end of D; it moved to LAN (and QC) the day after.
        c1 = _circuit(conn, "G1", "2026-0001", "@", r2, "QC")
        _history(conn, c1, r1, "ACTIV", at(D - timedelta(days=5)), at(D + timedelta(days=1)),
                 total=10, planned=4, pct=40)
        _history(conn, c1, r2, "QC", at(D + timedelta(days=1)), total=10, planned=10, pct=100)
        c2 = _circuit(conn, "G2", "2026-0001", "C_a", r1)
        _history(conn, c2, r1, "ACTIV", at(D - timedelta(days=5)), total=5, planned=5, pct=100)
        c3 = _circuit(conn, "G3", "2026-0003", "@", r1, excluded=True)
        _history(conn, c3, r1, "ACTIV", at(D - timedelta(days=5)), total=50, planned=1, pct=2)
        c4 = _circuit(conn, "G4", "2026-0004", "@", r1, deleted=True)
        _history(conn, c4, r1, "ACTIV", at(D - timedelta(days=5)), total=70, planned=1, pct=2)
        c5 = _circuit(conn, "G5", "2026-0005", "@", r2, "CLOSE")
        _history(conn, c5, r2, "CLOSE", at(D - timedelta(days=10)), total=8, planned=8, pct=100)
        c6 = _circuit(conn, "G6", "2026-0006", "@", r2)  # first seen two days after D
        _history(conn, c6, r2, "ACTIV", at(D + timedelta(days=2)), total=3, planned=0, pct=0)

        _capture(conn, c1, at(prev), [u(103, "2", "Bob Baker", prev, "REM612", trees=4, span=200.0)])
        c1_units = [
            u(101, "1", "Alice Able", D, "SPM", ft=100.5, span=100.0, perm="Approved"),
            u(102, "1", "Bob Baker", D, "HCB", acres=1.25, span=100.0, username="ASPLUNDH\\bbaker"),
            u(103, "2", "Bob Baker", prev, "REM612", trees=4, span=200.0, username="ASPLUNDH\\bbaker"),
            u(104, "2", "Alice Able", D, "MPM", ft=50, span=200.0),  # synced three days late
            u(105, "3", "Carl Cole", D + timedelta(days=1), "SPM", ft=10),
        ]
        _capture(conn, c1, at(D + timedelta(days=3)), c1_units)  # the latest capture, after D
        _capture(conn, c2, at(D), [u(201, "1", "alice able", D, "BRUSH", acres=0.5, span=50.0),
                                   u(202, "5", "Dana Dee", D, "ZZZ")])
        _capture(conn, c3, at(D), [u(301, "1", "Alice Able", D, "SPM", ft=1000)])
        _capture(conn, c4, at(D), [u(401, "1", "Alice Able", D, "SPM", ft=1000)])

        _aggregate(conn, c1, D, total_units=4, total_linear_ft=150.5, total_acres=1.25, total_trees=4,
                   units_approved=1, units_pending=3, units_by_permission={"Approved": 1, "Pending": 3},
                   unit_counts_by_type={"HCB": 1, "MPM": 1, "REM612": 1, "SPM": 1})
        _aggregate(conn, c2, D, total_units=2, total_acres=0.5, units_pending=2,
                   units_by_permission={"Pending": 2}, unit_counts_by_type={"BRUSH": 1, "ZZZ": 1})
        _aggregate(conn, c3, D, total_units=1, total_linear_ft=1000, units_pending=1,
                   units_by_permission={"Pending": 1}, unit_counts_by_type={"SPM": 1})
        _aggregate(conn, c4, D, total_units=1, total_linear_ft=1000, units_pending=1,
                   units_by_permission={"Pending": 1}, unit_counts_by_type={"SPM": 1})
        # Rows the build must remove (that day, no longer produced) or leave alone (other day).
        conn.execute(sa.text("INSERT INTO planner_daily_aggregates (planner_name, region_id, aggregate_date,"
                             " total_units_assessed) VALUES ('Ghost', :r, :d, 9), ('Ghost', :r, :o, 9)"),
                     {"r": r1, "d": D, "o": D - timedelta(days=7)})
        conn.execute(sa.text("INSERT INTO regional_daily_aggregates (region_id, aggregate_date, total_units)"
                             " VALUES (:r, :d, 9)"), {"r": reg["DIST"], "d": D})
    return {"reg": reg, "r1": r1, "r2": r2, "alice": alice, "bob": bob, "c1": c1, "c2": c2}


def _planner_rows(conn, day):
    return {(r.planner_name, r.region_id): r for r in conn.execute(sa.text(
        "SELECT * FROM planner_daily_aggregates WHERE aggregate_date = :d"), {"d": day})}


def _dump(conn, table):
    return [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY id"))]


def _build(engine, day):
    with engine.begin() as conn:
        return build_planner_day(conn, day, end_of(day)), build_regional_day(conn, day, end_of(day))


def test_planner_day_rows_by_hand(engine, world):
    r1 = world["r1"]
    p, _ = _build(engine, D)
    assert p.counts()["planner_removed"] == 1 and p.counts()["planner_rows"] == 3
    with engine.connect() as conn:
        rows = _planner_rows(conn, D)
        assert set(rows) == {("Alice Able", r1), ("Bob Baker", r1), ("Dana Dee", r1)}
        got = {k: (r.user_id, r.total_units_assessed, r.total_linear_ft, r.total_acres, r.total_trees,
                   r.stations_worked, r.span_miles, r.circuits_worked) for k, r in rows.items()}
        assert got == {
            # 101, 104 (late-synced, only in the latest capture) and 201 ("alice able"): the
            # excluded and the deleted circuits' 1000 ft are left out; stations c1/1 and c2/1.
            ("Alice Able", r1): (world["alice"], 3, Decimal("150.50"), Decimal("0.5000"), 0, 2,
                                 Decimal(str(round(150 / MILE, 4))), 2),
            ("Bob Baker", r1): (world["bob"], 1, Decimal("0.00"), Decimal("1.2500"), 0, 0, Decimal("0"), 1),
            ("Dana Dee", r1): (None, 1, Decimal("0.00"), Decimal("0.0000"), 0, 1, Decimal("0"), 1),
        }
        assert rows[("Alice Able", r1)].circuit_breakdown == {
            "2026-0001": {"units": 2, "linear_ft": 150.5, "acres": 0.0, "trees": 0, "stations": 1},
            "2026-0001/C_a": {"units": 1, "linear_ft": 0.0, "acres": 0.5, "trees": 0, "stations": 1}}
        # The other day's row is untouched.
        assert conn.execute(sa.text("SELECT count(*) FROM planner_daily_aggregates WHERE planner_name = 'Ghost'")
                            ).scalar_one() == 1
    # The day before: Bob's station 2, from the latest capture.
    prev = D - timedelta(days=1)
    with engine.begin() as conn:
        build_planner_day(conn, prev, end_of(prev))
        rows = _planner_rows(conn, prev)
    assert {k: (r.total_units_assessed, r.total_trees, r.stations_worked, r.span_miles) for k, r in rows.items()} \
        == {("Bob Baker", r1): (1, 4, 1, Decimal(str(round(200 / MILE, 4))))}


def test_regional_day_rows_by_hand(engine, world):
    r1, r2, reg = world["r1"], world["r2"], world["reg"]
    _, r = _build(engine, D)
    assert r.counts()["regional_removed"] == 1  # DIST is inactive
    with engine.connect() as conn:
        rows = {x.region_id: x for x in conn.execute(sa.text(
            "SELECT * FROM regional_daily_aggregates WHERE aggregate_date = :d"), {"d": D})}
    assert set(rows) == {i for c, i in reg.items() if c != "DIST"}
    cols = ("total_circuits", "active_circuits", "qc_circuits", "rework_circuits", "closed_circuits",
            "excluded_circuits", "total_miles", "miles_planned", "miles_remaining", "avg_percent_complete",
            "total_units", "total_linear_ft", "total_acres", "total_trees", "units_approved",
            "units_refused", "units_pending", "active_planners", "status_breakdown",
            "permission_breakdown", "unit_counts_by_type")
    got = {rid: dict(zip(cols, (getattr(x, c) for c in cols))) for rid, x in rows.items()}
    assert got[r1] == dict(zip(cols, (
        2, 2, 0, 0, 0, 1, Decimal("15.00"), Decimal("9.00"), Decimal("6.00"), Decimal("70.00"),
        6, Decimal("150.50"), Decimal("1.7500"), 4, 1, 0, 5, 3, {"ACTIV": 2},
        {"Approved": 1, "Pending": 5}, {"BRUSH": 1, "HCB": 1, "MPM": 1, "REM612": 1, "SPM": 1, "ZZZ": 1})))
    # LAN: only c5 (CLOSE); c1 is in CEN on D, c6 appears after D.
    assert got[r2] == dict(zip(cols, (
        1, 0, 0, 0, 1, 0, Decimal("8.00"), Decimal("8.00"), Decimal("0.00"), Decimal("100.00"),
        0, Decimal("0.00"), Decimal("0.0000"), 0, 0, 0, 0, 0, {"CLOSE": 1}, {}, {})))
    assert all(g["total_circuits"] == 0 and g["status_breakdown"] == {}
               for rid, g in got.items() if rid not in (r1, r2))


def test_rebuild_is_idempotent_and_follows_new_captures(engine, world):
    _build(engine, D)
    tables = ("planner_daily_aggregates", "regional_daily_aggregates")
    with engine.connect() as conn:
        first = {t: _dump(conn, t) for t in tables}
    p, r = _build(engine, D)
    assert (p.written, p.removed, r.written, r.removed) == (0, 0, 0, 0)
    assert p.unchanged == 3 and r.unchanged == 6
    with engine.connect() as conn:
        assert {t: _dump(conn, t) for t in tables} == first  # same ids, same updated_at
    # A newer capture of c2 drops Dana's unit and adds one of Alice's: same ids, Dana gone.
    with engine.begin() as conn:
        _capture(conn, world["c2"], at(D + timedelta(days=4)),
                 [u(201, "1", "alice able", D, "BRUSH", acres=0.5, span=50.0),
                  u(203, "6", "Alice Able", D, "SPM", ft=9.5)])
    p, r = _build(engine, D)
    assert (p.written, p.removed, p.unchanged) == (1, 1, 1)
    with engine.connect() as conn:
        rows = _planner_rows(conn, D)
        # Columns: id, user_id, planner_name, region_id, aggregate_date, ...
        old_ids = {(x[2], x[3]): x[0] for x in first["planner_daily_aggregates"] if x[4] == D}
        assert {k: v.id for k, v in rows.items()} == {k: old_ids[k] for k in rows}
        assert set(rows) == {("Alice Able", world["r1"]), ("Bob Baker", world["r1"])}
        assert rows[("Alice Able", world["r1"])].total_units_assessed == 4
        assert rows[("Alice Able", world["r1"])].total_linear_ft == Decimal("160.00")
        assert rows[("Alice Able", world["r1"])].stations_worked == 3
        assert conn.execute(sa.text("SELECT active_planners FROM regional_daily_aggregates"
                                    " WHERE region_id = :r AND aggregate_date = :d"),
                            {"r": world["r1"], "d": D}).scalar_one() == 2


# ------------------------------------------------------------------------------- simulator

DAYS = [date(2026, 3, 2) + timedelta(days=i) for i in range(5)]  # Monday..Friday


def _independent_units(conn, day):
    """(circuit_id, region_id, unit) for units assessed on ``day`` in each non-excluded,
    non-deleted circuit's latest capture, written without the module under test."""
    rows = conn.execute(sa.text(
        "SELECT DISTINCT ON (s.circuit_id) s.circuit_id, s.raw_json,"
        " coalesce((SELECT h.region_id FROM circuit_history h WHERE h.circuit_id = s.circuit_id"
        "   AND h.valid_from < :end ORDER BY h.valid_from DESC LIMIT 1), c.region_id) AS region_id"
        " FROM planned_units_snapshots s JOIN circuits c ON c.id = s.circuit_id"
        " WHERE c.deleted_at IS NULL AND NOT c.is_excluded ORDER BY s.circuit_id, s.captured_at DESC"),
        {"end": end_of(day)}).all()
    out, firsts = [], 0
    for r in rows:
        earliest = {}
        for x in r.raw_json:
            if x["station"] and x["assessed_date"]:
                k = (x["assessed_date"], x["unit_id"])
                earliest[x["station"]] = min(earliest.get(x["station"], k), k)
            if x["assessed_date"] == day.isoformat():
                out.append((r.circuit_id, r.region_id, x))
        firsts += sum(1 for d, _ in earliest.values() if d == day.isoformat())
    return out, firsts


def test_simulated_week_matches_an_independent_computation(db_url, engine):
    h = start_harness(db_url, late_sync_rate=0.4, extra_unit_columns=True)
    try:
        for day in DAYS:
            assert h.run(day).success
    finally:
        h.server.stop()
    with engine.begin() as conn:
        # Exclude the circuit with the most units on the first day: it must vanish everywhere.
        units0, _ = _independent_units(conn, DAYS[0])
        top = Counter(c for c, _, _ in units0).most_common(1)[0][0]
        conn.execute(sa.text("UPDATE circuits SET is_excluded = true WHERE id = :c"), {"c": top})

    late_total = 0
    for day in DAYS:
        with engine.begin() as conn:
            build_planner_day(conn, day, end_of(day))
            build_regional_day(conn, day, end_of(day))
        with engine.connect() as conn:
            units, stations = _independent_units(conn, day)
            assert units, day
            assert all(c != top for c, _, _ in units)
            rows = conn.execute(sa.text("SELECT * FROM planner_daily_aggregates WHERE aggregate_date = :d"),
                                {"d": day}).all()
            # Units: per (planner, region), and in total, as distinct units of that day.
            want = Counter(((x["forester"] or "").strip().casefold(), reg) for _, reg, x in units)
            assert Counter({(r.planner_name.casefold(), r.region_id): r.total_units_assessed for r in rows}) == want
            assert sum(r.total_units_assessed for r in rows) == len({(c, x["unit_id"]) for c, _, x in units})
            assert sum(r.stations_worked for r in rows) == stations
            ft = sum(x["linear_ft"] for _, _, x in units if UNIT_CATEGORY.get(x["unit_code"]) == "VLG")
            assert float(sum(r.total_linear_ft for r in rows)) == pytest.approx(ft, abs=0.01 * len(rows))
            trees = sum(x["trees"] for _, _, x in units if UNIT_CATEGORY.get(x["unit_code"]) == "VCT")
            assert sum(r.total_trees for r in rows) == trees
            circuits = defaultdict(set)
            for c, reg, x in units:
                circuits[((x["forester"] or "").strip().casefold(), reg)].add(c)
            assert {(r.planner_name.casefold(), r.region_id): r.circuits_worked for r in rows} == \
                {k: len(v) for k, v in circuits.items()}

            # Late syncs matter: units of that day only in captures taken after the day ended.
            late_total += conn.execute(sa.text(
                "SELECT count(*) FROM (SELECT DISTINCT ON (circuit_id) circuit_id, raw_json"
                "  FROM planned_units_snapshots WHERE captured_at < :end"
                "  ORDER BY circuit_id, captured_at DESC) s JOIN circuits c ON c.id = s.circuit_id,"
                " jsonb_array_elements(s.raw_json) x"
                " WHERE NOT c.is_excluded AND x->>'assessed_date' = :d"),
                {"end": end_of(day), "d": day.isoformat()}).scalar_one() < len(units)

            # Regional: status counts from history at the end of the day, units from that
            # day's circuit_aggregates, planners from the units above.
            reg_rows = {r.region_id: r for r in conn.execute(sa.text(
                "SELECT * FROM regional_daily_aggregates WHERE aggregate_date = :d"), {"d": day})}
            states = conn.execute(sa.text(
                "SELECT h.region_id, h.api_status, c.is_excluded, c.id FROM circuit_history h"
                " JOIN circuits c ON c.id = h.circuit_id WHERE c.deleted_at IS NULL"
                " AND h.valid_from < :end AND (h.valid_to IS NULL OR h.valid_to >= :end)"),
                {"end": end_of(day)}).all()
            active = Counter(s.region_id for s in states if s.api_status == "ACTIV" and not s.is_excluded)
            excluded = Counter(s.region_id for s in states if s.is_excluded)
            agg_units = dict(conn.execute(sa.text(
                "SELECT coalesce(h.region_id, c.region_id), sum(a.total_units) FROM circuit_aggregates a"
                " JOIN circuits c ON c.id = a.circuit_id"
                " LEFT JOIN circuit_history h ON h.circuit_id = c.id AND h.valid_from < :end"
                "  AND (h.valid_to IS NULL OR h.valid_to >= :end)"
                " WHERE a.aggregate_date = :d AND NOT c.is_excluded AND c.deleted_at IS NULL GROUP BY 1"),
                {"d": day, "end": end_of(day)}).all())
            planners = defaultdict(set)
            for _, reg, x in units:
                planners[reg].add((x["forester"] or "").strip().casefold())
            assert sum(excluded.values()) == 1
            assert set(reg_rows) == set(conn.execute(sa.text("SELECT id FROM regions WHERE is_active")).scalars())
            for rid, r in reg_rows.items():
                assert r.active_circuits == active.get(rid, 0), (day, rid)
                assert r.excluded_circuits == excluded.get(rid, 0), (day, rid)
                assert r.total_units == agg_units.get(rid, 0), (day, rid)
                assert r.active_planners == len(planners.get(rid, ())), (day, rid)
    assert late_total >= 1, "the simulated week should contain late-synced work"
