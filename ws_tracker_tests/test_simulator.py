"""The WorkStudio simulator: a deterministic world and a real DDOProtocol server over HTTP."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from ws_tracker.rules import catalog
from ws_tracker.simulator import SimulatorServer, World, WorldConfig
from ws_tracker.workstudio import protocol

USER, PASSWORD = "ASPLUNDH\\wstracker", "wstracker"
AUTH = (USER, PASSWORD)
MONDAY = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
CH = protocol.CIRCUIT_LIST_HEADING
UH = protocol.PLANNED_UNITS_HEADING
WRAPPED = re.compile(r"^/Date\(([^)]*)\)/$")
OLE_EPOCH = datetime(1899, 12, 30, tzinfo=UTC)


# --------------------------------------------------------------------------- a small decoder
# Independent of the project's client: what any correct reader of the spec would do.
def decode_when(value):
    """Wire date/timestamp -> date, aware datetime, or None (NULL)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return OLE_EPOCH + timedelta(days=value)
    if value == "":
        return None
    inner = WRAPPED.match(value).group(1)
    if re.fullmatch(r"-?\d+", inner):
        result = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(inner))
    elif "T" in inner:
        result = datetime.fromisoformat(inner.replace("Z", "+00:00"))
    else:
        result = date.fromisoformat(inner)
    return None if result.year < 1900 else result


def as_date(value):
    when = decode_when(value)
    return when.date() if isinstance(when, datetime) else when


def num(value):
    return float(value) if isinstance(value, str) else value


def circuit_dicts(rows):
    return [dict(zip(CH, row)) for row in rows]


def decode_circuit(r: dict) -> dict:
    ext = (r["SS_EXT"] or "").strip() or "@"
    return {
        "job_guid": r["SS_JOBGUID"],
        "work_order": r["SS_WO"],
        "extension": ext,
        "parent_job_guid": r["SS_PJOBGUID"] or None,
        "status": r["WSREQ_STATUS"],
        "region": r["REGION"],
        "title": r["SS_TITLE"],
        "total_miles": num(r["VEGJOB_LENGTH"]),
        "miles_planned": num(r["VEGJOB_LENGTHCOMP"]),
        "percent_complete": num(r["VEGJOB_PRCENT"]),
        "contractor": r["VEGJOB_CONTRACTOR"].strip(),
        "taken_by": r["SS_TAKENBY"].strip(),
        "forester": r["VEGJOB_FORESTER"].strip(),
        "cycle_type": r["VEGJOB_CYCLETYPE"],
        "edit_time": decode_when(r["SS_EDITDATE"]),
    }


def decode_units(rows, heading=UH):
    """Deduplicated by SSUNITS_OBJECTID, sorted by id."""
    seen = {}
    for row in rows:
        r = dict(zip(heading, row))
        seen[int(r["SSUNITS_OBJECTID"])] = {
            "unit_id": int(r["SSUNITS_OBJECTID"]),
            "extension": (r["SS_EXT"] or "").strip() or "@",
            "station": r["STATIONS_STATNAME"],
            "unit_code": r["VEGUNIT_UNIT"],
            "permission": r["VEGUNIT_PERMSTAT"].strip() or None,
            "linear_ft": num(r["JOBVEGETATIONUNITS_LENGTHWRK"]),
            "acres": num(r["JOBVEGETATIONUNITS_ACRES"]),
            "trees": num(r["JOBVEGETATIONUNITS_NUMTREES"]),
            "forester": r["VEGUNIT_FORESTER"].strip(),
            "assessed_date": as_date(r["VEGUNIT_ASSDDATE"]),
        }
    return [seen[k] for k in sorted(seen)]


# --------------------------------------------------------------------------- fixtures
@pytest.fixture
def world() -> World:
    return World(WorldConfig(), now=MONDAY)


@pytest.fixture
def sim(world):
    with SimulatorServer(world) as server:
        yield server


@pytest.fixture
def client(sim):
    with httpx.Client(base_url=sim.base_url, auth=AUTH, timeout=10) as c:
        yield c


def view(client, body, **kw):
    response = client.post(f"/DDOProtocol/{body['Protocol']}", json=body, **kw)
    assert response.status_code == 200
    return response.json()


def all_circuit_rows(w: World) -> list[list]:
    return [row for s in protocol.SYNCED_STATUSES for row in w.circuit_rows(s)]


def unit_counts(w: World) -> dict[str, tuple[str, int]]:
    return {c["job_guid"]: (c["status"], c["visible_units"]) for c in w.circuits_truth()}


# --------------------------------------------------------------------------- world
def test_same_seed_and_clock_give_identical_rows_and_other_seed_differs():
    a, b = World(WorldConfig(seed=7), now=MONDAY), World(WorldConfig(seed=7), now=MONDAY)
    b.circuit_rows("QC")  # a different call order must not matter
    rows_a, rows_b = all_circuit_rows(a), all_circuit_rows(b)
    assert rows_a == rows_b and len(rows_a) > 100
    wo = rows_a[0][CH.index("SS_WO")]
    assert a.planned_unit_rows(wo) == b.planned_unit_rows(wo) != []
    other = World(WorldConfig(seed=8), now=MONDAY)
    guids = {r[0] for r in rows_a}
    assert len(guids & {r[0] for r in all_circuit_rows(other)}) == 0


def test_every_synced_status_is_listed_at_many_dates(world):
    for k in range(0, 360, 30):
        world.set_clock(MONDAY + timedelta(days=k))
        counts = Counter(c["status"] for c in world.circuits_truth())
        assert all(counts[s] > 0 for s in protocol.SYNCED_STATUSES), (world.now, counts)
        assert 120 <= sum(counts.values()) <= 185, counts
        assert counts["ACTIV"] > counts["QC"] > counts["REWRK"]


def test_circuit_count_follows_config():
    small = World(WorldConfig(circuits=30), now=MONDAY)
    assert 20 <= len(small.circuits_truth()) <= 40


def test_advancing_weekdays_adds_units_and_moves_statuses(world):
    before = unit_counts(world)
    world.advance(1)  # Monday's field work synced Monday evening
    after = unit_counts(world)
    active = [g for g, (s, _) in before.items() if s == "ACTIV"]
    gained = [g for g in active if g in after and after[g][1] > before[g][1]]
    assert len(gained) >= 0.3 * len(active)
    assert sum(n for _, n in after.values()) > sum(n for _, n in before.values())
    # the new units are visible on the wire with Monday's assessed date
    guid = gained[0]
    truth = next(c for c in world.circuits_truth() if c["job_guid"] == guid)
    units = decode_units(world.planned_unit_rows(truth["work_order"]))
    assert date(2026, 3, 2) in {u["assessed_date"] for u in units}
    assert all(u["assessed_date"] <= date(2026, 3, 2) for u in units)
    # within ten days some circuits change status
    start = before
    for _ in range(9):
        world.advance(1)
    now = unit_counts(world)
    moved = [g for g in start if g in now and now[g][0] != start[g][0]]
    assert len(moved) >= 3
    assert set(now) != set(start)  # closed work orders rotate out, new ones appear


def test_weekend_adds_almost_nothing(world):
    world.set_clock(datetime(2026, 3, 8, 12, tzinfo=UTC))  # Sunday noon
    before = sum(n for _, n in unit_counts(world).values())
    world.advance(1)  # Sunday's work: none
    assert sum(n for _, n in unit_counts(world).values()) == before


def test_clock_moves_backwards_to_the_same_answer(world):
    rows0 = all_circuit_rows(world)
    wo = world.circuit_rows("ACTIV")[0][CH.index("SS_WO")]
    units0 = world.planned_unit_rows(wo)
    world.advance(12)
    assert all_circuit_rows(world) != rows0
    assert world.planned_unit_rows(wo) != units0
    world.advance(-12)
    assert world.now == MONDAY
    assert all_circuit_rows(world) == rows0
    assert world.planned_unit_rows(wo) == units0
    fresh = World(WorldConfig(), now=MONDAY + timedelta(days=12))
    world.set_clock(MONDAY + timedelta(days=12))
    assert all_circuit_rows(world) == all_circuit_rows(fresh)


def test_permissions_percent_and_edit_date_move(world):
    job = next(c for c in world.circuits_truth() if c["status"] == "ACTIV"
               and 10 < c["percent_complete"] < 80)
    guid = job["job_guid"]
    perms0 = {u["unit_id"]: u["permission"] for u in world.units_truth(guid)}
    world.advance(30)
    later = next((c for c in world.circuits_truth() if c["job_guid"] == guid), None)
    assert later is not None
    assert later["miles_planned"] > job["miles_planned"]
    assert later["edit_time"] > job["edit_time"] and later["version"] > job["version"]
    perms1 = {u["unit_id"]: u["permission"] for u in world.units_truth(guid)}
    changed = [i for i in perms0 if perms0[i] != perms1[i]]
    assert changed and all(perms0[i] in (None, "Pending") for i in changed)


def test_truth_equals_what_a_decoder_reads_from_the_wire(world):
    for when in (MONDAY, MONDAY + timedelta(days=45)):
        world.set_clock(when)
        wire = sorted((decode_circuit(r) for r in circuit_dicts(all_circuit_rows(world))),
                      key=lambda c: c["job_guid"])
        truth = sorted(world.circuits_truth(), key=lambda c: c["job_guid"])
        assert [{k: t[k] for k in w} for t, w in zip(truth, wire)] == wire
        assert len(truth) == len(wire)
        for c in truth[:: max(1, len(truth) // 12)]:
            units = decode_units(world.planned_unit_rows(c["work_order"]))
            mine = [{k: u[k] for k in units[0]} for u in world.units_truth(c["job_guid"])]
            assert mine == [u for u in units if u["extension"] == c["extension"]]
            assert len(mine) == c["visible_units"]


def test_units_measure_only_their_category_and_come_in_date_order(world):
    c = next(c for c in world.circuits_truth() if c["status"] == "QC")
    rows = [dict(zip(UH, r)) for r in world.planned_unit_rows(c["work_order"])]
    assert rows
    dates = [as_date(r["VEGUNIT_ASSDDATE"]) for r in rows]
    assert dates == sorted(dates)
    for r in rows:
        cat = catalog.UNIT_CATEGORY[r["VEGUNIT_UNIT"]]
        assert cat in catalog.WORK_CATEGORIES
        ft, ac, tr = (num(r["JOBVEGETATIONUNITS_LENGTHWRK"]), num(r["JOBVEGETATIONUNITS_ACRES"]),
                      num(r["JOBVEGETATIONUNITS_NUMTREES"]))
        assert (ft > 0) == (cat == "VLG")
        assert (ac > 0) == (cat == "VAR")
        assert (tr > 0) == (cat == "VCT")
        assert int(r["STATIONS_STATNAME"]) % 10 == 0


def test_wire_quirks_are_present(world):
    circuits = circuit_dicts(all_circuit_rows(world))
    edits = [r["SS_EDITDATE"] for r in circuits]
    assert any(isinstance(e, float) for e in edits)  # OLE Automation floats
    assert any(isinstance(e, str) and re.fullmatch(r"/Date\(\d{13}\)/", e) for e in edits)
    assert any(isinstance(e, str) and re.fullmatch(
        r"/Date\(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\)/", e) for e in edits)
    assert any(r["WPStartDate_Assessment_Xrefs_WP_STARTDATE"] == "/Date(1899-12-30)/"
               for r in circuits)
    wp = "WPStartDate_Assessment_Xrefs_WP_STARTDATE"
    assert any(re.fullmatch(r"/Date\(\d{4}-01-01\)/", r[wp]) for r in circuits)
    assert any(r["VEGJOB_FORESTER"].endswith(" ") for r in circuits)
    assert any(r["SS_TAKENBY"].endswith(" ") for r in circuits)
    assert {r["VEGJOB_CONTRACTOR"] for r in circuits} >= {"ASPLUNDH", "Asplundh"}
    assert any(isinstance(r["VEGJOB_LENGTH"], str) for r in circuits)
    assert any(r["SS_EXT"] == "" for r in circuits) and any(r["SS_EXT"] == "@" for r in circuits)
    assert {r["REGION"] for r in circuits} <= {name for name, _ in catalog.KNOWN_REGIONS}
    assert len({r["REGION"] for r in circuits}) >= 6
    assert all(re.fullmatch(r"\{[0-9A-F]{8}(-[0-9A-F]{4}){3}-[0-9A-F]{12}\}", r["SS_JOBGUID"])
               for r in circuits)
    assert all(re.fullmatch(r"\d{4}-\d{4}", r["SS_WO"]) for r in circuits)
    bounds = circuits[0]["SS_JOBBOUNDS"]
    assert bounds["@sourceFormat"] == "DataObjectGeometry" and len(bounds["coordinates"][0]) > 100
    assert len({r["SS_TAKENBY"].strip() for r in circuits}) >= 10
    assert all(re.fullmatch(r"ASPLUNDH\\[a-z]+", r["SS_TAKENBY"].strip()) for r in circuits)

    # splits: own GUID, parent = the "@" job of the same work order
    splits = [r for r in circuits if r["SS_EXT"] not in ("", "@")]
    assert splits and all(re.fullmatch(r"C_[a-z]{1,2}", r["SS_EXT"]) for r in splits)
    main_by_wo = {r["SS_WO"]: r for r in circuits if r["SS_EXT"] in ("", "@")}
    for s in splits:
        assert s["SS_JOBTYPE"] == "Split_Assessment"
        if s["SS_WO"] in main_by_wo:
            assert s["SS_PJOBGUID"] == main_by_wo[s["SS_WO"]]["SS_JOBGUID"]
    assert all(r["SS_JOBTYPE"] == "Assessment Dx" for r in main_by_wo.values())

    rows = [dict(zip(UH, r)) for wo in sorted(main_by_wo) for r in world.planned_unit_rows(wo)]
    ids = Counter(r["SSUNITS_OBJECTID"] for r in rows)
    dup_share = sum(n - 1 for n in ids.values()) / len(rows)
    assert 0.005 < dup_share < 0.08
    assert any(r["VEGUNIT_AUDITDATE"] == "/Date(1899-12-30)/" for r in rows)
    assert any(r["VEGUNIT_AUDITDATE"] != "/Date(1899-12-30)/" for r in rows)
    assert any(re.fullmatch(r"/Date\(\d{13}\)/", r["VEGUNIT_ASSDDATE"]) for r in rows)
    assert any(r["VEGUNIT_FORESTER"].endswith(" ") for r in rows)
    assert any(isinstance(r["JOBVEGETATIONUNITS_LENGTHWRK"], str) for r in rows)
    perms = Counter(r["VEGUNIT_PERMSTAT"] for r in rows)
    assert {"", "Pending", "Approved", "Refused", "No Contact", "Deferred", "PPL Approved",
            "N/A"} <= set(perms)
    assert perms[""] > perms["Pending"]
    split_units = {r["SS_EXT"] for r in rows} - {"", "@"}
    assert split_units
    geom = rows[0]["SSUNITS_GEOMETRY"]
    assert geom["@sourceFormat"] == "DataObjectGeometry" and geom["type"] == "LineString"
    assert len(geom["coordinates"]) >= 2


def test_ole_edit_dates_decode_exactly(world):
    checked = 0
    for k in range(0, 100, 10):
        world.set_clock(MONDAY + timedelta(days=k, hours=k % 7))
        truth = {c["job_guid"]: c["edit_time"] for c in world.circuits_truth()}
        for r in circuit_dicts(all_circuit_rows(world)):
            if isinstance(r["SS_EDITDATE"], float):
                assert OLE_EPOCH + timedelta(days=r["SS_EDITDATE"]) == truth[r["SS_JOBGUID"]]
                checked += 1
    assert checked > 100


def test_extra_unit_columns_and_late_sync():
    w = World(WorldConfig(extra_unit_columns=True, late_sync_rate=1.0), now=MONDAY)
    heading = w.planned_units_heading()
    assert heading == UH + list(protocol.PLANNED_UNITS_OPTIONAL)
    wo = w.circuit_rows("QC")[0][CH.index("SS_WO")]
    rows = [dict(zip(heading, r)) for r in w.planned_unit_rows(wo)]
    assert rows and all(len(r) == len(heading) for r in rows)
    assert all(20 <= r["STATIONS_SPANLGTH"] <= 130 for r in rows)
    assert all(re.fullmatch(r"ASPLUNDH\\[a-z]+", r["VEGUNIT_FRSTR_USER"]) for r in rows)
    # late sync: units appearing after a day were assessed on earlier days too
    before = {c["job_guid"]: c["visible_units"] for c in w.circuits_truth()}
    w.advance(1)
    new_dates = set()
    for c in w.circuits_truth():
        if c["visible_units"] > before.get(c["job_guid"], 0):
            old_ids = set()
            w.advance(-1)
            old_ids = {u["unit_id"] for u in w.units_truth(c["job_guid"])}
            w.advance(1)
            new_dates |= {u["assessed_date"] for u in w.units_truth(c["job_guid"])
                          if u["unit_id"] not in old_ids}
    assert any(d < date(2026, 3, 2) for d in new_dates)


# --------------------------------------------------------------------------- server
def test_heartbeat_and_headings_over_http(sim, client):
    assert client.post("/DDOProtocol/HEARTBEAT").json() == {"protocol": "OK"}
    circuits = view(client, protocol.circuit_list_request("ACTIV"))
    assert circuits["Protocol"] == "DATASET"
    assert circuits["DataSet"]["Heading"] == CH
    assert "ACTIV" in circuits["SQL"] and circuits["ColumnGroup"]
    data = circuits["DataSet"]["Data"]
    assert data and all(len(r) == len(CH) for r in data)
    assert {r[CH.index("WSREQ_STATUS")] for r in data} == {"ACTIV"}
    assert data == sim.world.circuit_rows("ACTIV")
    wo = data[0][CH.index("SS_WO")]
    units = view(client, protocol.planned_units_request(wo))
    assert units["DataSet"]["Heading"] == UH
    assert units["DataSet"]["Data"] and all(len(r) == len(UH) for r in units["DataSet"]["Data"])
    assert {r[UH.index("SS_WO")] for r in units["DataSet"]["Data"]} == {wo}
    empty = view(client, protocol.planned_units_request("1999-0001"))
    assert empty["Protocol"] == "DATASET" and empty["DataSet"]["Data"] == []


def test_bad_credentials_get_401(sim):
    url = f"{sim.base_url}/DDOProtocol/HEARTBEAT"
    for auth in ((USER, "wrong"), ("ASPLUNDH\\nobody", PASSWORD)):
        r = httpx.post(url, auth=auth)
        assert r.status_code == 401 and "protocol" not in r.text
    r = httpx.post(f"{sim.base_url}/DDOProtocol/GETVIEWDATA",
                   json=protocol.circuit_list_request("ACTIV"))
    assert r.status_code == 401
    assert httpx.post(url, auth=AUTH).status_code == 200
    assert sim.stats()["unauthorized"] == 3


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b.update(ViewDefinitionGuid="{00000000-0000-0000-0000-000000000000}"), "not found"),
    (lambda b: b["ViewFilter"].update(FilterName="By Nothing"), "Filter"),
    (lambda b: b.update(Protocol="GETQUERY"), "mismatch"),
])
def test_application_errors_are_http_200_envelopes(client, mutate, message):
    body = protocol.circuit_list_request("ACTIV")
    mutate(body)
    r = client.post("/DDOProtocol/GETVIEWDATA", json=body)
    assert r.status_code == 200
    payload = r.json()
    assert payload["protocol"] == "ERROR" and message in payload["errorMessage"]
    assert "DataSet" not in payload


def test_unknown_protocol_is_an_error_envelope(client):
    r = client.post("/DDOProtocol/GETSOMETHING", json={"Protocol": "GETSOMETHING"})
    assert r.status_code == 200 and r.json()["protocol"] == "ERROR"


def test_getquery(client):
    params = f"USER NAME={USER}\r\nPASSWORD={PASSWORD}\r\n"
    ok = view(client, {"Protocol": "GETQUERY", "SQL": "SELECT TOP 1 1 AS test",
                       "DBParameters": params})
    assert ok["Protocol"] == "DATASET"
    assert ok["DataSet"] == {"Heading": ["test"], "Data": [[1]]}
    wrong = view(client, {"Protocol": "GETQUERY", "SQL": "SELECT TOP 1 1 AS test",
                          "DBParameters": f"USER NAME={USER}\r\nPASSWORD=nope\r\n"})
    assert wrong["protocol"] == "ERROR"
    missing = view(client, {"Protocol": "GETQUERY", "SQL": "SELECT TOP 1 1 AS test"})
    assert missing["protocol"] == "ERROR"
    other = view(client, {"Protocol": "GETQUERY", "SQL": "SELECT * FROM VEGUNIT",
                          "DBParameters": params})
    assert other == {"protocol": "ERROR", "errorMessage": "query not supported by simulator"}
    cte = view(client, {"Protocol": "GETQUERY", "DBParameters": params,
                        "SQL": "WITH x AS (SELECT 1 AS a) SELECT a FROM x"})
    assert cte["Protocol"] == "DATASET" and cte["DataSet"]["Data"] == []


def test_region_scoping(world):
    accounts = {USER: PASSWORD,
                "ASPLUNDH\\lehigh": {"password": "pw", "regions": ["Lehigh"]}}
    with SimulatorServer(world, accounts=accounts) as sim:
        everything = view(httpx.Client(base_url=sim.base_url, auth=AUTH),
                          protocol.circuit_list_request("ACTIV"))["DataSet"]["Data"]
        with httpx.Client(base_url=sim.base_url, auth=("ASPLUNDH\\lehigh", "pw")) as lehigh:
            mine = view(lehigh, protocol.circuit_list_request("ACTIV"))["DataSet"]["Data"]
            assert mine and {r[CH.index("REGION")] for r in mine} == {"Lehigh"}
            assert mine == [r for r in everything if r[CH.index("REGION")] == "Lehigh"]
            assert len(mine) < len(everything)
            other_wo = next(r[CH.index("SS_WO")] for r in everything
                            if r[CH.index("REGION")] != "Lehigh")
            assert view(lehigh, protocol.planned_units_request(other_wo))["DataSet"]["Data"] == []
            own_wo = mine[0][CH.index("SS_WO")]
            assert view(lehigh, protocol.planned_units_request(own_wo))["DataSet"]["Data"]
        assert httpx.post(f"{sim.base_url}/DDOProtocol/HEARTBEAT",
                          auth=("ASPLUNDH\\lehigh", "wrong")).status_code == 401


def test_control_endpoints(sim, client):
    assert httpx.get(f"{sim.base_url}/_sim/clock").json() == {"now": MONDAY.isoformat()}
    before = view(client, protocol.circuit_list_request("ACTIV"))["DataSet"]["Data"]
    client.post("/DDOProtocol/HEARTBEAT")
    client.post("/DDOProtocol/GETQUERY", json={"Protocol": "GETQUERY", "SQL": "SELECT 1"})
    stats = httpx.get(f"{sim.base_url}/_sim/stats").json()
    assert stats["requests"]["HEARTBEAT"] == 1 and stats["requests"]["GETQUERY"] == 1
    assert stats["requests"]["GETVIEWDATA"] == {protocol.CIRCUIT_LIST_VIEW: 1}

    r = httpx.post(f"{sim.base_url}/_sim/advance", json={"days": 3})
    assert r.json() == {"now": (MONDAY + timedelta(days=3)).isoformat()}
    assert sim.world.now == MONDAY + timedelta(days=3)
    moved = view(client, protocol.circuit_list_request("ACTIV"))["DataSet"]["Data"]
    assert moved != before
    r = httpx.post(f"{sim.base_url}/_sim/clock", json={"now": "2026-03-02T12:00:00Z"})
    assert r.status_code == 200 and sim.world.now == MONDAY
    assert view(client, protocol.circuit_list_request("ACTIV"))["DataSet"]["Data"] == before
    httpx.post(f"{sim.base_url}/_sim/clock", json={"now": "2026-03-05T09:30:00"})  # naive = UTC
    assert sim.world.now == datetime(2026, 3, 5, 9, 30, tzinfo=UTC)
    assert httpx.post(f"{sim.base_url}/_sim/clock", json={"now": "soon"}).status_code == 400
    assert httpx.get(f"{sim.base_url}/_sim/stats").json()["requests"]["GETVIEWDATA"] == {
        protocol.CIRCUIT_LIST_VIEW: 3}


def test_server_binds_loopback_and_stops(world):
    sim = SimulatorServer(world).start()
    assert sim.base_url.startswith("http://127.0.0.1:") and sim.port > 0
    assert httpx.post(f"{sim.base_url}/DDOProtocol/HEARTBEAT", auth=AUTH).status_code == 200
    sim.stop()
    with pytest.raises(httpx.TransportError):
        httpx.post(f"{sim.base_url}/DDOProtocol/HEARTBEAT", auth=AUTH, timeout=2)
