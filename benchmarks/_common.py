"""Shared helpers for the benchmark scripts: interleaved A/B timing and markdown tables.

Machines here are noisy: every comparison is measured in one run, A and B alternating, and reported
as medians and the ratio of medians (never as a pass/fail threshold).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def interleaved(a: Callable[[], object], b: Callable[[], object], rounds: int, warmup: int = 1) -> tuple[list[float], list[float]]:
    """Run A and B alternately (A B A B ...) after ``warmup`` rounds; returns both lists of seconds."""
    for _ in range(warmup):
        a()
        b()
    ta, tb = [], []
    for i in range(rounds):
        # alternate who goes first so a drifting machine does not favour one side
        if i % 2 == 0:
            ta.append(timed(a))
            tb.append(timed(b))
        else:
            tb.append(timed(b))
            ta.append(timed(a))
    return ta, tb


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(v: object) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def sample_path() -> Path:
    from pipeline.sample_data import sample_t1w_path

    return Path(sample_t1w_path())
