"""Batch speed-up with 2 worker processes vs the in-process loop (same inputs, one run).

Inputs: copies of the sample head (default 4). Each variant processes them all into its own
output directory; the figure is sequential time / pool time (ideal on 2 cores: 2.0).
Usage: ``python benchmarks/bench_batch.py [--files N]``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import _common  # noqa: F401
from _common import sample_path, table, timed


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--files", type=int, default=4)
    args = ap.parse_args(argv)

    from opentelemetry import metrics, trace

    from pipeline.config import PipelineConfig
    from pipeline.parallel import run_batch
    from pipeline.processor import process_batch
    from pipeline.telemetry import PipelineTelemetry

    tmp = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    inputs = []
    for i in range(args.files):
        p = tmp / "in" / f"sub-{i:03d}_T1w.nii.gz"
        p.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(sample_path(), p)
        inputs.append(p)
    config = PipelineConfig.create()
    tm = PipelineTelemetry(trace.NoOpTracerProvider(), metrics.NoOpMeterProvider())
    env = {"OTEL_TRACES_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"}

    def sequential() -> None:
        r = process_batch(inputs, tmp / "seq", config, telemetry=tm)
        assert not r.failed

    def pool() -> None:
        r = process_batch(inputs, tmp / "pool", config, telemetry=tm,
                          runner=lambda paths, ctx: run_batch(paths, tmp / "pool", config, batch_context=ctx,
                                                              workers=2, env=env, telemetry=tm))
        assert not r.failed

    t_pool = timed(pool)
    t_seq = timed(sequential)
    text = f"### Batch of {args.files} sample heads: 2 worker processes vs in-process\n\n" + table(
        ("variant", "wall", "speed-up"),
        [("in-process loop", f"{t_seq:.1f} s", "1.00x"), ("pool, 2 spawned workers", f"{t_pool:.1f} s", f"{t_seq / t_pool:.2f}x")],
    )
    print(text)
    return text


if __name__ == "__main__":
    main()
