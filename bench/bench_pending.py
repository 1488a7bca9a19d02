"""Benchmarks of issue 7 not written yet: listed in BENCHMARKS.md as "not yet measured".

None left: "e2e_10x" is bench_e2e.py, "writes" is bench_writes.py. A new placeholder::

    placeholder("name", "Title", measures="...", floors=[Floor("key", "<=", 1.0, "text")])
"""

from __future__ import annotations

from suite import Floor, placeholder  # noqa: F401
