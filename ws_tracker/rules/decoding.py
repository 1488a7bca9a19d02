"""Decoders for the value quirks of the DDOProtocol (see spec/workstudio-api.md, "quirks").

Pure functions, no I/O. Every decoder maps "" and None to None (WorkStudio writes NULL as an
empty string) and raises :class:`DecodeError` for a value it cannot read, so callers decide
whether that is a 0-with-issue, a None-with-issue or a rejected row.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

__all__ = [
    "DecodeError",
    "clean_text",
    "decode_bool",
    "decode_date",
    "decode_int",
    "decode_number",
    "decode_timestamp",
    "replace_unstorable",
]

UTC = timezone.utc
OLE_EPOCH = datetime(1899, 12, 30, tzinfo=UTC)
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Years before this are WorkStudio's NULL (``/Date(1899-12-30)/``, OLE 0, ...).
MIN_YEAR = 1900

_WRAPPED = re.compile(r"^/Date\((.*)\)/$", re.DOTALL)
# .NET JSON: milliseconds since the Unix epoch, optionally followed by a +hhmm offset. The
# offset only says how to *display* the instant; the milliseconds are already UTC.
_EPOCH_MS = re.compile(r"^(-?\d+)(?:[+-]\d{4})?$")
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_INTEGER = re.compile(r"^[+-]?\d+$")
# Characters PostgreSQL text cannot hold: NUL, and lone UTF-16 surrogates (JSON can carry
# "\u0000" and "\ud800"; neither encodes to UTF-8).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f"})


class DecodeError(ValueError):
    """A value that cannot be decoded; the message carries the value's repr."""


def _fail(kind: str, value: Any, why: str = "") -> DecodeError:
    try:
        r = repr(value)
    except ValueError:  # an int with more digits than repr() converts (int_max_str_digits)
        r = f"<int of {value.bit_length()} bits>"
    if len(r) > 200:
        r = r[:197] + "..."
    return DecodeError(f"cannot decode {kind} from {r}" + (f": {why}" if why else ""))


def _float(kind: str, value: Any) -> float:
    try:
        return float(value)
    except OverflowError as exc:  # an int beyond the float range
        raise _fail(kind, value, "out of range") from exc


def _int(kind: str, text: str, original: Any) -> int:
    try:
        return int(text)
    except ValueError as exc:  # more digits than int() converts (sys.get_int_max_str_digits)
        raise _fail(kind, original, "too many digits") from exc


def _null_if_ancient(dt: datetime) -> datetime | None:
    return None if dt.year < MIN_YEAR else dt


def _from_ole(days: float, original: Any) -> datetime | None:
    if not math.isfinite(days):
        raise _fail("timestamp", original, "not a finite OLE Automation date")
    try:
        # Whole days and the fraction separately: a float of milliseconds would drift.
        dt = OLE_EPOCH + timedelta(days=days)
        # OLE dates carry no sub-millisecond meaning; round away float noise (x.75 -> 18:00:00).
        micro = dt.microsecond
        rounded = round(micro / 1000) * 1000
        if rounded != micro:  # may round up past 9999-12-31 23:59:59.999
            dt = dt.replace(microsecond=0) + timedelta(microseconds=rounded)
    except OverflowError as exc:
        raise _fail("timestamp", original, "OLE Automation date out of range") from exc
    return _null_if_ancient(dt)


def _from_iso(text: str, original: Any) -> datetime | None:
    try:
        dt = datetime.fromisoformat(text)
        # A timestamp without an offset is taken as UTC: the service writes UTC (the "Z"
        # forms) and date-only values, which become midnight UTC.
        dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise _fail("timestamp", original) from exc
    return _null_if_ancient(dt)


def decode_timestamp(value: Any) -> datetime | None:
    """Decode any WorkStudio date/time form into an aware UTC datetime, or None for NULL.

    Accepts ``/Date(2026-01-01)/``, ``/Date(2025-12-05T20:12:44.142Z)/``,
    ``/Date(1733340000000)/`` (epoch ms, may be negative or carry a ``+0000`` suffix),
    OLE Automation days as a number or numeric string (46065.75 = 2026-02-12 18:00 UTC), plain
    ISO-8601 strings, and datetime/date objects. Naive values are taken as UTC. Any year before
    1900 is WorkStudio's NULL and gives None, as do "" and None.
    """
    if value is None:
        return None
    if isinstance(value, bool):  # bool is an int: never a date
        raise _fail("timestamp", value)
    if isinstance(value, datetime):
        try:
            dt = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        except OverflowError as exc:  # e.g. 0001-01-01 00:00+05:00 is before datetime.min UTC
            raise _fail("timestamp", value, "out of range in UTC") from exc
        return _null_if_ancient(dt)
    if isinstance(value, date):
        return _null_if_ancient(datetime(value.year, value.month, value.day, tzinfo=UTC))
    if isinstance(value, (int, float)):
        return _from_ole(_float("timestamp", value), value)
    if not isinstance(value, str):
        raise _fail("timestamp", value, f"unexpected type {type(value).__name__}")

    text = value.strip()
    if not text:
        return None
    wrapped = _WRAPPED.match(text)
    if wrapped:
        inner = wrapped.group(1).strip()
        if not inner:
            return None
        ms = _EPOCH_MS.match(inner)
        if ms:
            try:
                dt = _UNIX_EPOCH + timedelta(milliseconds=_int("timestamp", ms.group(1), value))
            except OverflowError as exc:
                raise _fail("timestamp", value, "epoch milliseconds out of range") from exc
            return _null_if_ancient(dt)
        return _from_iso(inner, value)
    if _NUMBER.match(text):
        return _from_ole(float(text), value)
    return _from_iso(text, value)


def decode_date(value: Any) -> date | None:
    """Decode a date; same inputs as :func:`decode_timestamp`.

    A date-only value (``/Date(2026-01-01)/``, ``2026-01-01``) gives that date. A timestamp
    gives its **UTC** calendar date (not the America/New_York one): callers that need a
    local day should use :func:`decode_timestamp` and convert.
    """
    if isinstance(value, date) and not isinstance(value, datetime):
        return None if value.year < MIN_YEAR else value
    dt = decode_timestamp(value)
    return None if dt is None else dt.date()


def decode_number(value: Any) -> float | None:
    """Decode a number sent as a number or a string (``"1523.7"``, ``" 12 "``); ""/None -> None.

    Rejects booleans, NaN/infinity and anything that is not a plain decimal (no thousands
    separators, no ``"1_000"``): an odd value must surface as an issue, not be guessed.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise _fail("number", value)
    if isinstance(value, (int, float)):
        number = _float("number", value)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if not _NUMBER.match(text):
            raise _fail("number", value)
        number = float(text)
    else:
        raise _fail("number", value, f"unexpected type {type(value).__name__}")
    if not math.isfinite(number):
        raise _fail("number", value, "not finite")
    return number + 0.0  # -0.0 -> 0.0, so equal values serialise (and hash) identically


def decode_int(value: Any) -> int | None:
    """Decode an integer (``"42"``, ``42``, ``"42.0"``, ``42.0``); a fractional value raises."""
    if isinstance(value, bool):
        raise _fail("integer", value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INTEGER.match(value.strip()):
        return _int("integer", value.strip(), value)  # exact, even beyond float precision
    number = decode_number(value)
    if number is None:
        return None
    if not number.is_integer():
        raise _fail("integer", value, "has a fractional part")
    return int(number)


def replace_unstorable(text: str) -> str:
    """``text`` with each NUL and lone surrogate (which PostgreSQL cannot store) as U+FFFD."""
    return _UNSTORABLE.sub("\ufffd", text)


def clean_text(value: Any) -> str | None:
    """Trim a text value; "" (WorkStudio's NULL) and None give None. Numbers become text.

    Everything else is kept verbatim (quotes, backslashes, emoji, any length), except the
    characters PostgreSQL text cannot store: NUL (``\\x00``) and lone surrogates each become
    U+FFFD (the Unicode replacement character), so a stray NUL cannot fail a database write.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and "\x00" not in text):  # ASCII without NUL: nothing to replace
            text = replace_unstorable(text)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            text = str(value)
        except ValueError as exc:  # an int with more digits than str() converts
            raise _fail("text", value, "too many digits") from exc
    else:
        # Objects (geometry), lists and booleans are not text; guessing would hide a mapping error.
        raise _fail("text", value, f"unexpected type {type(value).__name__}")
    return text or None


def decode_bool(value: Any) -> bool | None:
    """Decode ``true``/``false``/``1``/``0``/``yes``/``no`` (any case), bools and 0/1 ints."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().casefold()
        if not text:
            return None
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise _fail("boolean", value)


def to_decimal(value: Any, places: int | None = None) -> Decimal:
    """Decimal of a NUMERIC/float/int value (None -> 0), quantized half-up when ``places``:
    the exact value a NUMERIC(p, places) column stores, so comparisons with it hold."""
    d = value if isinstance(value, Decimal) else Decimal(str(value or 0))
    return d if places is None else d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
