"""The simulator's fault injector, latency and scale options, proven over real HTTP.

Only the injector: what a client sees on the wire (and through WorkStudioClient for transport
faults). How the pipeline reacts to faults is tested elsewhere.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
import pytest

from ws_tracker.rules.errors import (
    WorkStudioAuthError,
    WorkStudioBadResponse,
    WorkStudioProtocolError,
    WorkStudioUnavailable,
)
from ws_tracker.simulator import SimulatorServer, World, WorldConfig
from ws_tracker.simulator.faults import (
    FAULT_KINDS,
    FaultPlan,
    FaultRule,
    FaultSpecError,
    parse_fault_spec,
)
from ws_tracker.workstudio import protocol
from ws_tracker.workstudio.client import WorkStudioClient

USER, PASSWORD = "ASPLUNDH\\wstracker", "wstracker"
AUTH = (USER, PASSWORD)
MONDAY = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
CH = protocol.CIRCUIT_LIST_HEADING
UH = protocol.PLANNED_UNITS_HEADING
CIRCUITS = protocol.CIRCUIT_LIST_VIEW
UNITS = protocol.PLANNED_UNITS_VIEW
_WORLD = World(WorldConfig(), now=MONDAY)  # read-only here: every server gets its own World


@contextmanager
def serve(*specs: str, plan: FaultPlan | None = None, **kw):
    plan = plan if plan is not None else FaultPlan.from_specs(specs)
    with SimulatorServer(World(WorldConfig(), now=MONDAY), faults=plan, **kw) as sim:
        with httpx.Client(base_url=sim.base_url, auth=AUTH, timeout=10) as http:
            yield sim, http


def client_for(sim, **kw) -> WorkStudioClient:
    kw.setdefault("backoff_base", 0.01)
    kw.setdefault("backoff_max", 0.05)
    kw.setdefault("max_attempts", 3)
    return WorkStudioClient(sim.base_url, USER, PASSWORD, **kw)


def heartbeat(http):
    return http.post("/DDOProtocol/HEARTBEAT")


def circuits(http, status="ACTIV"):
    return http.post("/DDOProtocol/GETVIEWDATA", json=protocol.circuit_list_request(status))


def units(http, work_order):
    return http.post("/DDOProtocol/GETVIEWDATA", json=protocol.planned_units_request(work_order))


def sim_stats(sim) -> dict:
    return httpx.get(f"{sim.base_url}/_sim/stats").json()


def sim_faults(sim) -> dict:
    return httpx.get(f"{sim.base_url}/_sim/faults").json()


def a_work_order(status="ACTIV") -> str:
    return _WORLD.circuit_rows(status)[0][CH.index("SS_WO")]


# --------------------------------------------------------------------------- HTTP faults
@pytest.mark.parametrize("kind,status,reason", [
    ("http_500", 500, "Internal Server Error"), ("http_502", 502, "Bad Gateway"),
    ("http_503", 503, "Service Unavailable"), ("http_429", 429, "Too Many Requests"),
    ("http_401", 401, "Unauthorized"),
])
def test_http_status_faults_hit_the_first_call_only(kind, status, reason):
    with serve(f"{kind}:protocol=HEARTBEAT,times=1") as (sim, http):
        first = heartbeat(http)
        assert first.status_code == status and reason in first.text
        if kind == "http_429":
            assert first.headers["Retry-After"] == "1"  # the default
        else:
            assert "Retry-After" not in first.headers
        if kind == "http_401":
            assert first.headers["WWW-Authenticate"].startswith("Basic")
        second = heartbeat(http)
        assert second.status_code == 200 and second.json() == {"protocol": "OK"}
        stats = sim_stats(sim)
        assert stats["faults"] == {kind: 1}
        assert stats["requests"]["HEARTBEAT"] == 2 and stats["unauthorized"] == 0
        assert sim_faults(sim)["injected"] == [
            {"kind": kind, "rule": 0, "call": 1, "protocol": "HEARTBEAT", "view": None,
             "filter_value": None, "column": None, "rows": None}]


def test_429_retry_after_reaches_the_client_backoff():
    with serve("http_429:protocol=GETVIEWDATA,retry_after=2,times=1",
               "http_503:protocol=HEARTBEAT,retry_after=0.5,calls=1") as (sim, http):
        r = circuits(http)
        assert r.status_code == 429 and r.headers["Retry-After"] == "2"
        assert heartbeat(http).headers["Retry-After"] == "0.5"
        waits = []
        with client_for(sim, sleep=waits.append, backoff_max=30) as c:
            httpx.post(f"{sim.base_url}/_sim/faults",
                       json=[{"kind": "http_429", "view": "circuits", "retry_after": 2,
                              "times": 1}])
            assert len(c.circuits_by_status("ACTIV").rows) > 50
            assert c.calls == 2 and waits == [2.0]  # Retry-After raised the 0.01 s backoff


def test_client_retries_through_transient_faults_then_gives_up():
    with serve("http_503:view=planned_units,times=2") as (sim, http):
        wo = a_work_order()
        with client_for(sim) as c:
            assert len(c.planned_units(wo).rows) > 0
            assert c.calls == 3
        assert sim_stats(sim)["faults"] == {"http_503": 2}
        assert [f["call"] for f in sim_faults(sim)["injected"]] == [1, 2]
    with serve("http_502:protocol=GETVIEWDATA") as (sim, http):  # every call
        with client_for(sim) as c, pytest.raises(WorkStudioUnavailable):
            c.circuits_by_status("QC")
        assert sim_stats(sim)["faults"] == {"http_502": 3}


def test_401_fault_is_an_auth_error_and_never_retried():
    with serve("http_401:protocol=GETVIEWDATA,times=1") as (sim, http):
        with client_for(sim) as c:
            with pytest.raises(WorkStudioAuthError):
                c.circuits_by_status("ACTIV")
            assert c.calls == 1
        assert sim_stats(sim)["unauthorized"] == 0  # a fault, not a failed login


# --------------------------------------------------------------------------- transport faults
def test_connection_reset_closes_without_a_response():
    with serve("connection_reset:protocol=HEARTBEAT,calls=1;3") as (sim, http):
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            heartbeat(http)
        assert heartbeat(http).json() == {"protocol": "OK"}
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            heartbeat(http)
        with client_for(sim) as c:
            c.heartbeat()  # call 4: no fault
        httpx.post(f"{sim.base_url}/_sim/faults", json=[{"kind": "connection_reset",
                                                         "protocol": "HEARTBEAT", "times": 1}])
        with client_for(sim) as c:
            c.heartbeat()  # reset, then retried
            assert c.calls == 2
        assert sim_stats(sim)["faults"] == {"connection_reset": 3}


def test_read_timeout_stalls_past_the_client_timeout():
    with serve("read_timeout:protocol=GETQUERY,seconds=3,times=1") as (sim, http):
        body = {"Protocol": "GETQUERY", "SQL": "SELECT TOP 1 1 AS test",
                "DBParameters": f"USER NAME={USER}\r\nPASSWORD={PASSWORD}\r\n"}
        start = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            http.post("/DDOProtocol/GETQUERY", json=body, timeout=0.3)
        assert time.monotonic() - start < 2.5
        with client_for(sim, query_timeout=0.3, read_timeout=0.3) as c:
            c.check_credentials()  # the second matching call answers at once
            assert c.calls == 1
        httpx.post(f"{sim.base_url}/_sim/faults", json=[{"kind": "read_timeout",
                                                         "protocol": "GETQUERY", "seconds": 3}])
        with client_for(sim, query_timeout=0.2, max_attempts=2) as c:
            with pytest.raises(WorkStudioUnavailable, match="ReadTimeout"):
                c.check_credentials()
        assert sim_stats(sim)["faults"] == {"read_timeout": 3}  # counted since start
        assert [f["call"] for f in sim_faults(sim)["injected"]] == [1, 2]  # the new plan


def test_slow_delays_then_answers_normally():
    with serve("slow:protocol=HEARTBEAT,seconds=0.3,calls=2") as (sim, http):
        start = time.monotonic()
        assert heartbeat(http).json() == {"protocol": "OK"}
        fast = time.monotonic() - start
        start = time.monotonic()
        assert heartbeat(http).json() == {"protocol": "OK"}
        assert time.monotonic() - start >= 0.3
        assert fast < 0.3
        assert sim_stats(sim)["faults"] == {"slow": 1}


# --------------------------------------------------------------------------- body faults
def test_protocol_error_is_http_200_with_the_real_envelope():
    with serve("protocol_error:view=circuits,filter_value=QC,message=Access denied") as (sim, http):
        r = circuits(http, "QC")
        assert r.status_code == 200 and r.json() == {"protocol": "ERROR",
                                                     "errorMessage": "Access denied"}
        assert circuits(http, "ACTIV").json()["Protocol"] == "DATASET"  # other filter value
        with client_for(sim) as c:
            with pytest.raises(WorkStudioProtocolError, match="Access denied"):
                c.circuits_by_status("qc ")  # filter values match case- and space-insensitively
            assert c.calls == 1
        injected = sim_faults(sim)["injected"]
        assert [(f["filter_value"], f["call"]) for f in injected] == [("QC", 1), ("qc", 2)]


def test_null_malformed_and_truncated_bodies():
    with serve("null_body:protocol=HEARTBEAT,calls=1",
               "malformed_json:protocol=HEARTBEAT,calls=2",
               "truncated_json:view=circuits,calls=1") as (sim, http):
        r = heartbeat(http)
        assert r.status_code == 200 and r.text == "null" and r.json() is None
        r = heartbeat(http)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
        assert r.text == '{"protocol":"OK",}'
        with pytest.raises(ValueError):
            r.json()
        cut = circuits(http)
        full = circuits(http)
        assert cut.status_code == 200 and int(cut.headers["Content-Length"]) == len(cut.content)
        assert len(cut.content) == len(full.content) // 2
        assert full.content.startswith(cut.content)
        with pytest.raises(ValueError):
            cut.json()
        assert sim_stats(sim)["faults"] == {"null_body": 1, "malformed_json": 1,
                                            "truncated_json": 1}
    with serve("null_body:protocol=HEARTBEAT,times=1",
               "malformed_json:view=circuits,times=1") as (sim, http):
        with client_for(sim) as c:
            with pytest.raises(WorkStudioBadResponse, match="null body"):
                c.heartbeat()
            with pytest.raises(WorkStudioBadResponse, match="not JSON"):
                c.get_view_data(protocol.circuit_list_request("ACTIV"))
            assert c.calls == 2  # neither is retried


def test_first_replacing_rule_wins_and_the_other_is_not_injected():
    with serve("http_503:protocol=HEARTBEAT,times=1", "http_500:times=1",
               "slow:seconds=0.1,times=1") as (sim, http):
        start = time.monotonic()
        assert heartbeat(http).status_code == 503
        assert time.monotonic() - start >= 0.1  # slow composes with the replaced answer
        assert heartbeat(http).status_code == 200  # http_500's first call was the one above
        assert sim_stats(sim)["faults"] == {"http_503": 1, "slow": 1}
        assert sim_faults(sim)["matched"] == [2, 2, 2]


# --------------------------------------------------------------------------- data faults
def baseline(status="ACTIV"):
    return _WORLD.circuit_rows(status)


def test_missing_and_renamed_columns():
    with serve("missing_column:view=circuits,column=REGION,calls=1",
               "renamed_column:view=planned_units,column=VEGUNIT_PERMSTAT,to=PERMSTAT") as (
            sim, http):
        got = circuits(http).json()
        heading, data = got["DataSet"]["Heading"], got["DataSet"]["Data"]
        i = CH.index("REGION")
        assert heading == CH[:i] + CH[i + 1:]
        assert data == [json.loads(json.dumps(r[:i] + r[i + 1:])) for r in baseline()]
        assert "REGION" not in [c["FieldName"] for c in got["ColumnGroup"]["Columns"]]
        assert circuits(http).json()["DataSet"]["Heading"] == CH  # calls=1 only
        wo = a_work_order()
        got = units(http, wo).json()["DataSet"]
        j = UH.index("VEGUNIT_PERMSTAT")
        assert got["Heading"] == UH[:j] + ["PERMSTAT"] + UH[j + 1:]
        assert got["Data"] == json.loads(json.dumps(_WORLD.planned_unit_rows(wo)))
        injected = sim_faults(sim)["injected"]
        assert [(f["kind"], f["column"], f["view"], f["filter_value"]) for f in injected] == [
            ("missing_column", "REGION", CIRCUITS, "ACTIV"),
            ("renamed_column", "VEGUNIT_PERMSTAT", UNITS, wo)]


def test_short_and_duplicate_rows():
    with serve("short_rows:view=circuits,rows=0;2;-1,times=1",
               "duplicate_rows:view=circuits,filter_value=QC,rows=1") as (sim, http):
        data = circuits(http).json()["DataSet"]["Data"]
        n = len(baseline())
        assert [len(r) for r in data] == [
            len(CH) - 1 if i in (0, 2, n - 1) else len(CH) for i in range(n)]
        assert data[0] == json.loads(json.dumps(baseline()[0][:-1]))
        qc = circuits(http, "QC").json()["DataSet"]["Data"]
        expected = json.loads(json.dumps(baseline("QC")))
        assert qc == expected[:2] + [expected[1]] + expected[2:]
        assert [f["rows"] for f in sim_faults(sim)["injected"]] == [[0, 2, n - 1], [1]]


def test_wrong_type_in_numeric_and_text_columns():
    with serve("wrong_type:view=circuits,column=VEGJOB_LENGTH,rows=0;3,calls=1",
               "wrong_type:view=circuits,column=SS_TITLE,rows=1,calls=2",
               'wrong_type:view=planned_units,value={"x":1},times=1') as (sim, http):
        length, title = CH.index("VEGJOB_LENGTH"), CH.index("SS_TITLE")
        base = json.loads(json.dumps(baseline()))
        data = circuits(http).json()["DataSet"]["Data"]
        assert data[0][length] == data[3][length] == "not-a-number"
        assert data[1] == base[1] and data[0][:length] == base[0][:length]
        data = circuits(http).json()["DataSet"]["Data"]
        assert data[1][title] == [1, 2, 3] and data[0] == base[0]
        wo = a_work_order()
        data = units(http, wo).json()["DataSet"]["Data"]
        col = UH.index("JOBVEGETATIONUNITS_LENGTHWRK")  # the view's default column
        assert data[0][col] == {"x": 1} and data[1][col] != {"x": 1}
        assert [(f["column"], f["rows"]) for f in sim_faults(sim)["injected"]] == [
            ("VEGJOB_LENGTH", [0, 3]), ("SS_TITLE", [1]), ("JOBVEGETATIONUNITS_LENGTHWRK", [0])]


def test_bad_dates():
    with serve("bad_date:view=planned_units,rows=0;1,times=1",
               "bad_date:view=circuits,column=WPStartDate_Assessment_Xrefs_WP_STARTDATE,"
               "value=31/31/2026") as (sim, http):
        wo = a_work_order()
        col = UH.index("VEGUNIT_ASSDDATE")
        data = units(http, wo).json()["DataSet"]["Data"]
        assert data[0][col] == data[1][col] == "/Date(notadate)/"
        assert data[2][col] != "/Date(notadate)/" and data[2][col].startswith("/Date(")
        data = circuits(http, "REWRK").json()["DataSet"]["Data"]
        assert data[0][CH.index("WPStartDate_Assessment_Xrefs_WP_STARTDATE")] == "31/31/2026"
        assert sim_stats(sim)["faults"] == {"bad_date": 2}


def test_data_faults_skip_answers_with_nothing_to_damage():
    with serve("missing_column:column=NOPE,times=1", "short_rows:times=5") as (sim, http):
        assert heartbeat(http).json() == {"protocol": "OK"}  # no DATASET
        assert units(http, "2026-0000").json()["DataSet"]["Data"] == []  # no rows
        assert len(circuits(http).json()["DataSet"]["Data"][0]) == len(CH) - 1
        assert sim_stats(sim)["faults"] == {"short_rows": 1}
        assert sim_faults(sim)["injected"][0]["call"] == 3


# --------------------------------------------------------------------------- selection
def test_calls_times_and_matching_select_exactly():
    with serve("http_503:protocol=HEARTBEAT,calls=2;4",
               "http_500:view=planned_units,times=2",
               "http_502:protocol=GETQUERY") as (sim, http):
        assert [heartbeat(http).status_code for _ in range(5)] == [200, 503, 200, 503, 200]
        assert [circuits(http).status_code for _ in range(3)] == [200] * 3  # other view
        wo = a_work_order()
        assert [units(http, wo).status_code for _ in range(3)] == [500, 500, 200]
        assert sim_faults(sim)["matched"] == [5, 3, 0]
        assert [(f["kind"], f["call"]) for f in sim_faults(sim)["injected"]] == [
            ("http_503", 2), ("http_503", 4), ("http_500", 1), ("http_500", 2)]
        stats = sim_stats(sim)
        assert stats["faults"] == {"http_503": 2, "http_500": 2}
        assert stats["requests"] == {"HEARTBEAT": 5, "GETQUERY": 0,
                                     "GETVIEWDATA": {CIRCUITS: 3, UNITS: 3}}


def _pattern(seed: int, n: int = 60) -> list[int]:
    plan = FaultPlan.from_specs(["http_503:protocol=HEARTBEAT,rate=0.3"], seed=seed)
    with serve(plan=plan) as (sim, http):
        codes = [heartbeat(http).status_code for _ in range(n)]
        calls = [f["call"] for f in sim_faults(sim)["injected"]]
    assert calls == [i + 1 for i, c in enumerate(codes) if c == 503]
    return calls


def test_rate_is_reproducible_for_a_seed():
    a, b, other = _pattern(5), _pattern(5), _pattern(6)
    assert a == b
    assert a != other
    assert 6 <= len(a) <= 30  # 30 % of 60, loosely
    rule_seed = FaultPlan.from_specs(["http_503:protocol=HEARTBEAT,rate=0.3,seed=5"], seed=99)
    with serve(plan=rule_seed) as (sim, http):
        assert [i + 1 for i in range(60) if heartbeat(http).status_code == 503] == a
    # rate 0 never fires, 1 always
    with serve("http_500:rate=0", "http_503:rate=1") as (sim, http):
        assert {heartbeat(http).status_code for _ in range(5)} == {503}


def test_row_rate_is_reproducible():
    def damaged():
        with serve("short_rows:view=circuits,row_rate=0.2,calls=1") as (sim, http):
            data = circuits(http).json()["DataSet"]["Data"]
            rows = sim_faults(sim)["injected"][0]["rows"]
        assert [i for i, r in enumerate(data) if len(r) < len(CH)] == rows
        return rows
    rows = damaged()
    assert rows == damaged() and 3 <= len(rows) <= 0.45 * len(baseline())


# --------------------------------------------------------------------------- control endpoints
def test_fault_control_endpoints_and_stats_shape():
    with serve() as (sim, http):
        base = sim.base_url
        assert httpx.get(f"{base}/_sim/faults").json() == {
            "seed": 0, "rules": [], "matched": [], "injected": [], "counts": {}}
        r = httpx.post(f"{base}/_sim/faults", json={"seed": 3, "rules": [
            {"kind": "http_500"}, {"kind": "renamed_column", "view": "circuits",
                                   "column": "SS_WO"}]})
        assert r.status_code == 200
        assert r.json()["rules"] == [
            {"kind": "http_500"},
            {"kind": "renamed_column", "protocol": "GETVIEWDATA", "view": CIRCUITS,
             "column": "SS_WO", "to": "SS_WO_RENAMED"}]
        assert r.json()["seed"] == 3
        # faults never touch the control endpoints
        assert httpx.get(f"{base}/_sim/clock").status_code == 200
        assert httpx.post(f"{base}/_sim/advance", json={"days": 0}).status_code == 200
        assert heartbeat(http).status_code == 500
        assert circuits(http).status_code == 500  # first rule wins over the data fault
        stats = sim_stats(sim)
        assert stats["requests"] == {"HEARTBEAT": 1, "GETQUERY": 0, "GETVIEWDATA": {CIRCUITS: 1}}
        assert stats["faults"] == {"http_500": 2} and stats["unauthorized"] == 0
        bad = httpx.post(f"{base}/_sim/faults", json=[{"kind": "http_500"}, {"kind": "nope"}])
        assert bad.status_code == 400 and "rule 1" in bad.json()["error"]
        assert "unknown kind 'nope'" in bad.json()["error"]
        assert len(httpx.get(f"{base}/_sim/faults").json()["rules"]) == 2  # plan kept
        cleared = httpx.post(f"{base}/_sim/faults/clear")
        assert cleared.json()["rules"] == [] and cleared.json()["seed"] == 3
        assert heartbeat(http).status_code == 200
        httpx.post(f"{base}/_sim/faults", json=[{"kind": "http_503"}])
        assert heartbeat(http).status_code == 503
        assert httpx.delete(f"{base}/_sim/faults").json()["injected"] == []
        assert heartbeat(http).status_code == 200
        assert sim_stats(sim)["faults"] == {"http_500": 2, "http_503": 1}  # counted since start
        httpx.post(f"{base}/_sim/stats/reset")
        assert sim_stats(sim)["faults"] == {}


# --------------------------------------------------------------------------- parsing
@pytest.mark.parametrize("spec,expected", [
    ("http_503:protocol=GETVIEWDATA,view=planned_units,times=2",
     {"kind": "http_503", "protocol": "GETVIEWDATA", "view": UNITS, "times": 2}),
    ("wrong_type:view=circuits,column=VEGJOB_LENGTH,rows=0;3",
     {"kind": "wrong_type", "protocol": "GETVIEWDATA", "view": CIRCUITS,
      "column": "VEGJOB_LENGTH", "rows": [0, 3]}),
    ("http_429", {"kind": "http_429", "retry_after": 1.0}),
    ("read_timeout:protocol=any", {"kind": "read_timeout", "seconds": 65.0}),
    ("slow:seconds=1.5,calls=4;1;4", {"kind": "slow", "seconds": 1.5, "calls": [1, 4]}),
    ("protocol_error:message=Access denied,filter=ACTIV",
     {"kind": "protocol_error", "message": "Access denied", "filter_value": "ACTIV"}),
    ("bad_date:view=985aecef-d75b-40f3-9f9b-37f21c63ff4a,value=31/31/2026,row_rate=0.5,seed=2",
     {"kind": "bad_date", "protocol": "GETVIEWDATA", "view": UNITS, "value": "31/31/2026",
      "row_rate": 0.5, "seed": 2}),
    ("wrong_type:value=[1,rate=0.25", {"kind": "wrong_type", "value": "[1", "rate": 0.25}),
    ("renamed_column:column=SS_WO", {"kind": "renamed_column", "column": "SS_WO",
                                     "to": "SS_WO_RENAMED"}),
])
def test_spec_strings_parse(spec, expected):
    assert parse_fault_spec(spec).to_dict() == expected
    assert FaultRule.model_validate(expected).to_dict() == expected  # JSON round trip


@pytest.mark.parametrize("spec,message", [
    ("http_5003:times=2", "unknown kind 'http_5003'"),
    (":times=2", "missing the kind"),
    ("http_503:times=two", "times='two' is not an integer"),
    ("http_503:calls=1;x", "calls='1;x' is not integers separated by ';'"),
    ("http_503:rate=1.5", "rate: 1.5 is not a probability"),
    ("http_503:calls=0", "call numbers start at 1"),
    ("http_503:times=1,rate=0.5", "at most one of calls, times, rate"),
    ("http_503:colour=red", "unknown key 'colour'"),
    ("http_503:times", "'times' is not key=value"),
    ("http_503:times=1,times=2", "times given twice"),
    ("http_503:protocol=GETSTUFF", "protocol 'GETSTUFF' is not one of"),
    ("http_503:view=trees", "view 'trees' is neither"),
    ("http_503:view=circuits,protocol=GETQUERY", "view only applies to GETVIEWDATA"),
    ("missing_column:view=circuits", "missing_column needs a column"),
    ("short_rows:protocol=HEARTBEAT", "HEARTBEAT has none"),
    ("http_500:retry_after=3", "retry_after does not apply to http_500"),
    ("http_503:rows=1", "rows does not apply to http_503"),
    ("short_rows:rows=1,row_rate=0.5", "rows or row_rate, not both"),
    ("slow:seconds=-1", "seconds: cannot be negative"),
])
def test_bad_spec_strings_name_the_bad_part(spec, message):
    with pytest.raises(FaultSpecError) as info:
        parse_fault_spec(spec)
    assert message in str(info.value) and repr(spec) in str(info.value)


def test_plans_from_json_and_files(tmp_path):
    plan = FaultPlan.parse([{"kind": "http_503", "times": 1}, {"kind": "slow"}], seed=4)
    assert [r.kind for r in plan.rules] == ["http_503", "slow"] and plan.seed == 4
    assert FaultPlan.parse({"seed": 9, "rules": [{"kind": "null_body"}]}).seed == 9
    path = tmp_path / "faults.json"
    path.write_text(json.dumps([{"kind": "http_429", "retry_after": 5}]))
    assert FaultPlan.from_file(path).rules[0].retry_after == 5
    path.write_text('[{"kind": "http_429", "retry_after": "soon"}]')
    with pytest.raises(FaultSpecError, match=r"faults\.json: rule 0: retry_after"):
        FaultPlan.from_file(path)
    with pytest.raises(FaultSpecError, match="invalid JSON"):
        FaultPlan.from_json("[{")
    with pytest.raises(FaultSpecError, match="unknown key"):
        FaultPlan.parse({"kind": "http_500", "when": "always"})
    with pytest.raises(FaultSpecError, match="expected a JSON list"):
        FaultPlan.parse("http_500")
    assert set(FAULT_KINDS) == {
        "http_500", "http_502", "http_503", "http_429", "http_401", "connection_reset",
        "read_timeout", "slow", "protocol_error", "null_body", "malformed_json",
        "truncated_json", "missing_column", "renamed_column", "short_rows", "duplicate_rows",
        "wrong_type", "bad_date"}


# --------------------------------------------------------------------------- latency, scale
def test_latency_applies_to_every_call_and_calls_overlap():
    latency = 0.25
    with serve(latency_ms=latency * 1000) as (sim, http):
        start = time.monotonic()
        assert httpx.get(f"{sim.base_url}/_sim/stats").status_code == 200
        assert time.monotonic() - start < latency  # control endpoints are not delayed
        barrier = threading.Barrier(4)
        took: list[float] = []

        def call():
            with httpx.Client(base_url=sim.base_url, auth=AUTH, timeout=10) as c:
                barrier.wait()
                t0 = time.monotonic()
                assert heartbeat(c).status_code == 200
                took.append(time.monotonic() - t0)

        threads = [threading.Thread(target=call) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(took) == 4 and min(took) >= latency
        stats = sim_stats(sim)
        assert stats["concurrency"]["max_in_flight"] >= 2  # served in parallel threads
        assert stats["concurrency"]["in_flight"] == 0


def test_units_per_circuit_bounds():
    w = World(WorldConfig(units_per_circuit=(3, 7)), now=MONDAY)
    truth = w.circuits_truth()
    assert {c["total_units"] for c in truth} <= set(range(3, 8))
    assert {3, 7} <= {c["total_units"] for c in truth}
    closed = [c for c in truth if c["status"] == "CLOSE"][:5]
    for c in closed:  # a closed circuit shows all its units on the wire
        rows = [r for r in w.planned_unit_rows(c["work_order"])
                if (r[UH.index("SS_EXT")] or "@") == c["extension"]]
        assert len({r[UH.index("SSUNITS_OBJECTID")] for r in rows}) == c["total_units"]
    with pytest.raises(ValueError, match="1 <= min <= max"):
        World(WorldConfig(units_per_circuit=(5, 2)))
    # the default equals units_min/units_max: same draws, same world
    same = World(WorldConfig(units_per_circuit=(50, 300)), now=MONDAY)
    assert same.circuit_rows("ACTIV") == _WORLD.circuit_rows("ACTIV")


def _state(http) -> dict:
    out = {}
    for status in protocol.SYNCED_STATUSES:
        for row in circuits(http, status).json()["DataSet"]["Data"]:
            r = dict(zip(CH, row))
            out[r["SS_JOBGUID"]] = (r["SS_EDITDATE"], r["WSREQ_VERSION"], r["VEGJOB_PRCENT"],
                                    r["WSREQ_STATUS"])
    return out


def test_daily_activity_changes_about_ten_percent_of_circuits_per_day():
    world = World(WorldConfig(daily_activity=0.10), now=MONDAY)  # `simulator serve`'s default
    with SimulatorServer(world) as sim, httpx.Client(base_url=sim.base_url, auth=AUTH,
                                                     timeout=10) as http:
        shares = []
        before = _state(http)
        for _ in range(7):
            r = httpx.post(f"{sim.base_url}/_sim/advance", json={"days": 1})
            assert r.status_code == 200
            after = _state(http)
            common = [g for g in before if g in after]
            changed = [g for g in common if after[g] != before[g]]
            # a change moves the edit date and the version together
            assert all(after[g][0] != before[g][0] and after[g][1] > before[g][1]
                       for g in changed)
            shares.append(len(changed) / len(common))
            before = after
        assert 0.06 <= sum(shares) / len(shares) <= 0.14, shares
        assert all(0.02 <= s <= 0.20 for s in shares), shares
        assert 120 <= len(before) <= 185  # still about 150 circuits listed
    natural = World(WorldConfig(), now=MONDAY)  # the default World: most ACTIV jobs move daily
    a = {c["job_guid"]: c["version"] for c in natural.circuits_truth()}
    natural.advance(1)
    b = {c["job_guid"]: c["version"] for c in natural.circuits_truth()}
    assert sum(a[g] != b[g] for g in a if g in b) > 0.3 * len(a)


def test_daily_activity_world_is_deterministic_and_moves_units():
    a = World(WorldConfig(daily_activity=0.1), now=MONDAY)
    b = World(WorldConfig(daily_activity=0.1), now=MONDAY)
    b.advance(3)
    b.advance(-3)
    assert a.circuit_rows("ACTIV") == b.circuit_rows("ACTIV")
    first = {c["job_guid"]: c for c in a.circuits_truth()}
    a.advance(14)
    later = {c["job_guid"]: c for c in a.circuits_truth()}
    grown = [g for g in first if g in later
             and later[g]["visible_units"] > first[g]["visible_units"]]
    assert grown
    wo = later[grown[0]]["work_order"]
    assert len(a.planned_unit_rows(wo)) > 0
    with pytest.raises(ValueError, match="daily_activity"):
        World(WorldConfig(daily_activity=1.5))


# --------------------------------------------------------------------------- the command
def test_simulator_serve_command_wires_scale_latency_and_faults(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    faults_file = tmp_path / "faults.json"
    faults_file.write_text(json.dumps([{"kind": "http_429", "protocol": "HEARTBEAT",
                                        "retry_after": 7, "calls": [1]}]))
    cmd = [sys.executable, "-m", "ws_tracker.cli", "simulator", "serve", "--port", str(port),
           "--date", "2026-03-02", "--circuits", "40", "--units-per-circuit", "2-4",
           "--latency-ms", "50", "--faults-file", str(faults_file),
           "--fault", "http_503:protocol=HEARTBEAT,calls=2", "--username", USER,
           "--password", PASSWORD]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert f"http://127.0.0.1:{port}" in proc.stdout.readline()
        assert "2 rule(s)" in proc.stdout.readline()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=AUTH, timeout=10) as http:
            first = heartbeat(http)
            assert first.status_code == 429 and first.headers["Retry-After"] == "7"
            start = time.monotonic()
            assert heartbeat(http).status_code == 503
            assert time.monotonic() - start >= 0.05
            assert heartbeat(http).status_code == 200
            rows = [r for s in protocol.SYNCED_STATUSES
                    for r in circuits(http, s).json()["DataSet"]["Data"]]
            assert 25 <= len(rows) <= 55
            done = [r for r in rows if r[CH.index("WSREQ_STATUS")] in ("QC", "REWRK", "CLOSE")]
            assert done
            for row in done[:5]:  # every unit of a job past ACTIV is visible
                ext = row[CH.index("SS_EXT")] or "@"
                got = units(http, row[CH.index("SS_WO")]).json()["DataSet"]["Data"]
                ids = {r[UH.index("SSUNITS_OBJECTID")] for r in got
                       if (r[UH.index("SS_EXT")] or "@") == ext}
                assert 2 <= len(ids) <= 4, (row[CH.index("SS_WO")], ext, ids)
            stats = http.get("/_sim/stats").json()
            assert stats["faults"] == {"http_429": 1, "http_503": 1}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    bad = subprocess.run([*cmd[:7], "--fault", "http_503:view=nowhere"], capture_output=True,
                         text=True, cwd=tmp_path, timeout=60)
    assert bad.returncode == 2 and "view 'nowhere' is neither" in bad.stderr
