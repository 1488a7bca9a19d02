"""Decoders of the DDOProtocol value quirks (spec/workstudio-api.md, "Dates and values")."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from ws_tracker.rules.decoding import (
    DecodeError,
    clean_text,
    decode_bool,
    decode_date,
    decode_int,
    decode_number,
    decode_timestamp,
)

UTC = timezone.utc


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # the spec's own examples
        ("/Date(2026-01-01)/", datetime(2026, 1, 1, tzinfo=UTC)),
        ("/Date(2025-12-05T20:12:44.142Z)/", datetime(2025, 12, 5, 20, 12, 44, 142000, tzinfo=UTC)),
        ("/Date(1733340000000)/", datetime(2024, 12, 4, 19, 20, tzinfo=UTC)),
        (46065.75, datetime(2026, 2, 12, 18, 0, tzinfo=UTC)),
        # epoch ms with an offset suffix: the ms are UTC already, the offset is display only
        ("/Date(1733340000000+0000)/", datetime(2024, 12, 4, 19, 20, tzinfo=UTC)),
        ("/Date(1733340000000-0500)/", datetime(2024, 12, 4, 19, 20, tzinfo=UTC)),
        ("/Date(-86400000)/", datetime(1969, 12, 31, tzinfo=UTC)),
        # OLE as a string, whole days, and with surrounding spaces
        ("46065.75", datetime(2026, 2, 12, 18, 0, tzinfo=UTC)),
        (46065, datetime(2026, 2, 12, tzinfo=UTC)),
        (" 46065.5 ", datetime(2026, 2, 12, 12, 0, tzinfo=UTC)),
        # plain ISO strings: naive = UTC, offsets converted
        ("2025-12-05T20:12:44Z", datetime(2025, 12, 5, 20, 12, 44, tzinfo=UTC)),
        ("2025-12-05 20:12:44", datetime(2025, 12, 5, 20, 12, 44, tzinfo=UTC)),
        ("2025-12-05T15:12:44-05:00", datetime(2025, 12, 5, 20, 12, 44, tzinfo=UTC)),
        ("2025-12-05T20:12:44.1420000Z", datetime(2025, 12, 5, 20, 12, 44, 142000, tzinfo=UTC)),
        ("2026-01-01", datetime(2026, 1, 1, tzinfo=UTC)),
        # objects
        (datetime(2026, 1, 1, 5), datetime(2026, 1, 1, 5, tzinfo=UTC)),
        (date(2026, 1, 1), datetime(2026, 1, 1, tzinfo=UTC)),
    ],
)
def test_decode_timestamp(value, expected):
    got = decode_timestamp(value)
    assert got == expected
    assert got.tzinfo is not None and got.utcoffset() == timedelta(0)


def test_ole_fraction_is_rounded_to_the_millisecond():
    # Float days carry sub-millisecond noise that would make equal instants compare unequal.
    assert decode_timestamp(45000.123456789) == datetime(2023, 3, 15, 2, 57, 46, 667000, tzinfo=UTC)
    assert decode_timestamp(46065 + 1 / 3) == datetime(2026, 2, 12, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        None, "", "   ", "/Date()/",
        "/Date(1899-12-30)/",  # the spec's NULL
        "/Date(1899-12-31T23:59:59Z)/",
        "/Date(0001-01-01)/",
        "/Date(-2209161600000)/",  # 1899-12-30 as epoch ms
        0, 0.0, "0",  # OLE day 0 = 1899-12-30
        "1850-06-01",
        date(1899, 1, 1),
    ],
)
def test_decode_timestamp_nulls(value):
    assert decode_timestamp(value) is None
    assert decode_date(value) is None


@pytest.mark.parametrize(
    "value",
    ["abc", "/Date(xyz)/", "/Date(2026-13-01)/", "2026-02-30", float("nan"), float("inf"),
     "1e400", True, [2026], {"a": 1}, 1e10, "2026/01/01"],
)
def test_decode_timestamp_rejects(value):
    with pytest.raises(DecodeError) as info:
        decode_timestamp(value)
    assert repr(value)[:20] in str(info.value)


def test_decode_date_uses_utc_date_of_a_timestamp():
    # 03:00 UTC is still the previous evening in New York: the decoder keeps the UTC date.
    assert decode_date("/Date(2025-12-05T03:00:00Z)/") == date(2025, 12, 5)
    assert decode_date("/Date(2026-01-01)/") == date(2026, 1, 1)
    assert decode_date(46065.75) == date(2026, 2, 12)
    assert decode_date("/Date(1733340000000)/") == date(2024, 12, 4)
    assert decode_date(date(2026, 3, 4)) == date(2026, 3, 4)
    with pytest.raises(DecodeError):
        decode_date("not a date")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1523.7", 1523.7), (1523.7, 1523.7), (" 12 ", 12.0), (12, 12.0), ("-3", -3.0),
     (".5", 0.5), ("1e3", 1000.0), ("", None), ("  ", None), (None, None), ("-0", 0.0)],
)
def test_decode_number(value, expected):
    got = decode_number(value)
    assert got == expected
    if expected is not None:
        assert type(got) is float


def test_decode_number_normalises_negative_zero():
    assert str(decode_number(-0.0)) == "0.0"


@pytest.mark.parametrize("value", ["abc", "1,523.7", "1_000", "nan", "inf", float("nan"), True,
                                   [1], "12 ft"])
def test_decode_number_rejects(value):
    with pytest.raises(DecodeError) as info:
        decode_number(value)
    assert repr(value)[:10] in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("42", 42), (42, 42), ("42.0", 42), (42.0, 42), (" 7 ", 7), ("", None), (None, None),
     ("123456789012345678901", 123456789012345678901)],
)
def test_decode_int(value, expected):
    got = decode_int(value)
    assert got == expected
    if expected is not None:
        assert type(got) is int


@pytest.mark.parametrize("value", ["4.5", 4.5, "x", False])
def test_decode_int_rejects(value):
    with pytest.raises(DecodeError):
        decode_int(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("Derek Cinicola ", "Derek Cinicola"), ("  ", None), ("", None), (None, None),
     ("ASPLUNDH\\jdoe", "ASPLUNDH\\jdoe"), (12, "12"), (1.5, "1.5")],
)
def test_clean_text(value, expected):
    assert clean_text(value) == expected


@pytest.mark.parametrize("value", [{"type": "LineString"}, [1], True])
def test_clean_text_rejects_non_scalars(value):
    with pytest.raises(DecodeError):
        clean_text(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("TRUE", True), ("false", False), ("1", True), ("0", False), (True, True),
     (False, False), (1, True), (0, False), ("", None), (None, None), (" yes ", True)],
)
def test_decode_bool(value, expected):
    assert decode_bool(value) is expected


@pytest.mark.parametrize("value", ["maybe", 2, "2", 1.0])
def test_decode_bool_rejects(value):
    with pytest.raises(DecodeError):
        decode_bool(value)
