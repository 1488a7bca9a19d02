"""RELIABILITY.md, produced by the fault suite (ws_tracker_tests/test_reliability.py).

Each reliability test records, through the ``reliability`` fixture, the fault or bad input it
injected, what the project did, and its figures: faults injected, runs, rows checked and rows
lost (rows stored before the fault that were missing or changed afterwards). When every test of
the suite ran and passed, the session writes RELIABILITY.md at the repository root from those
records; a partial or failing run leaves the file alone (its table would not be the suite's).
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "RELIABILITY.md"
SUITE = "ws_tracker_tests/test_reliability.py"


@dataclass
class Record:
    fault: str
    outcome: str
    test: str
    faults_injected: int = 0
    runs: int = 0
    rows_checked: int = 0
    rows_lost: int = 0


@dataclass
class Recorder:
    records: list[Record] = field(default_factory=list)
    collected: set[str] = field(default_factory=set)
    passed: set[str] = field(default_factory=set)

    def add(self, node: str, fault: str, outcome: str, **figures: int) -> Record:
        rec = Record(fault, outcome, node, **figures)
        self.records.append(rec)
        return rec

    def complete(self) -> bool:
        return bool(self.collected) and self.collected == self.passed and bool(self.records)

    def render(self) -> str:
        total = Record("", "", "")
        for r in self.records:
            total.faults_injected += r.faults_injected
            total.runs += r.runs
            total.rows_checked += r.rows_checked
            total.rows_lost += r.rows_lost
        now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        lines = [
            "# Reliability",
            "",
            f"Produced by `{SUITE}` (run by `make test`; alone: `.venv/bin/python -m pytest "
            f"{SUITE}`) on {now}, {platform.system()} {platform.machine()}, "
            f"Python {platform.python_version()}. Do not edit by hand: the suite rewrites this "
            "file when every one of its tests passes.",
            "",
            f"**Last run:** {total.faults_injected} faults injected, {total.runs} runs, "
            f"{total.rows_checked} stored rows checked, **{total.rows_lost} rows lost**.",
            "",
            "Rows checked: rows stored before the fault (or by a clean run) compared, column by "
            "column, with the tables afterwards. Rows lost: any of them missing or changed.",
            "",
            "| fault or bad input | what the project does | test | faults | runs | rows checked | rows lost |",
            "|---|---|---|---:|---:|---:|---:|",
        ]
        for r in self.records:
            name = r.test.split("::", 1)[-1]
            lines.append(f"| {r.fault} | {r.outcome} | `{name}` | {r.faults_injected} | {r.runs} "
                         f"| {r.rows_checked} | {r.rows_lost} |")
        lines.append(f"| **total** | | | {total.faults_injected} | {total.runs} | "
                     f"{total.rows_checked} | {total.rows_lost} |")
        return "\n".join(lines) + "\n"


RECORDER = Recorder()


def _in_suite(item) -> bool:
    return item.nodeid.startswith(SUITE)


def pytest_collection_modifyitems(session, config, items):
    RECORDER.collected = {i.nodeid for i in items if _in_suite(i)}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if _in_suite(item) and report.when == "call" and report.passed:
        RECORDER.passed.add(item.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if RECORDER.complete():
        OUTPUT.write_text(RECORDER.render())


@pytest.fixture
def reliability(request):
    """``reliability(fault, outcome, faults_injected=.., runs=.., rows_checked=.., rows_lost=..)``"""
    def record(fault: str, outcome: str, **figures: int) -> Record:
        return RECORDER.add(request.node.nodeid, fault, outcome, **figures)
    return record
