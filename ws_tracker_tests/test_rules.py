"""Pure rules: errors, envelopes, circuit transform, units, aggregates."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from datetime import date, datetime, timezone

import pytest

from ws_tracker.rules.aggregates import circuit_aggregate, permission_class
from ws_tracker.rules.circuits import (
    CircuitRecord,
    region_key,
    resolve_parents,
    transform_circuit_rows,
)
from ws_tracker.rules.envelope import DataSet, parse_envelope, parse_heartbeat, require_columns
from ws_tracker.rules.errors import (
    RowIssue,
    WorkStudioAuthError,
    WorkStudioBadResponse,
    WorkStudioHTTPError,
    WorkStudioProtocolError,
    WorkStudioUnavailable,
)
from ws_tracker.rules.units import (
    PlannedUnit,
    content_hash,
    normalise_units,
    unit_from_row,
    unit_to_json,
    units_from_json,
)
from ws_tracker.workstudio import protocol

UTC = timezone.utc
VIEW = protocol.CIRCUIT_LIST_VIEW
GUID_A = "{14A9C2D0-1111-4A2B-9C3D-00000000000A}"
GUID_B = "{14A9C2D0-1111-4A2B-9C3D-00000000000B}"
GUID_C = "{14A9C2D0-1111-4A2B-9C3D-00000000000C}"
GUID_P = "{14A9C2D0-1111-4A2B-9C3D-0000000000FF}"


# --------------------------------------------------------------------------- errors
def test_exception_messages_name_their_call():
    e = WorkStudioProtocolError("GETVIEWDATA", VIEW, "Access denied")
    assert all(s in str(e) for s in ("GETVIEWDATA", VIEW, "Access denied"))
    assert (e.protocol, e.view, e.server_message) == ("GETVIEWDATA", VIEW, "Access denied")

    e = WorkStudioUnavailable("GETVIEWDATA", VIEW, "ACTIV", 5, "HTTP 503")
    assert all(s in str(e) for s in ("GETVIEWDATA", VIEW, "'ACTIV'", "5 attempt", "HTTP 503"))

    e = WorkStudioAuthError("HEARTBEAT", "ASPLUNDH\\jdoe")
    assert "HEARTBEAT" in str(e) and "ASPLUNDH\\\\jdoe" in str(e) and "401" in str(e)

    e = WorkStudioBadResponse("GETQUERY", None, "null body")
    assert "GETQUERY" in str(e) and "null body" in str(e)

    e = WorkStudioHTTPError("GETVIEWDATA", VIEW, "QC", 404, "nope")
    assert all(s in str(e) for s in ("404", "GETVIEWDATA", VIEW, "'QC'", "nope"))


@pytest.mark.parametrize(
    "exc",
    [
        WorkStudioProtocolError("GETVIEWDATA", VIEW, "Access denied"),
        WorkStudioUnavailable("GETVIEWDATA", VIEW, "ACTIV", 5, "HTTP 503"),
        WorkStudioAuthError("HEARTBEAT", "u"),
        WorkStudioBadResponse("GETQUERY", None, "null body"),
        WorkStudioHTTPError("GETQUERY", None, None, 400, ""),
    ],
)
def test_exceptions_pickle(exc):
    # Dagster may move exceptions between processes; a custom __init__ breaks naive pickling.
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc) and str(back) == str(exc)


def test_row_issue_truncates_value_and_serialises():
    issue = RowIssue(3, "VEGJOB_LENGTH", "x" * 1000, "not a number", "warning", key=GUID_A)
    assert len(issue.value) == 200 and issue.value.startswith("'xxx")
    d = issue.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["row_number"] == 3 and d["column"] == "VEGJOB_LENGTH" and d["severity"] == "warning"
    assert RowIssue(1, "c", "", "r").value == "''"
    assert RowIssue(1, "c", None, "r").value == "None"
    with pytest.raises(ValueError):
        RowIssue(1, "c", 1, "r", "info")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- envelopes
def dataset_payload(heading, data, **extra):
    return {"Protocol": "DATASET", "DataSet": {"Heading": heading, "Data": data},
            "SQL": "select 1", "ColumnGroup": {}, **extra}


def test_parse_envelope_zips_rows_with_heading():
    ds = parse_envelope(dataset_payload(["A", "B"], [[1, "x"], [2, None]]),
                        protocol="GETVIEWDATA", view=VIEW)
    assert ds.heading == ["A", "B"]
    assert ds.rows == [{"A": 1, "B": "x"}, {"A": 2, "B": None}]
    assert ds.sql == "select 1" and len(ds) == 2


def test_parse_envelope_empty_data():
    ds = parse_envelope(dataset_payload(["A"], []), protocol="GETVIEWDATA")
    assert ds.rows == [] and ds.heading == ["A"]


@pytest.mark.parametrize(
    "payload",
    [
        {"protocol": "ERROR", "errorMessage": "Access denied"},  # the real shape, at HTTP 200
        {"Protocol": "ERROR", "errorMessage": "Access denied"},
        {"PROTOCOL": "error", "ErrorMessage": "Access denied"},
        dataset_payload(["A"], [], errorMessage="Access denied"),  # errorMessage wins
    ],
)
def test_parse_envelope_error(payload):
    with pytest.raises(WorkStudioProtocolError) as info:
        parse_envelope(payload, protocol="GETVIEWDATA", view=VIEW)
    assert info.value.server_message == "Access denied"
    assert info.value.view == VIEW and info.value.protocol == "GETVIEWDATA"


def test_parse_envelope_error_without_message():
    with pytest.raises(WorkStudioProtocolError) as info:
        parse_envelope({"protocol": "ERROR"}, protocol="GETQUERY")
    assert info.value.server_message is None and "no errorMessage" in str(info.value)


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        (None, "null body"),
        ([1, 2], "JSON object"),
        ({"Protocol": "OK"}, "DATASET"),
        ({"Protocol": "DATASET"}, "DataSet"),
        ({"Protocol": "DATASET", "DataSet": {"Data": []}}, "Heading"),
        ({"Protocol": "DATASET", "DataSet": {"Heading": ["A"]}}, "Data"),
        ({"Protocol": "DATASET", "DataSet": {"Heading": ["A"], "Data": None}}, "Data"),
        # Every row ragged: the heading and the data disagree, the call fails.
        (dataset_payload(["A", "B"], [[1], [3], [4]]), "row 1 of 3 has 1 values for 2 heading columns"),
        (dataset_payload(["A", "B"], [7]), "row 1 of 1 is a int, not a list"),
        (dataset_payload(["A", "B"], [[1, 2, 3]]), "row 1 of 1 has 3 values"),
        (dataset_payload(["A"], [{"A": 1}]), "row 1"),
        (dataset_payload(["A", "A"], [[1, 2]]), "duplicate heading"),
    ],
)
def test_parse_envelope_bad_response(payload, needle):
    with pytest.raises(WorkStudioBadResponse) as info:
        parse_envelope(payload, protocol="GETVIEWDATA", view=VIEW)
    assert needle in str(info.value) and VIEW in str(info.value)


def test_parse_heartbeat():
    parse_heartbeat({"protocol": "OK"})
    parse_heartbeat({"Protocol": "ok"})
    with pytest.raises(WorkStudioProtocolError):
        parse_heartbeat({"protocol": "ERROR", "errorMessage": "down"})
    with pytest.raises(WorkStudioBadResponse):
        parse_heartbeat(None)
    with pytest.raises(WorkStudioBadResponse):
        parse_heartbeat({"protocol": "BUSY"})


def test_require_columns_names_missing():
    ds = DataSet(heading=["SS_JOBGUID", "SS_WO"], rows=[], sql=None)
    require_columns(ds, ["SS_WO"], view=VIEW)
    with pytest.raises(WorkStudioBadResponse) as info:
        require_columns(ds, ["SS_JOBGUID", "WSREQ_STATUS", "REGION"], view=VIEW)
    msg = str(info.value)
    assert "WSREQ_STATUS" in msg and "REGION" in msg and VIEW in msg
    assert "SS_JOBGUID'" not in msg


# --------------------------------------------------------------------------- circuits
def circuit_row(**overrides):
    row = {column: "" for column in protocol.CIRCUIT_LIST_HEADING}
    row.update({
        "SS_JOBGUID": GUID_A, "SS_WO": "2025-1930", "SS_EXT": "@", "SS_TITLE": "LINE 12",
        "WSREQ_STATUS": "ACTIV", "SS_JOBTYPE": "Assessment Dx", "VEGJOB_CYCLETYPE": "Cycle",
        "REGION": " Lehigh ", "VEGJOB_LENGTH": "12.5", "VEGJOB_LENGTHCOMP": 6.25,
        "VEGJOB_PRCENT": "50", "VEGJOB_CONTRACTOR": "Asplundh",
        "VEGJOB_FORESTER": "Derek Cinicola ", "SS_TAKENBY": " ASPLUNDH\\dcinicola ",
        "SS_ASSIGNEDTO": "", "SS_EDITDATE": "/Date(2026-01-06T03:30:00Z)/",
        "WSREQ_VERSION": 12, "WPStartDate_Assessment_Xrefs_WP_STARTDATE": "/Date(2026-01-01)/",
        "SS_PJOBGUID": "", "SS_JOBBOUNDS": {"@sourceFormat": "DataObjectGeometry",
                                            "type": "Polygon", "coordinates": [[0, 0]]},
    })
    row.update(overrides)
    return row


def test_transform_maps_fields():
    records, issues = transform_circuit_rows([circuit_row()])
    assert issues == []
    (r,) = records
    assert r.job_guid == GUID_A and r.work_order == "2025-1930" and r.extension == "@"
    assert not r.is_split
    assert r.title == "LINE 12" and r.api_status == "ACTIV" and r.job_type == "Assessment Dx"
    assert r.region_name == "Lehigh" and r.contractor == "Asplundh"
    assert (r.total_miles, r.miles_planned, r.percent_complete) == (12.5, 6.25, 50.0)
    assert r.forester == "Derek Cinicola" and r.taken_by == "ASPLUNDH\\dcinicola"
    assert r.assigned_to is None
    assert r.api_modified_at == datetime(2026, 1, 6, 3, 30, tzinfo=UTC)
    # 03:30 UTC on the 6th is 22:30 on the 5th in New York
    assert r.api_modified_date == date(2026, 1, 5)
    assert r.api_version == "12" and r.start_date == date(2026, 1, 1)
    assert r.parent_job_guid is None
    assert "SS_JOBBOUNDS" not in r.api_data and r.api_data["SS_TITLE"] == "LINE 12"
    assert set(r.api_data) == set(protocol.CIRCUIT_LIST_HEADING) - protocol.CIRCUIT_LIST_DROPPED
    json.dumps(r.api_data)
    dumped = r.model_dump(mode="json")
    assert dumped["is_split"] is False and dumped["api_modified_date"] == "2026-01-05"


def test_transform_ole_edit_date():
    (r,), _ = transform_circuit_rows([circuit_row(SS_EDITDATE=46065.75)])
    assert r.api_modified_at == datetime(2026, 2, 12, 18, tzinfo=UTC)
    assert r.api_modified_date == date(2026, 2, 12)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("@", "@"), ("", "@"), (None, "@"), ("  ", "@"), (" @ ", "@"), ("C_a", "C_a"),
     ("C_ba ", "C_ba"), ("A", "A")],
)
def test_extension_normalisation(raw, expected):
    (r,), _ = transform_circuit_rows([circuit_row(SS_EXT=raw)])
    assert r.extension == expected
    assert r.is_split is (expected != "@")


def test_missing_extension_column_is_main_job():
    row = circuit_row()
    del row["SS_EXT"]
    (r,), issues = transform_circuit_rows([row])
    assert r.extension == "@" and issues == []


def test_guid_normalised_to_upper_braced():
    (r,), _ = transform_circuit_rows([circuit_row(
        SS_JOBGUID=" 14a9c2d0-1111-4a2b-9c3d-00000000000a ",
        SS_PJOBGUID="14a9c2d0-1111-4a2b-9c3d-0000000000ff")])
    assert r.job_guid == GUID_A and r.parent_job_guid == GUID_P


def test_unparseable_and_missing_numbers_become_zero_with_issues():
    (r,), issues = transform_circuit_rows([circuit_row(
        VEGJOB_LENGTH="12,5 mi", VEGJOB_LENGTHCOMP="", VEGJOB_PRCENT="abc")])
    assert (r.total_miles, r.miles_planned, r.percent_complete) == (0.0, 0.0, 0.0)
    by_column = {i.column: i for i in issues}
    assert set(by_column) == {"VEGJOB_LENGTH", "VEGJOB_LENGTHCOMP", "VEGJOB_PRCENT"}
    assert all(i.severity == "warning" and i.row_number == 1 and i.key == GUID_A
               for i in issues)
    assert by_column["VEGJOB_LENGTH"].value == "'12,5 mi'"
    assert "stored as 0" in by_column["VEGJOB_PRCENT"].reason


def test_bad_dates_become_null_with_issues():
    (r,), issues = transform_circuit_rows([circuit_row(
        SS_EDITDATE="yesterday", WPStartDate_Assessment_Xrefs_WP_STARTDATE="/Date(nope)/")])
    assert r.api_modified_at is None and r.api_modified_date is None and r.start_date is None
    assert {i.column for i in issues} == {"SS_EDITDATE",
                                          "WPStartDate_Assessment_Xrefs_WP_STARTDATE"}


@pytest.mark.parametrize(
    ("overrides", "column"),
    [({"SS_JOBGUID": ""}, "SS_JOBGUID"), ({"SS_WO": None}, "SS_WO"),
     ({"WSREQ_STATUS": "  "}, "WSREQ_STATUS"), ({"SS_JOBGUID": "not-a-guid"}, "SS_JOBGUID")],
)
def test_rows_without_keys_are_reported_not_returned(overrides, column):
    good = circuit_row(SS_JOBGUID=GUID_B)
    records, issues = transform_circuit_rows([good, circuit_row(**overrides)])
    assert [r.job_guid for r in records] == [GUID_B]
    errors = [i for i in issues if i.severity == "error"]
    assert len(errors) == 1 and errors[0].row_number == 2 and column in errors[0].column


def test_absent_key_column_is_reported():
    row = circuit_row()
    del row["WSREQ_STATUS"]
    records, issues = transform_circuit_rows([row])
    assert records == [] and issues[0].severity == "error" and issues[0].column == "WSREQ_STATUS"


def test_duplicate_guid_keeps_last_and_warns():
    rows = [circuit_row(WSREQ_STATUS="ACTIV"), circuit_row(SS_JOBGUID=GUID_B),
            circuit_row(WSREQ_STATUS="QC")]
    records, issues = transform_circuit_rows(rows)
    assert [r.job_guid for r in records] == [GUID_A, GUID_B]
    assert records[0].api_status == "QC"
    (issue,) = issues
    assert issue.severity == "warning" and issue.row_number == 3 and issue.key == GUID_A


def test_resolve_parents():
    rows = [
        circuit_row(SS_JOBGUID=GUID_A, SS_WO="2025-1930", SS_EXT="@"),
        circuit_row(SS_JOBGUID=GUID_B, SS_WO="2025-1930", SS_EXT="C_a"),  # -> the @ job
        circuit_row(SS_JOBGUID=GUID_C, SS_WO="2025-1930", SS_EXT="C_ba", SS_PJOBGUID=GUID_P),
        circuit_row(SS_JOBGUID="{14A9C2D0-1111-4A2B-9C3D-0000000000DD}", SS_WO="2025-9999",
                    SS_EXT="B"),  # orphan split: its main job is not listed
    ]
    records, _ = transform_circuit_rows(rows)
    assert resolve_parents(records) == {
        GUID_A: None,
        GUID_B: GUID_A,
        GUID_C: GUID_P,
        "{14A9C2D0-1111-4A2B-9C3D-0000000000DD}": None,
    }


def test_region_key():
    assert region_key(" Lehigh ") == region_key("LEHIGH") == "lehigh"
    assert region_key("North   East") == region_key("north east") == "north east"
    assert region_key("Northeast") != region_key("North East")
    assert region_key(None) == ""


def test_circuit_record_validates_guid():
    with pytest.raises(ValueError):
        CircuitRecord(job_guid="x", work_order="1", api_status="ACTIV")


# --------------------------------------------------------------------------- units
def unit_row(unit_id, **overrides):
    row = {column: "" for column in protocol.PLANNED_UNITS_HEADING}
    row.update({
        "SS_WO": "2025-1930", "SS_EXT": "@", "STATIONS_STATNAME": "10", "VEGUNIT_UNIT": "SPM",
        "UNITS_DESCRIPTIO": "Single phase manual", "VEGUNIT_FORESTER": "Derek Cinicola ",
        "VEGUNIT_ASSDDATE": "/Date(2026-01-05)/", "VEGUNIT_PERMSTAT": "",
        "JOBVEGETATIONUNITS_NUMTREES": "0", "JOBVEGETATIONUNITS_LENGTHWRK": "120.5",
        "JOBVEGETATIONUNITS_ACRES": "0", "SSUNITS_OBJECTID": unit_id,
        "VEGUNIT_ASSLAT": "40.6", "VEGUNIT_ASSLONG": "-75.4",
        "VEGUNIT_AUDITDATE": "/Date(1899-12-30)/",
        "SSUNITS_GEOMETRY": {"@sourceFormat": "DataObjectGeometry", "type": "Point",
                             "coordinates": [-75.4, 40.6]},
    })
    row.update(overrides)
    return row


def test_unit_fields():
    groups, issues = normalise_units([unit_row("501", VEGUNIT_PERMSTAT=" Approved ",
                                               STATIONS_SPANLGTH="45.2",
                                               VEGUNIT_FRSTR_USER="ASPLUNDH\\dc",
                                               VEGUNIT_ASSNOTE="  ")])
    assert issues == []
    (u,) = groups["@"]
    assert u.unit_id == 501 and u.work_order == "2025-1930" and u.station == "10"
    assert u.unit_code == "SPM" and u.permission_status == "Approved"
    assert u.linear_ft == 120.5 and u.trees == 0 and u.acres == 0.0
    assert u.assessed_date == date(2026, 1, 5) and u.audit_date is None
    assert u.forester == "Derek Cinicola" and u.forester_username == "ASPLUNDH\\dc"
    assert u.notes is None and u.latitude == 40.6 and u.longitude == -75.4
    assert u.span_length_m == 45.2
    assert "geometry" not in json.dumps(unit_to_json(u)).lower()


def test_units_grouped_by_extension_and_sorted():
    rows = [unit_row(30, SS_EXT="C_a"), unit_row(20, SS_EXT=""), unit_row(10, SS_EXT=None),
            unit_row(5, SS_EXT="@"), unit_row(7, SS_EXT="C_a ")]
    groups, issues = normalise_units(rows)
    assert issues == []
    assert {k: [u.unit_id for u in v] for k, v in groups.items()} == {
        "@": [5, 10, 20], "C_a": [7, 30]}


def test_identical_duplicates_collapse_with_one_counted_issue():
    rows = [unit_row(1), unit_row(2), unit_row(1), unit_row(1), unit_row(2)]
    groups, issues = normalise_units(rows)
    assert [u.unit_id for u in groups["@"]] == [1, 2]
    (issue,) = issues
    assert issue.severity == "warning" and issue.value == "3" and "3 identical" in issue.reason


def test_duplicates_differing_only_in_dropped_columns_are_identical():
    rows = [unit_row(1, VEGJOB_REGION="Lehigh"), unit_row(1, VEGJOB_REGION="LEHIGH")]
    groups, issues = normalise_units(rows)
    assert len(groups["@"]) == 1 and issues[0].code == "identical_duplicate_units"


@pytest.mark.parametrize("reverse", [False, True])
def test_conflicting_duplicates_keep_latest_assessed(reverse):
    older = unit_row(1, VEGUNIT_PERMSTAT="", VEGUNIT_ASSDDATE="/Date(2026-01-05)/")
    newer = unit_row(1, VEGUNIT_PERMSTAT="Approved", VEGUNIT_ASSDDATE="/Date(2026-01-07)/")
    rows = [newer, older] if reverse else [older, newer]
    groups, issues = normalise_units(rows)
    (u,) = groups["@"]
    assert u.permission_status == "Approved"
    (issue,) = issues
    assert issue.code == "conflicting_duplicate_unit" and issue.key == "1"
    assert "permission_status" in issue.column and "assessed_date" in issue.column


def test_conflicting_duplicates_tie_on_audit_then_later_row():
    a = unit_row(1, VEGUNIT_AUDITDATE="/Date(2026-01-09)/", VEGUNIT_SPECIES="Oak")
    b = unit_row(1, VEGUNIT_AUDITDATE="/Date(2026-01-08)/", VEGUNIT_SPECIES="Ash")
    assert normalise_units([a, b])[0]["@"][0].species == "Oak"
    c = unit_row(2, VEGUNIT_SPECIES="Elm")
    d = unit_row(2, VEGUNIT_SPECIES="Maple")
    assert normalise_units([c, d])[0]["@"][0].species == "Maple"


def test_bad_unit_numbers_become_zero_or_null_with_issues():
    groups, issues = normalise_units([unit_row(
        1, JOBVEGETATIONUNITS_LENGTHWRK="12 ft", JOBVEGETATIONUNITS_NUMTREES="2.5",
        JOBVEGETATIONUNITS_ACRES="x", VEGUNIT_ASSLAT="north")])
    (u,) = groups["@"]
    assert (u.linear_ft, u.trees, u.acres, u.latitude) == (0.0, 0, 0.0, None)
    assert {i.column for i in issues} == {"JOBVEGETATIONUNITS_LENGTHWRK",
                                          "JOBVEGETATIONUNITS_NUMTREES",
                                          "JOBVEGETATIONUNITS_ACRES", "VEGUNIT_ASSLAT"}
    assert all(i.severity == "warning" and i.key == "1" for i in issues)


def test_empty_measures_are_zero_without_issue():
    groups, issues = normalise_units([unit_row(1, JOBVEGETATIONUNITS_NUMTREES="",
                                               JOBVEGETATIONUNITS_ACRES=None)])
    assert issues == [] and groups["@"][0].trees == 0 and groups["@"][0].acres == 0.0


@pytest.mark.parametrize("bad_id", ["", None, "abc", "1.5"])
def test_unit_without_id_is_an_error_issue(bad_id):
    groups, issues = normalise_units([unit_row(1), unit_row(bad_id)])
    assert [u.unit_id for u in groups["@"]] == [1]
    (issue,) = issues
    assert issue.severity == "error" and issue.row_number == 2
    assert issue.column == "SSUNITS_OBJECTID"


def _units():
    groups, _ = normalise_units([
        unit_row(3, VEGUNIT_UNIT="HCB", JOBVEGETATIONUNITS_ACRES="0.25"),
        unit_row(1, VEGUNIT_SPECIES="Oak ", VEGUNIT_ASSNOTE="près de la route"),
        unit_row(2, VEGUNIT_UNIT="REM612", JOBVEGETATIONUNITS_NUMTREES="3"),
    ])
    return groups["@"]


def test_unit_json_round_trip():
    units = _units()
    as_json = [unit_to_json(u) for u in units]
    text = json.dumps(as_json)
    assert units_from_json(json.loads(text)) == units
    first = as_json[0]
    assert first["assessed_date"] == "2026-01-05" and isinstance(first["linear_ft"], float)
    assert isinstance(first["unit_id"], int) and first["audit_date"] is None


def test_content_hash_is_order_independent_and_sensitive():
    units = _units()
    h = content_hash(units)
    assert len(h) == 64 and int(h, 16) >= 0
    assert content_hash(list(reversed(units))) == h
    assert content_hash([unit_to_json(u) for u in units]) == h
    changed = [units[0].model_copy(update={"linear_ft": 120.51}), *units[1:]]
    assert content_hash(changed) != h
    changed = [units[0].model_copy(update={"permission_status": "Approved"}), *units[1:]]
    assert content_hash(changed) != h
    assert content_hash(units[:-1]) != h
    assert content_hash([]) != h


def test_content_hash_is_stable_across_processes():
    units = _units()
    payload = json.dumps([unit_to_json(u) for u in units])
    script = (
        "import json,sys\n"
        "from ws_tracker.rules.units import content_hash, units_from_json\n"
        "print(content_hash(units_from_json(json.loads(sys.stdin.read()))))\n"
    )
    hashes = set()
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", script], input=payload, text=True,
                             capture_output=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": seed})
        hashes.add(out.stdout.strip())
    assert hashes == {content_hash(units)}


# --------------------------------------------------------------------------- aggregates
@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Approved", "approved"), (" Approved ", "approved"), ("approved", None),
     ("Refused", "refused"), ("REFUSED", None), ("", "pending"), (None, "pending"),
     ("  ", "pending"), ("Pending", "pending"), ("PENDING", "pending"),
     ("No Contact", None), ("Deferred", None), ("PPL Approved", None), ("N/A", None)],
)
def test_permission_class(raw, expected):
    assert permission_class(raw) == expected


def agg_units():
    def u(unit_id, code, forester, perm, ft=0.0, acres=0.0, trees=0, username=None):
        return PlannedUnit(unit_id=unit_id, unit_code=code, forester=forester,
                           permission_status=perm, linear_ft=ft, acres=acres, trees=trees,
                           forester_username=username)
    return [
        u(1, "SPM", "Derek Cinicola", "Approved", ft=100.125),
        u(2, "SPM", "derek cinicola", None, ft=49.5),
        u(3, "HCB", "Paul Longenecker", "Refused", acres=0.25),
        u(4, "REM612", None, "No Contact", trees=3),
        u(5, "XYZ", "Paul Longenecker", "pending", ft=10.0, acres=1.0, trees=2),  # unknown
        u(6, "BRUSH", "Paul Longenecker", "PPL Approved", acres=0.0),
        u(7, "MPM", "Ann Other", "Approved", ft=0.5, username="ASPLUNDH\\aother"),
        u(8, "spm", "Ann Other", "Approved", ft=1.0),  # code case slip still measures
    ]


EXPECTED_AGGREGATE = {
    "total_units": 8,
    "total_linear_ft": 151.13,  # 100.125 + 49.5 + 0.5 + 1.0 = 151.125 -> 151.13 (not 10 of XYZ)
    "total_acres": 0.25,
    "total_trees": 3,
    "units_approved": 3,
    "units_refused": 1,
    "units_pending": 2,
    "units_by_permission": {"Approved": 3, "No Contact": 1, "PPL Approved": 1, "Pending": 1,
                            "Refused": 1, "pending": 1},
    "unit_counts_by_type": {"BRUSH": 1, "HCB": 1, "MPM": 1, "REM612": 1, "SPM": 3, "XYZ": 1},
    "linear_ft_by_type": {"MPM": 0.5, "SPM": 150.63},
    "acres_by_type": {"HCB": 0.25},  # BRUSH summed to 0: dropped
    "planner_distribution": {
        "7": {"name": "Derek Cinicola", "units": 2, "linear_ft": 149.63, "acres": 0.0,
              "trees": 0},
        "9": {"name": "Ann Other", "units": 2, "linear_ft": 1.5, "acres": 0.0, "trees": 0},
        "Paul Longenecker": {"name": "Paul Longenecker", "units": 3, "linear_ft": 0.0,
                             "acres": 0.25, "trees": 0},
        "(unknown)": {"name": "(unknown)", "units": 1, "linear_ft": 0.0, "acres": 0.0,
                      "trees": 3},
    },
}


def test_circuit_aggregate_hand_computed():
    # Derek maps by name (case-insensitive); Ann maps by her username on one unit only, by
    # name on the other.
    keys = {" DEREK CINICOLA ": 7, "asplundh\\aother": 9, "Ann Other": 9}
    got = circuit_aggregate(agg_units(), planner_keys=keys)
    assert got == EXPECTED_AGGREGATE
    json.dumps(got)


def test_circuit_aggregate_accepts_json_dicts():
    keys = {"Derek Cinicola": 7, "Ann Other": 9}
    as_json = [unit_to_json(u) for u in agg_units()]
    assert circuit_aggregate(as_json, planner_keys=keys) == circuit_aggregate(
        agg_units(), planner_keys=keys)


def test_circuit_aggregate_without_planner_keys_groups_names_case_insensitively():
    got = circuit_aggregate(agg_units())
    dist = got["planner_distribution"]
    assert set(dist) == {"Derek Cinicola", "Paul Longenecker", "Ann Other", "(unknown)"}
    assert dist["Derek Cinicola"]["units"] == 2


def test_circuit_aggregate_empty():
    got = circuit_aggregate([])
    assert got["total_units"] == 0 and got["total_linear_ft"] == 0
    assert got["planner_distribution"] == {} and got["unit_counts_by_type"] == {}


def test_unknown_code_counts_but_measures_nothing():
    u = PlannedUnit(unit_id=1, unit_code="NEWCODE", linear_ft=5.0, acres=2.0, trees=4)
    got = circuit_aggregate([u])
    assert got["total_units"] == 1 and got["unit_counts_by_type"] == {"NEWCODE": 1}
    assert (got["total_linear_ft"], got["total_acres"], got["total_trees"]) == (0, 0, 0)
    assert got["linear_ft_by_type"] == {} and got["acres_by_type"] == {}


def test_a_ragged_row_is_set_aside_and_the_rest_are_read():
    ds = parse_envelope(dataset_payload(["A", "B"], [[1, 2], [3], [4, 5], "x"]), protocol="GETVIEWDATA",
                        view="{V}")
    assert ds.rows == [{"A": 1, "B": 2}, {"A": 4, "B": 5}]
    assert [(i.row_number, i.severity, i.code) for i in ds.rejected] == [
        (2, "error", "ragged_row"), (4, "error", "ragged_row")]
    assert "row 2 of 4 has 1 values for 2 heading columns" in ds.rejected[0].reason
    assert ds.raw_rows() == {1: {"A": 1, "B": 2}, 2: [3], 3: {"A": 4, "B": 5}, 4: "x"}
    # Issues a transformer numbers by position in ``rows`` map back to response rows.
    from ws_tracker.rules.errors import RowIssue
    assert [i.row_number for i in ds.renumber([RowIssue(1, "A", 1, "r"), RowIssue(2, "B", 5, "r")])] == [1, 3]


def test_audit_pass_as_a_json_boolean_is_kept_not_dropped():
    """VEGUNIT_AUDIT_PASS comes as a JSON boolean (the simulator sends one): a real answer,
    stored as "true"/"false" with no issue; its text in any case ("True" in a CSV export)
    gives the same; other text is kept as it is."""
    given = [True, False, "True", " FALSE ", "", None, "1", "Pass"]
    rows = [unit_row(i + 1, VEGUNIT_AUDIT_PASS=v) for i, v in enumerate(given)]
    groups, issues = normalise_units(rows)
    assert issues == []
    assert [u.audit_pass for u in groups["@"]] == [
        "true", "false", "true", "false", None, None, "1", "Pass"]
    for row, unit in zip(rows, groups["@"]):
        assert unit_from_row(row) == unit  # the per-row decoder (imports) agrees
