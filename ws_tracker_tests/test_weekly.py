"""Weekly planner and regional rollups (rules/weekly.py, warehouse/weekly.py).

Hand-inserted daily rows with exact expected weekly rows; idempotent rebuilds that leave other
weeks alone; and a simulator run over two weeks checked against an independent computation
written here in SQL straight from the daily tables.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from ws_tracker.rules.weekly import PlannerDayRow, planner_week, week_bounds, week_starting_of
from ws_tracker.warehouse.weekly import build_planner_week, build_regional_week

W = date(2026, 2, 22)  # a Sunday
SUN, MON, TUE, WED, THU, FRI, SAT = (W + timedelta(days=i) for i in range(7))
PREV_SAT, NEXT_SUN = W - timedelta(days=1), W + timedelta(days=7)


# ------------------------------------------------------------------------------- pure

def test_week_bounds_and_week_starting_of():
    assert week_bounds(W) == (W, SAT) and SAT.weekday() == 5
    for bad in (MON, SAT, date(2026, 3, 7)):
        with pytest.raises(ValueError, match="Sunday"):
            week_bounds(bad)
    with pytest.raises(ValueError):
        week_bounds(datetime(2026, 2, 22, 12))
    assert [week_starting_of(d) for d in (SUN, WED, SAT, NEXT_SUN)] == [W, W, W, NEXT_SUN]


def test_planner_week_ignores_days_outside_the_week_and_counts_keys_once():
    rows = [PlannerDayRow("Ann", 1, d, total_units_assessed=n, total_linear_ft=Decimal("1.005"),
                          circuit_breakdown={"A": {}, **({"B": {}} if n > 1 else {})})
            for d, n in ((PREV_SAT, 50), (MON, 1), (TUE, 2), (NEXT_SUN, 70))]
    (w,) = planner_week(W, rows, {"A": 4, "B": Decimal("2.5"), "C": 100}).values()
    assert (w.days_worked, w.total_units_assessed, w.circuits_worked) == (2, 3, 2)
    assert w.total_linear_ft == Decimal("2.01")  # 1.005 + 1.005, then 2 places
    assert (w.miles_delta, w.met_weekly_target) == (Decimal("6.50"), True)
    assert list(w.daily_breakdown) == [MON.isoformat(), TUE.isoformat()]
    assert planner_week(W, rows, {"A": 4, "B": 2.49})[("Ann", 1)].met_weekly_target is False


# ------------------------------------------------------------------------------- by hand

def _ins(conn, sql, **p):
    result = conn.execute(sa.text(sql), p)
    return result.scalar() if result.returns_rows else None


def _circuit(conn, guid, wo, ext, region, *, deleted=False):
    return _ins(conn, "INSERT INTO circuits (job_guid, work_order, extension, region_id, title,"
                      " api_modified_date, api_status, deleted_at) VALUES (:g, :wo, :ext, :r, :g, :d,"
                      " 'ACTIV', CASE WHEN :gone THEN now() END) RETURNING id",
                g=guid, wo=wo, ext=ext, r=region, d=W, gone=deleted)


def _snap(conn, cid, day, miles, kind="daily"):
    _ins(conn, "INSERT INTO circuit_snapshots (circuit_id, snapshot_type, snapshot_date, miles_planned)"
               " VALUES (:c, :t, :d, :m)", c=cid, t=kind, d=day, m=miles)


def _pday(conn, name, region, day, *, user=None, units=0, ft=0, acres=0, trees=0, stations=0,
          span=0, keys=()):
    bd = {k: {"units": 1, "linear_ft": 0.0, "acres": 0.0, "trees": 0, "stations": 0} for k in keys}
    _ins(conn, "INSERT INTO planner_daily_aggregates (planner_name, region_id, aggregate_date, user_id,"
               " circuits_worked, total_units_assessed, total_linear_ft, total_acres, total_trees,"
               " stations_worked, span_miles, circuit_breakdown) VALUES (:n, :r, :d, :u, :cw, :units,"
               " :ft, :acres, :trees, :st, :span, CAST(:bd AS jsonb))",
         n=name, r=region, d=day, u=user, cw=len(keys), units=units, ft=ft, acres=acres, trees=trees,
         st=stations, span=span, bd=json.dumps(bd))


def _rday(conn, region, day, **v):
    cols = ["region_id", "aggregate_date", *v]
    vals = [":region_id", ":aggregate_date",
            *(f"CAST(:{k} AS jsonb)" if isinstance(x, dict) else f":{k}" for k, x in v.items())]
    _ins(conn, f"INSERT INTO regional_daily_aggregates ({', '.join(cols)}) VALUES ({', '.join(vals)})",
         region_id=region, aggregate_date=day,
         **{k: json.dumps(x) if isinstance(x, dict) else x for k, x in v.items()})


CEN_THU = dict(total_circuits=15, active_circuits=12, qc_circuits=2, rework_circuits=1,
               closed_circuits=0, excluded_circuits=3, total_miles=300, miles_planned=Decimal("104.75"),
               miles_remaining=Decimal("195.25"), avg_percent_complete=Decimal("34.91"),
               total_units=900, total_linear_ft=Decimal("12345.67"), total_acres=Decimal("8.1234"),
               total_trees=40, units_approved=500, units_refused=20, units_pending=380,
               active_planners=1, status_breakdown={"ACTIV": 12, "QC": 2, "REWRK": 1})


@pytest.fixture
def world(engine):
    with engine.begin() as conn:
        reg = dict(conn.execute(sa.text("SELECT code, id FROM regions")).all())
        cen, lan, dist = reg["CEN"], reg["LAN"], reg["DIST"]
        conn.execute(sa.text("UPDATE regions SET is_active = false WHERE code = 'DIST'"))
        alice = _ins(conn, "INSERT INTO users (name, email, password) VALUES ('Ann', 'a@x', 'x') RETURNING id")
        bob = _ins(conn, "INSERT INTO users (name, email, password) VALUES ('Bob', 'b@x', 'x') RETURNING id")

        c1 = _circuit(conn, "G1", "2026-0001", "@", cen)
        c2 = _circuit(conn, "G2", "2026-0001", "C_a", cen)
        c3 = _circuit(conn, "G3", "2026-0002", None, cen)  # NULL extension = the "@" job
        c1_old = _circuit(conn, "G1OLD", "2026-0001", "@", cen, deleted=True)
        c4 = _circuit(conn, "G4", "2026-0004", "@", cen)
        _circuit(conn, "G5", "2026-0005", "@", lan)  # no snapshots at all
        # c1: start = latest daily before Sunday (10.00), end = latest daily on/before Saturday.
        for day, m in ((W - timedelta(days=3), 9), (W - timedelta(days=2), 10), (MON, 11),
                       (SAT, Decimal("13.50")), (NEXT_SUN, 20)):
            _snap(conn, c1, day, m)
        _snap(conn, c2, W - timedelta(days=6), 2)
        _snap(conn, c2, WED, 3)
        _snap(conn, c2, FRI, 99, kind="manual")  # not a daily snapshot: ignored
        _snap(conn, c3, TUE, Decimal("1.25"))  # new in the week: start 0
        _snap(conn, c3, FRI, 2)
        _snap(conn, c1_old, W - timedelta(days=2), 0)  # deleted twin of c1's key: ignored
        _snap(conn, c1_old, THU, 50)
        _snap(conn, c4, PREV_SAT, 5)
        _snap(conn, c4, SUN, 7)  # in the week: not the start
        _snap(conn, c4, THU, Decimal("11.49"))

        # Ann in CEN: c1 3.50 + c2 1.00 + c3 2.00 = 6.50 -> target met exactly.
        _pday(conn, "Ann", cen, PREV_SAT, user=alice, units=100, keys=["2026-0009"])
        _pday(conn, "Ann", cen, MON, user=bob, units=3, ft=Decimal("100.50"), stations=2,
              span=Decimal("0.0621"), keys=["2026-0001"])
        _pday(conn, "Ann", cen, TUE, user=alice, units=4, ft=Decimal("50.25"), acres=Decimal("1.25"),
              trees=2, stations=1, span=Decimal("0.0100"), keys=["2026-0001", "2026-0001/C_a"])
        _pday(conn, "Ann", cen, THU, units=2, acres=Decimal("0.5001"), trees=5, stations=2,
              span=Decimal("0.0003"), keys=["2026-0002"])
        _pday(conn, "Ann", cen, NEXT_SUN, user=alice, units=7, keys=["2026-0001"])
        # Bob in CEN: c4 6.49 -> not met. Ann in LAN: c5 without snapshots -> 0.
        _pday(conn, "Bob", cen, WED, user=bob, units=5, ft=10, stations=5, keys=["2026-0004"])
        _pday(conn, "Ann", lan, FRI, units=1, trees=1, stations=1, keys=["2026-0005"])
        # Cy works in CEN on Friday, a day without a regional CEN row.
        _pday(conn, "Cy", cen, FRI, units=6)

        _rday(conn, cen, W - timedelta(days=2), miles_planned=100, active_circuits=9)
        for day, active, miles in ((MON, 10, "101.00"), (TUE, 11, "102.50"), (WED, 11, "103.25")):
            _rday(conn, cen, day, active_circuits=active, miles_planned=Decimal(miles), total_units=1,
                  status_breakdown={"ACTIV": active})
        _rday(conn, cen, THU, **CEN_THU)
        _rday(conn, cen, NEXT_SUN, miles_planned=200, active_circuits=99)
        _rday(conn, lan, MON, active_circuits=1, miles_planned=5)
        _rday(conn, lan, SAT, total_circuits=3, active_circuits=2, closed_circuits=1, total_miles=9,
              miles_planned=Decimal("7.50"), miles_remaining=Decimal("1.50"),
              status_breakdown={"ACTIV": 2, "CLOSE": 1})
        _rday(conn, dist, TUE, active_circuits=4, miles_planned=1)  # inactive region

        # Rows the builds must remove (this week, no longer produced) or leave alone (other
        # weeks, also of planners and regions the rebuilt week does not produce).
        conn.execute(sa.text(
            "INSERT INTO planner_weekly_aggregates (planner_name, region_id, week_starting, week_ending,"
            " total_units_assessed) VALUES ('Ghost', :r, :ws, :we, 9), ('Ghost', :r, :pws, :pwe, 9)"),
            {"r": cen, "ws": W, "we": SAT, "pws": W - timedelta(days=7), "pwe": PREV_SAT})
        conn.execute(sa.text(
            "INSERT INTO regional_weekly_aggregates (region_id, week_starting, week_ending, units_added)"
            " VALUES (:d, :ws, :we, 9), (:d, :pws, :pwe, 9)"),
            {"d": dist, "ws": W, "we": SAT, "pws": W - timedelta(days=7), "pwe": PREV_SAT})
    return {"cen": cen, "lan": lan, "dist": dist, "alice": alice, "bob": bob}


def _weekly(conn, table, week_ending=SAT):
    return conn.execute(sa.text(f"SELECT * FROM {table} WHERE week_ending = :we ORDER BY id"),
                        {"we": week_ending}).all()


def _dump(conn, table):
    return [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY id"))]


def _other_weeks(conn, table):
    return [tuple(r) for r in conn.execute(sa.text(
        f"SELECT * FROM {table} WHERE week_ending <> :we ORDER BY id"), {"we": SAT})]


def _build(engine, week=W, **kw):
    with engine.begin() as conn:
        return build_planner_week(conn, week, **kw), build_regional_week(conn, week)


def test_planner_week_rows_by_hand(engine, world):
    cen, lan = world["cen"], world["lan"]
    p, _ = _build(engine)
    assert p.counts() == {"planner_weekly_rows": 4, "planner_weekly_written": 4,
                          "planner_weekly_unchanged": 0, "planner_weekly_removed": 1,
                          "planner_weekly_units": 21, "planner_weekly_met_target": 1}
    cols = ("user_id", "week_starting", "days_worked", "circuits_worked", "total_units_assessed",
            "total_linear_ft", "total_acres", "total_trees", "stations_worked", "span_miles",
            "miles_delta", "met_weekly_target")
    with engine.connect() as conn:
        rows = {(r.planner_name, r.region_id): r for r in _weekly(conn, "planner_weekly_aggregates")}
    assert {k: tuple(getattr(r, c) for c in cols) for k, r in rows.items()} == {
        # user_id: the latest non-null of the days (Tuesday's); Thursday's is NULL.
        ("Ann", cen): (world["alice"], W, 3, 3, 9, Decimal("150.75"), Decimal("1.7501"), 7, 5,
                       Decimal("0.0724"), Decimal("6.50"), True),
        ("Bob", cen): (world["bob"], W, 1, 1, 5, Decimal("10.00"), Decimal("0"), 0, 5, Decimal("0"),
                       Decimal("6.49"), False),
        ("Ann", lan): (None, W, 1, 1, 1, Decimal("0"), Decimal("0"), 1, 1, Decimal("0"),
                       Decimal("0.00"), False),
        ("Cy", cen): (None, W, 1, 0, 6, Decimal("0"), Decimal("0"), 0, 0, Decimal("0"),
                      Decimal("0.00"), False),
    }
    ann = rows[("Ann", cen)]
    assert ann.daily_breakdown == {
        MON.isoformat(): {"units": 3, "linear_ft": 100.5, "acres": 0.0, "trees": 0, "stations": 2, "circuits": 1},
        TUE.isoformat(): {"units": 4, "linear_ft": 50.25, "acres": 1.25, "trees": 2, "stations": 1, "circuits": 2},
        THU.isoformat(): {"units": 2, "linear_ft": 0.0, "acres": 0.5001, "trees": 5, "stations": 2, "circuits": 1},
    }
    # The weekly sums are the sums of the days in daily_breakdown.
    for r in rows.values():
        days = r.daily_breakdown.values()
        assert r.days_worked == len(r.daily_breakdown)
        assert r.total_units_assessed == sum(d["units"] for d in days)
        assert r.total_linear_ft == Decimal(str(round(sum(d["linear_ft"] for d in days), 2))).quantize(Decimal("0.01"))
        assert r.total_trees == sum(d["trees"] for d in days)
        assert r.stations_worked == sum(d["stations"] for d in days)
        assert r.week_ending == r.week_starting + timedelta(days=6)
    # The target is configurable: both sides of it.
    p, _ = _build(engine, target_miles=7)
    assert p.met_target == 0 and p.written == 1
    p, _ = _build(engine, target_miles=6.49)
    assert p.met_target == 2 and p.written == 2


def test_regional_week_rows_by_hand(engine, world):
    cen, lan = world["cen"], world["lan"]
    _, r = _build(engine)
    assert r.counts() == {"regional_weekly_rows": 2, "regional_weekly_written": 2,
                          "regional_weekly_unchanged": 0, "regional_weekly_removed": 1,
                          "regional_weekly_units": 21}
    with engine.connect() as conn:
        rows = {x.region_id: x for x in _weekly(conn, "regional_weekly_aggregates")}
    # Only active regions with a daily row in the week: CEN and LAN (DIST is inactive).
    assert set(rows) == {cen, lan}
    c = rows[cen]
    # The state of Thursday, the last CEN day with a row; Friday and Saturday have none.
    assert {k: getattr(c, k) for k in CEN_THU if k != "active_planners"} == {
        k: v for k, v in CEN_THU.items() if k != "active_planners"}
    # Three planners worked in CEN that week (Thursday's own count is 1); units of every day.
    assert (c.active_planners, c.units_added, c.miles_delta) == (3, 20, Decimal("4.75"))
    assert c.daily_breakdown == {
        MON.isoformat(): {"circuits_active": 10, "miles_planned": 101.0, "units_added": 3},
        TUE.isoformat(): {"circuits_active": 11, "miles_planned": 102.5, "units_added": 4},
        WED.isoformat(): {"circuits_active": 11, "miles_planned": 103.25, "units_added": 5},
        THU.isoformat(): {"circuits_active": 12, "miles_planned": 104.75, "units_added": 2},
    }
    # Cy's 6 Friday units count in units_added but Friday has no regional row, so no entry.
    assert sum(d["units_added"] for d in c.daily_breakdown.values()) == c.units_added - 6
    lv = rows[lan]
    assert (lv.total_circuits, lv.active_circuits, lv.closed_circuits, lv.miles_planned,
            lv.miles_remaining, lv.status_breakdown) == (3, 2, 1, Decimal("7.50"), Decimal("1.50"),
                                                         {"ACTIV": 2, "CLOSE": 1})
    # No LAN row before the week: the baseline is 0.
    assert (lv.units_added, lv.active_planners, lv.miles_delta) == (1, 1, Decimal("7.50"))
    assert lv.daily_breakdown == {
        MON.isoformat(): {"circuits_active": 1, "miles_planned": 5.0, "units_added": 0},
        SAT.isoformat(): {"circuits_active": 2, "miles_planned": 7.5, "units_added": 0}}


def test_non_sunday_raises_and_writes_nothing(engine, world):
    tables = ("planner_weekly_aggregates", "regional_weekly_aggregates")
    with engine.connect() as conn:
        before = {t: _dump(conn, t) for t in tables}
    for bad in (MON, SAT):
        with engine.begin() as conn:
            with pytest.raises(ValueError, match="Sunday"):
                build_planner_week(conn, bad)
            with pytest.raises(ValueError, match="Sunday"):
                build_regional_week(conn, bad)
    with engine.connect() as conn:
        assert {t: _dump(conn, t) for t in tables} == before


def test_rebuild_is_idempotent_and_leaves_other_weeks_alone(engine, world):
    tables = ("planner_weekly_aggregates", "regional_weekly_aggregates")
    with engine.connect() as conn:
        other = {t: _other_weeks(conn, t) for t in tables}
    _build(engine)
    with engine.connect() as conn:
        first = {t: _dump(conn, t) for t in tables}
    p, r = _build(engine)
    assert (p.written, p.removed, p.unchanged, r.written, r.removed, r.unchanged) == (0, 0, 4, 0, 0, 2)
    with engine.connect() as conn:
        assert {t: _dump(conn, t) for t in tables} == first  # same ids, same updated_at
        assert {t: _other_weeks(conn, t) for t in tables} == other
        assert all(len(v) == 1 for v in other.values())
    # A daily row changes: the affected weekly rows are updated in place, the rest untouched.
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE planner_daily_aggregates SET total_units_assessed = 6"
                             " WHERE planner_name = 'Ann' AND region_id = :r AND aggregate_date = :d"),
                     {"r": world["cen"], "d": TUE})
        conn.execute(sa.text("DELETE FROM planner_daily_aggregates WHERE planner_name = 'Cy'"))
    p, r = _build(engine)
    assert (p.written, p.removed, p.unchanged, r.written, r.removed, r.unchanged) == (1, 1, 2, 1, 0, 1)
    with engine.connect() as conn:
        rows = {(x.planner_name, x.region_id): x for x in _weekly(conn, "planner_weekly_aggregates")}
        # Columns: id, user_id, planner_name, region_id, week_starting, week_ending, ...
        old = {(x[2], x[3]): x[0] for x in first["planner_weekly_aggregates"] if x[5] == SAT}
        assert {k: v.id for k, v in rows.items()} == {k: old[k] for k in rows}
        assert rows[("Ann", world["cen"])].total_units_assessed == 11
        assert ("Cy", world["cen"]) not in rows
        assert conn.execute(sa.text("SELECT units_added FROM regional_weekly_aggregates"
                                    " WHERE region_id = :r AND week_ending = :we"),
                            {"r": world["cen"], "we": SAT}).scalar_one() == 16
        assert {t: _other_weeks(conn, t) for t in tables} == other


# ------------------------------------------------------------------------------- simulator

WEEKS = [date(2026, 3, 1), date(2026, 3, 8)]  # Sundays; 8 March is also the DST change
WEEKDAYS = [w + timedelta(days=i) for w in WEEKS for i in range(1, 6)]

_KEY_SQL = ("CASE WHEN coalesce(nullif(btrim(c.extension), ''), '@') = '@' THEN c.work_order"
            " ELSE c.work_order || '/' || btrim(c.extension) END")


def _independent_planner(conn, ws, we):
    """Per (planner, region): the week's sums, distinct days and circuits, and miles delta,
    in SQL from the daily tables, without the module under test."""
    sums = {(r.planner_name, r.region_id): r for r in conn.execute(sa.text(
        "SELECT planner_name, region_id, count(DISTINCT aggregate_date) AS days_worked,"
        " sum(total_units_assessed) AS total_units_assessed, sum(total_linear_ft) AS total_linear_ft,"
        " sum(total_acres) AS total_acres, sum(total_trees) AS total_trees,"
        " sum(stations_worked) AS stations_worked, sum(span_miles) AS span_miles"
        " FROM planner_daily_aggregates WHERE aggregate_date BETWEEN :a AND :b GROUP BY 1, 2"),
        {"a": ws, "b": we})}
    circuits = {(r.planner_name, r.region_id): (r.n, r.miles) for r in conn.execute(sa.text(
        f"WITH k AS (SELECT DISTINCT p.planner_name, p.region_id, j.key FROM planner_daily_aggregates p,"
        f"   jsonb_object_keys(p.circuit_breakdown) AS j(key) WHERE p.aggregate_date BETWEEN :a AND :b),"
        f" m AS (SELECT {_KEY_SQL} AS key, coalesce(e.miles_planned, 0) - coalesce(s.miles_planned, 0) AS d"
        f"   FROM circuits c"
        f"   LEFT JOIN LATERAL (SELECT miles_planned FROM circuit_snapshots x WHERE x.circuit_id = c.id"
        f"     AND x.snapshot_type = 'daily' AND x.snapshot_date <= :b ORDER BY x.snapshot_date DESC LIMIT 1) e ON true"
        f"   LEFT JOIN LATERAL (SELECT miles_planned FROM circuit_snapshots x WHERE x.circuit_id = c.id"
        f"     AND x.snapshot_type = 'daily' AND x.snapshot_date < :a ORDER BY x.snapshot_date DESC LIMIT 1) s ON true"
        f"   WHERE c.deleted_at IS NULL)"
        f" SELECT k.planner_name, k.region_id, count(DISTINCT k.key) AS n, coalesce(sum(m.d), 0) AS miles"
        f" FROM k LEFT JOIN m ON m.key = k.key GROUP BY 1, 2"), {"a": ws, "b": we})}
    return sums, circuits


def test_two_simulated_weeks_match_the_daily_tables(harness, engine):
    for day in WEEKDAYS:
        assert harness.run(day).success
    results = {}
    for ws in WEEKS:
        with engine.begin() as conn:
            results[ws] = (build_planner_week(conn, ws), build_regional_week(conn, ws))
    met = []
    for ws in WEEKS:
        we = ws + timedelta(days=6)
        with engine.connect() as conn:
            weekly = {(r.planner_name, r.region_id): r for r in _weekly(conn, "planner_weekly_aggregates", we)}
            sums, circuits = _independent_planner(conn, ws, we)
            assert weekly and set(weekly) == set(sums)
            assert results[ws][0].rows == len(weekly)
            for key, w in weekly.items():
                s = sums[key]
                for col in ("days_worked", "total_units_assessed", "total_linear_ft", "total_acres",
                            "total_trees", "stations_worked", "span_miles"):
                    assert getattr(w, col) == getattr(s, col), (ws, key, col)
                n, miles = circuits.get(key, (0, 0))
                assert (w.circuits_worked, w.miles_delta) == (n, miles), (ws, key)
                assert w.met_weekly_target == (miles >= Decimal("6.5"))
                assert w.days_worked == len(w.daily_breakdown)
                assert w.total_units_assessed == sum(d["units"] for d in w.daily_breakdown.values())
                assert all(ws <= date.fromisoformat(d) <= we for d in w.daily_breakdown)
                met.append(w.met_weekly_target)
            assert max(w.days_worked for w in weekly.values()) > 1

            regional = {r.region_id: r for r in _weekly(conn, "regional_weekly_aggregates", we)}
            daily = conn.execute(sa.text(
                "SELECT * FROM regional_daily_aggregates WHERE aggregate_date BETWEEN :a AND :b"
                " ORDER BY aggregate_date"), {"a": ws, "b": we}).all()
            units = conn.execute(sa.text(
                "SELECT region_id, aggregate_date, sum(total_units_assessed) AS n FROM planner_daily_aggregates"
                " WHERE aggregate_date BETWEEN :a AND :b GROUP BY 1, 2"), {"a": ws, "b": we}).all()
            active = set(conn.execute(sa.text("SELECT id FROM regions WHERE is_active")).scalars())
            assert set(regional) == active == {d.region_id for d in daily}
            for rid, w in regional.items():
                days = [d for d in daily if d.region_id == rid]
                last = days[-1]
                assert last.aggregate_date == we - timedelta(days=1)  # weekdays only: Friday
                for col in ("total_circuits", "active_circuits", "qc_circuits", "rework_circuits",
                            "closed_circuits", "excluded_circuits", "total_miles", "miles_planned",
                            "total_units", "total_linear_ft", "units_pending", "status_breakdown"):
                    assert getattr(w, col) == getattr(last, col), (ws, rid, col)
                assert w.units_added == sum(u.n for u in units if u.region_id == rid)
                assert w.units_added == sum(d["units_added"] for d in w.daily_breakdown.values())
                assert w.daily_breakdown == {d.aggregate_date.isoformat(): {
                    "circuits_active": d.active_circuits, "miles_planned": float(d.miles_planned),
                    "units_added": sum(u.n for u in units if u.region_id == rid and u.aggregate_date == d.aggregate_date)}
                    for d in days}
                before = conn.execute(sa.text(
                    "SELECT miles_planned FROM regional_daily_aggregates WHERE region_id = :r"
                    " AND aggregate_date = :d"), {"r": rid, "d": ws - timedelta(days=2)}).scalar()
                assert (before is None) == (ws == WEEKS[0])
                assert w.miles_delta == last.miles_planned - (before or 0), (ws, rid)
    assert True in met and False in met
    # Rebuilding a week changes nothing.
    with engine.begin() as conn:
        again = build_planner_week(conn, WEEKS[1]), build_regional_week(conn, WEEKS[1])
    assert [x.written + x.removed for x in again] == [0, 0]
    assert [x.unchanged for x in again] == [x.rows for x in results[WEEKS[1]]]
