"""Decoding OTLP requests (protobuf, OTLP/JSON, gzip) into the shared model, and its error messages."""

from __future__ import annotations

import gzip
import json

import pytest
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry._logs import LogRecord as ApiLogRecord
from opentelemetry.trace import Status, StatusCode

from telemetry_asserts import model
from telemetry_asserts.capture import Capture, metrics_from_sdk
from telemetry_asserts.otlp import jsonfmt
from telemetry_asserts.otlp.decode import (
    DecodeError,
    PayloadTooLarge,
    UnsupportedContentType,
    any_value,
    decode_message,
    decode_request,
)
from telemetry_asserts.otlp.encode import normalize

PB = "application/x-protobuf"
JSON = "application/json"
TRACE_ID = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN_ID = bytes.fromhex("eee19b7ec3c1b174")
PARENT_ID = bytes.fromhex("eee19b7ec3c1b173")


def _trace_request(**span_fields: object) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add(schema_url="https://opentelemetry.io/schemas/1.21.0")
    rs.resource.attributes.add(key="service.name").value.string_value = "neuro"
    ss = rs.scope_spans.add(schema_url="scope-schema")
    ss.scope.name, ss.scope.version = "pipeline", "0.1"
    ss.scope.attributes.add(key="lib").value.bool_value = True
    fields = dict(name="stage", trace_id=TRACE_ID, span_id=SPAN_ID, parent_span_id=PARENT_ID,
                  kind=trace_pb2.Span.SPAN_KIND_SERVER, start_time_unix_nano=10, end_time_unix_nano=25)
    fields.update(span_fields)
    ss.spans.add(**fields)
    return req


def _any(**kw: object) -> AnyValue:
    return AnyValue(**kw)


# -- values -------------------------------------------------------------------------------------


def test_every_any_value_kind_maps_to_a_documented_python_value() -> None:
    array = _any(array_value={"values": [_any(int_value=1), _any(string_value="a")]})
    kvlist = _any(kvlist_value={"values": [{"key": "x", "value": _any(double_value=1.5)},
                                           {"key": "y", "value": array}]})
    assert any_value(_any(string_value="s")) == "s"
    assert any_value(_any(bool_value=True)) is True
    assert any_value(_any(int_value=-(2**63))) == -(2**63)
    assert any_value(_any(double_value=0.25)) == 0.25
    assert any_value(_any(bytes_value=b"\x00\xff")) == b"\x00\xff"
    assert any_value(array) == (1, "a")
    nested = any_value(kvlist)
    assert isinstance(nested, model.Attributes)
    assert nested == {"x": 1.5, "y": (1, "a")}
    assert hash(nested)  # stays usable as part of a frozen model object
    assert any_value(AnyValue()) is None


def test_attribute_bytes_become_hex_and_kvlists_stay_nested() -> None:
    req = _trace_request()
    span = req.resource_spans[0].scope_spans[0].spans[0]
    span.attributes.add(key="raw").value.bytes_value = b"\xde\xad"
    kv = span.attributes.add(key="obj").value.kvlist_value
    kv.values.add(key="inner").value.int_value = 3
    (decoded,) = decode_message(req).spans
    assert decoded.attributes["raw"] == "dead"
    assert decoded.attributes["obj"] == {"inner": 3}


# -- spans --------------------------------------------------------------------------------------


def test_span_fields_resource_and_scope_are_kept() -> None:
    req = _trace_request(attributes=[{"key": "n", "value": _any(int_value=7)}],
                         status={"code": trace_pb2.Status.STATUS_CODE_ERROR, "message": "boom"},
                         events=[{"name": "retry", "time_unix_nano": 12,
                                  "attributes": [{"key": "attempt", "value": _any(int_value=2)}]}],
                         links=[{"trace_id": TRACE_ID, "span_id": PARENT_ID,
                                 "attributes": [{"key": "why", "value": _any(string_value="batch")}]}])
    (span,) = decode_request("traces", req.SerializeToString(), PB).spans
    assert (span.name, span.trace_id_hex, span.span_id_hex) == ("stage", TRACE_ID.hex(), SPAN_ID.hex())
    assert span.parent_span_id == int.from_bytes(PARENT_ID, "big")
    assert span.kind is model.SpanKind.SERVER
    assert (span.start_time_ns, span.end_time_ns, span.duration_ns) == (10, 25, 15)
    assert (span.status_code, span.status_description) == (model.StatusCode.ERROR, "boom")
    assert span.attributes == {"n": 7}
    assert span.events == (model.Event("retry", 12, model.Attributes({"attempt": 2})),)
    assert span.links == (model.Link(int.from_bytes(TRACE_ID, "big"), int.from_bytes(PARENT_ID, "big"),
                                     model.Attributes({"why": "batch"})),)
    assert span.resource == model.Resource(model.Attributes({"service.name": "neuro"}),
                                           "https://opentelemetry.io/schemas/1.21.0")
    assert span.scope == model.Scope("pipeline", "0.1", "scope-schema", model.Attributes({"lib": True}))


@pytest.mark.parametrize("parent", [b"", bytes(8)], ids=["empty", "zero"])
def test_empty_or_zero_parent_means_root(parent: bytes) -> None:
    (span,) = decode_message(_trace_request(parent_span_id=parent)).spans
    assert span.parent_span_id is None and span.is_root


@pytest.mark.parametrize(
    ("proto_kind", "kind"),
    [(0, model.SpanKind.INTERNAL), (1, model.SpanKind.INTERNAL), (2, model.SpanKind.SERVER),
     (3, model.SpanKind.CLIENT), (4, model.SpanKind.PRODUCER), (5, model.SpanKind.CONSUMER)],
)
def test_span_kinds(proto_kind: int, kind: model.SpanKind) -> None:
    assert decode_message(_trace_request(kind=proto_kind)).spans[0].kind is kind


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"trace_id": b"\x01" * 15}, "span 'stage': trace_id must be 16 bytes, got 15"),
        ({"span_id": b"\x01" * 9}, "span 'stage': span_id must be 8 bytes, got 9"),
        ({"parent_span_id": b"\x01"}, "span 'stage': parent_span_id must be 8 bytes, got 1"),
        ({"trace_id": bytes(16)}, "span 'stage' has an empty or all-zero trace_id or span_id"),
        ({"span_id": b""}, "span 'stage' has an empty or all-zero trace_id or span_id"),
        ({"kind": 9}, "span 'stage': unknown span kind 9"),
        ({"status": {"code": 7}}, "span 'stage': unknown status code 7"),
    ],
)
def test_invalid_spans_are_rejected_with_the_reason(fields: dict[str, object], message: str) -> None:
    with pytest.raises(DecodeError, match="^" + message.replace("(", r"\(")):
        decode_message(_trace_request(**fields))
    assert issubclass(DecodeError, ValueError)


# -- metrics ------------------------------------------------------------------------------------


def _metric_request() -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    sm = req.resource_metrics.add().scope_metrics.add()
    sm.scope.name = "meter"
    attrs = [{"key": "stage", "value": _any(string_value="n4")}]
    sm.metrics.add(name="c", unit="{file}", description="files", sum={
        "is_monotonic": True, "aggregation_temporality": 2,
        "data_points": [{"as_int": 3, "attributes": attrs, "start_time_unix_nano": 1, "time_unix_nano": 2}]})
    sm.metrics.add(name="u", sum={"is_monotonic": False, "aggregation_temporality": 1,
                                  "data_points": [{"as_double": -1.5}]})
    sm.metrics.add(name="g", gauge={"data_points": [{"as_double": 0.5}, {}]})
    sm.metrics.add(name="h", unit="s", histogram={
        "aggregation_temporality": 1,
        "data_points": [{"count": 3, "sum": 4.5, "min": 0.5, "max": 3.0, "bucket_counts": [1, 2],
                         "explicit_bounds": [1.0], "exemplars": [{"as_double": 0.5, "span_id": SPAN_ID}]}]})
    sm.metrics.add(name="e", exponential_histogram={
        "aggregation_temporality": 2,
        "data_points": [{"count": 2, "sum": 3.0, "scale": 3, "positive": {"offset": 1, "bucket_counts": [2]}}]})
    sm.metrics.add(name="s", summary={"data_points": [{"count": 1, "sum": 1.0}]})
    sm.metrics.add(name="empty")
    return req


def test_metric_kinds_values_and_temporality() -> None:
    points = decode_message(_metric_request()).metrics
    by_name = {p.name: p for p in points}
    assert [p.name for p in points] == ["c", "u", "g", "g", "h", "e"]  # summary and empty skipped
    c = by_name["c"]
    assert (c.kind, c.value, c.unit, c.description) == (model.MetricKind.COUNTER, 3, "{file}", "files")
    assert (c.temporality, c.is_monotonic, c.attributes) == (model.Temporality.CUMULATIVE, True, {"stage": "n4"})
    assert (c.start_time_ns, c.time_ns, c.scope.name) == (1, 2, "meter")
    assert isinstance(c.value, int)
    u = by_name["u"]
    assert (u.kind, u.value, u.temporality, u.is_monotonic) == (
        model.MetricKind.UP_DOWN_COUNTER, -1.5, model.Temporality.DELTA, False)
    gauges = [p for p in points if p.name == "g"]
    assert [(g.kind, g.value, g.temporality) for g in gauges] == [
        (model.MetricKind.GAUGE, 0.5, model.Temporality.UNSPECIFIED),
        (model.MetricKind.GAUGE, None, model.Temporality.UNSPECIFIED)]
    h = by_name["h"]
    assert (h.kind, h.count, h.sum, h.min, h.max) == (model.MetricKind.HISTOGRAM, 3, 4.5, 0.5, 3.0)
    assert (h.bucket_counts, h.explicit_bounds, h.value) == ((1, 2), (1.0,), None)
    e = by_name["e"]
    assert (e.kind, e.count, e.sum, e.min, e.max, e.bucket_counts) == (
        model.MetricKind.EXPONENTIAL_HISTOGRAM, 2, 3.0, None, None, ())


def test_histogram_with_inconsistent_buckets_is_rejected() -> None:
    req = ExportMetricsServiceRequest()
    req.resource_metrics.add().scope_metrics.add().metrics.add(
        name="h", histogram={"data_points": [{"count": 1, "bucket_counts": [1, 0, 0], "explicit_bounds": [1.0]}]})
    with pytest.raises(DecodeError) as info:
        decode_message(req)
    assert str(info.value) == "metric 'h': 3 bucket counts need 2 explicit bounds, got 1"


def test_unknown_temporality_is_rejected() -> None:
    req = ExportMetricsServiceRequest()
    req.resource_metrics.add().scope_metrics.add().metrics.add(
        name="c", sum={"aggregation_temporality": 5, "data_points": [{"as_int": 1}]})
    with pytest.raises(DecodeError, match="^metric 'c': unknown aggregation temporality 5$"):
        decode_message(req)


# -- logs ---------------------------------------------------------------------------------------


def test_log_record_fields() -> None:
    req = ExportLogsServiceRequest()
    sl = req.resource_logs.add().scope_logs.add()
    sl.scope.name = "neuro.logger"
    sl.log_records.add(time_unix_nano=5, observed_time_unix_nano=6, severity_number=17, severity_text="ERROR",
                       body=_any(kvlist_value={"values": [{"key": "msg", "value": _any(string_value="hi")}]}),
                       attributes=[{"key": "file", "value": _any(string_value="a.nii")}],
                       trace_id=TRACE_ID, span_id=SPAN_ID, flags=0x101, event_name="stage.failed")
    sl.log_records.add(body=_any(bytes_value=b"\x01"))
    first, second = decode_message(req).logs
    assert first.body == {"msg": "hi"}
    assert (first.severity_number, first.severity_text) == (17, "ERROR")
    assert (first.timestamp_ns, first.observed_timestamp_ns) == (5, 6)
    assert (first.trace_id_hex, first.span_id_hex, first.trace_flags) == (TRACE_ID.hex(), SPAN_ID.hex(), 1)
    assert (first.attributes, first.event_name, first.scope.name) == ({"file": "a.nii"}, "stage.failed", "neuro.logger")
    assert first.is_correlated
    assert second.body == b"\x01" and not second.is_correlated


# -- transport: content types, JSON rules, gzip --------------------------------------------------


def test_json_ids_are_hex_and_int64_accepted_as_string_or_number() -> None:
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": TRACE_ID.hex(), "spanId": SPAN_ID.hex(), "parentSpanId": "", "name": "s", "kind": 3,
        "startTimeUnixNano": "1700000000000000001", "endTimeUnixNano": 1700000000000000002,
        "attributes": [{"key": "i", "value": {"intValue": "9007199254740993"}},
                       {"key": "j", "value": {"intValue": 5}}],
        "unknownFutureField": {"ignored": True},
    }]}]}]}
    (span,) = decode_request("traces", json.dumps(doc).encode(), "application/json; charset=utf-8").spans
    assert span.trace_id_hex == TRACE_ID.hex() and span.span_id_hex == SPAN_ID.hex()
    assert span.parent_span_id is None and span.kind is model.SpanKind.CLIENT
    assert (span.start_time_ns, span.end_time_ns) == (1700000000000000001, 1700000000000000002)
    assert span.attributes == {"i": 9007199254740993, "j": 5}


def test_json_written_by_the_encoder_uses_hex_ids_and_integer_enums() -> None:
    text = jsonfmt.to_json(_trace_request())
    span = json.loads(text)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert span["traceId"] == TRACE_ID.hex() and span["parentSpanId"] == PARENT_ID.hex()
    assert span["kind"] == 2 and span["startTimeUnixNano"] == "10"
    assert "\n" not in text


def test_gzip_protobuf_and_gzip_json_decode_like_plain() -> None:
    req = _trace_request()
    plain = decode_request("traces", req.SerializeToString(), PB)
    assert decode_request("traces", gzip.compress(req.SerializeToString()), PB, "gzip") == plain
    assert decode_request("traces", gzip.compress(jsonfmt.to_json(req).encode()), JSON, "GZIP") == plain
    two_members = gzip.compress(b"") + gzip.compress(req.SerializeToString())
    assert decode_request("traces", two_members, PB, "gzip") == plain


@pytest.mark.parametrize(
    ("body", "content_type", "encoding", "error", "message"),
    [
        (b"\xff\xff\xff", PB, "", DecodeError, "invalid protobuf ExportTraceServiceRequest: "),
        (b"{not json", JSON, "", DecodeError, "invalid JSON: "),
        (b"[1, 2]", JSON, "", DecodeError, "expected a JSON object, got list"),
        (b'{"resourceSpans": 5}', JSON, "", DecodeError, "invalid OTLP/JSON for ExportTraceServiceRequest: "),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}', JSON, "", DecodeError,
         "invalid OTLP/JSON for ExportTraceServiceRequest: traceId must be a hex string, got 'zz'"),
        (b"\x1f\x8b\x08\x00garbage", PB, "gzip", DecodeError, "invalid gzip body: "),
        (gzip.compress(b"abc", mtime=0)[:-6], PB, "gzip", DecodeError, "invalid gzip body: truncated stream"),
        (b"", PB, "br", DecodeError, "unsupported Content-Encoding 'br'; expected gzip or none"),
        (b"", "text/plain", "", UnsupportedContentType,
         "unsupported Content-Type 'text/plain'; expected 'application/x-protobuf' or 'application/json'"),
    ],
    # Named ids: a body's bytes are no test id (a gzip header carries the time; xdist compares ids).
    ids=["protobuf", "json", "json-list", "json-shape", "json-hex-id", "gzip-garbage", "gzip-truncated",
         "encoding-br", "content-type"],
)
def test_malformed_bodies_raise_decode_errors_with_a_clear_message(
    body: bytes, content_type: str, encoding: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        decode_request("traces", body, content_type, encoding)
    assert str(info.value).startswith(message), str(info.value)


def test_size_limit_applies_to_the_body_and_to_its_decompressed_size() -> None:
    bomb = gzip.compress(b"\0" * 1_000_000)
    assert len(bomb) < 2000
    with pytest.raises(PayloadTooLarge, match="^gzip body inflates beyond the limit of 4096 bytes$"):
        decode_request("traces", bomb, PB, "gzip", max_bytes=4096)
    with pytest.raises(PayloadTooLarge, match="^body of 5000 bytes exceeds the limit of 4096 bytes$"):
        decode_request("traces", b"\0" * 5000, PB, max_bytes=4096)
    body = _trace_request().SerializeToString()
    assert decode_request("traces", gzip.compress(body), PB, "gzip", max_bytes=len(body)).spans


def test_empty_protobuf_body_is_an_empty_request() -> None:
    assert decode_request("metrics", b"", PB) == model.Telemetry()


def test_unknown_signal_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown signal 'profiles'"):
        decode_request("profiles", b"", PB)  # type: ignore[arg-type]


# -- the SDK's own OTLP encoder decodes to what in-memory capture gives --------------------------


def test_sdk_encoded_spans_metrics_and_logs_decode_like_in_memory_capture() -> None:
    capture = Capture()
    tracer = capture.tracer_provider.get_tracer("test.scope", "1.0")
    meter = capture.meter_provider.get_meter("test.meter")
    counter = meter.create_counter("files", unit="{file}")
    hist = meter.create_histogram("duration", unit="s")
    logger = capture.logger_provider.get_logger("test.logs")
    with tracer.start_as_current_span("root", attributes={"subject": "sub-01", "dims": (176, 256)}) as root:
        root.add_event("loaded", {"bytes": 10})
        with tracer.start_as_current_span("child") as child:
            child.record_exception(ValueError("bad"))
            child.set_status(Status(StatusCode.ERROR, "bad"))
            counter.add(2, {"stage": "n4"})
            hist.record(0.5, {"stage": "n4"})
            logger.emit(ApiLogRecord(body={"msg": "hello", "n": [1, 2]}, severity_text="INFO",
                                     attributes={"file": "a"}))
    memory = normalize(capture.snapshot())

    spans = decode_message(encode_spans(capture.span_exporter.get_finished_spans())).spans
    assert sorted(spans, key=lambda s: s.span_id) == sorted(memory.spans, key=lambda s: s.span_id)
    assert {s.name for s in spans} == {"root", "child"}
    logs = decode_message(encode_logs(capture.log_exporter.get_finished_logs())).logs
    assert logs == memory.logs
    assert logs[0].is_correlated and logs[0].body == {"msg": "hello", "n": (1, 2)}

    counter.add(1, {"stage": "n4"})  # the same collect, encoded by the SDK and converted by the capture
    data = capture.metric_reader.get_metrics_data()
    decoded = decode_message(encode_metrics(data)).metrics
    assert decoded == normalize(model.Telemetry(metrics=metrics_from_sdk(data))).metrics
    assert [(p.name, p.kind, p.temporality, p.value) for p in decoded] == [
        ("files", model.MetricKind.COUNTER, model.Temporality.DELTA, 1)]
    capture.shutdown()
