"""The benchmark registry and what every benchmark shares (bench/run.py drives it).

A benchmark is a function decorated with :func:`benchmark`. It receives a :class:`Context`
and is a context manager: it sets up (simulator, databases, warm-up), then yields a
``measure()`` callable that runs ONE repetition and returns ``{figure key: value}``, every
figure and ratio of that repetition measured side by side. The runner calls ``measure()``
``repeats`` times (>= 3), reports each figure's median, min and max, and checks the floors on
the medians. Setup and teardown are never timed. A benchmark registered without a function
is a placeholder: BENCHMARKS.md says "not yet measured".

Adding one (issue 7: end to end at 10x, writes, ...)::

    @benchmark("writes", "Warehouse writes", measures="...",
               figures=[Figure("ours_s", "our writes", "s"), ...],
               floors=[Floor("copy_ratio", "<=", 1.5, "within 1.5x of raw COPY")])
    @contextmanager
    def writes(ctx: Context):
        url = ctx.fresh_database()
        ...
        yield lambda: {"ours_s": ..., "copy_ratio": ...}
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    unit: str  # "s", "calls", "x", "MiB", "%", "" ...


@dataclass(frozen=True)
class Floor:
    key: str  # a figure key; the floor is checked on its median
    op: str  # "<=" | ">=" | "<" | ">"
    limit: float
    text: str  # the wording
    measured: bool = True  # False: the floor is listed as "not yet measured"
    # A figure key: the most any writer of the same rows could reach (e.g. the per-row
    # pattern vs a raw COPY); shown beside the verdict so a FAIL says whether it was reachable.
    ceiling: str | None = None

    def check(self, value: float) -> bool:
        return {"<=": value <= self.limit, ">=": value >= self.limit,
                "<": value < self.limit, ">": value > self.limit}[self.op]


Measure = Callable[[], dict[str, float]]


@dataclass
class Benchmark:
    name: str
    title: str
    measures: str  # what it measures (markdown)
    figures: list[Figure]
    floors: list[Floor]
    run: Callable[[Context], AbstractContextManager[Measure]] | None = None
    repeats: int = 3  # at least this many runs, whatever --repeats says

    @property
    def measured(self) -> bool:
        return self.run is not None


REGISTRY: dict[str, Benchmark] = {}


def benchmark(name: str, title: str, *, measures: str, figures: list[Figure] = (),
              floors: list[Floor] = (), repeats: int = 3):
    """Register the decorated context-manager function as benchmark ``name`` (measured at
    least ``repeats`` times)."""
    def decorate(fn):
        REGISTRY[name] = Benchmark(name, title, measures, list(figures), list(floors), fn,
                                   repeats)
        return fn
    return decorate


def placeholder(name: str, title: str, *, measures: str, floors: list[Floor] = ()) -> None:
    """A benchmark of the issue not written yet: listed as "not yet measured"."""
    REGISTRY[name] = Benchmark(name, title, measures, [],
                               [Floor(f.key, f.op, f.limit, f.text, measured=False) for f in floors])


@dataclass
class Context:
    """What a benchmark may use: the mode, notes for the report, a shared PostgreSQL."""

    quick: bool
    notes: list[str] = field(default_factory=list)  # markdown bullets for this benchmark
    session: Session | None = None

    def note(self, text: str) -> None:
        self.notes.append(text)

    def fresh_database(self) -> str:
        """A new, migrated warehouse database on the bench's embedded PostgreSQL."""
        return self.session.fresh_database()

    def clone_database(self, template_url: str) -> str:
        return self.session.clone_database(template_url)

    def drop_database(self, url: str) -> None:
        self.session.drop_database(url)

    def checkpoint(self) -> None:
        """CHECKPOINT: the writes of what ran before (a writer, a database copy) flushed, so
        the next timed writer does not share the disk with them."""
        self.session.checkpoint()


class Session:
    """One throwaway embedded PostgreSQL for the whole run, started on first use.

    The schema is migrated once into a template; each database handed out is a copy of it
    (CREATE DATABASE .. TEMPLATE), as the test suite does.
    """

    def __init__(self) -> None:
        self.home: Path | None = None
        self.server_url: str | None = None
        self._template: str | None = None
        self._dbs: list[str] = []

    def _start(self) -> str:
        if self.server_url is None:
            from ws_tracker.warehouse import embedded

            self.home = Path(tempfile.mkdtemp(prefix="ws_tracker_bench_pg_"))
            os.chmod(self.home, 0o755)  # the server's own OS user must reach it (root runs)
            self.server_url = embedded.start(self.home)
        return self.server_url

    def _admin(self, sql: str) -> None:
        from ws_tracker.warehouse.engine import make_engine, with_database

        engine = make_engine(with_database(self._start(), "postgres"), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(sa.text(sql))
        finally:
            engine.dispose()

    def postgres_version(self) -> str:
        from ws_tracker.warehouse.engine import make_engine, with_database

        engine = make_engine(with_database(self._start(), "postgres"))
        try:
            with engine.connect() as conn:
                return conn.execute(sa.text("SHOW server_version")).scalar_one()
        finally:
            engine.dispose()

    def fresh_database(self) -> str:
        from ws_tracker.warehouse.engine import with_database
        from ws_tracker.warehouse.migrate import upgrade

        if self._template is None:
            self._template = f"bench_template_{uuid.uuid4().hex[:8]}"
            self._admin(f'CREATE DATABASE "{self._template}"')
            upgrade(with_database(self._start(), self._template))
        return self.clone_database(with_database(self._start(), self._template))

    def clone_database(self, template_url: str) -> str:
        from ws_tracker.warehouse.engine import database_name, with_database

        release_engine(template_url)  # CREATE DATABASE .. TEMPLATE needs it unused
        name = f"bench_{uuid.uuid4().hex[:10]}"
        self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{database_name(template_url)}"')
        self._dbs.append(name)
        return with_database(self._start(), name)

    def checkpoint(self) -> None:
        self._admin("CHECKPOINT")

    def drop_database(self, url: str) -> None:
        from ws_tracker.warehouse.engine import database_name

        release_engine(url)
        self._admin(f'DROP DATABASE IF EXISTS "{database_name(url)}" WITH (FORCE)')

    def close(self) -> None:
        if self.server_url is None:
            return
        from ws_tracker.warehouse import embedded

        embedded.stop(self.home)
        shutil.rmtree(self.home, ignore_errors=True)
        self.server_url = None


def release_engine(url: str) -> None:
    """Dispose of the warehouse resource's cached engine for ``url`` (its pooled connections)."""
    from ws_tracker.warehouse import resource

    with resource._LOCK:
        engine = resource._ENGINES.pop(url, None)
    if engine is not None:
        engine.dispose()


def timed(fn: Callable[[], object]) -> float:
    import time

    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run_benchmark(bench: Benchmark, ctx: Context, repeats: int,
                  progress: Callable[[str], None] = print) -> list[dict[str, float]]:
    """Set ``bench`` up once, measure it ``repeats`` times, tear down; the samples."""
    repeats = max(repeats, bench.repeats)
    samples: list[dict[str, float]] = []
    with bench.run(ctx) as measure:
        for i in range(repeats):
            sample = measure()
            samples.append(sample)
            shown = ", ".join(f"{k}={v:.3g}" for k, v in sample.items())
            progress(f"  [{bench.name}] run {i + 1}/{repeats}: {shown}")
    return samples


def iter_registry(only: list[str] | None) -> Iterator[Benchmark]:
    for name, bench in REGISTRY.items():
        if not only or name in only:
            yield bench
