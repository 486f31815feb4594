"""process_file / process_batch: the span tree, attributes, events, metrics, logs and outputs.

Telemetry comes from the telemetry_asserts plugin's ``telemetry`` fixture (real SDK providers in
memory) injected into :class:`PipelineTelemetry`; inputs are small synthetic heads (32^3, 6 mm voxels).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from pipeline.config import PipelineConfig
from pipeline.processor import output_paths, process_batch, process_file
from pipeline.registry import RunRegistry
from pipeline.stages import DEFAULT_STAGES
from pipeline.telemetry import SCOPE_NAME, PipelineTelemetry
from telemetry_asserts.model import MetricKind, Span, StatusCode, Telemetry
from telemetry_asserts.view import LiveTelemetryView

FAST = ("skull_strip", "normalize", "smooth")


@pytest.fixture
def capture(telemetry: LiveTelemetryView) -> Iterator[LiveTelemetryView]:
    """The telemetry_asserts plugin's per-test capture, with the pipeline's DEBUG records too."""
    logger = logging.getLogger("pipeline")
    old = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        yield telemetry
    finally:
        logger.setLevel(old)


@pytest.fixture
def tm(capture: LiveTelemetryView) -> PipelineTelemetry:
    return PipelineTelemetry(capture.tracer_provider, capture.meter_provider)


def one(spans: tuple[Span, ...] | list[Span], name: str) -> Span:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, f"expected one span {name!r}, got {len(found)}: {[s.name for s in spans]}"
    return found[0]


def children(spans: tuple[Span, ...], parent: Span) -> list[str]:
    return [s.name for s in sorted(spans, key=lambda s: s.start_time_ns) if s.parent_span_id == parent.span_id]


def metric(t: Telemetry, name: str, **attrs: object) -> float:
    points = [p for p in t.metrics if p.name == name and dict(p.attributes) == attrs]
    if not points:
        return 0
    p = points[0]
    return p.count if p.kind is MetricKind.HISTOGRAM else p.value  # type: ignore[return-value]


def test_full_pipeline_span_tree_outputs_and_metadata(phantom: Path, tmp_path: Path, capture: LiveTelemetryView,
                                                      tm: PipelineTelemetry) -> None:
    result = process_file(phantom, tmp_path, PipelineConfig.create(), telemetry=tm)

    assert result.status == "success", result.error
    capture.spans.assert_tree(
        """
        process_file
        ├─ load_file
        ├─ process_image
        │  ├─ bias_correction
        │  ├─ skull_strip
        │  ├─ normalize
        │  ├─ smooth
        │  └─ resample
        └─ write_output
           └─ write_metadata
        """,
        exact=True,
        ordered=True,
    )
    t = capture.snapshot()
    root = one(t.spans, "process_file")
    assert root.is_root and root.status_code is StatusCode.UNSET
    assert children(t.spans, root) == ["load_file", "process_image", "write_output"]
    assert children(t.spans, one(t.spans, "process_image")) == list(DEFAULT_STAGES)
    assert {s.trace_id for s in t.spans} == {root.trace_id}
    assert result.trace_id == root.trace_id_hex
    assert root.scope.name == SCOPE_NAME

    paths = output_paths(phantom, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([paths["image"].name, paths["metadata"].name])
    meta = json.loads(paths["metadata"].read_text())
    assert meta["stages"] == list(DEFAULT_STAGES)
    assert meta["input"]["sha256"] == result.checksum and len(result.checksum or "") == 64
    assert set(meta["durations_s"]) == set(DEFAULT_STAGES)
    assert {"python", "numpy", "nibabel", "scipy", "SimpleITK", "opentelemetry-sdk", "neuro-otel-harness"} <= set(
        meta["software"]
    )
    assert meta["parameters"]["smooth"]["fwhm_mm"] == 6.0
    out = nib.load(paths["image"])
    assert out.header.get_zooms()[:3] == pytest.approx((2.0, 2.0, 2.0))  # resampled to the default 2 mm
    write_metadata = one(t.spans, "write_metadata")
    assert write_metadata.attributes["metadata.path"] == paths["metadata"].name
    assert write_metadata.attributes["metadata.size_bytes"] == paths["metadata"].stat().st_size


def test_root_and_stage_attributes_are_semantic_and_path_free(phantom: Path, tmp_path: Path, capture: LiveTelemetryView,
                                                              tm: PipelineTelemetry) -> None:
    process_file(phantom, tmp_path / "out", PipelineConfig.create(FAST), telemetry=tm)

    t = capture.snapshot()
    root = one(t.spans, "process_file")
    assert root.attributes["neuro.file.name"] == "sub-01_T1w.nii.gz"
    assert root.attributes["neuro.file.size_bytes"] == phantom.stat().st_size
    assert root.attributes["neuro.image.shape"] == (32, 32, 32)
    assert root.attributes["neuro.image.voxel_size_mm"] == (6.0, 6.0, 6.0)
    assert root.attributes["neuro.stages"] == FAST
    assert root.attributes["neuro.file.status"] == "success"
    smooth = one(t.spans, "smooth")
    assert smooth.attributes["neuro.stage.name"] == "smooth"
    assert smooth.attributes["neuro.stage.fwhm_mm"] == 6.0
    # No attribute anywhere carries the input's directory.
    for span in t.spans:
        for value in span.attributes.values():
            assert str(phantom.parent) not in str(value), (span.name, value)


def test_stage_events_and_stage_counter(phantom: Path, tmp_path: Path, capture: LiveTelemetryView, tm: PipelineTelemetry) -> None:
    process_file(phantom, tmp_path, PipelineConfig.create(FAST), telemetry=tm)

    t = capture.snapshot()
    for name in FAST:
        events = [e.name for e in one(t.spans, name).events]
        assert events[0] == "stage_started" and events[-1] == "stage_completed", events
    # The stage's own milestone events (StageResult.events) sit between started and completed.
    from pipeline.loader import load_volume
    from pipeline.stages import ImageState, run_stage

    loaded = load_volume(phantom)
    expected = [name for name, _ in run_stage("skull_strip", ImageState(loaded.data, loaded.affine)).events]
    assert expected and [e.name for e in one(t.spans, "skull_strip").events][1:-1] == expected
    completed = one(t.spans, "normalize").events[-1]
    assert completed.attributes["neuro.stage.duration_s"] >= 0
    for name in FAST:
        assert metric(t, "neuro.stages.executed", stage=name) == 1
    assert metric(t, "neuro.stages.executed", stage="resample") == 0
    assert metric(t, "neuro.files.processed", status="success") == 1
    assert metric(t, "neuro.process.duration", status="success") == 1
    assert metric(t, "neuro.input.size") == 1
    units = {p.name: p.unit for p in t.metrics}
    assert units == {
        "neuro.files.processed": "{file}",
        "neuro.stages.executed": "{execution}",
        "neuro.process.duration": "s",
        "neuro.input.size": "By",
        "neuro.tasks.active": "{task}",
    }


def test_metric_attributes_carry_no_paths_or_ids(phantom: Path, tmp_path: Path, capture: LiveTelemetryView,
                                                 tm: PipelineTelemetry) -> None:
    process_file(phantom, tmp_path, PipelineConfig.create(FAST), telemetry=tm)
    process_file(tmp_path / "missing.nii", tmp_path, PipelineConfig.create(FAST), telemetry=tm)

    allowed = {"neuro.files.processed": {"status"}, "neuro.process.duration": {"status"},
               "neuro.stages.executed": {"stage"}, "neuro.input.size": set(), "neuro.tasks.active": set()}
    for point in capture.snapshot().metrics:
        assert set(point.attributes) <= allowed[point.name], point


def test_large_file_event_and_warning(phantom: Path, tmp_path: Path, capture: LiveTelemetryView, tm: PipelineTelemetry) -> None:
    config = PipelineConfig.create(FAST, large_file_threshold_bytes=1000)
    process_file(phantom, tmp_path, config, telemetry=tm)

    t = capture.snapshot()
    load = one(t.spans, "load_file")
    event = next(e for e in load.events if e.name == "large_file_detected")
    assert event.attributes["neuro.file.size_bytes"] == phantom.stat().st_size
    assert event.attributes["neuro.file.threshold_bytes"] == 1000
    warning = [r for r in t.logs if r.body == "Large input file"]
    assert len(warning) == 1 and warning[0].severity_text == "WARN"
    assert warning[0].span_id == load.span_id

    capture.clear()
    process_file(phantom, tmp_path, PipelineConfig.create(FAST), telemetry=tm)  # default threshold: 64 MiB
    t = capture.snapshot()
    assert not [e for e in one(t.spans, "load_file").events if e.name == "large_file_detected"]
    assert not [r for r in t.logs if r.body == "Large input file"]


def test_loading_log_is_structured_and_inside_the_load_span(phantom: Path, tmp_path: Path, capture: LiveTelemetryView,
                                                            tm: PipelineTelemetry) -> None:
    process_file(phantom, tmp_path, PipelineConfig.create(FAST), telemetry=tm)

    t = capture.snapshot()
    load = one(t.spans, "load_file")
    [record] = [r for r in t.logs if r.body == "Loading file"]
    assert record.severity_text == "INFO"
    assert (record.trace_id, record.span_id) == (load.trace_id, load.span_id)
    assert record.attributes["file_path"] == str(phantom)
    assert record.attributes["file_exists"] is True
    assert record.attributes["file_size_mb"] == pytest.approx(phantom.stat().st_size / 1e6, abs=1e-3)
    assert record.attributes["array_shape"] == (32, 32, 32)
    # Every pipeline log record emitted while processing is correlated with a span of this trace.
    span_ids = {s.span_id for s in t.spans}
    pipeline_logs = [r for r in t.logs if r.scope.name.startswith("pipeline")]
    assert pipeline_logs and all(r.is_correlated and r.span_id in span_ids for r in pipeline_logs)
    levels = {r.body: r.severity_text for r in pipeline_logs}
    assert levels["process_file: entry"] == "DEBUG"
    assert levels["Stage completed"] == "INFO"


def test_affine_is_preserved_without_resampling(phantom: Path, tmp_path: Path, tm: PipelineTelemetry) -> None:
    result = process_file(phantom, tmp_path, PipelineConfig.create(FAST), telemetry=tm)

    out = nib.load(tmp_path / result.outputs["image"])
    np.testing.assert_allclose(out.affine, nib.load(phantom).affine)
    assert out.shape == (32, 32, 32)


def test_selected_stages_only_and_parameters_reach_the_stage(phantom: Path, tmp_path: Path, capture: LiveTelemetryView,
                                                             tm: PipelineTelemetry) -> None:
    config = PipelineConfig.create(["resample"], {"resample": {"voxel_size_mm": "4"}})
    result = process_file(phantom, tmp_path, config, telemetry=tm)

    t = capture.snapshot()
    assert children(t.spans, one(t.spans, "process_image")) == ["resample"]
    assert one(t.spans, "resample").attributes["neuro.stage.voxel_size_mm"] == 4.0
    assert nib.load(tmp_path / result.outputs["image"]).header.get_zooms()[:3] == pytest.approx((4.0, 4.0, 4.0))


def test_batch_span_links_every_file_trace(phantom: Path, tmp_path: Path, capture: LiveTelemetryView,
                                           tm: PipelineTelemetry) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    paths = []
    for i in range(3):
        p = inputs / f"s{i}_T1w.nii.gz"
        p.write_bytes(phantom.read_bytes())
        paths.append(p)
    out = tmp_path / "out"
    out.mkdir()

    batch = process_batch(paths, out, PipelineConfig.create(FAST), telemetry=tm, registry=RunRegistry.in_dir(out))

    assert [r.status for r in batch.results] == ["success"] * 3
    t = capture.snapshot()
    batch_span = one(t.spans, "process_batch")
    assert batch_span.is_root and batch_span.attributes["neuro.batch.size"] == 3
    roots = [s for s in t.spans if s.name == "process_file"]
    assert len(roots) == 3 and all(r.is_root for r in roots)
    assert len({r.trace_id for r in roots} | {batch_span.trace_id}) == 4  # one trace per file + the batch
    for r in roots:
        assert [(link.trace_id, link.span_id) for link in r.links] == [(batch_span.trace_id, batch_span.span_id)]
        file_spans = [s for s in t.spans if s.trace_id == r.trace_id]
        assert {s.name for s in file_spans} >= {"load_file", "process_image", *FAST, "write_output", "write_metadata"}
    assert metric(t, "neuro.files.processed", status="success") == 3
    assert metric(t, "neuro.stages.executed", stage="smooth") == 3


def test_active_tasks_gauge_counts_files_in_flight(phantom: Path, tmp_path: Path, capture: LiveTelemetryView) -> None:
    tm = PipelineTelemetry(capture.tracer_provider, capture.meter_provider)
    seen: list[int] = []

    class Spy(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage() == "Loading file":
                seen.append(tm.active)

    spy = Spy()
    logging.getLogger("pipeline.processor").addHandler(spy)
    try:
        process_file(phantom, tmp_path, PipelineConfig.create(FAST), telemetry=tm)
    finally:
        logging.getLogger("pipeline.processor").removeHandler(spy)
    assert seen == [1]
    assert tm.active == 0
    gauge = [p for p in capture.snapshot().metrics if p.name == "neuro.tasks.active"]
    assert gauge and gauge[-1].value == 0
