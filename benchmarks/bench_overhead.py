"""Instrumentation overhead of ``process_file``: SDK with in-memory export vs no-op providers.

Goals (issue 7): <= 1 % on the sample head, <= 3 % on a 64^3 volume. A and B alternate in one run;
the figure is the ratio of medians. Usage: ``python benchmarks/bench_overhead.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import _common  # noqa: F401  (sys.path)
from _common import interleaved, median, sample_path, table


def _providers(sdk: bool):
    from opentelemetry import metrics, trace

    if not sdk:
        return trace.NoOpTracerProvider(), metrics.NoOpMeterProvider(), None
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogExporter, SimpleLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    lp = LoggerProvider()
    lp.add_log_record_processor(SimpleLogRecordProcessor(InMemoryLogExporter()))
    return tp, MeterProvider(metric_readers=[InMemoryMetricReader()]), lp


def measure(path: Path, rounds: int) -> tuple[float, float]:
    from opentelemetry.sdk._logs import LoggingHandler

    from pipeline.config import PipelineConfig
    from pipeline.processor import process_file
    from pipeline.telemetry import PipelineTelemetry

    config = PipelineConfig.create()
    sdk_tp, sdk_mp, sdk_lp = _providers(True)
    noop_tp, noop_mp, _ = _providers(False)
    sdk_tm, noop_tm = PipelineTelemetry(sdk_tp, sdk_mp), PipelineTelemetry(noop_tp, noop_mp)
    handler = LoggingHandler(logger_provider=sdk_lp)
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    out = Path(tempfile.mkdtemp(prefix="bench-overhead-"))

    def with_sdk() -> None:
        root.addHandler(handler)
        try:
            assert process_file(path, out / "sdk", config, telemetry=sdk_tm).ok
        finally:
            root.removeHandler(handler)

    def without() -> None:
        assert process_file(path, out / "noop", config, telemetry=noop_tm).ok

    ta, tb = interleaved(with_sdk, without, rounds)
    return median(ta), median(tb)


def small_volume() -> Path:
    import nibabel as nib

    from pipeline.phantom import make_head_phantom

    p = Path(tempfile.mkdtemp(prefix="bench-64-")) / "phantom64_T1w.nii.gz"
    nib.save(make_head_phantom(shape=(64, 64, 64), voxel_size_mm=(3.0, 3.0, 3.0)), p)
    return p


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=5, help="A/B pairs on the sample head")
    ap.add_argument("--small-rounds", type=int, default=21, help="A/B pairs on the 64^3 volume")
    args = ap.parse_args(argv)
    rows = []
    for label, path, rounds, goal in (
        ("64^3 phantom", small_volume(), args.small_rounds, "<= 3 %"),
        ("sample head 176x256x256", sample_path(), args.rounds, "<= 1 %"),
    ):
        sdk, noop = measure(path, rounds)
        rows.append((label, rounds, f"{noop:.3f} s", f"{sdk:.3f} s", f"{(sdk / noop - 1) * 100:+.2f} %", goal))
    text = "### Instrumentation overhead of process_file (SDK in-memory vs no-op)\n\n" + table(
        ("input", "pairs", "no-op median", "SDK median", "overhead", "goal"), rows
    )
    print(text)
    return text


if __name__ == "__main__":
    main()
