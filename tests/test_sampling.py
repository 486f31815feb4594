"""Sampling instead of on/off switches: with OTEL_TRACES_SAMPLER sampling a file out, no span is
exported, yet every metric counts the work, its logs are still written and so are its outputs."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nibabel as nib
import pytest
from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

from pipeline.cli import main
from pipeline.config import PipelineConfig
from pipeline.phantom import make_head_phantom
from pipeline.processor import process_batch
from pipeline.registry import RunRegistry
from pipeline.summary import TelemetrySummary
from pipeline.telemetry import TelemetrySetup, configure_from_env
from telemetry_asserts.capture import logs_from_sdk, metrics_from_sdk
from telemetry_asserts.model import MetricKind, Telemetry

FAST = ("skull_strip", "normalize", "smooth")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("inputs")
    good = d / "sub-01_T1w.nii.gz"
    nib.save(make_head_phantom(shape=(32, 32, 32), voxel_size_mm=(6.0, 6.0, 6.0)), good)
    second = d / "sub-02_T1w.nii.gz"
    second.write_bytes(good.read_bytes())
    bad = d / "sub-03_T1w.nii.gz"
    bad.write_bytes(b"")
    return [good, second, bad]


class Run:
    def __init__(self, setup: TelemetrySetup, summary: TelemetrySummary, logs: InMemoryLogRecordExporter) -> None:
        self.setup, self.summary, self.logs = setup, summary, logs

    def telemetry(self) -> Telemetry:
        from telemetry_asserts.capture import spans_from_sdk

        return Telemetry(
            spans_from_sdk(self.summary.span_exporter.get_finished_spans()),
            metrics_from_sdk(self.summary.metric_reader.get_metrics_data()),
            logs_from_sdk(self.logs.get_finished_logs()),
        )


@contextmanager
def configured(env: dict[str, str]) -> Iterator[Run]:
    summary, logs = TelemetrySummary(), InMemoryLogRecordExporter()
    setup = configure_from_env(env, extra_log_processors=[SimpleLogRecordProcessor(logs)], **summary.extras())
    setup.instrument_logging(logging.INFO)
    root = logging.getLogger()
    old = root.level
    root.setLevel(logging.INFO)
    sqlite = SQLite3Instrumentor()
    sqlite.instrument(tracer_provider=setup.tracer_provider)
    try:
        yield Run(setup, summary, logs)
    finally:
        sqlite.uninstrument()
        root.setLevel(old)
        setup.shutdown(2)


def value(t: Telemetry, name: str, **attrs: object) -> float:
    points = [p for p in t.metrics if p.name == name and dict(p.attributes) == attrs]
    assert len(points) == 1, (name, attrs, points)
    return points[0].count if points[0].kind is MetricKind.HISTOGRAM else points[0].value  # type: ignore[return-value]


def run_batch(run: Run, inputs: list[Path], out: Path) -> None:
    out.mkdir()
    batch = process_batch(inputs, out, PipelineConfig.create(FAST), telemetry=run.setup.telemetry(),
                          registry=RunRegistry.in_dir(out))
    assert [r.status for r in batch.results] == ["success", "success", "failed"]


@pytest.mark.parametrize(
    "env",
    [
        {"OTEL_TRACES_SAMPLER": "always_off"},
        {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"},
        {"OTEL_TRACES_SAMPLER": "parentbased_always_off"},
    ],
    ids=["always_off", "ratio_0", "parentbased_always_off"],
)
def test_sampled_out_files_export_no_span_but_count_log_and_write(env: dict[str, str], inputs: list[Path],
                                                                   tmp_path: Path) -> None:
    with configured(env) as run:
        run_batch(run, inputs, tmp_path / "out")
        t = run.telemetry()

    assert t.spans == ()  # not one span: no manual, no sqlite, no batch span
    assert value(t, "neuro.files.processed", status="success") == 2
    assert value(t, "neuro.files.processed", status="failed") == 1
    assert value(t, "neuro.stages.executed", stage="smooth") == 2
    assert value(t, "neuro.process.duration", status="success") == 2
    assert value(t, "neuro.input.size") == 3  # the empty input counts as a file of 0 bytes
    bodies = [r.body for r in t.logs]
    assert bodies.count("Loading file") == 2 and bodies.count("Processed file") == 2
    assert [r.severity_text for r in t.logs if str(r.body).startswith("Processing failed")] == ["ERROR"]
    assert all(not (r.trace_flags & 1) for r in t.logs)  # logs say the trace was not sampled
    assert sorted(p.name for p in (tmp_path / "out").glob("sub-*")) == [
        "sub-01_T1w_metadata.json", "sub-01_T1w_preproc.nii.gz", "sub-02_T1w_metadata.json", "sub-02_T1w_preproc.nii.gz"]
    assert [r.status for r in RunRegistry.in_dir(tmp_path / "out").records()] == ["success", "success", "failed"]


def test_always_on_exports_everything_with_the_same_metrics(inputs: list[Path], tmp_path: Path) -> None:
    with configured({"OTEL_TRACES_SAMPLER": "always_on"}) as run:
        run_batch(run, inputs, tmp_path / "out")
        t = run.telemetry()

    names = [s.name for s in t.spans]
    assert names.count("process_file") == 3 and names.count("process_batch") == 1 and "INSERT" in names
    assert value(t, "neuro.files.processed", status="success") == 2
    assert value(t, "neuro.stages.executed", stage="smooth") == 2
    assert all(r.is_correlated and r.trace_flags & 1 for r in t.logs if r.body == "Loading file")


def test_cli_summary_under_always_off_shows_no_spans_and_full_counts(inputs: list[Path], tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}, "OTEL_TRACES_SAMPLER": "always_off"}
    out, err = io.StringIO(), io.StringIO()

    code = main(["process", *map(str, inputs[:2]), "-o", str(tmp_path / "out"), "--stages", "smooth",
                 "--telemetry-summary"], env=env, stdout=out, stderr=err)

    assert code == 0, err.getvalue()
    lines = out.getvalue().splitlines()
    assert lines[1:3] == ["== Telemetry summary: 0 spans in 0 traces ==",
                          "(no spans recorded) (OTEL_TRACES_SAMPLER=always_off)"]
    assert "  {status='success'} value=2" in lines and "  {stage='smooth'} value=2" in lines
