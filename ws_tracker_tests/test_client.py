"""The WorkStudio HTTP client against httpx.MockTransport fakes (no network, no real sleep)."""

from __future__ import annotations

import base64
import json
import logging
import pickle
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import dagster as dg
import httpx
import pytest

from ws_tracker.rules.errors import (
    WorkStudioAuthError,
    WorkStudioBadResponse,
    WorkStudioError,
    WorkStudioHTTPError,
    WorkStudioProtocolError,
    WorkStudioUnavailable,
)
from ws_tracker.workstudio import protocol
from ws_tracker.workstudio.client import WorkStudioClient, parse_retry_after
from ws_tracker.workstudio.resource import WorkStudioResource

BASE = "http://ws.test/api"
USER = "ASPLUNDH\\svc_tracker"
PASSWORD = "S3cr3t-Pa55word!"
NOW = datetime(2026, 2, 12, 18, 0, tzinfo=timezone.utc)
# A heading with every column either view must carry (the client refuses a changed schema).
_HEADING = ["SS_JOBGUID", "SS_WO"] + sorted(
    (set(protocol.CIRCUIT_LIST_REQUIRED) | set(protocol.PLANNED_UNITS_REQUIRED)) - {"SS_JOBGUID", "SS_WO"})
OK_ROW = {c: "" for c in _HEADING} | {"SS_JOBGUID": "{A}", "SS_WO": "2025-1930"}
OK_DATASET = {"Protocol": "DATASET",
              "DataSet": {"Heading": _HEADING, "Data": [[OK_ROW[c] for c in _HEADING]]},
              "SQL": "select ..."}


class Fake:
    """A scripted server: each request gets the next scripted answer (or the last one)."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def ok(payload=OK_DATASET):
    return httpx.Response(200, json=payload)


def make_client(fake, **kw):
    sleeps: list[float] = []
    client = WorkStudioClient(BASE, USER, PASSWORD, sleep=sleeps.append,
                              transport=httpx.MockTransport(fake), clock=lambda: NOW, **kw)
    return client, sleeps


def assert_no_secret(*texts):
    for text in texts:
        assert PASSWORD not in text
        assert base64.b64encode(PASSWORD.encode()).decode() not in text


# --------------------------------------------------------------------------- success paths
def test_circuits_by_status_posts_the_view_request_with_basic_auth():
    fake = Fake(ok())
    client, sleeps = make_client(fake)
    ds = client.circuits_by_status("ACTIV")
    assert ds.rows == [OK_ROW]
    (req,) = fake.requests
    assert req.method == "POST" and str(req.url) == f"{BASE}/DDOProtocol/GETVIEWDATA"
    assert json.loads(req.content) == protocol.circuit_list_request("ACTIV")
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert req.headers["Authorization"] == expected
    assert client.calls == 1 and sleeps == []


def test_planned_units_posts_the_units_request():
    fake = Fake(ok())
    client, _ = make_client(fake)
    client.planned_units("2025-1930")
    body = json.loads(fake.requests[0].content)
    assert body == protocol.planned_units_request("2025-1930")


def test_get_query_body_carries_credentials_and_sql():
    fake = Fake(ok())
    client, _ = make_client(fake)
    client.get_query("SELECT TOP 1 1 AS test")
    (req,) = fake.requests
    assert str(req.url) == f"{BASE}/DDOProtocol/GETQUERY"
    body = json.loads(req.content)
    assert body["Protocol"] == "GETQUERY" and body["SQL"] == "SELECT TOP 1 1 AS test"
    assert body["DBParameters"] == f"USER NAME={USER}\r\nPASSWORD={PASSWORD}\r\n"
    assert req.extensions["timeout"]["read"] == 120.0


def test_view_calls_use_the_read_timeout():
    fake = Fake(ok())
    client, _ = make_client(fake, read_timeout=61.0, connect_timeout=9.0)
    client.circuits_by_status("QC")
    timeout = fake.requests[0].extensions["timeout"]
    assert timeout["read"] == 61.0 and timeout["connect"] == 9.0


def test_get_query_refuses_ctes():
    fake = Fake(ok())
    client, _ = make_client(fake)
    with pytest.raises(ValueError, match="CTE"):
        client.get_query("  with x as (select 1) select * from x")
    assert fake.requests == []


def test_heartbeat():
    fake = Fake(ok({"protocol": "OK"}))
    client, _ = make_client(fake)
    client.heartbeat()
    (req,) = fake.requests
    assert str(req.url) == f"{BASE}/DDOProtocol/HEARTBEAT" and req.content == b""
    assert req.headers["Authorization"].startswith("Basic ")


def test_heartbeat_not_ok():
    client, _ = make_client(Fake(ok({"protocol": "BUSY"})))
    with pytest.raises(WorkStudioBadResponse):
        client.heartbeat()


def test_context_manager_closes():
    fake = Fake(ok())
    with make_client(fake)[0] as client:
        client.circuits_by_status("ACTIV")
    with pytest.raises(RuntimeError):
        client.circuits_by_status("ACTIV")


# --------------------------------------------------------------------------- retries
def test_retry_then_success_with_exponential_backoff(caplog):
    fake = Fake(httpx.Response(503), httpx.Response(502), httpx.ConnectError("refused"),
                httpx.ReadTimeout("slow"), ok())
    client, sleeps = make_client(fake)
    with caplog.at_level(logging.WARNING, logger="ws_tracker.workstudio.client"):
        ds = client.circuits_by_status("ACTIV")
    assert len(ds) == 1
    assert sleeps == [1.0, 2.0, 4.0, 8.0]
    assert client.calls == 5 and len(fake.requests) == 5
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 4
    assert "attempt 1/5" in warnings[0] and "HTTP 503" in warnings[0] and "'ACTIV'" in warnings[0]
    assert "ConnectError" in warnings[2]
    assert_no_secret(*warnings)


def test_backoff_is_capped():
    client, sleeps = make_client(Fake(httpx.Response(500)), max_attempts=7, backoff_base=4.0,
                                 backoff_max=10.0)
    with pytest.raises(WorkStudioUnavailable):
        client.circuits_by_status("ACTIV")
    assert sleeps == [4.0, 8.0, 10.0, 10.0, 10.0, 10.0]


def test_exhausted_raises_unavailable_naming_the_call():
    fake = Fake(httpx.Response(503))
    client, sleeps = make_client(fake)
    with pytest.raises(WorkStudioUnavailable) as info:
        client.planned_units("2025-1930")
    e = info.value
    assert e.attempts == 5 and e.protocol == "GETVIEWDATA"
    assert e.view == protocol.PLANNED_UNITS_VIEW and e.filter_value == "2025-1930"
    assert "HTTP 503" in e.last_cause
    msg = str(e)
    assert protocol.PLANNED_UNITS_VIEW in msg and "'2025-1930'" in msg and "5 attempt" in msg
    assert len(fake.requests) == 5 and client.calls == 5
    assert sleeps == [1.0, 2.0, 4.0, 8.0]  # no sleep after the last attempt


def test_max_attempts_one_means_no_retry():
    client, sleeps = make_client(Fake(httpx.ReadTimeout("slow")), max_attempts=1)
    with pytest.raises(WorkStudioUnavailable) as info:
        client.heartbeat()
    assert info.value.attempts == 1 and "ReadTimeout" in info.value.last_cause and sleeps == []


def test_retry_after_seconds_raises_the_wait():
    fake = Fake(httpx.Response(429, headers={"Retry-After": "7"}), ok())
    client, sleeps = make_client(fake)
    client.circuits_by_status("ACTIV")
    assert sleeps == [7.0]


def test_retry_after_http_date_and_cap():
    soon = format_datetime(NOW + timedelta(seconds=12), usegmt=True)
    late = format_datetime(NOW + timedelta(hours=3), usegmt=True)
    fake = Fake(httpx.Response(503, headers={"Retry-After": soon}),
                httpx.Response(503, headers={"Retry-After": late}),
                httpx.Response(503, headers={"Retry-After": "0"}), ok())
    client, sleeps = make_client(fake)
    client.circuits_by_status("ACTIV")
    # 12 s from the date; 3 h capped at 2 * backoff_max; 0 never undercuts the backoff (4 s)
    assert sleeps == [12.0, 60.0, 4.0]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("5", 5.0), (" 2.5 ", 2.5), ("-3", 0.0), ("", None), (None, None), ("soon", None),
     (format_datetime(NOW - timedelta(seconds=30), usegmt=True), 0.0),
     (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0)],
)
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value, NOW) == expected


# --------------------------------------------------------------------------- no retry
def test_401_is_not_retried_and_blocks_further_calls():
    fake = Fake(httpx.Response(401))
    client, sleeps = make_client(fake)
    with pytest.raises(WorkStudioAuthError) as info:
        client.circuits_by_status("ACTIV")
    assert len(fake.requests) == 1 and sleeps == [] and client.auth_failed
    assert "svc_tracker" in str(info.value) and "GETVIEWDATA" in str(info.value)
    with pytest.raises(WorkStudioAuthError):
        client.heartbeat()
    assert len(fake.requests) == 1  # the failed credentials are not tried again


@pytest.mark.parametrize("status", [400, 403, 404, 405])
def test_other_4xx_not_retried(status):
    fake = Fake(httpx.Response(status, text=f"nope {PASSWORD}"))
    client, sleeps = make_client(fake)
    with pytest.raises(WorkStudioHTTPError) as info:
        client.circuits_by_status("QC")
    assert isinstance(info.value, WorkStudioError)
    assert len(fake.requests) == 1 and sleeps == []
    assert str(status) in str(info.value) and "'QC'" in str(info.value)
    assert_no_secret(str(info.value))


def test_error_envelope_at_200_not_retried():
    fake = Fake(ok({"protocol": "ERROR", "errorMessage": "Access denied"}))
    client, sleeps = make_client(fake)
    with pytest.raises(WorkStudioProtocolError) as info:
        client.circuits_by_status("ACTIV")
    assert info.value.server_message == "Access denied"
    assert info.value.view == protocol.CIRCUIT_LIST_VIEW
    assert len(fake.requests) == 1 and sleeps == []


def test_error_envelope_echoing_the_password_is_redacted():
    fake = Fake(ok({"protocol": "ERROR",
                    "errorMessage": f"Login failed: USER NAME={USER} PASSWORD={PASSWORD}"}))
    client, _ = make_client(fake)
    with pytest.raises(WorkStudioProtocolError) as info:
        client.get_query("SELECT 1")
    assert "***" in info.value.server_message
    assert_no_secret(str(info.value), repr(info.value), str(info.value.__context__))


@pytest.mark.parametrize(
    ("response", "needle"),
    [
        (httpx.Response(200, content=b"null"), "null body"),
        (httpx.Response(200, content=b""), "empty body"),
        (httpx.Response(200, content=b"<html>oops</html>",
                        headers={"Content-Type": "text/html"}), "not JSON"),
        (ok({"Protocol": "DATASET", "DataSet": {"Heading": ["A", "B"], "Data": [[1]]}}),
         "row 1 of 1"),
    ],
)
def test_bad_responses_not_retried(response, needle):
    fake = Fake(response)
    client, sleeps = make_client(fake)
    with pytest.raises(WorkStudioBadResponse) as info:
        client.circuits_by_status("ACTIV")
    assert needle in str(info.value) and len(fake.requests) == 1 and sleeps == []


def test_unsupported_scheme_is_a_configuration_error():
    client = WorkStudioClient("ftp://ws.test", USER, PASSWORD, sleep=lambda s: None)
    with pytest.raises(WorkStudioError) as info:
        client.heartbeat()
    assert not isinstance(info.value, WorkStudioUnavailable)


# --------------------------------------------------------------------------- secrets
def test_password_never_leaks(caplog):
    """Every message, log line and repr a run of failures produces is free of the password."""
    texts = []
    scripts = [
        Fake(httpx.Response(503, text=PASSWORD)),
        Fake(httpx.ConnectError(f"refused {PASSWORD}")),
        Fake(httpx.Response(401, text=PASSWORD)),
        Fake(httpx.Response(400, text=PASSWORD)),
        Fake(ok({"protocol": "ERROR", "errorMessage": PASSWORD})),
        Fake(httpx.Response(200, content=b"not json")),
        Fake(ok(None)),
    ]
    with caplog.at_level(logging.DEBUG):
        for fake in scripts:
            client, _ = make_client(fake)
            texts += [repr(client), str(client)]
            for call in (client.heartbeat, lambda: client.get_query("SELECT 1"),
                         lambda: client.circuits_by_status("ACTIV")):
                try:
                    call()
                except WorkStudioError as exc:
                    texts += [str(exc), repr(exc), repr(pickle.loads(pickle.dumps(exc)))]
                    cause = exc.__cause__ or exc.__context__
                    if cause is not None:
                        texts.append(str(cause))
    texts += [r.getMessage() for r in caplog.records]
    assert len(texts) > 30
    assert_no_secret(*texts)
    assert any("***" in t for t in texts)  # the redaction actually ran


def test_repr_and_vars_hide_the_password():
    client, _ = make_client(Fake(ok()))
    assert "svc_tracker" in repr(client)
    assert_no_secret(repr(client), repr(vars(client)))


# --------------------------------------------------------------------------- resource
def test_resource_builds_a_configured_client(monkeypatch):
    monkeypatch.setenv("TEST_WS_URL", BASE)
    monkeypatch.setenv("TEST_WS_USER", USER)
    monkeypatch.setenv("TEST_WS_PASSWORD", PASSWORD)
    resource = WorkStudioResource(base_url=dg.EnvVar("TEST_WS_URL"),
                                  username=dg.EnvVar("TEST_WS_USER"),
                                  password=dg.EnvVar("TEST_WS_PASSWORD"),
                                  max_attempts=3, backoff_max=5.0)
    with dg.build_resources({"workstudio": resource}) as resources:
        ws = resources.workstudio
        assert_no_secret(repr(ws), str(ws))
        with ws.get_client() as client:
            assert client.base_url == BASE and client.username == USER
            assert client.max_attempts == 3 and client.backoff_max == 5.0
            assert_no_secret(repr(client))


def test_resource_repr_hides_password():
    resource = WorkStudioResource(base_url=BASE, username=USER, password=PASSWORD)
    assert "svc_tracker" in repr(resource)
    assert_no_secret(repr(resource), str(resource))


def test_rate_limiter_spaces_request_starts_across_threads():
    import threading

    from ws_tracker.workstudio.client import RateLimiter

    now = [100.0]
    slept: list[float] = []
    lock = threading.Lock()

    def fake_sleep(s):
        with lock:
            slept.append(round(s, 6))

    limiter = RateLimiter(4.0, sleep=fake_sleep, monotonic=lambda: now[0])
    threads = [threading.Thread(target=limiter.acquire) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Five starts at the same instant: the first goes at once, the rest 0.25 s apart.
    assert sorted(slept) == [0.25, 0.5, 0.75, 1.0]
    assert RateLimiter(None).acquire() == 0.0
    with pytest.raises(ValueError):
        RateLimiter(0)


@pytest.mark.parametrize("call, view, required, full", [
    (lambda c: c.circuits_by_status("ACTIV"), protocol.CIRCUIT_LIST_VIEW, protocol.CIRCUIT_LIST_REQUIRED,
     protocol.CIRCUIT_LIST_HEADING),
    (lambda c: c.planned_units("2025-1930"), protocol.PLANNED_UNITS_VIEW, protocol.PLANNED_UNITS_REQUIRED,
     protocol.PLANNED_UNITS_HEADING),
])
def test_a_view_missing_a_column_is_a_schema_error_naming_it(call, view, required, full):
    from ws_tracker.rules.errors import WorkStudioSchemaError

    dropped = required[3]
    heading = [c for c in full if c != dropped] + [dropped + "_V2"]  # renamed
    payload = {"Protocol": "DATASET", "DataSet": {"Heading": heading, "Data": [["x"] * len(heading)]}}
    fake = Fake(ok(payload))
    client, _ = make_client(fake)
    with client:
        with pytest.raises(WorkStudioSchemaError) as err:
            call(client)
    msg = str(err.value)
    assert f"missing required columns ['{dropped}']" in msg and view in msg
    assert "schema changed" in msg and f"{dropped}_V2" in msg
    assert len(fake.requests) == 1  # never retried: asking again gives the same schema
    # An empty answer with no heading carries no rows to misread.
    empty, _ = make_client(Fake(ok({"Protocol": "DATASET", "DataSet": {"Heading": [], "Data": []}})))
    with empty:
        assert call(empty).rows == []
