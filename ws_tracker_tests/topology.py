"""The production topology as real processes, for integration tests.

One code location server (``dagster api grpc``), ``dagster-daemon run`` and
``dagster-webserver``, each a subprocess in its own process group, sharing one temporary
DAGSTER_HOME that holds the repository's dagster.yaml (runs, events and schedules in
PostgreSQL; one setting added: the daemon looks at the run queue every second, not every
5 s, so a queued run waits less; every limit is the repository's) and a workspace.yaml that
points both at the code location server. The environment they share:

- DAGSTER_PG_URL: a fresh database ``dagster_<uuid>`` on the test PostgreSQL server;
- WS_TRACKER_DATABASE_URL: a fresh copy of the migrated template database (the warehouse);
- WORKSTUDIO_*: the simulator, started in the test process on a free loopback port.

Tests talk to it the way the UI does: GraphQL over HTTP (:class:`GraphQL`). Startup costs
seconds of two cores, so the tests of a module share one topology through the module-scoped
``topology`` fixture (import it into the test module); ws_tracker_tests/test_daemon.py holds
every test that needs one, so the suite starts it once. Teardown always terminates every
process group and drops both databases; the processes' logs are printed (captured by pytest,
shown on failure) when a test using :meth:`Topology.diagnose` fails or startup fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import sqlalchemy as sa
import yaml

from ws_tracker.simulator.server import SimulatorServer
from ws_tracker.simulator.world import World, WorldConfig
from ws_tracker.warehouse.engine import make_engine, with_database
from ws_tracker_tests.conftest import _admin_exec
from ws_tracker_tests.e2e import PASSWORD, USER

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the venv's executables, never whatever is on PATH
LOCATION_NAME = "ws_tracker"
REPOSITORY_NAME = "__repository__"  # a Definitions object's repository
DEFAULT_MODULE = "ws_tracker_tests.daemon_location"
TERMINAL_RUN_STATUSES = {"SUCCESS", "FAILURE", "CANCELED"}
# The daemons a schedule, a backfill and the run queue need (run monitoring and retries too).
REQUIRED_DAEMONS = {"SCHEDULER", "SENSOR", "BACKFILL", "QUEUED_RUN_COORDINATOR", "MONITORING"}
LOG_TAIL_CHARS = 6000
# How often the waits below look again (each look is a cheap HTTP or gRPC request).
POLL_S = 0.5
# The run queue daemon's interval in the topology (Dagster's default, the repository's, is 5 s).
DEQUEUE_INTERVAL_S = 1


class GraphQLError(AssertionError):
    """A GraphQL request that failed: HTTP error, ``errors`` in the response, or a typed error."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GraphQL:
    """A tiny client for the webserver's /graphql endpoint, the API the UI itself calls."""

    def __init__(self, base_url: str, timeout: float = 60.0):
        self.url = f"{base_url}/graphql"
        self._client = httpx.Client(timeout=timeout)

    def post(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """``data`` of the response; raises GraphQLError with the errors on any failure."""
        response = self._client.post(self.url, json={"query": query, "variables": variables or {}})
        try:
            body = response.json()
        except ValueError:
            raise GraphQLError(f"HTTP {response.status_code} from {self.url}: "
                               f"{response.text[:2000]}") from None
        if response.status_code != 200 or body.get("errors"):
            raise GraphQLError(f"HTTP {response.status_code}, errors: {body.get('errors')}")
        return body["data"]

    def close(self) -> None:
        self._client.close()


def expect_type(result: dict[str, Any], typename: str, what: str) -> dict[str, Any]:
    """``result`` when its ``__typename`` is ``typename``; else a GraphQLError with its message."""
    if result.get("__typename") != typename:
        raise GraphQLError(f"{what}: expected {typename}, got {result.get('__typename')}: "
                           f"{result.get('message')} {result.get('stack') or ''}"
                           f"{result.get('errors') or ''}")
    return result


RUN_QUERY = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { runId status jobName startTime endTime tags { key value } }
    ... on PythonError { message stack }
    ... on RunNotFoundError { message }
  }
}
"""

RUNS_QUERY = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs { results { runId status jobName startTime endTime tags { key value } } }
    ... on PythonError { message stack }
    ... on InvalidPipelineRunsFilterError { message }
  }
}
"""

RUN_ERRORS_QUERY = """
query RunLogs($runId: ID!) {
  logsForRun(runId: $runId) {
    __typename
    ... on EventConnection {
      events {
        __typename
        ... on MessageEvent { message level stepKey }
        ... on ExecutionStepFailureEvent { error { message stack } }
        ... on RunFailureEvent { error { message stack } }
        ... on EngineEvent { error { message stack } }
      }
    }
    ... on PythonError { message }
  }
}
"""

WORKSPACE_QUERY = """
{
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on PythonError { message stack }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""

DAEMON_HEALTH_QUERY = """
{
  instance {
    daemonHealth {
      allDaemonStatuses { daemonType required healthy lastHeartbeatErrors { message } }
    }
  }
}
"""


@dataclass
class _Proc:
    name: str
    popen: subprocess.Popen
    log_path: Path


@dataclass
class Topology:
    """The running processes, their shared settings, and a GraphQL client to the webserver."""

    home: Path
    dagster_pg_url: str
    warehouse_url: str
    simulator: SimulatorServer
    world: World
    webserver_url: str
    grpc_port: int
    env: dict[str, str]
    procs: list[_Proc] = field(default_factory=list)
    gql: GraphQL | None = None

    # ------------------------------------------------------------------ processes
    def _spawn(self, name: str, args: list[str]) -> None:
        log_path = self.home / f"{name}.log"
        log = open(log_path, "wb")  # noqa: SIM115 - closed with the process in stop()
        popen = subprocess.Popen(
            args, cwd=self.home, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # own process group: run workers are killed with it
        )
        log.close()  # the child holds its own descriptor
        self.procs.append(_Proc(name, popen, log_path))

    def start(self, *, module: str, daemon: bool = True) -> None:
        self._spawn("code_server", [
            str(BIN / "dagster"), "api", "grpc", "-m", module, "-d", str(REPO_ROOT),
            "-h", "127.0.0.1", "-p", str(self.grpc_port), "--location-name", LOCATION_NAME,
            # Run workers start as `<this python> -m dagster`, the venv's, whatever PATH says.
            "--use-python-environment-entry-point",
        ])
        # The webserver and the daemon load the location once at startup (a failed load is
        # only retried later): start them when the code server answers.
        self._wait_for_code_server()
        workspace = self.home / "workspace.yaml"
        if daemon:
            self._spawn("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)])
        port = int(self.webserver_url.rsplit(":", 1)[1])
        self._spawn("webserver", [
            str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port),
            "-w", str(workspace), "--suppress-warnings",
        ])
        self.gql = GraphQL(self.webserver_url)

    def _wait_for_code_server(self, timeout: float = 120.0) -> None:
        from dagster._grpc.client import DagsterGrpcClient

        client = DagsterGrpcClient(port=self.grpc_port, host="127.0.0.1")
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            try:
                client.ping("topology")
                return
            except Exception as exc:  # noqa: BLE001 - unreachable until it has loaded
                if time.monotonic() > deadline:
                    raise AssertionError(f"code server not answering after {timeout:.0f} s "
                                         f"({type(exc).__name__})\n{self.logs()}") from None
            time.sleep(POLL_S / 2)

    def check_alive(self) -> None:
        for proc in self.procs:
            code = proc.popen.poll()
            if code is not None:
                raise AssertionError(f"{proc.name} exited with code {code}\n{self.logs()}")

    def wait_until_healthy(self, timeout: float = 180.0, daemon: bool = True) -> None:
        """The webserver answers, the code location is loaded, the daemons heartbeat."""
        deadline = time.monotonic() + timeout
        last = "webserver not answering"
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                httpx.get(f"{self.webserver_url}/server_info", timeout=5).raise_for_status()
                ws = self.gql.post(WORKSPACE_QUERY)["workspaceOrError"]
                entries = {e["name"]: e for e in ws.get("locationEntries", [])}
                entry = entries.get(LOCATION_NAME)
                if entry is None or entry["loadStatus"] != "LOADED":
                    last = f"code location not loaded yet: {entry}"
                elif entry["locationOrLoadError"]["__typename"] != "RepositoryLocation":
                    raise AssertionError(f"code location failed to load: {entry}\n{self.logs()}")
                elif not daemon:
                    return
                else:
                    statuses = self.gql.post(DAEMON_HEALTH_QUERY)["instance"]["daemonHealth"][
                        "allDaemonStatuses"]
                    unhealthy = sorted(s["daemonType"] for s in statuses
                                       if s["daemonType"] in REQUIRED_DAEMONS and not s["healthy"])
                    if not unhealthy:
                        return
                    last = f"daemons not healthy yet: {unhealthy}"
            except (httpx.HTTPError, GraphQLError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(POLL_S)
        raise AssertionError(f"topology not healthy after {timeout:.0f} s ({last})\n{self.logs()}")

    def stop(self) -> None:
        """Terminate every process group (SIGTERM, then SIGKILL); idempotent."""
        if self.gql is not None:
            self.gql.close()
            self.gql = None
        for proc in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in reversed(self.procs):
            try:
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            # The leader may be gone while run workers of its group live on: kill the group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.popen.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=10)

    # ------------------------------------------------------------------ diagnostics
    def logs(self, tail: int = LOG_TAIL_CHARS) -> str:
        parts = []
        for proc in self.procs:
            try:
                text = proc.log_path.read_text(errors="replace")
            except OSError as exc:
                text = f"<unreadable: {exc}>"
            if len(text) > tail:
                text = "...\n" + text[-tail:]
            status = proc.popen.poll()
            parts.append(f"----- {proc.name} (pid {proc.popen.pid}, "
                         f"{'running' if status is None else f'exit {status}'}) -----\n{text}")
        return "\n".join(parts)

    @contextlib.contextmanager
    def diagnose(self) -> Iterator[None]:
        """On any failure inside the block, print the processes' logs (pytest shows them)."""
        try:
            yield
        except BaseException:
            print(self.logs())
            raise

    # ------------------------------------------------------------------ runs
    def run(self, run_id: str) -> dict[str, Any]:
        result = self.gql.post(RUN_QUERY, {"runId": run_id})["runOrError"]
        return expect_type(result, "Run", f"run {run_id}")

    def runs(self, *, tags: dict[str, str] | None = None,
             statuses: list[str] | None = None) -> list[dict[str, Any]]:
        flt: dict[str, Any] = {}
        if tags:
            flt["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
        if statuses:
            flt["statuses"] = statuses
        result = self.gql.post(RUNS_QUERY, {"filter": flt})["runsOrError"]
        return expect_type(result, "Runs", "runs")["results"]

    def run_errors(self, run_id: str) -> str:
        """The error messages (and error-level log lines) of a run, for assertion messages."""
        result = self.gql.post(RUN_ERRORS_QUERY, {"runId": run_id})["logsForRun"]
        if result["__typename"] != "EventConnection":
            return f"<no logs: {result}>"
        lines = []
        for event in result["events"]:
            error = event.get("error")
            if error:
                lines.append(f"{event['__typename']} {event.get('stepKey') or ''}: "
                             f"{error['message']}{''.join(error.get('stack') or [])[-1500:]}")
            elif event.get("level") in ("ERROR", "CRITICAL"):
                lines.append(f"{event['__typename']} {event.get('stepKey') or ''}: "
                             f"{event.get('message')}")
        return "\n".join(lines) or "<no error events>"

    def wait_for_run(self, run_id: str, timeout: float = 180.0) -> dict[str, Any]:
        """Poll until the run reaches SUCCESS, FAILURE or CANCELED; return it."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            run = self.run(run_id)
            if run["status"] in TERMINAL_RUN_STATUSES:
                return run
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} still {run['status']} after {timeout:.0f} s")
            time.sleep(POLL_S)

    def wait_for_runs_to_settle(self, tags: dict[str, str], timeout: float = 180.0) -> None:
        """Wait until no run with these tags is queued or in progress."""
        deadline = time.monotonic() + timeout
        while True:
            pending = [r for r in self.runs(tags=tags) if r["status"] not in TERMINAL_RUN_STATUSES]
            if not pending:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"runs still in progress after {timeout:.0f} s: {pending}")
            time.sleep(POLL_S)

    def warehouse_engine(self) -> sa.Engine:
        return make_engine(self.warehouse_url)


def _write_instance_config(home: Path) -> None:
    """DAGSTER_HOME/dagster.yaml: the repository's, with the run queue looked at every
    DEQUEUE_INTERVAL_S (how soon a queued run starts; which runs may start is unchanged)."""
    config = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())
    coordinator = config["run_coordinator"]
    assert coordinator["class"] == "QueuedRunCoordinator", coordinator
    coordinator.setdefault("config", {})["dequeue_interval_seconds"] = DEQUEUE_INTERVAL_S
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def _init_dagster_storage(home: Path, pg_url: str) -> None:
    """Create Dagster's schema once, before three processes race to create it."""
    from dagster import DagsterInstance

    saved = {k: os.environ.get(k) for k in ("DAGSTER_PG_URL", "DAGSTER_HOME")}
    os.environ["DAGSTER_PG_URL"] = pg_url
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        with DagsterInstance.from_config(str(home)) as instance:
            instance.get_runs(limit=1)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def start_topology(pg_server_url: str, template_db: str, workdir: Path, *,
                   module: str = DEFAULT_MODULE, daemon: bool = True,
                   world_config: WorldConfig | None = None) -> Iterator[Topology]:
    """Start the topology; yield it healthy; always stop it and drop its databases."""
    suffix = uuid.uuid4().hex[:10]
    dagster_db, warehouse_db = f"dagster_{suffix}", f"wst_topology_{suffix}"
    home = workdir / "dagster_home"
    home.mkdir(parents=True)
    _write_instance_config(home)
    grpc_port, web_port = _free_port(), _free_port()
    (home / "workspace.yaml").write_text(
        "load_from:\n"
        "  - grpc_server:\n"
        "      host: 127.0.0.1\n"
        f"      port: {grpc_port}\n"
        f"      location_name: {LOCATION_NAME}\n")

    world = World(world_config or WorldConfig(circuits=60))
    simulator = None
    topology = None
    created: list[str] = []
    try:
        simulator = SimulatorServer(world, host="127.0.0.1", port=0,
                                    accounts={USER: PASSWORD}).start()
        _admin_exec(pg_server_url, f'CREATE DATABASE "{dagster_db}"')
        created.append(dagster_db)
        _admin_exec(pg_server_url, f'CREATE DATABASE "{warehouse_db}" TEMPLATE "{template_db}"')
        created.append(warehouse_db)
        dagster_pg_url = with_database(pg_server_url, dagster_db)  # plain postgresql:// (psycopg2)
        warehouse_url = with_database(pg_server_url, warehouse_db)
        _init_dagster_storage(home, dagster_pg_url)

        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DAGSTER_", "WS_TRACKER_", "WORKSTUDIO_"))}
        env.update({
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_URL": dagster_pg_url,
            "WS_TRACKER_DATABASE_URL": warehouse_url,
            "WS_TRACKER_HOME": str(workdir / "ws_tracker_home"),
            "WORKSTUDIO_BASE_URL": simulator.base_url,
            "WORKSTUDIO_USERNAME": USER,
            "WORKSTUDIO_PASSWORD": PASSWORD,
            "WORKSTUDIO_REQUESTS_PER_SECOND": "200",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                        os.environ.get("PYTHONPATH")])),
        })
        topology = Topology(home=home, dagster_pg_url=dagster_pg_url, warehouse_url=warehouse_url,
                            simulator=simulator, world=world,
                            webserver_url=f"http://127.0.0.1:{web_port}", grpc_port=grpc_port,
                            env=env)
        topology.start(module=module, daemon=daemon)
        topology.wait_until_healthy(daemon=daemon)
        yield topology
    finally:
        if topology is not None:
            died = [p.name for p in topology.procs if p.popen.poll() is not None]
            if died:  # a process ended on its own: its log is the diagnosis (shown on failure)
                print(f"topology processes that exited before teardown: {died}\n"
                      f"{topology.logs()}")
            topology.stop()
        if simulator is not None:
            simulator.stop()
        for name in reversed(created):
            with contextlib.suppress(Exception):
                _admin_exec(pg_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def topology(pg_server_url, template_db, tmp_path_factory) -> Iterator[Topology]:
    """The production topology, shared by the tests of one module (startup is expensive)."""
    with start_topology(pg_server_url, template_db, tmp_path_factory.mktemp("topology")) as t:
        yield t
