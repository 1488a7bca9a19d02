"""A small sampling profiler for every thread of a process (cProfile sees only one thread).

Every ``interval`` seconds a background thread reads ``sys._current_frames()`` and counts, per
function, the samples in which it is the innermost frame of a thread ("self") and those in
which it is anywhere on the stack ("total"). Idle pool workers (waiting for work) and the
sampler itself are skipped, so the counts are where the threads spend their working time,
waiting on a socket, on PostgreSQL or on another thread included.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from pathlib import Path

def _where(code) -> str:
    path = Path(code.co_filename)
    parts = path.parts
    short = "/".join(parts[parts.index("site-packages") + 1:]) if "site-packages" in parts else (
        "/".join(parts[parts.index("ws_tracker"):]) if "ws_tracker" in parts else path.name)
    return f"{short}:{code.co_firstlineno}({code.co_name})"


class Sampler:
    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.self_counts: Counter[str] = Counter()
        self.total_counts: Counter[str] = Counter()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @staticmethod
    def _idle(frame) -> bool:
        # A pool worker with no work sits in SimpleQueue.get, a C call: its innermost Python
        # frame is the worker loop itself.
        return (frame.f_code.co_name == "_worker"
                and Path(frame.f_code.co_filename).name == "thread.py")

    def _run(self) -> None:
        me = threading.get_ident()
        while not self._stop.wait(self.interval):
            for ident, frame in sys._current_frames().items():
                if ident == me or self._idle(frame):
                    continue
                self.samples += 1
                self.self_counts[_where(frame.f_code)] += 1
                seen = set()
                while frame is not None:
                    key = _where(frame.f_code)
                    if key not in seen:
                        seen.add(key)
                        self.total_counts[key] += 1
                    frame = frame.f_back

    def top(self, n: int = 5, *, own_only: bool = False, total: bool = False
            ) -> list[tuple[str, float]]:
        """The ``n`` functions with the most samples, as (function, share of samples)."""
        counts = self.total_counts if total else self.self_counts
        items = [(k, v) for k, v in counts.most_common()
                 if not own_only or k.startswith("ws_tracker/")]
        return [(k, v / max(self.samples, 1)) for k, v in items[:n]]
