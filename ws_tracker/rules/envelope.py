"""DDOProtocol envelopes: error detection and positional rows -> dicts.

Pure: takes the already-decoded JSON payload. See spec/workstudio-api.md ("GETVIEWDATA",
"Errors").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from ws_tracker.rules.errors import RowIssue, WorkStudioBadResponse, WorkStudioProtocolError

__all__ = ["DataSet", "parse_envelope", "parse_heartbeat", "require_columns"]


@dataclass(frozen=True)
class DataSet:
    """A successful GETVIEWDATA/GETQUERY answer: the heading and one dict per row."""

    heading: list[str]
    rows: list[dict[str, Any]]
    sql: str | None = None
    # Rows that could not be read (not a list, or not as many values as the heading): left out
    # of ``rows``, each an "error" issue naming its 1-based position in the response.
    rejected: list[RowIssue] = field(default_factory=list)
    rejected_raw: dict[int, Any] = field(default_factory=dict)  # row number -> value received
    # The 1-based position in the response of each entry of ``rows`` (None: 1..len(rows)).
    row_numbers: list[int] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def position(self, index: int) -> int:
        """The response row number of ``rows[index - 1]`` (``index`` is 1-based)."""
        return self.row_numbers[index - 1] if self.row_numbers is not None else index

    def renumber(self, issues: Iterable[RowIssue]) -> list[RowIssue]:
        """Issues numbered by position in ``rows`` -> numbered by position in the response."""
        if self.row_numbers is None:
            return list(issues)
        return [replace(i, row_number=self.position(i.row_number)) if i.row_number else i
                for i in issues]

    def raw_rows(self) -> dict[int, Any]:
        """Response row number -> the row as received (dict, or the raw value if rejected)."""
        out: dict[int, Any] = {self.position(i): row for i, row in enumerate(self.rows, start=1)}
        out.update(self.rejected_raw)
        return out


def _get_ci(mapping: dict, name: str) -> tuple[bool, Any]:
    """Look a key up case-insensitively: the service mixes ``Protocol`` and ``protocol``."""
    if name in mapping:
        return True, mapping[name]
    lowered = name.lower()
    for key, value in mapping.items():
        if isinstance(key, str) and key.lower() == lowered:
            return True, value
    return False, None


def _raise_if_error(payload: Any, *, protocol: str, view: str | None) -> dict:
    """Shared checks: null body, non-object, ERROR envelope. Returns the payload dict."""
    if payload is None:
        raise WorkStudioBadResponse(protocol, view, "null body")
    if not isinstance(payload, dict):
        raise WorkStudioBadResponse(
            protocol, view, f"expected a JSON object, got {type(payload).__name__}"
        )
    _, proto_value = _get_ci(payload, "protocol")
    has_message, message = _get_ci(payload, "errorMessage")
    is_error = isinstance(proto_value, str) and proto_value.strip().upper() == "ERROR"
    # Any errorMessage key is a failure, whatever the Protocol and the HTTP status say
    # (application errors come back at HTTP 200): better a loud failure than bad data.
    if is_error or has_message:
        raise WorkStudioProtocolError(protocol, view, None if message is None else str(message))
    return payload


def parse_envelope(payload: Any, *, protocol: str, view: str | None = None) -> DataSet:
    """Turn a GETVIEWDATA/GETQUERY payload into a :class:`DataSet`, or raise.

    Raises WorkStudioProtocolError for an ERROR envelope and WorkStudioBadResponse for a null
    body, a Protocol other than DATASET, a missing DataSet/Heading/Data, a duplicate heading
    name, or a row whose length differs from the heading. A ragged row fails the **whole**
    envelope: positional rows cannot be realigned, so one bad row means the columns of the
    others cannot be trusted either.
    """
    body = _raise_if_error(payload, protocol=protocol, view=view)
    _, proto_value = _get_ci(body, "protocol")
    if not (isinstance(proto_value, str) and proto_value.strip().upper() == "DATASET"):
        raise WorkStudioBadResponse(
            protocol, view, f"expected Protocol 'DATASET', got {proto_value!r:.80}"
        )
    found, dataset = _get_ci(body, "DataSet")
    if not found or not isinstance(dataset, dict):
        raise WorkStudioBadResponse(protocol, view, "missing DataSet object")
    found, heading = _get_ci(dataset, "Heading")
    if not found or not isinstance(heading, list):
        raise WorkStudioBadResponse(protocol, view, "missing DataSet.Heading list")
    if not all(isinstance(h, str) for h in heading):
        raise WorkStudioBadResponse(protocol, view, "DataSet.Heading holds a non-string name")
    if len(set(heading)) != len(heading):
        # Zipping would silently keep only the last of two same-named columns.
        dupes = sorted({h for h in heading if heading.count(h) > 1})
        raise WorkStudioBadResponse(protocol, view, f"duplicate heading names {dupes}")
    found, data = _get_ci(dataset, "Data")
    if not found or not isinstance(data, list):
        raise WorkStudioBadResponse(protocol, view, "missing DataSet.Data list")

    width = len(heading)
    rows: list[dict[str, Any]] = []
    numbers: list[int] = []
    rejected: list[RowIssue] = []
    rejected_raw: dict[int, Any] = {}
    for index, row in enumerate(data):
        if not isinstance(row, list):
            problem = f"row {index + 1} of {len(data)} is a {type(row).__name__}, not a list"
        elif len(row) != width:
            problem = (f"row {index + 1} of {len(data)} has {len(row)} values for {width} "
                       "heading columns")
        else:
            rows.append(dict(zip(heading, row)))
            numbers.append(index + 1)
            continue
        # One bad row is quarantined; a response none of whose rows can be read is not a
        # response at all (the heading and the data disagree): that fails the call.
        rejected.append(RowIssue(index + 1, None, row, f"{problem}; row not read", "error", None,
                                 "ragged_row"))
        rejected_raw[index + 1] = row
    if rejected and not rows:
        raise WorkStudioBadResponse(protocol, view, rejected[0].reason.removesuffix("; row not read")
                                    + (f" (and {len(rejected) - 1} more rows like it)"
                                       if len(rejected) > 1 else ""))
    _, sql = _get_ci(body, "SQL")
    return DataSet(heading=list(heading), rows=rows, sql=sql if isinstance(sql, str) else None,
                   rejected=rejected, rejected_raw=rejected_raw,
                   row_numbers=numbers if rejected else None)


def parse_heartbeat(payload: Any, *, protocol: str = "HEARTBEAT") -> None:
    """Accept ``{"protocol": "OK"}`` (any key case); raise for anything else."""
    body = _raise_if_error(payload, protocol=protocol, view=None)
    _, proto_value = _get_ci(body, "protocol")
    if not (isinstance(proto_value, str) and proto_value.strip().upper() == "OK"):
        raise WorkStudioBadResponse(
            protocol, None, f"expected protocol 'OK', got {proto_value!r:.80}"
        )


def require_columns(
    dataset: DataSet,
    required: Iterable[str],
    *,
    view: str | None,
    protocol: str = "GETVIEWDATA",
) -> None:
    """Raise WorkStudioBadResponse naming every required column the heading lacks."""
    present = set(dataset.heading)
    missing = [c for c in required if c not in present]
    if missing:
        raise WorkStudioBadResponse(protocol, view, f"missing required columns {missing}")
