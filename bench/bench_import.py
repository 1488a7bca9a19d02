"""Bench: import a 1,000,000-row planned-units export within a fixed memory bound.

    .venv/bin/python bench/bench_import.py [--rows 1000000] [--small 100000] [--units 200]

Writes a circuit list and a planned-units export in WorkStudio's file shape (UTF-8 BOM, CRLF,
wrapped dates, "" for NULL, trailing spaces) from the simulator world's rows, repeated over
synthetic work orders (``--units`` units each, unique SSUNITS_OBJECTID), starts a throwaway
embedded PostgreSQL, and runs ``ws-tracker import commit`` on each file as a separate process
(its progress bar on stderr). Prints, per file: rows, seconds, rows/s and the importing
process's peak RSS (its own ru_maxrss). The ``--small`` file is imported first: its peak
RSS next to the large one's shows the bound does not grow with the file.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ws_tracker.imports.export import write_csv  # noqa: E402
from ws_tracker.imports.load import captured_at_for  # noqa: E402
from ws_tracker.simulator.world import World, WorldConfig  # noqa: E402
from ws_tracker.warehouse import embedded  # noqa: E402
from ws_tracker.warehouse.engine import ensure_database, with_database  # noqa: E402
from ws_tracker.warehouse.migrate import upgrade  # noqa: E402
from ws_tracker.workstudio.protocol import CIRCUIT_LIST_HEADING  # noqa: E402

AS_OF = date(2026, 3, 2)


def templates():
    world = World(WorldConfig(circuits=40, units_per_circuit=(50, 300)))
    world.set_clock(captured_at_for(AS_OF))
    circuit = next(r for r in world.circuit_rows("ACTIV") if r[2] in ("@", ""))
    heading = world.planned_units_heading()
    units = [row for wo in sorted({r[1] for r in world.circuit_rows("ACTIV")})[:10]
             for row in world.planned_unit_rows(wo)][:2000]
    return circuit, heading, units


def write_files(directory: Path, tag: str, rows: int, per_circuit: int, start: int):
    circuit, heading, units = templates()
    n_circuits = max(1, rows // per_circuit)
    wo_col, ext_col = heading.index("SS_WO"), heading.index("SS_EXT")
    id_col = heading.index("SSUNITS_OBJECTID")
    wos = [f"2030-{start + i:06d}" for i in range(n_circuits)]

    def circuit_rows():
        for wo in wos:
            row = list(circuit)
            row[0] = "{" + str(uuid.uuid4()).upper() + "}"
            row[1], row[2] = wo, "@"
            yield row

    def unit_rows():
        k = 0
        for i, wo in enumerate(wos):
            for j in range(per_circuit if i < n_circuits - 1 else rows - per_circuit * i):
                row = list(units[k % len(units)])
                row[wo_col], row[ext_col] = wo, "@"
                row[id_col] = (start + i) * 10_000 + j + 1
                k += 1
                yield row

    c = directory / f"circuits_{tag}_{AS_OF}.csv"
    u = directory / f"planned_units_{tag}_{AS_OF}.csv"
    write_csv(c, list(CIRCUIT_LIST_HEADING), circuit_rows())
    n = write_csv(u, heading, unit_rows())
    return c, u, n


_CHILD = ("import resource, sys\n"
          "from ws_tracker.cli import main\n"
          "rc = main(sys.argv[1:])\n"
          "print('peak_rss_kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
          "sys.exit(rc)\n")


def commit(path: Path, env: dict) -> tuple[float, float]:
    """(seconds, peak RSS MiB) of `ws-tracker import commit PATH` in a process of its own."""
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _CHILD, "import", "commit", str(path),
                           "--by", "bench"], env=env, cwd=REPO, stdout=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - t0
    lines = done.stdout.rstrip().splitlines()
    print("\n".join(line for line in lines if not line.startswith("peak_rss_kib")), flush=True)
    if done.returncode != 0:
        raise SystemExit(f"import of {path.name} failed ({done.returncode})")
    kib = int(next(line for line in lines if line.startswith("peak_rss_kib")).split()[1])
    return seconds, kib / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--units", type=int, default=200, help="units per circuit")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        url = with_database(embedded.start(home), "bench")
        ensure_database(url)
        upgrade(url)
        env = {**os.environ, "WS_TRACKER_DATABASE_URL": url, "WS_TRACKER_HOME": str(home)}
        try:
            results = []
            for tag, rows, start in (("small", args.small, 0), ("large", args.rows, 100_000)):
                t0 = time.perf_counter()
                c, u, n = write_files(home, tag, rows, args.units, start)
                print(f"wrote {n:,} unit rows ({u.stat().st_size / 2**20:.0f} MiB) in "
                      f"{time.perf_counter() - t0:.1f} s", flush=True)
                commit(c, env)
                seconds, rss = commit(u, env)
                results.append((n, seconds, rss))
            print()
            print(f"{'rows':>10} {'seconds':>8} {'rows/s':>8} {'peak RSS MiB':>13}")
            for n, seconds, rss in results:
                print(f"{n:>10,} {seconds:>8.1f} {n / seconds:>8,.0f} {rss:>13.0f}")
        finally:
            embedded.stop(home)


if __name__ == "__main__":
    main()
