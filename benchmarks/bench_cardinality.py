"""Benchmark the cardinality checks, the sensitive-data scan and the instrumentation lint.

Synthetic, pipeline-shaped telemetry (``process_file`` roots with stage children, attributes with
a few id-like and sensitive values; metric points over a bounded and an unbounded attribute) at
1k, 10k and 100k spans and as many metric points, so the growth of the cost is visible: every check
should stay linear (the "per item" column roughly flat). Not a pytest test:

    python benchmarks/bench_cardinality.py [--sizes 1000 10000 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from telemetry_asserts.cardinality import attribute_cardinality, find_id_like, series_count
from telemetry_asserts.lint import lint
from telemetry_asserts.model import Attributes, MetricKind, MetricPoint, Span, Telemetry
from telemetry_asserts.sensitive import find_sensitive

STAGES = ("load_file", "bias_correction", "skull_strip", "normalize", "smooth", "write_output")


def make_telemetry(n_spans: int, n_points: int) -> Telemetry:
    """``n_spans`` spans in traces of 1 root + 6 stages (10 loop-ish children under every 50th
    root), and ``n_points`` counter points."""
    spans: list[Span] = []
    trace = 0
    sid = 1
    ms = 1_000_000
    while len(spans) < n_spans:
        trace += 1
        root = Span(
            "process_file",
            trace,
            sid,
            start_time_ns=0,
            end_time_ns=500 * ms,
            attributes=Attributes(
                {
                    "neuro.file.name": f"sub-{trace:05d}_T1w.nii.gz",
                    "neuro.file.status": "success",
                    "neuro.subject_id": f"sub-{trace:05d}",
                }
            ),
        )
        spans.append(root)
        sid += 1
        for i, stage in enumerate(STAGES):
            if len(spans) >= n_spans:
                break
            attrs = {"neuro.stage.name": stage, "neuro.stage.index": i}
            if trace % 97 == 0 and i == 0:
                attrs["user.email"] = f"user{trace}@example.org"
            spans.append(
                Span(
                    stage,
                    trace,
                    sid,
                    parent_span_id=root.span_id,
                    start_time_ns=i * ms,
                    end_time_ns=(i + 1) * ms,
                    attributes=Attributes(attrs),
                )
            )
            sid += 1
    points = [
        MetricPoint(
            "neuro.stages.executed",
            MetricKind.COUNTER,
            Attributes(
                {
                    "stage": STAGES[i % len(STAGES)],
                    "status": "ok" if i % 10 else "failed",
                    "file.path": f"/data/sub-{i % 5000:05d}/anat/T1w.nii.gz",
                }
            ),
            value=1,
        )
        for i in range(n_points)
    ]
    return Telemetry(tuple(spans[:n_spans]), tuple(points))


def best_of(repeat: int, fn: Callable[[], Any]) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    checks: dict[str, Callable[[Telemetry], Any]] = {
        "attribute_cardinality(spans)": lambda t: attribute_cardinality(t.spans),
        "series_count(points)": lambda t: series_count(t.metrics),
        "find_id_like(points)": lambda t: find_id_like(t.metrics),
        "find_sensitive(all)": lambda t: find_sensitive(t),
        "lint(all rules)": lambda t: lint(t),
    }
    print(f"{'check':32} {'items':>8} {'seconds':>9} {'us/item':>8}")
    previous: dict[str, float] = {}
    for n in args.sizes:
        telemetry = make_telemetry(n, n)
        for name, check in checks.items():
            seconds = best_of(args.repeat if n < 100_000 else 1, lambda c=check, t=telemetry: c(t))
            per_item = seconds / n * 1e6
            growth = f"  x{per_item / previous[name]:.2f} per item" if name in previous else ""
            previous[name] = per_item
            print(f"{name:32} {n:>8} {seconds:>9.4f} {per_item:>8.2f}{growth}")
    report = lint(make_telemetry(args.sizes[0], args.sizes[0]))
    print(f"\nfindings on the synthetic data ({args.sizes[0]} items): {', '.join(report.rules()) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
