"""Benchmark "e2e_10x": 1,000,000 planned units end to end vs the download-and-decode floor.

The simulator runs in its own process (``ws-tracker simulator serve --circuits 5000
--units-per-circuit 420-420``, latency 0): its CPU and memory are not the pipeline's. 420, not
200: a sync fetches only ACTIV/QC/REWRK jobs and sees only the units planned so far, so 420 per
finished job is what makes a first sync download at least 1,000,000 units. Each
repetition, side by side against the same warmed-up simulator:

- floor: the same HTTP calls with the same client, ``WorkStudioResource(...).get_client()``
  (circuit list for each synced status, then the planned-units view of every work order the
  pipeline fetches), JSON decode + envelope parse (``get_view_data``) and nothing else, in a
  ``ThreadPoolExecutor`` of the resource's concurrency; run in a child process too.
- pipeline: a child process (``python bench/bench_e2e.py pipeline URL DB``) runs
  ``dg.materialize([circuits, planned_unit_captures])`` against a fresh migrated database
  (first sync: every circuit new, every capture stored); it reports the wall time of the
  materialization and its own peak RSS (VmHWM of the child: imports, Dagster, the run).

The ratio pipeline / floor is the floor of issue 7.
"""

from __future__ import annotations

import contextlib
import json
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from sampler import Sampler  # noqa: E402
from suite import Context, Figure, Floor, benchmark  # noqa: E402

NY = ZoneInfo("America/New_York")
DAY = date(2026, 3, 4)  # a Wednesday; the simulator's clock is 17:30 New York that day
USER = "ASPLUNDH\\wstracker"  # the simulator's default account (ws_tracker/config.py)
PASSWORD = "wstracker-sim"
RATE = 1000.0
STATUSES = ("ACTIV", "QC", "REWRK", "CLOSE")
UNIT_STATUSES = ("ACTIV", "QC", "REWRK")
SAMPLE_WOS = 50


def _vmhwm_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _resource(base_url: str):
    from ws_tracker.workstudio.resource import WorkStudioResource

    return WorkStudioResource(base_url=base_url, username=USER, password=PASSWORD,
                              requests_per_second=RATE, read_timeout=120.0)


def child_floor(base_url: str) -> dict:
    """Download + decode only: the pipeline's HTTP calls, same client, same concurrency."""
    resource = _resource(base_url)
    t0 = time.perf_counter()
    rows = 0
    with resource.get_client() as client:
        client.heartbeat()
        wos: dict[str, None] = {}
        for status in STATUSES:
            ds = client.circuits_by_status(status)
            rows += len(ds.rows)
            if status in UNIT_STATUSES:
                for r in ds.rows:
                    if r.get("SS_WO"):
                        wos[r["SS_WO"]] = None
        list_s = time.perf_counter() - t0
        with ThreadPoolExecutor(max_workers=resource.concurrency()) as pool:
            units = sum(pool.map(lambda wo: len(client.planned_units(wo).rows), list(wos)))
        floor_s = time.perf_counter() - t0
        # Not part of the floor: single-thread CPU of the pipeline's per-unit Python work on a
        # sample of work orders, extrapolated to all units (where the pipeline's time goes).
        from ws_tracker.rules.units import canonical_json, normalise_units

        sample = [client.planned_units(wo).rows for wo in list(wos)[:SAMPLE_WOS]]
        n = sum(len(r) for r in sample)
        t1 = time.perf_counter()
        normalised = [normalise_units(r)[0] for r in sample]
        norm_s = time.perf_counter() - t1
        t1 = time.perf_counter()
        for by_ext in normalised:
            for us in by_ext.values():
                canonical_json(us)
        hash_s = time.perf_counter() - t1
    return {"floor_s": floor_s, "floor_list_s": list_s,
            "floor_calls": len(wos), "floor_units": units, "floor_rss_mib": _vmhwm_mib(),
            "circuit_rows": rows, "est_normalise_s": norm_s * units / max(n, 1),
            "est_hash_json_s": hash_s * units / max(n, 1)}


def child_pipeline(base_url: str, db_url: str, profile: bool = False) -> dict:
    import dagster as dg

    from ws_tracker.pipeline.assets import circuits, planned_unit_captures
    from ws_tracker.pipeline.resources import ClockResource
    from ws_tracker.warehouse.resource import WarehouseResource

    at = datetime.combine(DAY, datetime.min.time().replace(hour=17, minute=30), NY)
    resources = {"workstudio": _resource(base_url),
                 "warehouse": WarehouseResource(database_url=db_url),
                 "clock": ClockResource(frozen_at=at.isoformat())}
    rss0 = _vmhwm_mib()
    sampler = Sampler() if profile else contextlib.nullcontext()
    t0 = time.perf_counter()
    with sampler:
        result = dg.materialize([circuits, planned_unit_captures], resources=resources,
                                tags={"dagster/schedule_name": "unit_sync_schedule"})
    wall = time.perf_counter() - t0
    assert result.success
    meta = {}
    for ev in result.get_asset_materialization_events():
        m = ev.materialization
        for k in ("circuits_processed", "captures_stored", "units_captured"):
            if k in m.metadata:
                meta[f"{m.asset_key.path[-1]}.{k}"] = m.metadata[k].value
    step_s = {}
    for ev in result.all_events:
        if ev.event_type_value == "STEP_SUCCESS":
            step_s[ev.step_key] = ev.event_specific_data.duration_ms / 1000
    out = {"pipeline_s": wall, "rss_before_mib": rss0, "peak_rss_mib": _vmhwm_mib(),
           "meta": meta, "steps": step_s}
    if profile:
        out["top_self"] = sampler.top(5)
        out["top_own"] = sampler.top(5, own_only=True, total=True)
    return out


def _child(*args: str) -> dict:
    proc = subprocess.run([sys.executable, str(Path(__file__)), *args], capture_output=True,
                          text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"child {args[0]} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def simulator(circuits: int, units: int):
    port = _free_port()
    exe = Path(sys.executable).with_name("ws-tracker")
    proc = subprocess.Popen(
        [str(exe), "simulator", "serve", "--port", str(port), "--circuits", str(circuits),
         "--units-per-circuit", f"{units}-{units}", "--date", DAY.isoformat()],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        t0 = time.perf_counter()
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.perf_counter() - t0 > 120:
                    raise RuntimeError("the simulator did not start")
                time.sleep(0.2)
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _proc_hwm_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


@benchmark(
    "e2e_10x", "End to end at 10x scale",
    measures=(
        "5,000 circuits with 420 units per finished job (`ws-tracker simulator serve "
        "--circuits 5000 --units-per-circuit 420-420`, latency 0, in its own process), so that "
        "a first sync downloads at least 1,000,000 planned units, on 2026-03-04 17:30 New "
        "York: a first sync (`dg.materialize` of `circuits` + `planned_unit_captures`, fresh "
        "migrated database, `WorkStudioResource` at requests_per_second 1000 and the default "
        "concurrency) in a child process: wall time of the materialization and the child's peak "
        "RSS (VmHWM). Floor: the same HTTP calls with the same client and concurrency (circuit "
        "lists, then every fetched work order's planned units), JSON decode + envelope parse "
        "only, also in a child process. The derived daily assets are NOT included."),
    figures=[
        Figure("circuit_rows", "circuits listed (4 statuses)", "circuits"),
        Figure("floor_calls", "planned-unit calls (work orders of ACTIV/QC/REWRK)", "calls"),
        Figure("floor_units", "planned units downloaded", "units"),
        Figure("units_captured", "planned units captured by the pipeline", "units"),
        Figure("floor_list_s", "floor: circuit lists (4 calls)", "s"),
        Figure("floor_s", "floor: download + decode, all calls", "s"),
        Figure("pipeline_s", "pipeline: materialize circuits + planned_unit_captures", "s"),
        Figure("circuits_step_s", "pipeline: circuits step", "s"),
        Figure("captures_step_s", "pipeline: planned_unit_captures step", "s"),
        Figure("est_normalise_s", "est. CPU of `normalise_units` for all units (single thread, "
               "from a 50-work-order sample; not part of the floor)", "s"),
        Figure("est_hash_json_s", "est. CPU of `canonical_json` (content hash + raw_json text) "
               "for all units (same sample; store_captures' Python work)", "s"),
        Figure("e2e_vs_floor", "pipeline / floor", "x"),
        Figure("peak_rss_mib", "pipeline child peak RSS (VmHWM)", "MiB"),
        Figure("peak_rss_gib", "pipeline child peak RSS (VmHWM)", "GiB"),
        Figure("rss_before_mib", "pipeline child peak RSS before the run (after imports)", "MiB"),
        Figure("floor_rss_mib", "floor child peak RSS", "MiB"),
        Figure("sim_rss_mib", "simulator process peak RSS (not the pipeline's)", "MiB"),
    ],
    floors=[Floor("e2e_vs_floor", "<=", 4.0, "1,000,000 units end to end in <= 4x the "
                  "download-and-decode floor"),
            Floor("peak_rss_gib", "<", 1.0, "peak RSS < 1 GiB")],
)
@contextmanager
def e2e_10x(ctx: Context):
    circuits, units = (1000, 200) if ctx.quick else (5000, 420)
    if ctx.quick:
        ctx.note(f"Quick mode: {circuits} circuits x {units} units, not 5,000 x 420.")
    with simulator(circuits, units) as (proc, base_url):
        t0 = time.perf_counter()
        warm = _child("floor", base_url)  # warm-up: the simulator builds its world lazily
        ctx.note(f"Setup (untimed): simulator warm-up (first download of everything, the "
                 f"world generated on demand) {time.perf_counter() - t0:.1f} s.")

        samples: list[dict[str, float]] = []

        def measure() -> dict[str, float]:
            floor = _child("floor", base_url)
            url = ctx.fresh_database()
            try:
                pipe = _child("pipeline", base_url, url)
            finally:
                ctx.drop_database(url)
            steps = pipe["steps"]
            out = {k: v for k, v in floor.items()}
            out.update({
                "pipeline_s": pipe["pipeline_s"],
                "circuits_step_s": steps.get("circuits", float("nan")),
                "captures_step_s": steps.get("planned_unit_captures", float("nan")),
                "units_captured": pipe["meta"].get("planned_unit_captures.units_captured", 0),
                "e2e_vs_floor": pipe["pipeline_s"] / floor["floor_s"],
                "peak_rss_mib": pipe["peak_rss_mib"],
                "peak_rss_gib": pipe["peak_rss_mib"] / 1024,
                "rss_before_mib": pipe["rss_before_mib"],
                "sim_rss_mib": _proc_hwm_mib(proc.pid),
            })
            samples.append(out)
            return out

        del warm
        yield measure
        # One more pipeline run, untimed, under the sampling profiler (bench/sampler.py: every
        # thread, every 5 ms): where the time goes, for the note below.
        url = ctx.fresh_database()
        try:
            profiled = _child("pipeline", base_url, url, "profile")
        finally:
            ctx.drop_database(url)
    med = {k: statistics.median(s[k] for s in samples) for k in samples[0]}
    ctx.note(
        f"**Where the pipeline's time goes (medians).** Pipeline {med['pipeline_s']:.1f} s vs "
        f"floor {med['floor_s']:.1f} s: the `circuits` step {med['circuits_step_s']:.1f} s "
        f"(floor's circuit lists {med['floor_list_s']:.1f} s), `planned_unit_captures` "
        f"{med['captures_step_s']:.1f} s (rest: Dagster run overhead). Single-thread CPU "
        f"estimates for the same units: `normalise_units` ~{med['est_normalise_s']:.1f} s, "
        f"content hash + raw_json text (`canonical_json`) ~{med['est_hash_json_s']:.1f} s. "
        "All Python runs under one GIL (four fetch threads, the capture writer thread and the "
        "main thread), on a 2-core machine that also runs the simulator and PostgreSQL; the "
        "database's share (jsonb parsing, WAL) overlaps the fetches (the writer thread).")
    ctx.note(
        f"**Units synced: {med['floor_units']:,.0f} downloaded, "
        f"{med['units_captured']:,.0f} captured.** The world lists "
        f"{med['circuit_rows']:,.0f} circuits over the four statuses; the pipeline fetches "
        f"only the work orders of ACTIV/QC/REWRK circuits ({med['floor_calls']:,.0f} calls; "
        "CLOSE circuits are listed, never fetched), and the simulator shows an in-progress "
        "job's units only as far as its planners have synced them (`visible_units`), so each "
        f"job's final count is set to {units} for a first sync to download at least "
        "1,000,000 units. The floor downloads exactly the same calls, so the ratio compares "
        "like with like. Captured < downloaded: duplicate unit rows (server-side join "
        "artefacts) are collapsed, and units of jobs not listed are reported, not captured.")
    ctx.note(_profile_note(profiled))
    ctx.note(
        f"Peak RSS: the pipeline child {med['peak_rss_mib']:.0f} MiB (of which "
        f"{med['rss_before_mib']:.0f} MiB after imports, before the run); the simulator process "
        f"{med['sim_rss_mib']:.0f} MiB (not counted: in production it is WorkStudio).")


def _profile_note(profiled: dict) -> str:
    def listing(items) -> str:
        return "; ".join(f"`{name}` {share:.0%}" for name, share in items)

    return (
        f"**Profile (one extra, untimed run of the pipeline child under bench/sampler.py, "
        f"{profiled['pipeline_s']:.0f} s).** Top five functions by samples in which they were "
        f"running (all threads, waits included): {listing(profiled['top_self'])}. Our own "
        f"functions on the stack most often: {listing(profiled['top_own'])}. "
        "**Changed because of the profile (issue 7):** bad rows were recorded with one commit "
        "per response (most of the captures step at 1,000 circuits: 524 commits, 8.8 s of "
        "14.6 s), now one transaction per batch of 200 circuits; captures are written by a "
        "background thread while the fetches go on, instead of between fetches; each capture "
        "is JSON-encoded once for its hash and its raw_json (was twice); new captures go in by "
        "COPY, each sent as soon as it is encoded (the server stores one while the next is "
        "encoded), and new circuits, their history, UI states and stage changes by COPY too, "
        "instead of a statement per row; the stage refresh takes the pending-permission counts "
        "from the units in memory instead of re-reading raw_json; units are built from decoded "
        "values without pydantic re-validating them (about 25 -> 16 us per unit), and then "
        "decoded column by column per response, a value shared by a column decoded once "
        "(13.2 -> 4.3 us CPU per unit); VEGUNIT_AUDIT_PASS sent as a JSON boolean is a value, "
        "no longer a bad row (it sent 3.5 % of units' responses down the bad-row path); NOTIFY "
        "payloads go as one JSON parameter (psycopg quoted each element of a text[] with a "
        "Python regex). Because of the peak RSS (1.19 GiB once the writer thread held one "
        "batch while the next filled): a batch also ends at 20,000 units, and a response's bad "
        "rows are kept only for the rows their issues name (0.42 GiB).")


if __name__ == "__main__":
    import warnings

    warnings.filterwarnings("ignore")
    sys.path.insert(0, str(ROOT))
    if sys.argv[1] == "floor":
        print(json.dumps(child_floor(sys.argv[2])))
    elif sys.argv[1] == "pipeline":
        print(json.dumps(child_pipeline(sys.argv[2], sys.argv[3], profile="profile" in sys.argv[4:])))
    else:
        raise SystemExit(f"unknown child {sys.argv[1]!r}")
