"""OTLP export requests (protobuf or OTLP/JSON, optionally gzip) -> the shared model.

Mapping choices (the model is smaller than OTLP):

- ``AnyValue``: string/bool/int/double as Python scalars; arrays as tuples; ``kvlist`` as a nested
  :class:`~telemetry_asserts.model.Attributes` (immutable, hashable, equal to the plain dict - kept,
  not flattened, so it round-trips); bytes as ``bytes`` in a log body, and as lower-case hex text in
  attributes (the model stores attribute bytes that way); an empty ``AnyValue`` as ``None``.
- Span kind ``UNSPECIFIED`` reads as ``INTERNAL`` (the SDK default). An all-zero or empty parent id
  means a root span (``parent_span_id=None``). ``trace_state``, flags and dropped counts are dropped.
- Metrics: monotonic sum -> COUNTER, non-monotonic sum -> UP_DOWN_COUNTER, gauge, histogram and
  exponential histogram (count/sum/min/max only: the model has no scale/offset buckets). Summary
  metrics (never produced by OpenTelemetry SDKs) and metrics without data are skipped; exemplars
  are ignored.
- Logs: ``flags`` keeps only the W3C trace flags byte.

Anything malformed (bad protobuf or JSON, wrong id length, unknown enum value, inconsistent
histogram buckets, truncated gzip) raises :class:`DecodeError`, a ``ValueError``.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Any, Literal, Union

from google.protobuf import message as pb_message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as PbResource
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from telemetry_asserts import model
from telemetry_asserts.otlp import jsonfmt

Signal = Literal["traces", "metrics", "logs"]
TracesMessage = Union[ExportTraceServiceRequest, TracesData]
MetricsMessage = Union[ExportMetricsServiceRequest, MetricsData]
LogsMessage = Union[ExportLogsServiceRequest, LogsData]

REQUEST_TYPES: dict[str, type[pb_message.Message]] = {
    "traces": ExportTraceServiceRequest,
    "metrics": ExportMetricsServiceRequest,
    "logs": ExportLogsServiceRequest,
}
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_MEDIA_TYPES = {PROTOBUF: PROTOBUF, "application/protobuf": PROTOBUF, JSON: JSON}


class DecodeError(ValueError):
    """An OTLP payload could not be decoded; the message says what was wrong."""


class UnsupportedContentType(DecodeError):
    """The Content-Type is neither OTLP protobuf nor OTLP/JSON (HTTP 415)."""


class PayloadTooLarge(DecodeError):
    """The body, or its decompressed form, exceeds the size limit (HTTP 413)."""


_SPAN_KINDS = {
    0: model.SpanKind.INTERNAL,
    1: model.SpanKind.INTERNAL,
    2: model.SpanKind.SERVER,
    3: model.SpanKind.CLIENT,
    4: model.SpanKind.PRODUCER,
    5: model.SpanKind.CONSUMER,
}
_STATUS_CODES = {0: model.StatusCode.UNSET, 1: model.StatusCode.OK, 2: model.StatusCode.ERROR}
_TEMPORALITIES = {
    0: model.Temporality.UNSPECIFIED,
    1: model.Temporality.DELTA,
    2: model.Temporality.CUMULATIVE,
}


def media_type(content_type: str) -> str | None:
    """The canonical OTLP media type of a Content-Type header, or None if it is not OTLP."""
    return _MEDIA_TYPES.get(content_type.split(";", 1)[0].strip().lower())


def decode_request(
    signal: Signal,
    body: bytes,
    content_type: str,
    content_encoding: str = "",
    *,
    max_bytes: int | None = None,
) -> model.Telemetry:
    """Decode one OTLP/HTTP request body of ``signal`` into the model.

    ``content_type`` is ``application/x-protobuf`` or ``application/json`` (parameters such as
    ``charset`` are ignored); ``content_encoding`` may be empty, ``identity``, ``gzip`` or
    ``deflate``. ``max_bytes`` bounds both the body and its decompressed size.
    """
    if signal not in REQUEST_TYPES:
        raise ValueError(f"unknown signal {signal!r}; expected one of {sorted(REQUEST_TYPES)}")
    kind = media_type(content_type)
    if kind is None:
        raise UnsupportedContentType(
            f"unsupported Content-Type {content_type!r}; expected {PROTOBUF!r} or {JSON!r}"
        )
    if max_bytes is not None and len(body) > max_bytes:
        raise PayloadTooLarge(f"body of {len(body)} bytes exceeds the limit of {max_bytes} bytes")
    raw = decompress(body, content_encoding, max_bytes)
    message = parse_message(signal, raw, kind)
    return decode_message(message)


def decompress(body: bytes, content_encoding: str, max_bytes: int | None = None) -> bytes:
    """Undo ``Content-Encoding`` (gzip/deflate/identity), never producing more than ``max_bytes``."""
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return bytes(body)
    if encoding in ("gzip", "x-gzip"):
        return _inflate(body, 16 + zlib.MAX_WBITS, max_bytes, "gzip")
    if encoding == "deflate":
        return _inflate(body, zlib.MAX_WBITS, max_bytes, "deflate")
    raise DecodeError(f"unsupported Content-Encoding {content_encoding!r}; expected gzip or none")


def _inflate(data: bytes, wbits: int, limit: int | None, name: str) -> bytes:
    out = bytearray()
    data = bytes(data)
    while True:  # gzip allows several concatenated members
        inflater = zlib.decompressobj(wbits)
        try:
            out += inflater.decompress(data, 0 if limit is None else limit + 1 - len(out))
        except zlib.error as exc:
            raise DecodeError(f"invalid {name} body: {exc}") from None
        if limit is not None and (len(out) > limit or inflater.unconsumed_tail):
            raise PayloadTooLarge(f"{name} body inflates beyond the limit of {limit} bytes")
        if not inflater.eof:
            raise DecodeError(f"invalid {name} body: truncated stream")
        data = inflater.unused_data
        if name != "gzip" or not data.strip(b"\0"):
            return bytes(out)


def parse_message(signal: Signal, raw: bytes, kind: str) -> pb_message.Message:
    """Parse an uncompressed body as the export request of ``signal`` (protobuf or JSON)."""
    message_type = REQUEST_TYPES[signal]
    if kind == JSON:
        try:
            return jsonfmt.from_json(raw, message_type)
        except ValueError as exc:
            raise DecodeError(str(exc)) from None
    message = message_type()
    try:
        message.ParseFromString(raw)
    except (pb_message.DecodeError, RecursionError, ValueError) as exc:
        raise DecodeError(f"invalid protobuf {message_type.DESCRIPTOR.name}: {exc}") from None
    return message


def decode_message(message: pb_message.Message) -> model.Telemetry:
    """Any OTLP export request (or ``TracesData``/``MetricsData``/``LogsData``) as the model."""
    if isinstance(message, (ExportTraceServiceRequest, TracesData)):
        return model.Telemetry(spans=spans_from_proto(message))
    if isinstance(message, (ExportMetricsServiceRequest, MetricsData)):
        return model.Telemetry(metrics=metrics_from_proto(message))
    if isinstance(message, (ExportLogsServiceRequest, LogsData)):
        return model.Telemetry(logs=logs_from_proto(message))
    raise TypeError(f"not an OTLP export message: {type(message).__name__}")


# -- values -------------------------------------------------------------------------------------


def any_value(value: AnyValue) -> Any:
    """One ``AnyValue`` as a Python value (see the module docstring for the mapping)."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return tuple(any_value(v) for v in value.array_value.values)
    if which == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if which == "bytes_value":
        return bytes(value.bytes_value)
    if which == "string_value_strindex":
        raise DecodeError("AnyValue.string_value_strindex is only valid inside profiles")
    return getattr(value, which)


def attributes(pairs: Iterable[KeyValue]) -> model.Attributes:
    """A repeated ``KeyValue`` as immutable attributes (a later duplicate key wins)."""
    return model.Attributes([(kv.key, any_value(kv.value)) for kv in pairs])


def _resource(resource: PbResource, schema_url: str) -> model.Resource:
    return model.Resource(attributes=attributes(resource.attributes), schema_url=schema_url)


def _scope(scope: InstrumentationScope, schema_url: str) -> model.Scope:
    return model.Scope(
        name=scope.name,
        version=scope.version,
        schema_url=schema_url,
        attributes=attributes(scope.attributes),
    )


def _id(raw: bytes, size: int, what: str) -> int:
    if not raw:
        return 0
    if len(raw) != size:
        raise DecodeError(f"{what} must be {size} bytes, got {len(raw)} ({raw[:32].hex()})")
    return int.from_bytes(raw, "big")


def _lookup(table: dict[int, Any], key: int, where: str, what: str) -> Any:
    try:
        return table[key]
    except KeyError:
        raise DecodeError(f"{where}: unknown {what} {key}") from None


# -- signals ------------------------------------------------------------------------------------


def spans_from_proto(message: TracesMessage) -> tuple[model.Span, ...]:
    """All spans of a traces request, keeping resource and scope."""
    spans: list[model.Span] = []
    for rs in message.resource_spans:
        resource = _resource(rs.resource, rs.schema_url)
        for ss in rs.scope_spans:
            scope = _scope(ss.scope, ss.schema_url)
            spans.extend(_span(s, resource, scope) for s in ss.spans)
    return tuple(spans)


def _span(span: Any, resource: model.Resource, scope: model.Scope) -> model.Span:
    name = span.name
    trace_id = _id(span.trace_id, 16, f"span {name!r}: trace_id")
    span_id = _id(span.span_id, 8, f"span {name!r}: span_id")
    if not trace_id or not span_id:
        raise DecodeError(f"span {name!r} has an empty or all-zero trace_id or span_id")
    parent = _id(span.parent_span_id, 8, f"span {name!r}: parent_span_id")
    return model.Span(
        name=name,
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent or None,
        kind=_lookup(_SPAN_KINDS, span.kind, f"span {name!r}", "span kind"),
        start_time_ns=span.start_time_unix_nano,
        end_time_ns=span.end_time_unix_nano,
        status_code=_lookup(_STATUS_CODES, span.status.code, f"span {name!r}", "status code"),
        status_description=span.status.message,
        attributes=attributes(span.attributes),
        events=tuple(
            model.Event(name=e.name, timestamp_ns=e.time_unix_nano, attributes=attributes(e.attributes))
            for e in span.events
        ),
        links=tuple(
            model.Link(
                trace_id=_id(link.trace_id, 16, f"span {name!r}: link trace_id"),
                span_id=_id(link.span_id, 8, f"span {name!r}: link span_id"),
                attributes=attributes(link.attributes),
            )
            for link in span.links
        ),
        resource=resource,
        scope=scope,
    )


def metrics_from_proto(message: MetricsMessage) -> tuple[model.MetricPoint, ...]:
    """All data points of a metrics request, one ``MetricPoint`` each, keeping resource and scope."""
    points: list[model.MetricPoint] = []
    for rm in message.resource_metrics:
        resource = _resource(rm.resource, rm.schema_url)
        for sm in rm.scope_metrics:
            scope = _scope(sm.scope, sm.schema_url)
            for metric in sm.metrics:
                points.extend(_metric_points(metric, resource, scope))
    return tuple(points)


def _metric_points(metric: Any, resource: model.Resource, scope: model.Scope) -> list[model.MetricPoint]:
    data = metric.WhichOneof("data")
    common = dict(
        name=metric.name, unit=metric.unit, description=metric.description, resource=resource, scope=scope
    )
    where = f"metric {metric.name!r}"
    if data == "sum":
        kind = model.MetricKind.COUNTER if metric.sum.is_monotonic else model.MetricKind.UP_DOWN_COUNTER
        temporality = _lookup(_TEMPORALITIES, metric.sum.aggregation_temporality, where, "aggregation temporality")
        return [
            _number_point(p, kind, temporality, metric.sum.is_monotonic, common) for p in metric.sum.data_points
        ]
    if data == "gauge":
        return [
            _number_point(p, model.MetricKind.GAUGE, model.Temporality.UNSPECIFIED, False, common)
            for p in metric.gauge.data_points
        ]
    if data == "histogram":
        temporality = _lookup(
            _TEMPORALITIES, metric.histogram.aggregation_temporality, where, "aggregation temporality"
        )
        points = []
        for p in metric.histogram.data_points:
            counts, bounds = tuple(p.bucket_counts), tuple(p.explicit_bounds)
            if counts and len(counts) != len(bounds) + 1:
                raise DecodeError(
                    f"{where}: {len(counts)} bucket counts need {len(counts) - 1} explicit bounds, "
                    f"got {len(bounds)}"
                )
            points.append(
                _histogram_point(p, model.MetricKind.HISTOGRAM, temporality, common, counts, bounds)
            )
        return points
    if data == "exponential_histogram":
        temporality = _lookup(
            _TEMPORALITIES, metric.exponential_histogram.aggregation_temporality, where, "aggregation temporality"
        )
        return [
            _histogram_point(p, model.MetricKind.EXPONENTIAL_HISTOGRAM, temporality, common, (), ())
            for p in metric.exponential_histogram.data_points
        ]
    return []  # summary (not produced by OpenTelemetry SDKs) or no data


def _number_point(
    p: Any, kind: model.MetricKind, temporality: model.Temporality, monotonic: bool, common: dict[str, Any]
) -> model.MetricPoint:
    which = p.WhichOneof("value")
    return model.MetricPoint(
        kind=kind,
        attributes=attributes(p.attributes),
        value=getattr(p, which) if which else None,
        start_time_ns=p.start_time_unix_nano,
        time_ns=p.time_unix_nano,
        temporality=temporality,
        is_monotonic=monotonic,
        **common,
    )


def _histogram_point(
    p: Any,
    kind: model.MetricKind,
    temporality: model.Temporality,
    common: dict[str, Any],
    counts: tuple[int, ...],
    bounds: tuple[float, ...],
) -> model.MetricPoint:
    return model.MetricPoint(
        kind=kind,
        attributes=attributes(p.attributes),
        count=p.count,
        sum=p.sum if p.HasField("sum") else None,
        min=p.min if p.HasField("min") else None,
        max=p.max if p.HasField("max") else None,
        bucket_counts=counts,
        explicit_bounds=bounds,
        start_time_ns=p.start_time_unix_nano,
        time_ns=p.time_unix_nano,
        temporality=temporality,
        **common,
    )


def logs_from_proto(message: LogsMessage) -> tuple[model.LogRecord, ...]:
    """All log records of a logs request, keeping resource and scope."""
    records: list[model.LogRecord] = []
    for rl in message.resource_logs:
        resource = _resource(rl.resource, rl.schema_url)
        for sl in rl.scope_logs:
            scope = _scope(sl.scope, sl.schema_url)
            for r in sl.log_records:
                records.append(
                    model.LogRecord(
                        body=any_value(r.body),
                        severity_text=r.severity_text,
                        severity_number=int(r.severity_number),
                        timestamp_ns=r.time_unix_nano,
                        observed_timestamp_ns=r.observed_time_unix_nano,
                        trace_id=_id(r.trace_id, 16, "log record trace_id"),
                        span_id=_id(r.span_id, 8, "log record span_id"),
                        trace_flags=r.flags & 0xFF,
                        attributes=attributes(r.attributes),
                        event_name=r.event_name,
                        resource=resource,
                        scope=scope,
                    )
                )
    return tuple(records)
