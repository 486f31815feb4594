"""One model for every source: round-trip properties and one SDK run seen through every transport."""

from __future__ import annotations

import gzip
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry._logs import LogRecord as ApiLogRecord
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.metrics import Observation
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource as SdkResource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from telemetry_asserts import model
from telemetry_asserts.capture import logs_from_sdk, metrics_from_sdk, spans_from_sdk
from telemetry_asserts.otlp import OtlpReceiver, decode_request, encode_request, normalize
from telemetry_asserts.otlp.decode import decode_message
from telemetry_asserts.otlp.encode import request_message
from telemetry_asserts.otlp.files import read_otlp_json, write_otlp_json

SIGNALS = ("traces", "metrics", "logs")
PB = "application/x-protobuf"
JSON = "application/json"

# -- strategies for the model --------------------------------------------------------------------

INT64 = st.integers(-(2**63), 2**63 - 1)
FLOATS = st.floats(allow_nan=False)  # NaN != NaN: equality could not hold; infinities do round-trip
TEXT = st.text(max_size=6)
SCALARS = st.one_of(TEXT, st.booleans(), INT64, FLOATS)
HOMOGENEOUS = st.one_of(*(st.lists(s, max_size=3).map(tuple) for s in (TEXT, st.booleans(), INT64, FLOATS)))
NESTED = st.recursive(  # kvlists are nested Attributes in the model (immutable, hashable)
    st.one_of(SCALARS, st.none()),
    lambda inner: st.one_of(st.lists(inner, max_size=3).map(tuple),
                            st.dictionaries(TEXT, inner, max_size=3).map(model.Attributes)),
    max_leaves=6,
)
ATTRIBUTES = st.dictionaries(TEXT, st.one_of(SCALARS, HOMOGENEOUS, NESTED), max_size=4).map(model.Attributes)
TIME = st.integers(0, 2**64 - 1)


@st.composite
def telemetries(draw: st.DrawFn) -> model.Telemetry:
    """A few spans, points and records sharing a small pool of resources and scopes."""
    resources = draw(st.lists(st.builds(model.Resource, ATTRIBUTES, TEXT), min_size=1, max_size=2))
    scopes = draw(st.lists(st.builds(model.Scope, TEXT, TEXT, TEXT, ATTRIBUTES), min_size=1, max_size=2))
    owner = {"resource": st.sampled_from(resources), "scope": st.sampled_from(scopes)}
    events = st.builds(model.Event, TEXT, TIME, ATTRIBUTES)
    links = st.builds(model.Link, st.integers(0, 2**128 - 1), st.integers(0, 2**64 - 1), ATTRIBUTES)
    spans = st.builds(
        model.Span, name=TEXT, trace_id=st.integers(1, 2**128 - 1), span_id=st.integers(1, 2**64 - 1),
        parent_span_id=st.one_of(st.none(), st.integers(1, 2**64 - 1)), kind=st.sampled_from(model.SpanKind),
        start_time_ns=TIME, end_time_ns=TIME, status_code=st.sampled_from(model.StatusCode),
        status_description=TEXT, attributes=ATTRIBUTES, events=st.lists(events, max_size=2).map(tuple),
        links=st.lists(links, max_size=2).map(tuple), **owner,
    )
    metric_common = dict(
        name=st.sampled_from(["m1", "m2"]), attributes=ATTRIBUTES, unit=st.sampled_from(["", "s", "{file}"]),
        description=TEXT, start_time_ns=TIME, time_ns=TIME, temporality=st.sampled_from(model.Temporality),
        **owner,
    )
    numbers = st.builds(
        model.MetricPoint, kind=st.sampled_from([model.MetricKind.COUNTER, model.MetricKind.UP_DOWN_COUNTER,
                                                 model.MetricKind.GAUGE]),
        value=st.one_of(st.none(), INT64, FLOATS), **metric_common,
    )
    optional_float = st.one_of(st.none(), FLOATS)
    bounds = st.lists(st.floats(-1e6, 1e6), max_size=4, unique=True).map(sorted)
    histograms = bounds.flatmap(
        lambda b: st.builds(
            model.MetricPoint, kind=st.just(model.MetricKind.HISTOGRAM), count=st.integers(0, 2**64 - 1),
            sum=optional_float, min=optional_float, max=optional_float, explicit_bounds=st.just(tuple(b)),
            bucket_counts=st.lists(st.integers(0, 2**64 - 1), min_size=len(b) + 1, max_size=len(b) + 1).map(tuple)
            if b else st.just(()),
            **metric_common,
        )
    )
    exponential = st.builds(
        model.MetricPoint, kind=st.just(model.MetricKind.EXPONENTIAL_HISTOGRAM), count=st.integers(0, 2**64 - 1),
        sum=optional_float, min=optional_float, max=optional_float, **metric_common,
    )
    logs = st.builds(
        model.LogRecord, body=st.one_of(NESTED, st.binary(max_size=4), st.dictionaries(TEXT, SCALARS, max_size=2)), severity_text=TEXT,
        severity_number=st.integers(0, 24), timestamp_ns=TIME, observed_timestamp_ns=TIME,
        trace_id=st.one_of(st.just(0), st.integers(1, 2**128 - 1)),
        span_id=st.one_of(st.just(0), st.integers(1, 2**64 - 1)), trace_flags=st.integers(0, 255),
        attributes=ATTRIBUTES, event_name=TEXT, **owner,
    )
    return model.Telemetry(
        spans=tuple(draw(st.lists(spans, max_size=3))),
        metrics=tuple(draw(st.lists(st.one_of(numbers, histograms, exponential), max_size=4))),
        logs=tuple(draw(st.lists(logs, max_size=3))),
    )


def _same(a: model.Telemetry, b: model.Telemetry) -> None:
    """Equal as multisets per signal (encoding groups by resource and scope, so order may change)."""
    assert Counter(a.spans) == Counter(b.spans)
    assert Counter(a.metrics) == Counter(b.metrics)
    assert Counter(a.logs) == Counter(b.logs)


def _through(telemetry: model.Telemetry, content_type: str) -> model.Telemetry:
    out = model.Telemetry()
    for signal in SIGNALS:
        out = out + decode_request(signal, encode_request(signal, telemetry, content_type), content_type)
    return out


ROUNDTRIP = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@ROUNDTRIP
@given(telemetries())
def test_model_to_protobuf_to_model_is_identity_up_to_normalisation(telemetry: model.Telemetry) -> None:
    _same(_through(telemetry, PB), normalize(telemetry))


@ROUNDTRIP
@given(telemetries())
def test_model_to_otlp_json_to_model_is_identity_up_to_normalisation(telemetry: model.Telemetry) -> None:
    _same(_through(telemetry, JSON), normalize(telemetry))


@settings(max_examples=25, deadline=None)
@given(telemetries())
def test_normalize_is_idempotent_and_a_fixed_point_of_the_round_trip(telemetry: model.Telemetry) -> None:
    once = normalize(telemetry)
    assert normalize(once) == once
    _same(_through(once, PB), once)


def test_normalize_states_what_otlp_does_not_keep() -> None:
    gauge = model.MetricPoint("g", model.MetricKind.GAUGE, value=1, temporality=model.Temporality.CUMULATIVE,
                              is_monotonic=True, count=3)
    expo = model.MetricPoint("e", model.MetricKind.EXPONENTIAL_HISTOGRAM, count=None, bucket_counts=(1,))
    log = model.LogRecord(body={"a": [1, {"b": bytearray(b"x")}]}, trace_flags=0x101)
    out = normalize(model.Telemetry(metrics=(gauge, expo), logs=(log,)))
    assert out.metrics[0] == replace(gauge, temporality=model.Temporality.UNSPECIFIED, is_monotonic=False,
                                     count=None)
    assert (out.metrics[1].count, out.metrics[1].bucket_counts) == (0, ())
    # a kvlist is nested Attributes, which (like every attribute) keep bytes as hex text
    assert out.logs[0].body == {"a": (1, {"b": "78"})} and isinstance(out.logs[0].body, model.Attributes)
    assert out.logs[0].trace_flags == 1


def test_grouping_keeps_one_resource_and_scope_entry_each() -> None:
    res, scope = model.Resource(model.Attributes({"service.name": "a"})), model.Scope("s", "1")
    spans = tuple(model.Span(f"s{i}", 1, i + 1, resource=res, scope=scope) for i in range(3))
    points = tuple(model.MetricPoint("c", model.MetricKind.COUNTER, model.Attributes({"i": i}), value=i,
                                     resource=res, scope=scope) for i in range(3))
    trace_req = request_message("traces", model.Telemetry(spans=spans))
    assert len(trace_req.resource_spans) == 1 and len(trace_req.resource_spans[0].scope_spans) == 1
    assert [s.name for s in trace_req.resource_spans[0].scope_spans[0].spans] == ["s0", "s1", "s2"]
    metrics_req = request_message("metrics", model.Telemetry(metrics=points))
    (metric,) = metrics_req.resource_metrics[0].scope_metrics[0].metrics
    assert len(metric.sum.data_points) == 3 and metric.sum.is_monotonic
    assert decode_message(metrics_req).metrics == normalize(model.Telemetry(metrics=points)).metrics


# -- one SDK run, recorded in memory and exported over every transport --------------------------


class _Run:
    """Real SDK providers writing to memory and to OTLP exporters at once."""

    def __init__(self, http: OtlpReceiver, grpc: OtlpReceiver) -> None:
        self.resource = SdkResource.create({"service.name": "neuro-test", "deployment.environment": "ci"})
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider(resource=self.resource)
        self.logs = InMemoryLogRecordExporter()
        self.logger_provider = LoggerProvider(resource=self.resource)
        for exporter in (self.spans, HttpSpanExporter(endpoint=f"{http.http_endpoint}/v1/traces"),
                         GrpcSpanExporter(endpoint=grpc.grpc_endpoint, insecure=True)):
            self.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        for log_exporter in (self.logs, HttpLogExporter(endpoint=f"{http.http_endpoint}/v1/logs"),
                             GrpcLogExporter(endpoint=grpc.grpc_endpoint, insecure=True)):
            self.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
        self.metric_reader = InMemoryMetricReader()
        never = 3_600_000  # export only when flushed
        self.meter_provider = MeterProvider(resource=self.resource, metric_readers=[
            self.metric_reader,
            PeriodicExportingMetricReader(HttpMetricExporter(endpoint=f"{http.http_endpoint}/v1/metrics"),
                                          export_interval_millis=never),
            PeriodicExportingMetricReader(GrpcMetricExporter(endpoint=grpc.grpc_endpoint, insecure=True),
                                          export_interval_millis=never),
        ])

    def record(self) -> None:
        tracer = self.tracer_provider.get_tracer("pipeline.processor", "0.1.0")
        meter = self.meter_provider.get_meter("pipeline.metrics", "0.1.0")
        logger = self.logger_provider.get_logger("pipeline.logs")
        files = meter.create_counter("neuro.files.processed", unit="{file}")
        in_flight = meter.create_up_down_counter("neuro.files.in_flight", unit="{file}")
        duration = meter.create_histogram("neuro.stage.duration", unit="s")
        meter.create_observable_gauge("neuro.volume.voxels", callbacks=[
            lambda options: [Observation(64**3, {"dim": "3d"})]])
        with tracer.start_as_current_span("process_file", kind=SpanKind.SERVER,
                                          attributes={"neuro.subject": "sub-01", "neuro.shape": (64, 64, 64),
                                                      "neuro.ok": True, "neuro.fwhm_mm": 6.0}) as root:
            in_flight.add(1)
            for stage in ("n4", "skullstrip"):
                with tracer.start_as_current_span(f"stage.{stage}", attributes={"stage": stage}) as span:
                    span.add_event("iteration", {"i": 1, "delta": 0.25})
                    duration.record(0.125, {"stage": stage})
                    logger.emit(ApiLogRecord(body=f"{stage} done", severity_number=SeverityNumber.INFO,
                                             severity_text="INFO", attributes={"stage": stage}))
            with tracer.start_as_current_span("writer", links=[Link(root.get_span_context(), {"why": "out"})]) as w:
                w.record_exception(OSError("disk full"))
                w.set_status(Status(StatusCode.ERROR, "disk full"))
            files.add(1, {"status": "error"})
            in_flight.add(-1)
        self.memory_metrics = metrics_from_sdk(self.metric_reader.get_metrics_data())
        self.meter_provider.force_flush()

    def memory(self) -> model.Telemetry:
        return model.Telemetry(spans_from_sdk(self.spans.get_finished_spans()), self.memory_metrics,
                               logs_from_sdk(self.logs.get_finished_logs()))

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.logger_provider.shutdown()
        self.meter_provider.shutdown()


def _comparable(t: model.Telemetry) -> tuple[Any, ...]:
    """Normalised, order-free, and without collection timestamps (each reader collects on its own)."""
    n = normalize(t)
    points = Counter(replace(p, start_time_ns=0, time_ns=0) for p in n.metrics)
    return (sorted(n.spans, key=lambda s: s.span_id), points, sorted(n.logs, key=lambda r: r.timestamp_ns))


@pytest.fixture
def sdk_run() -> Iterator[tuple[_Run, OtlpReceiver, OtlpReceiver]]:
    with OtlpReceiver(grpc_port=None) as http, OtlpReceiver(http_port=None) as grpc:
        run = _Run(http, grpc)
        try:
            run.record()
            yield run, http, grpc
        finally:
            run.shutdown()


def test_the_same_run_decodes_to_the_same_model_from_memory_http_grpc_json_and_file(
    sdk_run: tuple[_Run, OtlpReceiver, OtlpReceiver], tmp_path: Path
) -> None:
    run, http, grpc = sdk_run
    memory = run.memory()
    assert {s.name for s in memory.spans} == {"process_file", "stage.n4", "stage.skullstrip", "writer"}
    assert {p.name for p in memory.metrics} == {"neuro.files.processed", "neuro.files.in_flight",
                                                "neuro.stage.duration", "neuro.volume.voxels"}
    expected = _comparable(memory)

    def arrived(t: model.Telemetry) -> bool:
        return (len(t.spans), len(t.logs)) == (4, 2) and {p.name for p in t.metrics} == {
            p.name for p in memory.metrics}

    over_http = http.wait_for(arrived, description="the whole run over OTLP/HTTP")
    over_grpc = grpc.wait_for(arrived, description="the whole run over OTLP/gRPC")
    assert _comparable(over_http) == expected
    assert _comparable(over_grpc) == expected

    # OTLP/JSON (the Python SDK only sends protobuf): our encoder, gzip, POSTed to a third receiver
    with OtlpReceiver(grpc_port=None) as json_receiver:
        for signal in SIGNALS:
            body = gzip.compress(encode_request(signal, memory, JSON))
            request = urllib.request.Request(f"{json_receiver.http_endpoint}/v1/{signal}", data=body, headers={
                "Content-Type": JSON, "Content-Encoding": "gzip"})
            with urllib.request.urlopen(request, timeout=10) as response:
                assert (response.status, response.read()) == (200, b"{}")
        assert _comparable(json_receiver.telemetry()) == expected

    # a dump of what arrived over HTTP, read back as the collector's file format
    path = write_otlp_json(over_http, tmp_path / "run.jsonl")
    assert _comparable(read_otlp_json(path)) == expected

    root = next(s for s in over_grpc.spans if s.name == "process_file")
    writer = next(s for s in over_grpc.spans if s.name == "writer")
    assert root.resource.service_name == "neuro-test" and root.scope == model.Scope("pipeline.processor", "0.1.0")
    assert root.attributes["neuro.shape"] == (64, 64, 64) and root.kind is model.SpanKind.SERVER
    assert writer.parent_span_id == root.span_id and writer.links[0].span_id == root.span_id
    assert writer.status_code is model.StatusCode.ERROR and writer.exceptions()[0].attributes[
        "exception.type"] == "OSError"
    assert all(r.is_correlated and r.trace_id == root.trace_id for r in over_grpc.logs)
