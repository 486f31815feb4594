"""Batches across worker processes (spawned pool and a Dask LocalCluster).

Workers export their spans and logs over OTLP/HTTP to an in-test receiver; the parent's
``process_batch`` span and the metrics are captured in memory by the ``telemetry`` fixture. The
two sources are judged together as one model.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import pytest

from pipeline.config import PipelineConfig
from pipeline.parallel import extract_span_context, inject_carrier, run_batch
from pipeline.phantom import make_head_phantom
from pipeline.processor import process_batch
from pipeline.telemetry import PipelineTelemetry
from telemetry_asserts.otlp.receiver import OtlpReceiver
from telemetry_asserts.view import check

STAGES = ("skull_strip", "normalize", "smooth")
# The SQLite registry's statements, traced by the sqlite3 instrumentation inside the workers,
# nest under the manual spans (hybrid instrumentation).
FILE_TREE = """
process_file
├─ load_file
├─ INSERT
├─ process_image
│  ├─ skull_strip
│  ├─ normalize
│  └─ smooth
└─ write_output
   ├─ write_metadata
   └─ INSERT
"""


@pytest.fixture
def inputs(tmp_path: Path) -> list[Path]:
    paths = []
    for i in range(3):
        p = tmp_path / "in" / f"sub-{i:02d}_T1w.nii.gz"
        p.parent.mkdir(parents=True, exist_ok=True)
        nib.save(make_head_phantom(shape=(32, 32, 32), voxel_size_mm=(4.0, 4.0, 4.0), seed=i), p)
        paths.append(p)
    bad = tmp_path / "in" / "sub-99_T1w.nii.gz"
    bad.write_bytes(b"this is not a NIfTI file at all")
    paths.append(bad)
    return paths


@pytest.fixture
def receiver():
    with OtlpReceiver() as rx:
        yield rx


def _worker_env(rx: OtlpReceiver) -> dict[str, str]:
    env = rx.exporter_env("http/protobuf")
    env.update(OTEL_TRACES_EXPORTER="otlp", OTEL_LOGS_EXPORTER="otlp", OTEL_METRICS_EXPORTER="none",
               OTEL_SERVICE_NAME="neuro-preprocess")
    return env


def _run(telemetry, rx: OtlpReceiver, inputs: list[Path], out: Path, **how):
    config = PipelineConfig.create(STAGES)
    tm = PipelineTelemetry(telemetry.tracer_provider, telemetry.meter_provider)

    def runner(paths, batch_context):
        return run_batch(paths, out, config, batch_context=batch_context, env=_worker_env(rx), telemetry=tm, **how)

    return process_batch(inputs, out, config, telemetry=tm, runner=runner)


def _judge(telemetry, rx: OtlpReceiver, batch, n_files: int):
    # every worker span is flushed before its task returns: all of them are already here
    arrived = rx.wait_for(lambda t: sum(s.name == "process_file" for s in t.spans) >= n_files, timeout_s=20)
    merged = check(telemetry.snapshot() + arrived)
    spans = merged.spans
    batch_span = spans.one(name="process_batch")
    roots = spans.filter(name="process_file")
    assert len(roots) == n_files
    assert len(set(roots.trace_ids())) == n_files, "one trace per file"
    for root in roots:
        assert root.trace_id != batch_span.trace_id
        assert [(link.trace_id, link.span_id) for link in root.links] == [(batch_span.trace_id, batch_span.span_id)]
    return merged


def _assert_work_counted(merged, batch, n_ok: int, n_failed: int):
    assert [r.status for r in batch.results].count("success") == n_ok
    m = merged.metrics
    m.assert_counter("neuro.files.processed", n_ok, attributes={"status": "success"})
    m.assert_counter("neuro.files.processed", n_failed, attributes={"status": "failed"})
    for stage in STAGES:
        m.assert_counter("neuro.stages.executed", n_ok, attributes={"stage": stage})
    m.assert_histogram("neuro.process.duration", count=n_ok, attributes={"status": "success"})


def test_carrier_round_trip():
    from opentelemetry.trace import SpanContext, TraceFlags

    ctx = SpanContext(trace_id=0xABC, span_id=0xDEF, is_remote=False, trace_flags=TraceFlags(1))
    carrier = inject_carrier(ctx)
    assert carrier["traceparent"] == f"00-{0xABC:032x}-{0xDEF:016x}-01"
    back = extract_span_context(carrier)
    assert (back.trace_id, back.span_id, back.is_remote) == (0xABC, 0xDEF, True)
    assert inject_carrier(None) == {} and extract_span_context({}) is None


@pytest.mark.slow
def test_process_pool_batch_keeps_one_linked_trace_per_file(telemetry, receiver, inputs, tmp_path):
    out = tmp_path / "out"
    batch = _run(telemetry, receiver, inputs, out, workers=2)

    assert [r.status for r in batch.results] == ["success", "success", "success", "failed"]
    assert "not" in (batch.results[-1].error or "").lower() or "nifti" in (batch.results[-1].error or "").lower()
    merged = _judge(telemetry, receiver, batch, n_files=4)
    good_traces = {int(r.trace_id, 16) for r in batch.results if r.status == "success"}
    for trace_id in good_traces:
        check(merged.telemetry.trace(trace_id)).spans.assert_tree(FILE_TREE, exact=True)
    failed = merged.spans.one(name="process_file", trace=int(batch.results[-1].trace_id, 16))
    failed.assert_status("ERROR")
    _assert_work_counted(merged, batch, n_ok=3, n_failed=1)
    # worker logs arrive correlated with the worker's load_file span
    for r in batch.results[:3]:
        load = merged.spans.one(name="load_file", trace=int(r.trace_id, 16))
        merged.logs.assert_correlated(
            load, where=lambda rec, name=Path(r.input_path).name: rec.body == "Loading file"
            and str(rec.attributes.get("file_path", "")).endswith(name)
        )
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".json") == [
        f"sub-{i:02d}_T1w_metadata.json" for i in range(3)
    ]


@pytest.mark.slow
def test_dask_local_cluster_batch_matches_the_pool(telemetry, receiver, inputs, tmp_path):
    from distributed import LocalCluster

    out = tmp_path / "out"
    # the scheduler serves HTTP even without a dashboard: a free port, never a clash on 8787
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      host="127.0.0.1") as cluster:
        batch = _run(telemetry, receiver, inputs, out, dask_scheduler=cluster.scheduler_address)
    assert [r.status for r in batch.results] == ["success", "success", "success", "failed"]
    merged = _judge(telemetry, receiver, batch, n_files=4)
    for r in batch.results[:3]:
        check(merged.telemetry.trace(int(r.trace_id, 16))).spans.assert_tree(FILE_TREE, exact=True)
    _assert_work_counted(merged, batch, n_ok=3, n_failed=1)


def test_a_dead_worker_still_gives_the_file_a_failed_status_and_count():
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from pipeline.parallel import FileTask, _outcome, replay_measurements
    from telemetry_asserts.capture import metrics_from_sdk
    from telemetry_asserts.metrics import MetricView

    task = FileTask("/data/sub-07_T1w.nii.gz", "/out", ("smooth",), {"smooth": {}}, 1, {})
    future: Future = Future()
    future.set_exception(BrokenProcessPool("A process in the process pool was terminated abruptly"))
    outcome = _outcome(task, future)
    result, measurements = outcome.result, outcome.measurements
    assert outcome.finished.spans == ()  # a dead worker sends nothing back
    assert (result.status, result.error_reason) == ("failed", "worker_failed")
    assert result.error.startswith("/data/sub-07_T1w.nii.gz: worker failed: ")
    reader = InMemoryMetricReader()
    replay_measurements(measurements, PipelineTelemetry(meter_provider=MeterProvider(metric_readers=[reader])))
    MetricView(metrics_from_sdk(reader.get_metrics_data())).assert_counter(
        "neuro.files.processed", 1, attributes={"status": "failed"})
