"""Benchmarks of issue 7 not written yet: listed in BENCHMARKS.md as "not yet measured"."""

from __future__ import annotations

from suite import Floor, placeholder

placeholder(
    "e2e_10x", "End to end at 10x scale",
    measures=("5,000 circuits x 200 units = 1,000,000 planned units at L = 0: whole-pipeline "
              "wall time, peak RSS, and the time spent only downloading and decoding the same "
              "responses (the floor no pipeline can beat)."),
    floors=[Floor("e2e_vs_floor", "<=", 4.0, "1,000,000 units end to end in <= 4x the "
                  "download-and-decode floor"),
            Floor("peak_rss_gib", "<", 1.0, "peak RSS < 1 GiB")],
)

placeholder(
    "writes", "Warehouse writes",
    measures=("Our warehouse writes vs a per-row select-then-insert-or-update of the same rows "
              "(the earlier system's pattern) vs a raw COPY of the same rows."),
    floors=[Floor("vs_copy", "<=", 1.5, "writes within 1.5x of raw COPY"),
            Floor("vs_per_row", ">=", 10.0, ">= 10x the per-row pattern")],
)
