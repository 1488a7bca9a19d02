"""The WorkStudio simulator's HTTP server: the DDOProtocol over a :class:`World`.

``POST /DDOProtocol/{PROTOCOL}`` with HTTP Basic auth, answering the way the real service
does (spec/workstudio-api.md): application errors are HTTP 200 with
``{"protocol": "ERROR", "errorMessage": ...}``, bad credentials are HTTP 401.

Loopback test helpers, no auth: ``GET /_sim/stats``, ``POST /_sim/stats/reset``,
``GET|POST /_sim/clock``, ``POST /_sim/advance``, and fault injection (faults.py):
``GET /_sim/faults`` (rules, matching-call counters, what was injected), ``POST /_sim/faults``
(replace the plan with a JSON list of rules or ``{"seed": n, "rules": [...]}``),
``DELETE /_sim/faults`` or ``POST /_sim/faults/clear``. Faults and ``latency_ms`` apply to
``/DDOProtocol/`` calls only, never to these endpoints.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import socket
import struct
import threading
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ws_tracker.workstudio import protocol

from . import faults as fl
from .faults import FaultPlan, FaultSpecError
from .world import World, WorldConfig

DEFAULT_ACCOUNTS = {"ASPLUNDH\\wstracker": "wstracker"}

_CIRCUIT_SQL = (
    "select J.SS_JOBGUID, J.SS_WO, J.SS_EXT, J.SS_TITLE, R.WSREQ_STATUS, J.SS_JOBTYPE, "
    "V.VEGJOB_CYCLETYPE, V.REGION, V.VEGJOB_LENGTH, V.VEGJOB_LENGTHCOMP, V.VEGJOB_PRCENT, ... "
    "from SS_JOBS J join WSREQ R on R.SS_JOBGUID = J.SS_JOBGUID "
    "join VEGJOB V on V.SS_JOBGUID = J.SS_JOBGUID where R.WSREQ_STATUS = '{value}'"
)
_UNITS_SQL = (
    "select V.VEGJOB_REGION, V.VEGJOB_CYCLETYPE, J.SS_WO, J.SS_EXT, S.STATIONS_STATNAME, "
    "U.VEGUNIT_UNIT, U.VEGUNIT_ASSDDATE, U.VEGUNIT_PERMSTAT, ... "
    "from SS_JOBS J join VEGJOB V on V.SS_JOBGUID = J.SS_JOBGUID "
    "join STATIONS S on S.SS_JOBGUID = J.SS_JOBGUID join VEGUNIT U on U.SS_JOBGUID = J.SS_JOBGUID "
    "join UNITS T on T.UNITS_UNIT = U.VEGUNIT_UNIT "
    "where J.SS_WO = '{value}' and T.UNITS_CATEGORY in ('VLG','VAR','VCT') "
    "order by U.VEGUNIT_ASSDDATE"
)
_TEST_QUERY = re.compile(r"^\s*select\s+top\s+1\s+1\s+as\s+test\s*;?\s*$", re.IGNORECASE)
_CTE = re.compile(r"^\s*with\s", re.IGNORECASE)


_REASONS = {401: "Unauthorized", 429: "Too Many Requests", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable"}


def _error(message: str) -> dict:
    return {"protocol": "ERROR", "errorMessage": message}


def _dataset(heading: list[str], data: list[list], sql: str, group: dict) -> dict:
    return {"Protocol": "DATASET", "DataSet": {"Heading": heading, "Data": data},
            "SQL": sql, "ColumnGroup": group}


def _column_group(name: str, heading: list[str]) -> dict:
    return {"Name": name, "ClassName": "TColumnGroup",
            "Columns": [{"FieldName": h, "Caption": h, "Visible": True} for h in heading]}


def _parse_accounts(accounts) -> dict[str, tuple[str, list[str] | None]]:
    out = {}
    for user, spec in (accounts or {}).items():
        if isinstance(spec, dict):
            regions = spec.get("regions")
            out[user] = (str(spec["password"]), list(regions) if regions is not None else None)
        else:
            out[user] = (str(spec), None)
    return out


def _parse_iso(value: str) -> datetime:
    dt = datetime.fromisoformat(value)
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "WorkStudioSimulator/1"
    # headers and body go out in two writes: without TCP_NODELAY the body waits for the
    # client's delayed ACK (~40 ms per call on a kept-alive connection)
    disable_nagle_algorithm = True
    sim: SimulatorServer  # set on the per-server subclass

    def log_message(self, format, *args):  # noqa: A002 - quiet; never log credentials
        pass

    # ------------------------------------------------------------------ plumbing
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, payload: Any, content_type="application/json; charset=utf-8",
              extra_headers: dict | None = None) -> None:
        if isinstance(payload, (bytes, bytearray)):
            data = bytes(payload)
        elif isinstance(payload, str):
            data = payload.encode()
        else:
            data = json.dumps(payload, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _json(self, payload: Any) -> None:
        self._send(200, payload)

    def _credentials(self) -> tuple[str, str] | None:
        header = self.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic" or not token:
            return None
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, sep, password = decoded.partition(":")
        return (user, password) if sep else None

    # ------------------------------------------------------------------ routes
    def do_GET(self):  # noqa: N802
        path = self.path.split("?", 1)[0]
        if path == "/_sim/stats":
            return self._json(self.sim.stats())
        if path == "/_sim/clock":
            return self._json({"now": self.sim.world.now.isoformat()})
        if path == "/_sim/faults":
            return self._json(self.sim.faults.to_dict())
        self._send(404, "Not Found", "text/plain; charset=utf-8")

    def do_DELETE(self):  # noqa: N802
        path = self.path.split("?", 1)[0]
        self._body()
        if path == "/_sim/faults":
            return self._json(self.sim.clear_faults().to_dict())
        self._send(404, {"error": "unknown control endpoint"})

    def do_POST(self):  # noqa: N802
        path = self.path.split("?", 1)[0]
        body = self._body()
        if path.startswith("/_sim/"):
            return self._control(path, body)
        prefix = "/DDOProtocol/"
        if not path.startswith(prefix) or not path[len(prefix):]:
            return self._send(404, "Not Found", "text/plain; charset=utf-8")
        with self.sim.in_flight():
            try:
                self._ddo(path[len(prefix):].strip("/").upper(), body)
            except OSError:  # the client gave up (timeouts) or the connection was reset
                self.close_connection = True

    def _ddo(self, proto: str, body: bytes) -> None:
        sim = self.sim
        if sim.latency_s:
            sim.pause(sim.latency_s)
        account = sim.authenticate(self._credentials())
        if account is None:
            sim.count_unauthorized()
            return self._unauthorized()
        user, password, regions = account
        try:
            request = json.loads(body) if body.strip() else None
        except (ValueError, UnicodeDecodeError):
            request = None
        view = filter_value = None
        if proto == "GETVIEWDATA":
            if isinstance(request, dict):
                view = str(request.get("ViewDefinitionGuid", "")).strip().upper()
                view_filter = request.get("ViewFilter")
                if isinstance(view_filter, dict) and view_filter.get("FilterValue") is not None:
                    filter_value = str(view_filter.get("FilterValue")).strip()
            sim.count("GETVIEWDATA", view or "")
        else:
            sim.count(proto)
        plan = sim.faults
        firings = plan.match(proto, view, filter_value) if plan else []
        where = {"protocol": proto, "view": view or None, "filter_value": filter_value}
        for f in firings:
            if f.kind == "slow":
                sim.injected(plan, f, **where)
                sim.pause(f.rule.seconds)
        replacing = next((f for f in firings if f.kind in fl.REPLACING_KINDS), None)
        if replacing is not None:
            sim.injected(plan, replacing, **where)
            kind, rule = replacing.kind, replacing.rule
            if kind == "connection_reset":
                return self._reset()
            if kind == "http_401":
                return self._unauthorized()
            if kind in fl.HTTP_STATUS:
                status = fl.HTTP_STATUS[kind]
                headers = {}
                if rule.retry_after is not None:
                    ra = rule.retry_after
                    headers["Retry-After"] = str(int(ra)) if ra == int(ra) else str(ra)
                return self._send(status, f"{status} {_REASONS[status]}",
                                  "text/plain; charset=utf-8", headers)
            if kind == "protocol_error":
                return self._json(_error(rule.message))
            if kind == "null_body":
                return self._send(200, b"null")
            if kind == "read_timeout":
                sim.pause(rule.seconds)  # the client has given up by now; answer anyway
        payload = self._answer(proto, request, user, password, regions)
        if replacing is None:
            for f in firings:
                if f.kind in fl.DATA_KINDS:
                    try:
                        column, rows = fl.apply_data_fault(payload, f, view)
                    except LookupError:
                        continue  # nothing to damage: not injected
                    sim.injected(plan, f, column=column, rows=rows, **where)
        data = json.dumps(payload, separators=(",", ":")).encode()
        if replacing is not None and replacing.kind == "malformed_json":
            data = fl.malformed(data)
        elif replacing is None:
            cut = next((f for f in firings if f.kind == "truncated_json"), None)
            if cut is not None:
                sim.injected(plan, cut, **where)
                data = fl.truncated(data)
        self._send(200, data)

    def _answer(self, proto: str, request: Any, user: str, password: str, regions) -> Any:
        if proto == "HEARTBEAT":
            return {"protocol": "OK"}
        if not isinstance(request, dict):
            return _error("Invalid request: a JSON object body is required")
        if str(request.get("Protocol", "")).upper() != proto:
            return _error(
                f"Protocol mismatch: path says {proto}, body says {request.get('Protocol')!r}")
        if proto == "GETVIEWDATA":
            return self._getviewdata(request, regions)
        if proto == "GETQUERY":
            return self._getquery(request, user, password)
        return _error(f"Unknown protocol {proto}")

    def _unauthorized(self) -> None:
        self._send(401, "Unauthorized", "text/plain; charset=utf-8",
                   {"WWW-Authenticate": 'Basic realm="WorkStudio"'})

    def _reset(self) -> None:
        """Abort the connection with a TCP RST: the client reads no response at all."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.rfile.close()  # the makefile reference: closing the socket now really closes it
        self.connection.close()

    # ------------------------------------------------------------------ protocols
    def _getviewdata(self, request: dict, regions) -> dict:
        world = self.sim.world
        guid = str(request.get("ViewDefinitionGuid", "")).strip().upper()
        view_filter = request.get("ViewFilter")
        if guid not in (protocol.CIRCUIT_LIST_VIEW, protocol.PLANNED_UNITS_VIEW):
            return _error(f"View definition {guid or '(none)'} not found")
        if not isinstance(view_filter, dict):
            return _error("ViewFilter is required")
        name = str(view_filter.get("FilterName", ""))
        value = str(view_filter.get("FilterValue", "")).strip()
        sql_value = value.replace("'", "''")
        if guid == protocol.CIRCUIT_LIST_VIEW:
            if name != protocol.CIRCUIT_FILTER_NAME:
                return _error(f"Filter '{name}' not found for view {guid}")
            heading = list(protocol.CIRCUIT_LIST_HEADING)
            rows = world.circuit_rows(value, regions)
            return _dataset(heading, rows, _CIRCUIT_SQL.format(value=sql_value),
                            _column_group("Vegetation Assessment Jobs", heading))
        if name != protocol.PLANNED_UNITS_FILTER_NAME:
            return _error(f"Filter '{name}' not found for view {guid}")
        heading = world.planned_units_heading()
        rows = world.planned_unit_rows(value, regions)
        return _dataset(heading, rows, _UNITS_SQL.format(value=sql_value),
                        _column_group("Planned Units", heading))

    def _getquery(self, request: dict, user: str, password: str) -> dict:
        params = str(request.get("DBParameters", ""))
        fields = {}
        for line in params.replace("\r\n", "\n").split("\n"):
            key, sep, val = line.partition("=")
            if sep:
                fields[key.strip().upper()] = val
        if fields.get("USER NAME") != user or fields.get("PASSWORD") != password:
            return _error("Access denied: DBParameters do not match the signed-in user")
        sql = str(request.get("SQL", ""))
        if _CTE.match(sql):
            # The real service silently returns nothing for CTEs.
            return _dataset([], [], sql, {})
        if _TEST_QUERY.match(sql):
            return _dataset(["test"], [[1]], sql, {})
        return _error("query not supported by simulator")

    # ------------------------------------------------------------------ control
    def _control(self, path: str, body: bytes) -> None:
        try:
            payload = json.loads(body) if body.strip() else {}
        except ValueError:
            return self._send(400, {"error": "invalid JSON"})
        if path == "/_sim/faults":
            try:
                plan = FaultPlan.parse(payload, seed=self.sim.faults.seed)
            except FaultSpecError as exc:
                return self._send(400, {"error": str(exc)})
            return self._json(self.sim.set_faults(plan).to_dict())
        if path == "/_sim/faults/clear":
            return self._json(self.sim.clear_faults().to_dict())
        if not isinstance(payload, dict):
            return self._send(400, {"error": "a JSON object is required"})
        world = self.sim.world
        try:
            if path == "/_sim/advance":
                days = float(payload.get("days", 1))
                world.advance(days=days)
                return self._json({"now": world.now.isoformat()})
            if path == "/_sim/clock":
                world.set_clock(_parse_iso(str(payload["now"])))
                return self._json({"now": world.now.isoformat()})
            if path == "/_sim/stats/reset":
                self.sim.reset_stats()
                return self._json(self.sim.stats())
        except (KeyError, TypeError, ValueError) as exc:
            return self._send(400, {"error": f"bad request: {exc}"})
        self._send(404, {"error": "unknown control endpoint"})


class SimulatorServer:
    """A WorkStudio simulator on loopback. ``start()`` serves on a daemon thread."""

    def __init__(self, world: World | None = None, host: str = "127.0.0.1", port: int = 0,
                 accounts: dict | None = None, *, faults: FaultPlan | None = None,
                 latency_ms: float = 0):
        if latency_ms < 0:
            raise ValueError("latency_ms cannot be negative")
        self.world = world if world is not None else World()
        self._accounts = _parse_accounts(DEFAULT_ACCOUNTS if accounts is None else accounts)
        self.faults: FaultPlan = faults if faults is not None else FaultPlan()
        self.latency_s = latency_ms / 1000
        self._stopping = threading.Event()
        self._stats_lock = threading.Lock()
        self._stats: dict = {}
        self._in_flight = 0
        self.reset_stats()
        handler = type("SimHandler", (_Handler,), {"sim": self})
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return self._httpd.server_address[0]

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ------------------------------------------------------------------ auth / stats
    def authenticate(self, creds: tuple[str, str] | None):
        """(user, password, regions) for valid credentials, else None."""
        if creds is None:
            return None
        user, password = creds
        entry = self._accounts.get(user)
        if entry is None or entry[0] != password:
            return None
        return user, password, entry[1]

    def count(self, proto: str, view: str | None = None) -> None:
        with self._stats_lock:
            requests = self._stats["requests"]
            if proto == "GETVIEWDATA":
                views = requests["GETVIEWDATA"]
                views[view or ""] = views.get(view or "", 0) + 1
            else:
                requests[proto] = requests.get(proto, 0) + 1

    def injected(self, plan: FaultPlan, firing: fl.Firing, **where) -> None:
        """Record an injected fault in the plan and count it in the stats."""
        plan.record(firing, **where)
        with self._stats_lock:
            counts = self._stats["faults"]
            counts[firing.kind] = counts.get(firing.kind, 0) + 1

    def set_faults(self, plan: FaultPlan) -> FaultPlan:
        self.faults = plan
        return plan

    def clear_faults(self) -> FaultPlan:
        return self.set_faults(FaultPlan(seed=self.faults.seed))

    @contextmanager
    def in_flight(self):
        """Counts DDOProtocol calls being answered (stats: concurrency.max_in_flight)."""
        with self._stats_lock:
            self._in_flight += 1
            conc = self._stats["concurrency"]
            conc["max_in_flight"] = max(conc["max_in_flight"], self._in_flight)
        try:
            yield
        finally:
            with self._stats_lock:
                self._in_flight -= 1

    def pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the server stops (stalls must not outlive it)."""
        if seconds > 0:
            self._stopping.wait(seconds)

    def count_unauthorized(self) -> None:
        with self._stats_lock:
            self._stats["unauthorized"] += 1

    def stats(self) -> dict:
        with self._stats_lock:
            out = json.loads(json.dumps(self._stats))
            out["concurrency"]["in_flight"] = self._in_flight
            return out

    def reset_stats(self) -> None:
        with self._stats_lock:
            self._stats = {"requests": {"HEARTBEAT": 0, "GETQUERY": 0, "GETVIEWDATA": {}},
                           "unauthorized": 0, "faults": {},
                           "concurrency": {"max_in_flight": self._in_flight}}

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> SimulatorServer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._httpd.serve_forever,
                                            kwargs={"poll_interval": 0.1},
                                            name="ws-simulator", daemon=True)
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def run_server(host: str = "127.0.0.1", port: int = 8765, world_config: WorldConfig | None = None,
               clock: datetime | None = None, accounts: dict | None = None, *,
               faults: FaultPlan | None = None, latency_ms: float = 0) -> None:
    """Serve until interrupted. ``clock`` None means the current time (then fixed: the world
    only moves through /_sim/advance and /_sim/clock)."""
    world = World(world_config or WorldConfig(), now=clock or datetime.now(UTC))
    server = SimulatorServer(world, host=host, port=port, accounts=accounts, faults=faults,
                             latency_ms=latency_ms)
    print(f"WorkStudio simulator listening on {server.base_url}", flush=True)
    if server.faults:
        print(f"fault injection: {len(server.faults.rules)} rule(s): "
              + json.dumps([r.to_dict() for r in server.faults.rules]), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server._httpd.server_close()
