"""Bad-input fuzzing (issue 6, item 4): property-based tests over the envelope parser, the value
decoders and the row transformers.

The contract under test: any input gives either typed values/rows or one of the project's
documented errors (WorkStudioError family for envelopes, DecodeError for decoders, RowIssue
values for rows) with a message naming what was wrong, never an exception of another kind;
no row is silently dropped; hostile text (quotes, semicolons, backslashes, emoji, 10,000
characters) is stored verbatim apart from clean_text's documented trim and NUL replacement.

Hypothesis prints the falsifying example (and ``@reproduce_failure`` blob) on failure.
"""

from __future__ import annotations

import json
import math
import string
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from ws_tracker.rules.circuits import CircuitRecord, normalise_guid, transform_circuit_rows
from ws_tracker.rules.decoding import (
    DecodeError,
    clean_text,
    decode_bool,
    decode_date,
    decode_int,
    decode_number,
    decode_timestamp,
    replace_unstorable,
    to_decimal,
)
from ws_tracker.rules.envelope import DataSet, parse_envelope, parse_heartbeat
from ws_tracker.rules.errors import (
    RowIssue,
    WorkStudioBadResponse,
    WorkStudioError,
    WorkStudioProtocolError,
)
from ws_tracker.rules.units import (
    PlannedUnit,
    content_hash,
    normalise_units,
    unit_to_json,
    units_from_json,
)
from ws_tracker.warehouse.circuit_sync import sync_circuits
from ws_tracker.workstudio import protocol
from ws_tracker.workstudio.client import WorkStudioClient

UTC = timezone.utc
VIEW = protocol.CIRCUIT_LIST_VIEW
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
OLE_EPOCH = datetime(1899, 12, 30, tzinfo=UTC)
T0 = datetime(2026, 3, 2, 22, 30, tzinfo=UTC)
REPLACEMENT = "\ufffd"  # what clean_text puts in place of characters PostgreSQL cannot store

FAST = settings(max_examples=100, deadline=None)
ROWS = settings(max_examples=50, deadline=None)
DB = settings(max_examples=25, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# --------------------------------------------------------------------------- strategies
ENVELOPE_KEYS = ["Protocol", "protocol", "PROTOCOL", "DataSet", "dataset", "Heading", "heading",
                 "Data", "data", "errorMessage", "ErrorMessage", "SQL", "ColumnGroup"]
WHITESPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2028\u3000"
# Text that is hostile to SQL, JSON, shells and format strings, plus emoji.
HOSTILE_SNIPPETS = ["'", '"', ";", "\\", "\\\\", "\\x00", "\\u0000", "%s", "%(title)s", ":title",
                    "{0}", "$1", "--", "/*", "*/", "'); DROP TABLE circuits; --", "\r\n", "\t",
                    "😀", "👩‍👩‍👧‍👦", "🇺🇸", "\u200b", "\u202e", "e\u0301", "ﬁ", "Ω", "中文",
                    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "/Date(2026-01-01)/", "null", "NULL", "true", "NaN"]

# Everything json.loads can produce (Python's json accepts NaN/Infinity and huge integers).
json_scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(), st.integers(min_value=-(10 ** 400), max_value=10 ** 400),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
)
json_keys = st.one_of(st.sampled_from(ENVELOPE_KEYS), st.text(max_size=8))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(json_keys, inner, max_size=4),
    max_leaves=20,
)

whitespace_text = st.text(alphabet=st.sampled_from(WHITESPACE), max_size=6)
# Unicode that PostgreSQL can store as text: no NUL, no lone surrogates.
storable_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
hostile_text = st.lists(
    st.one_of(st.sampled_from(HOSTILE_SNIPPETS), st.text(storable_chars, max_size=8)),
    min_size=1, max_size=8,
).map("".join)


def _repeat(alphabet, min_size: int, max_size: int):
    """Long strings that cost little entropy: a short random chunk repeated to a random size."""
    return st.tuples(st.text(alphabet, min_size=1, max_size=3),
                     st.integers(min_size, max_size)).map(lambda t: (t[0] * t[1])[:t[1]])


long_digits = _repeat("0123456789", 4301, 5000)


def _wrap(inner: str) -> str:
    return f"/Date({inner})/"


aware_datetimes = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
    timezones=st.builds(timezone, st.timedeltas(min_value=timedelta(hours=-23, minutes=-59),
                                                max_value=timedelta(hours=23, minutes=59))
                        .map(lambda d: timedelta(minutes=d // timedelta(minutes=1)))),
)
date_like = st.one_of(
    st.datetimes().map(lambda d: _wrap(d.isoformat())),
    st.dates().map(lambda d: _wrap(d.isoformat())),
    st.integers(min_value=-(10 ** 20), max_value=10 ** 20).map(lambda n: _wrap(str(n))),
    st.integers(min_value=-(10 ** 13), max_value=10 ** 13).map(lambda n: _wrap(f"{n}+0000")),
    st.text(max_size=30).map(_wrap),  # broken wrapped dates
    st.sampled_from(["/Date(", "/Date()/", "/Date(2026-02-30)/", "/Date(2026-01-01", "Date(1)",
                     "/Date(1899-12-30)/", "/Date(9999-12-31T23:59:59.9999Z)/",
                     "/Date(0001-01-01T00:00:00+05:00)/", "/Date(9999-12-31T23:00:00-05:00)/",
                     "2958465.9999999", "-700000", "1e308", "1e400", "nan", "inf"]),
    long_digits.map(_wrap),  # beyond int()'s 4300-digit limit
    long_digits,
)
arbitrary_values = st.one_of(
    json_values, whitespace_text, date_like, hostile_text,
    st.datetimes(), aware_datetimes, st.dates(), st.decimals(allow_nan=True),
    st.integers(min_value=-(10 ** 5000), max_value=10 ** 5000),  # beyond str()'s digit limit
    st.floats().map(repr), st.integers().map(str), st.sampled_from([b"bytes", (1, 2), {1, 2}]),
)


# --------------------------------------------------------------------------- envelopes
@st.composite
def envelopes(draw):
    """Payloads near the DDOProtocol shape, broken in every way we can think of."""
    width = draw(st.integers(min_value=0, max_value=5))
    heading = draw(st.one_of(
        st.lists(st.text(max_size=6), min_size=width, max_size=width),
        st.lists(st.sampled_from(["A", "B", "a"]), max_size=4),  # duplicates likely
        json_values,
    ))
    row_width = len(heading) if isinstance(heading, list) else width
    data = draw(st.one_of(
        st.lists(st.lists(json_values, min_size=row_width, max_size=row_width), max_size=4),
        st.lists(st.one_of(st.lists(json_values, max_size=6), json_values), max_size=4),
        json_values,
    ))
    dataset: dict = {}
    if draw(st.booleans()):
        dataset[draw(st.sampled_from(["Heading", "heading", "HEADING"]))] = heading
    if draw(st.booleans()):
        dataset[draw(st.sampled_from(["Data", "data"]))] = data
    dataset.update(draw(st.dictionaries(json_keys, json_values, max_size=2)))
    payload: dict = {}
    if draw(st.booleans()):
        payload[draw(st.sampled_from(["Protocol", "protocol", "PROTOCOL"]))] = draw(st.one_of(
            st.sampled_from(["DATASET", "dataset", " DataSet ", "ERROR", "error", "OK", ""]),
            json_values))
    if draw(st.booleans()):
        payload[draw(st.sampled_from(["DataSet", "dataset"]))] = draw(
            st.one_of(st.just(dataset), json_values))
    payload.update(draw(st.dictionaries(json_keys, json_values, max_size=3)))
    return draw(st.one_of(st.just(payload), json_values))


def _ci(mapping: dict, name: str):
    """The value the parser reads for ``name``: the exact key, else the first any-case match."""
    if name in mapping:
        return mapping[name]
    return next(v for k, v in mapping.items() if k.lower() == name.lower())


def _check_envelope_outcome(payload, protocol_name="GETVIEWDATA", view=VIEW):
    """parse_envelope gives a well-formed DataSet or a WorkStudioError naming the call."""
    try:
        ds = parse_envelope(payload, protocol=protocol_name, view=view)
    except WorkStudioProtocolError as exc:
        assert "ERROR envelope" in str(exc) and protocol_name in str(exc)
        return None
    except WorkStudioBadResponse as exc:
        assert exc.problem.strip(), "a bad-response error must say what was wrong"
        assert str(exc).startswith(f"Bad WorkStudio response to {protocol_name}")
        assert len(str(exc)) < 1000  # untrusted server text is truncated
        return None
    # Success: only for a real DATASET envelope, every row zipped with the heading.
    assert isinstance(ds, DataSet)
    assert all(isinstance(h, str) for h in ds.heading)
    assert len(set(ds.heading)) == len(ds.heading)
    data = _ci(_ci(payload, "DataSet"), "Data")
    # Every data row is accounted for: read, or (where the parser quarantines ragged rows
    # instead of failing the call) rejected with an "error" issue naming its position.
    rejected = getattr(ds, "rejected", [])
    numbers = getattr(ds, "row_numbers", None) or list(range(1, len(ds.rows) + 1))
    assert sorted(numbers + [i.row_number for i in rejected]) == list(range(1, len(data) + 1))
    for issue in rejected:
        assert issue.severity == "error"
        assert f"row {issue.row_number} of {len(data)}" in issue.reason
    for number, row in zip(numbers, ds.rows):
        assert list(row) == ds.heading and list(row.values()) == data[number - 1]
    assert ds.sql is None or isinstance(ds.sql, str)
    return ds


@FAST
@given(envelopes())
def test_parse_envelope_never_crashes(payload):
    _check_envelope_outcome(payload)


@FAST
@given(st.lists(st.text(max_size=6), unique=True, max_size=6).flatmap(
    lambda h: st.tuples(st.just(h), st.lists(st.lists(json_values, min_size=len(h),
                                                        max_size=len(h)), max_size=5))))
def test_well_formed_envelope_gives_typed_rows(heading_and_data):
    heading, data = heading_and_data
    payload = {"Protocol": "DATASET", "DataSet": {"Heading": heading, "Data": data}, "SQL": "s"}
    ds = _check_envelope_outcome(payload)
    assert ds is not None and ds.rows == [dict(zip(heading, r)) for r in data] and ds.sql == "s"


@FAST
@given(st.lists(st.text(max_size=6), unique=True, min_size=1, max_size=5), st.data())
def test_ragged_row_names_the_row(heading, data):
    rows = data.draw(st.lists(st.lists(st.integers(), min_size=len(heading),
                                       max_size=len(heading)), min_size=1, max_size=5))
    bad = data.draw(st.integers(min_value=0, max_value=len(rows) - 1))
    rows[bad] = rows[bad] + [0] if data.draw(st.booleans()) else rows[bad][:-1]
    payload = {"Protocol": "DATASET", "DataSet": {"Heading": heading, "Data": rows}}
    needle = f"row {bad + 1} of {len(rows)}"
    try:
        ds = parse_envelope(payload, protocol="GETVIEWDATA", view=VIEW)
    except WorkStudioBadResponse as exc:  # the ragged row fails the call, naming the row
        assert needle in exc.problem
    else:  # or it is quarantined, named, and the other rows are read
        assert [(i.row_number, i.severity) for i in ds.rejected] == [(bad + 1, "error")]
        assert needle in ds.rejected[0].reason
        assert ds.rows == [dict(zip(heading, r)) for k, r in enumerate(rows) if k != bad]


@FAST
@given(json_values, st.text(max_size=30))
def test_error_envelopes_always_fail_with_their_message(extra, message):
    payload = {"protocol": "ERROR", "errorMessage": message, "DataSet": extra}
    with pytest.raises(WorkStudioProtocolError) as info:
        parse_envelope(payload, protocol="GETQUERY")
    expected = message if len(message) <= 500 else message[:497] + "..."
    assert info.value.server_message == expected


@FAST
@given(envelopes())
def test_parse_heartbeat_never_crashes(payload):
    try:
        assert parse_heartbeat(payload) is None
    except WorkStudioError as exc:
        assert str(exc)
    else:
        assert _ci(payload, "protocol").strip().upper() == "OK"


def _decode_body(body: bytes):
    response = httpx.Response(200, content=body, headers={"Content-Type": "application/json"})
    return WorkStudioClient._decode_json(response, "GETVIEWDATA", VIEW)


@FAST
@given(st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
    json_values.map(lambda v: json.dumps(v).encode()),
    envelopes().map(lambda v: json.dumps(v).encode()),
))
def test_any_body_bytes_give_a_dataset_or_a_workstudio_error(body):
    try:
        payload = _decode_body(body)
    except WorkStudioBadResponse as exc:
        assert "empty body" in exc.problem or "not JSON" in exc.problem
        return
    _check_envelope_outcome(payload)


@FAST
@given(st.lists(st.text(max_size=6), unique=True, min_size=1, max_size=4), st.data())
def test_truncated_envelope_is_a_bad_response(heading, data):
    rows = data.draw(st.lists(st.lists(json_scalars.filter(
        lambda v: not (isinstance(v, float) and not math.isfinite(v))),
        min_size=len(heading), max_size=len(heading)), max_size=3))
    text = json.dumps({"Protocol": "DATASET", "DataSet": {"Heading": heading, "Data": rows}})
    cut = data.draw(st.integers(min_value=0, max_value=len(text) - 1))
    with pytest.raises(WorkStudioBadResponse) as info:
        _decode_body(text[:cut].encode())
    assert "not JSON" in info.value.problem or "empty body" in info.value.problem


def test_deeply_nested_body_is_a_bad_response():
    with pytest.raises(WorkStudioBadResponse):
        _decode_body(b"[" * 100_000)


# --------------------------------------------------------------------------- decoders
DECODERS = [decode_timestamp, decode_date, decode_number, decode_int, decode_bool, clean_text]
RESULT_TYPES = {decode_timestamp: datetime, decode_date: date, decode_number: float,
                decode_int: int, decode_bool: bool, clean_text: str}


@settings(max_examples=200, deadline=None)
@given(arbitrary_values)
@example(10 ** 400)                   # int too large for float
@example("1" * 5000)                  # beyond int()'s 4300-digit limit
@example(_wrap("1" * 5000))
@example(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))))  # astimezone underflows
@example(2958465.9999999)             # OLE date rounding past 9999-12-31
@example(10 ** 5000)
def test_decoders_return_typed_values_or_decode_error(value):
    for decoder in DECODERS:
        try:
            got = decoder(value)
        except DecodeError as exc:
            assert str(exc).startswith("cannot decode") or "GUID" in str(exc)
            assert len(str(exc)) < 400
            continue
        if got is None:
            continue
        assert isinstance(got, RESULT_TYPES[decoder]), (decoder.__name__, got)
        if decoder is decode_timestamp:
            assert got.utcoffset() == timedelta(0) and got.year >= 1900
        if decoder is decode_date:
            assert got.year >= 1900
            assert not isinstance(got, datetime) or isinstance(value, datetime)
        if decoder is decode_number:
            assert math.isfinite(got)
        if decoder is clean_text:
            assert got == got.strip() and got
            assert "\x00" not in got
            got.encode("utf-8")  # storable: no lone surrogates


@FAST
@given(whitespace_text)
def test_empty_and_whitespace_are_null_for_every_decoder(text):
    for decoder in DECODERS:
        assert decoder(text) is None, decoder.__name__


@FAST
@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(9999, 12, 31)),
       st.sampled_from(["", "+0000", "-0500", "+0100"]))
def test_epoch_ms_round_trip(naive, suffix):
    dt = naive.replace(microsecond=naive.microsecond // 1000 * 1000, tzinfo=UTC)
    ms = (dt - EPOCH) // timedelta(milliseconds=1)
    assert decode_timestamp(_wrap(f"{ms}{suffix}")) == dt
    assert decode_date(_wrap(f"{ms}{suffix}")) == dt.date()


@FAST
@given(aware_datetimes)
def test_iso_round_trip_plain_wrapped_and_z(dt):
    as_utc = dt.astimezone(UTC)
    assume(1900 <= as_utc.year)
    for text in (dt.isoformat(), _wrap(dt.isoformat()), f"  {dt.isoformat()} ",
                 as_utc.replace(tzinfo=None).isoformat() + "Z"):
        assert decode_timestamp(text) == as_utc, text


@FAST
@given(st.dates())
def test_wrapped_dates_round_trip_and_pre_1900_is_null(d):
    expected = d if d.year >= 1900 else None
    assert decode_date(_wrap(d.isoformat())) == expected
    assert decode_date(d.isoformat()) == expected
    assert decode_date(d) == expected


@FAST
@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(9999, 12, 31, 23, 59)))
def test_ole_days_round_trip_to_the_millisecond(naive):
    dt = naive.replace(microsecond=naive.microsecond // 1000 * 1000, tzinfo=UTC)
    days = (dt - OLE_EPOCH) / timedelta(days=1)
    assert decode_timestamp(days) == dt
    assert decode_timestamp(repr(days)) == dt


@FAST
@given(st.floats(allow_nan=False, allow_infinity=False), whitespace_text)
def test_number_round_trip(x, pad):
    assert decode_number(x) == x
    assert decode_number(pad + repr(x) + pad) == x
    assert str(decode_number(-0.0)) == "0.0"


@FAST
@given(st.integers(min_value=-(10 ** 4299), max_value=10 ** 4299), whitespace_text)
def test_int_round_trip_is_exact(n, pad):
    assert decode_int(n) == n
    assert decode_int(pad + str(n) + pad) == n


@FAST
@given(st.sampled_from(["true", "TRUE", " yes", "1", "t", "Y"]),
       st.sampled_from(["false", "No ", "0", "f", "N"]))
def test_bool_strings(true_text, false_text):
    assert decode_bool(true_text) is True and decode_bool(false_text) is False


@FAST
@given(st.one_of(hostile_text, st.text(storable_chars)), whitespace_text, whitespace_text)
def test_clean_text_keeps_text_verbatim_apart_from_the_trim(text, left, right):
    assert clean_text(left + text + right) == (text.strip() or None)


@FAST
@given(st.text(max_size=20), st.sampled_from(["\x00", "\ud800", "\udfff", "\udc00\x00"]),
       st.text(max_size=20))
def test_clean_text_replaces_what_postgresql_cannot_store(left, bad, right):
    got = clean_text(left + bad + right)
    assert got is not None and "\x00" not in got
    got.encode("utf-8")  # would raise on a lone surrogate
    assert REPLACEMENT in got


@FAST
@given(st.one_of(st.floats(min_value=-1e12, max_value=1e12), st.integers(-10 ** 12, 10 ** 12),
                 st.decimals(min_value=-10 ** 12, max_value=10 ** 12, places=6)),
       st.sampled_from([None, 0, 2, 4]))
def test_to_decimal_is_numeric_quantize_half_up(x, places):
    got = to_decimal(x, places)
    exact = Decimal(str(x))
    if places is None:
        assert got == exact
    else:
        assert got == exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
        assert got.as_tuple().exponent == -places
    assert to_decimal(None, places) == 0


# --------------------------------------------------------------------------- row strategies
def _guid_variants(u: uuid.UUID):
    s = str(u)
    return st.sampled_from([s, s.upper(), "{" + s.upper() + "}", "{" + s + "} ", f" {s.upper()}"])


guids = st.uuids().flatmap(_guid_variants)
few_guids = st.sampled_from([
    "{11111111-1111-1111-1111-111111111111}", "22222222-2222-2222-2222-222222222222",
    "{33333333-3333-3333-3333-333333333333} "])  # duplicates likely
hostile_cells = st.one_of(
    st.none(), st.just(""), whitespace_text, st.booleans(),
    st.integers(min_value=-(10 ** 30), max_value=10 ** 30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e8, 99999999.995, 999.995, 1000, -1e8, 1e300, "1e400", "12,5", "1_000",
                     float("nan"), float("inf"), float("-inf"), "\x00", "\ud800"]),
    hostile_text, date_like,
    long_digits,
    _repeat(storable_chars, 21, 120),  # longer than the narrow varchar columns
    st.dictionaries(st.text(max_size=5), json_scalars, max_size=3),  # geometry-like objects
    st.lists(json_scalars, max_size=3),
    st.text(max_size=10).map(lambda s: s + "\x00"),
)
PLAUSIBLE_CIRCUIT = {
    "SS_JOBGUID": st.one_of(few_guids, guids),
    "SS_WO": st.from_regex(r"\A20[0-9]{2}-[0-9]{4}\Z"),
    "SS_EXT": st.sampled_from(["@", "", None, "C_a", "C_ba", " A "]),
    "SS_TITLE": hostile_text,
    "WSREQ_STATUS": st.sampled_from(["ACTIV", "QC", "REWRK", "CLOSE", "SA"]),
    "REGION": st.sampled_from(["Lehigh", " LEHIGH ", "Central", "Atlantic  Coast"]),
    "VEGJOB_LENGTH": st.floats(0, 100) | st.floats(0, 100).map(str),
    "VEGJOB_LENGTHCOMP": st.floats(0, 100),
    "VEGJOB_PRCENT": st.integers(0, 100),
    "SS_TAKENBY": st.sampled_from(["ASPLUNDH\\jdoe", " asplundh\\jdoe ", "ASPLUNDH\\o'brien"]),
    "SS_EDITDATE": st.one_of(date_like, st.floats(0, 60000)),
    "WPStartDate_Assessment_Xrefs_WP_STARTDATE": date_like,
    "SS_PJOBGUID": st.one_of(st.just(""), guids),
}


KEY_COLUMNS = {"SS_JOBGUID", "SS_WO", "WSREQ_STATUS", "SSUNITS_OBJECTID"}


def _cell(column: str, plausible: dict):
    """Mostly a plausible value (so that rows get through), sometimes a hostile one."""
    good = plausible.get(column, hostile_text)
    odds = 12 if column in KEY_COLUMNS else 4
    return st.integers(0, odds).flatmap(lambda k: hostile_cells if k == 0 else good)


@st.composite
def source_rows(draw, heading, plausible, extra=True):
    row = {}
    for column in heading:
        choice = draw(st.integers(0, 19))
        if choice == 0:
            continue  # missing key
        row[column] = draw(_cell(column, plausible))
    if extra:
        row.update(draw(st.dictionaries(st.text(max_size=10), hostile_cells, max_size=2)))
    return row


circuit_rows = st.lists(source_rows(protocol.CIRCUIT_LIST_HEADING, PLAUSIBLE_CIRCUIT),
                        max_size=6)


def _same(a, b) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and a != a and b != b)


def _decoded(decoder, raw):
    try:
        return True, decoder(raw)
    except DecodeError:
        return False, None


CIRCUIT_TEXT = {"title": "SS_TITLE", "job_type": "SS_JOBTYPE", "cycle_type": "VEGJOB_CYCLETYPE",
                "region_name": "REGION", "contractor": "VEGJOB_CONTRACTOR",
                "forester": "VEGJOB_FORESTER", "taken_by": "SS_TAKENBY",
                "assigned_to": "SS_ASSIGNEDTO", "api_version": "WSREQ_VERSION"}
CIRCUIT_NUMBERS = {"total_miles": "VEGJOB_LENGTH", "miles_planned": "VEGJOB_LENGTHCOMP",
                   "percent_complete": "VEGJOB_PRCENT"}
CIRCUIT_DATES = {"api_modified_at": ("SS_EDITDATE", decode_timestamp),
                 "start_date": ("WPStartDate_Assessment_Xrefs_WP_STARTDATE", decode_date)}


def check_circuit_contract(rows):
    """transform_circuit_rows' docstring, as a checkable contract."""
    records, issues = transform_circuit_rows(rows)
    assert all(isinstance(r, CircuitRecord) for r in records)
    assert all(isinstance(i, RowIssue) for i in issues)
    for i in issues:
        # column is a heading name, and "" is a legal one
        assert 1 <= i.row_number <= len(rows) and i.column is not None and i.reason
        assert i.severity in ("warning", "error")
        json.dumps(i.to_dict())
    errors = {i.row_number for i in issues if i.severity == "error"}
    flagged = {(i.row_number, c) for i in issues for c in i.column.split(",")}
    kept_rows: dict[str, list[int]] = {}
    for n, row in enumerate(rows, start=1):
        if n in errors:
            continue
        guid = normalise_guid(row["SS_JOBGUID"])  # a kept row has a valid key
        kept_rows.setdefault(guid, []).append(n)
    # Nothing dropped silently: every row is a record (the last of its GUID) or an error.
    assert [r.job_guid for r in records] == list(kept_rows)
    for guid, ns in kept_rows.items():
        for n in ns[1:]:
            assert any(i.row_number == n and i.code == "duplicate_circuit" for i in issues)
    for record in records:
        n = kept_rows[record.job_guid][-1]
        row = rows[n - 1]
        assert record.work_order == clean_text(row["SS_WO"])
        assert record.api_status == clean_text(row["WSREQ_STATUS"])
        for name, column in CIRCUIT_TEXT.items():
            ok, want = _decoded(clean_text, row.get(column))
            assert (ok and getattr(record, name) == want) or (n, column) in flagged, (name, row)
        for name, column in CIRCUIT_NUMBERS.items():
            value = getattr(record, name)
            assert isinstance(value, float) and math.isfinite(value)
            ok, want = _decoded(decode_number, row.get(column))
            assert (ok and want is not None and value == want) or (n, column) in flagged
        for name, (column, decoder) in CIRCUIT_DATES.items():
            ok, want = _decoded(decoder, row.get(column))
            assert (ok and getattr(record, name) == want) or (n, column) in flagged
        assert record.api_modified_at is None or record.api_modified_at.utcoffset() == timedelta(0)
        json.dumps(record.api_data, allow_nan=False)  # the raw row is storable as JSON
        assert "SS_JOBBOUNDS" not in record.api_data
        assert set(record.api_data) == {replace_unstorable(k) for k in row} - {"SS_JOBBOUNDS"}
    return records, issues


@ROWS
@given(circuit_rows)
@example([{"SS_JOBGUID": "{11111111-1111-1111-1111-111111111111}", "SS_WO": "2026-0001",
           "WSREQ_STATUS": "ACTIV", "VEGJOB_COMMENTS": float("nan")}])
def test_circuit_rows_give_records_or_issues_never_a_crash(rows):
    check_circuit_contract(rows)


@ROWS
@given(st.lists(source_rows(protocol.CIRCUIT_LIST_HEADING, {}, extra=False), max_size=4))
def test_circuit_rows_of_pure_garbage(rows):
    check_circuit_contract(rows)


PLAUSIBLE_UNIT = {
    "SSUNITS_OBJECTID": st.one_of(st.integers(1, 30), st.integers(1, 30).map(str),
                                  st.integers(1, 10 ** 12)),
    "SS_EXT": st.sampled_from(["@", "", None, "C_a"]),
    "VEGUNIT_UNIT": st.sampled_from(["SPM", "REM612", "BRUSH", "NW", "XYZ"]),
    "JOBVEGETATIONUNITS_NUMTREES": st.integers(0, 20) | st.just(""),
    "JOBVEGETATIONUNITS_LENGTHWRK": st.floats(0, 1000) | st.just(""),
    "JOBVEGETATIONUNITS_ACRES": st.floats(0, 10) | st.just(""),
    "VEGUNIT_ASSDDATE": date_like,
    "VEGUNIT_AUDITDATE": date_like,
    "VEGUNIT_PERMSTAT": st.sampled_from(["", "Approved", "Refused", "pending", "N/A"]),
    "VEGUNIT_ASSLAT": st.floats(-90, 90),
}
UNIT_HEADING = protocol.PLANNED_UNITS_HEADING + list(protocol.PLANNED_UNITS_OPTIONAL)
UNIT_TEXT = {"station": "STATIONS_STATNAME", "unit_code": "VEGUNIT_UNIT",
             "notes": "VEGUNIT_ASSNOTE", "parcel_comments": "VEGUNIT_PARCELCOMMENTS",
             "species": "VEGUNIT_SPECIES", "permission_status": "VEGUNIT_PERMSTAT",
             "forester": "VEGUNIT_FORESTER"}
UNIT_MEASURES = {"trees": ("JOBVEGETATIONUNITS_NUMTREES", decode_int),
                 "linear_ft": ("JOBVEGETATIONUNITS_LENGTHWRK", decode_number),
                 "acres": ("JOBVEGETATIONUNITS_ACRES", decode_number)}


@ROWS
@given(st.lists(source_rows(UNIT_HEADING, PLAUSIBLE_UNIT), max_size=8))
def test_unit_rows_give_units_or_issues_never_a_crash(rows):
    grouped, issues = normalise_units(rows)
    units = [u for group in grouped.values() for u in group]
    assert all(isinstance(u, PlannedUnit) for u in units)
    for extension, group in grouped.items():
        assert [u.unit_id for u in group] == sorted(u.unit_id for u in group)
        assert all(u.extension == extension for u in group)
    ids = [u.unit_id for u in units]
    assert len(ids) == len(set(ids))
    for i in issues:
        assert i.row_number is None or 1 <= i.row_number <= len(rows)
        assert i.column and i.reason and i.severity in ("warning", "error")
    errors = {i.row_number for i in issues if i.severity == "error"}
    flagged = {(i.row_number, c) for i in issues for c in i.column.split(",")}
    # Every row is a unit (possibly collapsed with its duplicates) or an error naming the id.
    ok_rows: dict[int, list[int]] = {}
    for n, row in enumerate(rows, start=1):
        if n in errors:
            assert (n, "SSUNITS_OBJECTID") in flagged
            continue
        unit_id = decode_int(row["SSUNITS_OBJECTID"])
        assert unit_id is not None
        ok_rows.setdefault(unit_id, []).append(n)
    assert set(ids) == set(ok_rows)
    duplicates = sum(len(ns) - 1 for ns in ok_rows.values())
    conflicts = [i for i in issues if i.code == "conflicting_duplicate_unit"]
    identical = sum(int(i.value) for i in issues if i.code == "identical_duplicate_units")
    assert len(conflicts) + identical == duplicates
    # Fields of a unit seen once: verbatim decode, or an issue naming the row and column.
    by_id = {u.unit_id: u for u in units}
    for unit_id, ns in ok_rows.items():
        if len(ns) != 1:
            continue
        n, unit, row = ns[0], by_id[unit_id], rows[ns[0] - 1]
        for name, column in UNIT_TEXT.items():
            ok, want = _decoded(clean_text, row.get(column))
            assert (ok and getattr(unit, name) == want) or (n, column) in flagged
        for name, (column, decoder) in UNIT_MEASURES.items():
            ok, want = _decoded(decoder, row.get(column))
            assert (ok and getattr(unit, name) == (want or 0)) or (n, column) in flagged
    # The normalised units hash and round-trip through their JSON form.
    assert units_from_json(unit_to_json(u) for u in units) == units
    # Built without pydantic's validation and dumped by hand: type for type what validating
    # the same values and model_dump(mode="json") give (1 and 1.0 encode differently).
    for u in units:
        validated = PlannedUnit.model_validate(dict(u.__dict__))
        assert json.dumps(unit_to_json(u), sort_keys=True) == json.dumps(
            validated.model_dump(mode="json"), sort_keys=True)
    assert len(content_hash(units)) == 64


# --------------------------------------------------------------------------- verbatim text
TEN_THOUSAND = ("O'Brien \"Line\"; C:\\path\\ 😀 — " * 400)[:10_000]


def _circuit(guid: str, title, **extra):
    row = {"SS_JOBGUID": guid, "SS_WO": "2026-0001", "SS_EXT": "@", "SS_TITLE": title,
           "WSREQ_STATUS": "ACTIV", "REGION": "Lehigh", "VEGJOB_LENGTH": 10.0,
           "VEGJOB_LENGTHCOMP": 1.0, "VEGJOB_PRCENT": 10, "SS_TAKENBY": "ASPLUNDH\\jdoe",
           "SS_EDITDATE": "/Date(2026-03-02T12:00:00.000Z)/"}
    row.update(extra)
    return row


G1 = "{11111111-1111-1111-1111-111111111111}"


@FAST
@given(hostile_text, hostile_text, whitespace_text)
@example(TEN_THOUSAND, "notes; 'quoted' \"double\" \\back\\slash 🌳", "")
def test_transformers_keep_hostile_text_verbatim(title, notes, pad):
    records, issues = transform_circuit_rows([_circuit(G1, pad + title + pad,
                                                       VEGJOB_CONTRACTOR=notes)])
    assert [i.code for i in issues] == (["text_too_long"] if len(notes.strip()) > 50 else [])
    (record,) = records
    assert record.title == (title.strip() or None)
    assert record.contractor == (notes.strip() or None if len(notes.strip()) <= 50 else None)
    assert record.api_data["SS_TITLE"] == pad + title + pad  # the raw row, untouched
    grouped, unit_issues = normalise_units([{"SSUNITS_OBJECTID": 1, "VEGUNIT_ASSNOTE": notes,
                                             "VEGUNIT_PARCELCOMMENTS": pad + title}])
    assert unit_issues == []
    (unit,) = grouped["@"]
    assert unit.notes == (notes.strip() or None)
    assert unit.parcel_comments == (title.strip() or None)
    assert units_from_json([unit_to_json(unit)]) == [unit]


def test_ten_thousand_character_title_is_kept_whole():
    records, issues = transform_circuit_rows([_circuit(G1, TEN_THOUSAND)])
    assert issues == [] and len(records[0].title) == len(TEN_THOUSAND.strip())
    assert records[0].title == TEN_THOUSAND.strip()


# --------------------------------------------------------------------------- PostgreSQL
def _store_and_read(engine, records):
    """Sync ``records`` in a transaction that is rolled back, returning what PostgreSQL holds."""
    with engine.connect() as conn:
        tx = conn.begin()
        try:
            sync_circuits(conn, records, observed_at=T0)
            stored = {r.job_guid: r for r in conn.execute(sa.text(
                "SELECT c.job_guid, c.title, c.contractor, c.taken_by, c.api_data_json,"
                " h.title AS history_title, r.name AS region"
                " FROM circuits c JOIN circuit_history h ON h.circuit_id = c.id"
                " JOIN regions r ON r.id = c.region_id"))}
        finally:
            tx.rollback()
    return stored


@DB
@given(st.lists(st.tuples(st.uuids(), hostile_text, hostile_text, hostile_text),
                min_size=1, max_size=3, unique_by=lambda t: t[0]))
@example([(uuid.UUID(int=1), TEN_THOUSAND, "O'Brien; \\ 😀", "DOM\\o'brien \"x\"")])
def test_hostile_text_is_stored_in_postgresql_verbatim(engine, items):
    rows = [_circuit("{" + str(u).upper() + "}", title, VEGJOB_CONTRACTOR=contractor[:50],
                     SS_TAKENBY=taken, VEGJOB_COMMENTS=title + contractor)
            for u, title, contractor, taken in items]
    records, issues = transform_circuit_rows(rows)
    assert [i for i in issues if i.severity == "error"] == []
    stored = _store_and_read(engine, records)
    for row, record in zip(rows, records):
        got = stored[record.job_guid]
        expected_title = clean_text(row["SS_TITLE"]) or record.work_order
        assert got.title == expected_title and got.history_title == expected_title
        assert got.contractor == clean_text(row["VEGJOB_CONTRACTOR"])
        assert got.taken_by == clean_text(row["SS_TAKENBY"])
        assert got.api_data_json["SS_TITLE"] == row["SS_TITLE"]
        assert got.api_data_json["VEGJOB_COMMENTS"] == row["VEGJOB_COMMENTS"]


def test_nul_and_lone_surrogates_do_not_crash_the_database_write(engine):
    raw = "North\x00Line \ud83d"  # NUL and a lone surrogate, both legal in a JSON string
    rows = [_circuit(G1, raw, VEGJOB_CONTRACTOR="Asp\x00lundh", REGION="Le\x00high",
                     VEGJOB_COMMENTS=["x\x00", {"k\x00": "\ud800"}], **{"X\x00Y": "z"})]
    records, issues = transform_circuit_rows(rows)
    assert [i for i in issues if i.severity == "error"] == []
    stored = _store_and_read(engine, records)
    got = stored[G1]
    # The documented replacement: U+FFFD where PostgreSQL cannot hold the character.
    assert got.title == "North\ufffdLine \ufffd"
    assert got.contractor == "Asp\ufffdlundh" and got.region == "Le\ufffdhigh"
    assert got.api_data_json["SS_TITLE"] == "North\ufffdLine \ufffd"
    assert got.api_data_json["VEGJOB_COMMENTS"] == ["x\ufffd", {"k\ufffd": "\ufffd"}]
    assert got.api_data_json["X\ufffdY"] == "z"


@DB
@given(st.lists(source_rows(protocol.CIRCUIT_LIST_HEADING, PLAUSIBLE_CIRCUIT), min_size=1,
                max_size=4))
@example([_circuit(G1, "t", SS_WO="2026-0001-EXTRA-LONG-WORK-ORDER")])
@example([_circuit(G1, "t", SS_EXT="C_toolong")])
@example([_circuit(G1, "t", VEGJOB_CONTRACTOR="C" * 51, VEGJOB_CYCLETYPE="y" * 101,
                   SS_JOBTYPE="j" * 101, WSREQ_VERSION="9" * 51)])
@example([_circuit(G1, "t", VEGJOB_LENGTH=1e8, VEGJOB_LENGTHCOMP=99999999.995,
                   VEGJOB_PRCENT=1000)])
@example([_circuit(G1, "t", VEGJOB_LENGTH=1e300, VEGJOB_PRCENT=-999.995)])
@example([_circuit(G1, "t", VEGJOB_COMMENTS=float("nan"), X=float("inf"))])
def test_every_record_the_transformer_accepts_can_be_stored(engine, rows):
    """A record is a promise: what transform_circuit_rows returns, PostgreSQL accepts.

    Anything the columns cannot hold (too long, out of NUMERIC range, NUL, NaN in JSON) must
    have become a row issue in the transformer, not a failed transaction for the listing.
    """
    records, issues = check_circuit_contract(rows)
    if records:
        stored = _store_and_read(engine, records)
        assert set(stored) == {r.job_guid for r in records}


# --------------------------------------------------------------------------- fast units path
# normalise_units decodes column by column (memos, one-pass trims, values shared by a whole
# column, a day cache shared across calls); _normalise_units_reference is the plain algorithm
# (unit_from_row per row). They must agree exactly: units type for type and fields set,
# grouping and order, issues and their order, and the exception if one is raised.
from ws_tracker.rules import units as units_module  # noqa: E402

TRICKY_SCALARS = st.sampled_from([
    True, False, 1, 0, 1.0, 0.0, -0.0, 2, 2.0, 2.5, -1, "1", "0", "1.0", "2.5", " 7 ", "",
    " ", None, float("nan"), float("inf"), 10 ** 20, 10 ** 400, "1e400", "\x00", "é", " é ",
    "\u00a0x\u00a0", "/Date(2026-03-04)/", "/Date(1899-12-30)/", "/Date(2026-02-30)/",
    "/Date(1733340000000)/", " /Date(2026-03-04)/ ", "/Date(2026-03-04T23:30:00-05:00)/",
    "2026-03-04", "46065.75", 46065.75, 46065, [], {}, [1], {"a": 1},
])
UNIT_ODD = {
    "SSUNITS_OBJECTID": st.one_of(
        st.integers(1, 6), st.integers(1, 6).map(str), st.integers(1, 6).map(float),
        st.sampled_from([None, "", " ", "abc", "1.5", 1.5, True, False, " 3 ", "0x1", 10 ** 400,
                         -(10 ** 301), float("nan"), [1], {"id": 1}])),
    "SS_EXT": st.sampled_from(["@", "", None, "C_a", " C_a ", "C_ba", "\u00a0@", "é", True, 1,
                               1.5, "C\x00a", [], "\ud800"]),
    "VEGUNIT_ASSDDATE": st.one_of(date_like, st.sampled_from(
        ["/Date(2026-03-04)/", "/Date(2026-03-05)/", "/Date(1899-12-30)/", "/Date(0999-01-01)/"])),
    "VEGUNIT_AUDITDATE": st.one_of(date_like, st.sampled_from(
        ["/Date(2026-03-04)/", "/Date(1899-12-30)/", "", None])),
    "VEGUNIT_AUDIT_PASS": st.sampled_from([True, False, "", "1", None]),
    "VEGUNIT_ASSLAT": st.one_of(st.floats(-90, 90), st.floats()),
    "VEGUNIT_ASSLONG": st.one_of(st.floats(-180, 180), st.integers(-180, 180)),
    "STATIONS_SPANLGTH": st.one_of(st.floats(0, 500), st.floats(0, 500).map(repr)),
}


# Clean text as the service sends it: ASCII, sometimes padded, sometimes "" (NULL).
clean_unit_text = st.one_of(
    st.text(string.ascii_letters + string.digits + " -_/\\'.", max_size=12),
    st.sampled_from(["", " ", "Approved", " Approved ", "SPM", "Ann Lee", "C_a"]))

wrapped_days = st.dates(min_value=date(1890, 1, 1), max_value=date(2030, 12, 31)).map(
    lambda d: _wrap(d.isoformat()))
CLEAN_UNIT = {
    "SSUNITS_OBJECTID": st.integers(1, 10 ** 10),
    "VEGUNIT_ASSDDATE": wrapped_days,
    "VEGUNIT_AUDITDATE": st.one_of(wrapped_days, st.just("/Date(1899-12-30)/")),
    "STATIONS_SPANLGTH": st.one_of(st.floats(0, 500), st.just("")),
    "VEGUNIT_ASSLONG": st.floats(-180, 180),
}


def _unit_cell(column: str, clean: bool = False):
    """A plausible value for this column; unless ``clean``, sometimes an odd one, or anything
    a JSON row can hold."""
    plausible = PLAUSIBLE_UNIT.get(column, clean_unit_text)
    if clean:
        return CLEAN_UNIT.get(column, plausible)
    good = st.one_of(plausible, UNIT_ODD.get(column, hostile_text))
    return st.integers(0, 5).flatmap(lambda k: good if k < 3 else TRICKY_SCALARS if k < 5
                                     else hostile_cells)


@st.composite
def unit_listings(draw):
    """Planned-unit listings as the envelope gives them (one heading, every row keyed alike)
    or ragged; columns clean, odd, or one value all down; duplicate rows (identical or not)."""
    heading = list(draw(st.sampled_from([UNIT_HEADING, protocol.PLANNED_UNITS_HEADING])))
    if draw(st.integers(0, 3)) == 0:
        heading = draw(st.permutations(heading))
    n = draw(st.integers(1, 10))
    clean_listing = draw(st.integers(0, 2)) == 0  # no odd value at all (the usual response)
    columns = []
    for column in heading:
        mode = draw(st.integers(0, 3))
        clean = clean_listing or mode == 1
        if mode == 0:  # the same value all down the column
            value = draw(_unit_cell(column, clean))
            columns.append([value] * n)
        else:
            columns.append([draw(_unit_cell(column, clean)) for _ in range(n)])
    rows = [dict(zip(heading, values)) for values in zip(*columns)]
    for _ in range(draw(st.integers(0, 4))):  # duplicates: identical, or differing somewhere
        copy = dict(draw(st.sampled_from(rows)))
        if draw(st.booleans()):
            column = draw(st.sampled_from(heading))
            copy[column] = draw(_unit_cell(column, clean_listing))
        rows.insert(draw(st.integers(0, len(rows))), copy)
    if draw(st.integers(0, 3)) == 0:  # ragged: a row without a column, or with one more
        row = draw(st.sampled_from(rows))
        if draw(st.booleans()):
            row.pop(draw(st.sampled_from(sorted(row))), None)
        else:
            row[draw(st.sampled_from(["VEGJOB_X", "STATIONS_SPANLGTH", "VEGUNIT_FRSTR_USER"]))] = \
                draw(_unit_cell("X", clean_listing))
    return rows


def _normalise_outcome(fn, rows):
    try:
        return fn(rows)
    except Exception as exc:  # noqa: BLE001 - both must fail alike
        return type(exc), str(exc)


def _unit_shape(unit):
    return (type(unit), [(k, type(v), v) for k, v in unit.__dict__.items()],
            unit.__pydantic_fields_set__, unit.__pydantic_extra__, unit.__pydantic_private__)


def assert_same_normalisation(rows):
    fast = _normalise_outcome(normalise_units, rows)
    reference = _normalise_outcome(units_module._normalise_units_reference, rows)
    if not isinstance(reference[0], dict):  # an exception
        assert fast == reference
        return
    (grouped, issues), (want_grouped, want_issues) = fast, reference
    assert list(grouped) == list(want_grouped)
    for extension, units in grouped.items():
        assert [_unit_shape(u) for u in units] == [_unit_shape(u) for u in want_grouped[extension]]
    assert issues == want_issues


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(unit_listings())
@example([{"SSUNITS_OBJECTID": 1, "VEGUNIT_AUDIT_PASS": True},
          {"SSUNITS_OBJECTID": 1, "VEGUNIT_AUDIT_PASS": 1}])
@example([{"SSUNITS_OBJECTID": 1, "JOBVEGETATIONUNITS_ACRES": v} for v in (1, True, 1.0, "1")])
@example([{"SSUNITS_OBJECTID": 2, "VEGUNIT_ASSLAT": v} for v in (-0.0, 0.0, 0, float("inf"))])
@example([{"SSUNITS_OBJECTID": 10 ** 5000}])  # str(unit id) fails, as it always did
@example([{"SSUNITS_OBJECTID": i, "SS_EXT": e} for i, e in ((1, "C_a"), (2, True), (3, None))])
@example([{"SSUNITS_OBJECTID": 1, "VEGUNIT_FORESTER": {"a": 1}},
          {"SSUNITS_OBJECTID": 2, "VEGUNIT_FORESTER": "Ann"}])
def test_fast_normalise_units_equals_the_reference(rows):
    assert_same_normalisation(rows)


def test_fast_normalise_units_equals_the_reference_on_simulator_rows():
    from ws_tracker.simulator.world import World, WorldConfig

    world = World(WorldConfig(seed=11, circuits=40, split_rate=0.3, extra_unit_columns=True))
    heading = world.planned_units_heading()
    wo_column = protocol.CIRCUIT_LIST_HEADING.index("SS_WO")
    work_orders = sorted({r[wo_column] for status in ("ACTIV", "QC", "REWRK", "CLOSE")
                          for r in world.circuit_rows(status)})
    assert work_orders
    total = 0
    for wo in work_orders:
        rows = json.loads(json.dumps([dict(zip(heading, r))
                                      for r in world.planned_unit_rows(wo)]))
        assert_same_normalisation(rows)
        total += len(rows)
    assert total > 1000


def test_fast_normalise_units_day_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(units_module, "_DAYS", {})
    monkeypatch.setattr(units_module, "_DAYS_MAX", 3)
    days = [f"/Date(2026-01-{d:02d})/" for d in range(1, 10)] + ["/Date(2026-02-30)/", True]
    rows = [{"SSUNITS_OBJECTID": i, "VEGUNIT_ASSDDATE": day} for i, day in enumerate(days * 2)]
    assert_same_normalisation(rows)
    assert len(units_module._DAYS) <= 3
