"""process_file_async: the root span lives in the coroutine, the work in a thread, and the context
propagates through await and asyncio.to_thread - concurrent files keep separate, complete traces."""

from __future__ import annotations

import asyncio
from pathlib import Path

import nibabel as nib
import pytest

from pipeline.config import PipelineConfig
from pipeline.phantom import make_head_phantom
from pipeline.processor import process_file_async
from pipeline.telemetry import PipelineTelemetry
from telemetry_asserts.model import Span, StatusCode
from telemetry_asserts.view import LiveTelemetryView

FAST = ("skull_strip", "normalize", "smooth")
FILE_SPANS = {"process_file", "load_file", "process_image", *FAST, "write_output", "write_metadata"}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("inputs")
    paths = []
    for i in range(3):
        p = d / f"sub-0{i}_T1w.nii.gz"
        nib.save(make_head_phantom(shape=(32, 32, 32), voxel_size_mm=(6.0, 6.0, 6.0), seed=i), p)
        paths.append(p)
    return paths


@pytest.fixture
def capture(telemetry: LiveTelemetryView) -> LiveTelemetryView:
    """The telemetry_asserts plugin's per-test capture (real SDK providers, in memory; logs bridged)."""
    return telemetry


def parent_chain_ok(spans: list[Span]) -> bool:
    ids = {s.span_id for s in spans}
    return all(s.is_root or s.parent_span_id in ids for s in spans)


def test_async_file_has_the_full_tree_with_children_made_in_a_thread(inputs: list[Path], tmp_path: Path,
                                                                     capture: LiveTelemetryView) -> None:
    tm = PipelineTelemetry(capture.tracer_provider, capture.meter_provider)

    result = asyncio.run(process_file_async(inputs[0], tmp_path, PipelineConfig.create(FAST), telemetry=tm))

    assert result.status == "success"
    t = capture.snapshot()
    assert {s.name for s in t.spans} == FILE_SPANS
    assert len(t.trace_ids) == 1 and parent_chain_ok(list(t.spans))
    root = next(s for s in t.spans if s.name == "process_file")
    assert [s.name for s in t.spans if s.parent_span_id == root.span_id] == ["load_file", "process_image", "write_output"]
    [loading] = [r for r in t.logs if r.body == "Loading file"]
    assert loading.trace_id == root.trace_id  # logged in the worker thread, still in the file's trace


def test_concurrent_async_files_keep_separate_traces(inputs: list[Path], tmp_path: Path, capture: LiveTelemetryView) -> None:
    tm = PipelineTelemetry(capture.tracer_provider, capture.meter_provider)
    tracer = capture.tracer_provider.get_tracer("test")
    config = PipelineConfig.create(FAST)

    async def main() -> list[object]:
        with tracer.start_as_current_span("caller"):  # a caller's span does not adopt the files
            return await asyncio.gather(*(process_file_async(p, tmp_path, config, telemetry=tm) for p in inputs))

    results = asyncio.run(main())

    assert [r.status for r in results] == ["success"] * 3  # type: ignore[attr-defined]
    t = capture.snapshot()
    roots = [s for s in t.spans if s.name == "process_file"]
    caller = next(s for s in t.spans if s.name == "caller")
    assert len(roots) == 3 and all(r.is_root and r.trace_id != caller.trace_id for r in roots)
    assert {r.trace_id_hex for r in roots} == {r.trace_id for r in results}  # type: ignore[attr-defined]
    for root in roots:
        spans = [s for s in t.spans if s.trace_id == root.trace_id]
        assert sorted(s.name for s in spans) == sorted(FILE_SPANS) and parent_chain_ok(spans)
        [loading] = [r for r in t.logs if r.body == "Loading file" and r.trace_id == root.trace_id]
        assert Path(str(loading.attributes["file_path"])).name == root.attributes["neuro.file.name"]
    assert sum(p.value or 0 for p in t.metrics if p.name == "neuro.files.processed") == 3


def test_async_failure_is_recorded_like_the_sync_one(tmp_path: Path, capture: LiveTelemetryView) -> None:
    tm = PipelineTelemetry(capture.tracer_provider, capture.meter_provider)

    result = asyncio.run(process_file_async(tmp_path / "gone.nii", tmp_path / "out", telemetry=tm))

    assert result.status == "failed" and result.error == "gone.nii: file not found"
    t = capture.snapshot()
    root = next(s for s in t.spans if s.name == "process_file")
    assert root.status_code is StatusCode.ERROR and len(root.exceptions()) == 1
    assert [p.value for p in t.metrics if p.name == "neuro.files.processed"] == [1]
