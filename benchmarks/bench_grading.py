"""Benchmark: grade 100 submissions with ``-j 2`` (not collected by pytest; run it directly).

    python benchmarks/bench_grading.py [--count 100] [--jobs 2] [--timeout-s 30]

The submissions cycle through the reference, the starter and the common mistakes that finish (the
infinite loop is left out: it would only measure the time limit). Prints the wall time, the
per-submission figure and the status counts. Goal: under 3 minutes for 100 on 2 cores.
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import time
from pathlib import Path

from grading.engine import GradeConfig, grade_many
from grading.mistakes import load_mistakes, materialise_mistake
from grading.starter import materialise, reference_package, write_starter


def build_submissions(root: Path, count: int) -> list[Path]:
    """``count`` submission directories cycling through reference, starter and finishing mistakes."""
    kinds: list[tuple[str, object]] = [("reference", None), ("starter", None)]
    kinds += [(m.id, m) for m in load_mistakes() if m.expect_status != "timeout"]
    out = []
    for i in range(count):
        name, mistake = kinds[i % len(kinds)]
        dest = root / f"{i:03d}-{name}"
        if name == "reference":
            materialise(reference_package(), dest / "pipeline", ())
        elif name == "starter":
            write_starter(dest)
        else:
            materialise_mistake(mistake, dest)  # type: ignore[arg-type]
        out.append(dest)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout-s", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        subs = build_submissions(Path(tmp), args.count)
        start = time.perf_counter()
        results = grade_many(subs, jobs=args.jobs, config=GradeConfig(timeout_s=args.timeout_s))
        elapsed = time.perf_counter() - start
    statuses = collections.Counter(r.status for r in results)
    runs = sorted(r.duration_s for r in results)
    print(
        f"graded {len(results)} submissions with -j {args.jobs} in {elapsed:.1f} s "
        f"({elapsed / len(results):.2f} s per submission wall, median run {runs[len(runs) // 2]:.2f} s, "
        f"slowest run {runs[-1]:.2f} s)"
    )
    print("statuses: " + ", ".join(f"{k}={v}" for k, v in sorted(statuses.items())))
    print(f"goal < 180 s: {'met' if elapsed < 180 else 'NOT met'}")


if __name__ == "__main__":
    main()
