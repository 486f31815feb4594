"""Worker spans and logs come back to the parent as data (issue 13 item 6): the parent's in-process
processors (summary, console, in-memory) see every file's trace linked to the batch, the same with
the pool and with Dask, and nothing is exported twice to OTLP."""

from __future__ import annotations

import pickle
from collections import Counter
from pathlib import Path

import nibabel as nib
import pytest
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from pipeline.config import PipelineConfig
from pipeline.parallel import run_batch
from pipeline.phantom import make_head_phantom
from pipeline.processor import process_batch
from pipeline.spandata import (
    FinishedTelemetry,
    WorkerCollector,
    adopt_into,
    log_from_data,
    log_to_data,
    span_from_data,
    span_to_data,
)
from pipeline.telemetry import configure_from_env, worker_env
from telemetry_asserts import Telemetry
from telemetry_asserts.capture import logs_from_sdk, spans_from_sdk
from telemetry_asserts.otlp.receiver import OtlpReceiver
from telemetry_asserts.view import check

STAGES = ("smooth",)
FILE_TREE = """
process_file
├─ load_file
├─ INSERT
├─ process_image
│  └─ smooth
└─ write_output
   ├─ write_metadata
   └─ INSERT
"""


def test_span_and_log_data_round_trip_through_pickle_unchanged() -> None:
    import logging

    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk.resources import Resource

    collector = WorkerCollector()
    resource = Resource({"service.name": "neuro-preprocess", "k": 1})
    tp = TracerProvider(resource=resource)
    tp.add_span_processor(collector.span_processor)
    lp = LoggerProvider(resource=resource)
    lp.add_log_record_processor(collector.log_processor)
    from opentelemetry.instrumentation.logging.handler import LoggingHandler

    logger = logging.getLogger("test.spandata")
    handler = LoggingHandler(logger_provider=lp)
    logger.addHandler(handler)
    tracer = tp.get_tracer("scope.x", "1.2")
    with tracer.start_as_current_span("root", kind=SpanKind.SERVER, attributes={"a": (1, 2), "b": True}) as root:
        with tracer.start_as_current_span("child", links=[Link(root.get_span_context(), {"why": "x"})]) as child:
            child.add_event("milestone", {"n": 3})
            child.set_status(Status(StatusCode.ERROR, "broke"))
            logger.warning("inside %s", "child", extra={"file_path": "/a.nii"})
    logger.removeHandler(handler)

    finished = pickle.loads(pickle.dumps(collector.take()))
    assert collector.take() == FinishedTelemetry()  # take() empties the collector
    before = spans_from_sdk(collector.span_exporter.get_finished_spans()) or None
    assert before is None
    after = spans_from_sdk(finished.sdk_spans())
    assert sorted(s.name for s in after) == ["child", "root"]
    child_m, root_m = sorted(after, key=lambda s: s.name)
    assert child_m.parent_span_id == root_m.span_id and child_m.trace_id == root_m.trace_id
    assert [(link.span_id, dict(link.attributes)) for link in child_m.links] == [(root_m.span_id, {"why": "x"})]
    assert [(e.name, dict(e.attributes)) for e in child_m.events] == [("milestone", {"n": 3})]
    assert (child_m.status_code.name, child_m.status_description) == ("ERROR", "broke")
    assert root_m.kind.name == "SERVER" and root_m.attributes["a"] == (1, 2) and root_m.attributes["b"] is True
    assert (root_m.scope.name, root_m.scope.version) == ("scope.x", "1.2")
    assert root_m.resource.attributes["service.name"] == "neuro-preprocess"
    # a second trip gives the same data: nothing is lost or invented
    assert [span_to_data(span_from_data(d)) for d in finished.spans] == list(finished.spans)
    (record,) = logs_from_sdk(log_from_data(d) for d in finished.logs)
    assert record.body == "inside child" and record.attributes["file_path"] == "/a.nii"
    assert (record.trace_id, record.span_id) == (child_m.trace_id, child_m.span_id)
    assert [log_to_data(log_from_data(d)) for d in finished.logs] == list(finished.logs)


def test_collector_bounds_what_one_task_sends_back() -> None:
    collector = WorkerCollector()
    tp = TracerProvider()
    tp.add_span_processor(collector.span_processor)
    for i in range(5):
        tp.get_tracer("t").start_span(f"s{i}").end()
    finished = collector.take(limit=3)
    assert (len(finished.spans), finished.dropped) == (3, 2)


def test_worker_env_keeps_only_out_of_process_exporters() -> None:
    env = {"OTEL_TRACES_EXPORTER": "console,otlp", "OTEL_LOGS_EXPORTER": "console",
           "OTEL_METRICS_EXPORTER": "otlp", "OTEL_SERVICE_NAME": "svc"}
    assert worker_env(env) == {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_LOGS_EXPORTER": "none",
                               "OTEL_METRICS_EXPORTER": "none", "OTEL_SERVICE_NAME": "svc"}
    assert worker_env({})["OTEL_TRACES_EXPORTER"] == "none"


def test_adopt_reaches_only_the_in_process_processors() -> None:
    """``TelemetrySetup.adopt`` feeds console/extras, never the OTLP processor (the worker exported)."""
    rx_env = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
              "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
    local = InMemorySpanExporter()
    setup = configure_from_env(rx_env, extra_span_processors=[SimpleSpanProcessor(local)])
    try:
        otlp_processor = setup._span_processors[0]
        collector = WorkerCollector()
        tp = TracerProvider()
        tp.add_span_processor(collector.span_processor)
        tp.get_tracer("t").start_span("from_a_worker").end()
        seen: list[str] = []
        otlp_processor.on_end = lambda span: seen.append(span.name)  # would be a second OTLP export
        setup.adopt(collector.take())
        assert [s.name for s in local.get_finished_spans()] == ["from_a_worker"]
        assert seen == []
    finally:
        setup.shutdown(0.5)


def test_adopt_into_hands_logs_to_log_processors() -> None:
    exporter = InMemoryLogRecordExporter()
    data = FinishedTelemetry(logs=(
        {"timestamp": 1, "observed_timestamp": 2, "trace_id": 5, "span_id": 6, "flags": 1, "severity_text": "INFO",
         "severity_number": 9, "body": "Loading file", "attributes": {"k": "v"}, "event_name": None,
         "resource": {"attributes": {"service.name": "s"}, "schema_url": ""}, "scope": None},))
    adopt_into([], [SimpleLogRecordProcessor(exporter)], data)
    (record,) = logs_from_sdk(exporter.get_finished_logs())
    assert (record.body, record.trace_id, record.span_id, record.severity_number) == ("Loading file", 5, 6, 9)


@pytest.fixture
def inputs(tmp_path: Path) -> list[Path]:
    paths = []
    for i in range(3):
        p = tmp_path / "in" / f"sub-{i:02d}_T1w.nii.gz"
        p.parent.mkdir(parents=True, exist_ok=True)
        nib.save(make_head_phantom(shape=(32, 32, 32), voxel_size_mm=(4.0, 4.0, 4.0), seed=i), p)
        paths.append(p)
    bad = tmp_path / "in" / "sub-99_T1w.nii.gz"
    bad.write_bytes(b"not a NIfTI file")
    return [*paths, bad]


@pytest.fixture(params=["pool", "dask"])
def how(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    if request.param == "pool":
        yield {"workers": 2}
        return
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      host="127.0.0.1") as cluster:
        yield {"dask_scheduler": cluster.scheduler_address}


@pytest.mark.slow
def test_parent_sees_every_file_trace_linked_and_otlp_gets_each_span_once(inputs, tmp_path, how) -> None:
    out = tmp_path / "out"
    with OtlpReceiver() as rx:
        env = {**rx.exporter_env("http/protobuf"), "OTEL_TRACES_EXPORTER": "otlp", "OTEL_LOGS_EXPORTER": "otlp",
               "OTEL_METRICS_EXPORTER": "none"}
        spans_here, logs_here = InMemorySpanExporter(), InMemoryLogRecordExporter()
        setup = configure_from_env(env, extra_span_processors=[SimpleSpanProcessor(spans_here)],
                                   extra_log_processors=[SimpleLogRecordProcessor(logs_here)])
        config = PipelineConfig.create(STAGES)
        tm = setup.telemetry()

        def runner(paths, batch_context):  # type: ignore[no-untyped-def]
            return run_batch(paths, out, config, batch_context=batch_context, env=env, telemetry=tm,
                             adopt=setup.adopt, **how)

        batch = process_batch(inputs, out, config, telemetry=tm, runner=runner)
        setup.shutdown(5.0)  # the parent's own spans (process_batch, plan_batch) go out over OTLP
        n_spans = len(spans_here.get_finished_spans())
        arrived = rx.wait_for(lambda t: len(t.spans) >= n_spans, timeout_s=20)

    assert [r.status for r in batch.results] == ["success", "success", "success", "failed"]
    here = check(Telemetry(spans=spans_from_sdk(spans_here.get_finished_spans())))
    batch_span = here.spans.one(name="process_batch")
    roots = here.spans.filter(name="process_file")
    assert len(roots) == 4 and len(set(roots.trace_ids())) == 4
    for root in roots:
        assert [(link.trace_id, link.span_id) for link in root.links] == [(batch_span.trace_id, batch_span.span_id)]
    for r in batch.results[:3]:
        check(here.telemetry.trace(int(r.trace_id, 16))).spans.assert_tree(FILE_TREE, exact=True)
    # logs came back too, correlated with the worker's spans
    logs = logs_from_sdk(logs_here.get_finished_logs())
    loading = [rec for rec in logs if rec.body == "Loading file"]
    assert len(loading) == 3  # the good files (the bad one fails before it logs)
    good = {int(r.trace_id, 16) for r in batch.results[:3]}
    load_spans = {(s.trace_id, s.span_id) for s in here.spans.filter(name="load_file") if s.trace_id in good}
    assert {(rec.trace_id, rec.span_id) for rec in loading} == load_spans
    # OTLP: every span exactly once (the workers exported theirs; the parent only its own)
    ids = Counter(s.span_id for s in arrived.spans)
    assert max(ids.values()) == 1, "a span was exported twice"
    assert set(ids) == {s.span_id for s in here.spans}
