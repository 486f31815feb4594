"""The shared model -> OTLP export requests (protobuf messages, bytes or OTLP/JSON).

Items are grouped by resource, then scope, in first-seen order; metric points are grouped into one
``Metric`` per (name, kind, unit, description, temporality). The inverse of ``decode`` up to what
the model does not keep (see ``decode``'s docstring): decoding an encoded model gives it back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any, Callable, TypeVar

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from telemetry_asserts import model
from telemetry_asserts.otlp import jsonfmt
from telemetry_asserts.otlp.decode import JSON, PROTOBUF, Signal, media_type

T = TypeVar("T")


class EncodeError(ValueError):
    """A model value has no OTLP representation (e.g. an int beyond 64 bits, an unknown type)."""


_SPAN_KINDS = {
    model.SpanKind.INTERNAL: trace_pb2.Span.SPAN_KIND_INTERNAL,
    model.SpanKind.SERVER: trace_pb2.Span.SPAN_KIND_SERVER,
    model.SpanKind.CLIENT: trace_pb2.Span.SPAN_KIND_CLIENT,
    model.SpanKind.PRODUCER: trace_pb2.Span.SPAN_KIND_PRODUCER,
    model.SpanKind.CONSUMER: trace_pb2.Span.SPAN_KIND_CONSUMER,
}
_STATUS_CODES = {
    model.StatusCode.UNSET: trace_pb2.Status.STATUS_CODE_UNSET,
    model.StatusCode.OK: trace_pb2.Status.STATUS_CODE_OK,
    model.StatusCode.ERROR: trace_pb2.Status.STATUS_CODE_ERROR,
}
_TEMPORALITIES = {
    model.Temporality.UNSPECIFIED: metrics_pb2.AGGREGATION_TEMPORALITY_UNSPECIFIED,
    model.Temporality.DELTA: metrics_pb2.AGGREGATION_TEMPORALITY_DELTA,
    model.Temporality.CUMULATIVE: metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE,
}


def encode_request(signal: Signal, telemetry: model.Telemetry, content_type: str = PROTOBUF) -> bytes:
    """One signal of ``telemetry`` as an OTLP/HTTP request body (protobuf or OTLP/JSON)."""
    message = request_message(signal, telemetry)
    kind = media_type(content_type)
    if kind == PROTOBUF:
        return message.SerializeToString()
    if kind == JSON:
        return jsonfmt.to_json(message).encode("utf-8")
    raise ValueError(f"unsupported content type {content_type!r}; expected {PROTOBUF!r} or {JSON!r}")


def request_message(signal: Signal, telemetry: model.Telemetry) -> Message:
    """The export request message of one signal of ``telemetry``."""
    if signal == "traces":
        return traces_request(telemetry.spans)
    if signal == "metrics":
        return metrics_request(telemetry.metrics)
    if signal == "logs":
        return logs_request(telemetry.logs)
    raise ValueError(f"unknown signal {signal!r}; expected 'traces', 'metrics' or 'logs'")


# -- values -------------------------------------------------------------------------------------


def set_any_value(target: AnyValue, value: Any) -> None:
    """Fill ``target`` from a Python value (``None`` leaves it empty)."""
    try:
        if value is None:
            return
        if isinstance(value, bool):
            target.bool_value = value
        elif isinstance(value, int):
            target.int_value = value
        elif isinstance(value, float):
            target.double_value = value
        elif isinstance(value, str):
            target.string_value = value
        elif isinstance(value, (bytes, bytearray)):
            target.bytes_value = bytes(value)
        elif isinstance(value, Mapping):
            target.kvlist_value.SetInParent()
            for key, item in value.items():
                kv = target.kvlist_value.values.add(key=str(key))
                set_any_value(kv.value, item)
        elif isinstance(value, (tuple, list)):
            target.array_value.SetInParent()
            for item in value:
                set_any_value(target.array_value.values.add(), item)
        else:
            raise EncodeError(f"no OTLP AnyValue for {type(value).__name__} {value!r}")
    except (ValueError, TypeError) as exc:
        if isinstance(exc, EncodeError):
            raise
        raise EncodeError(f"cannot encode {value!r} as an OTLP AnyValue: {exc}") from None


def _set_attributes(target: Any, attrs: Mapping[str, Any]) -> None:
    for key, value in attrs.items():
        set_any_value(target.add(key=key).value, value)


def _set_resource(target: Any, resource: model.Resource) -> None:
    _set_attributes(target.resource.attributes, resource.attributes)
    target.schema_url = resource.schema_url


def _set_scope(target: Any, scope: model.Scope) -> None:
    target.scope.name = scope.name
    target.scope.version = scope.version
    _set_attributes(target.scope.attributes, scope.attributes)
    target.schema_url = scope.schema_url


def _group(items: Iterable[T]) -> dict[model.Resource, dict[model.Scope, list[T]]]:
    groups: dict[model.Resource, dict[model.Scope, list[T]]] = {}
    for item in items:
        groups.setdefault(item.resource, {}).setdefault(item.scope, []).append(item)  # type: ignore[attr-defined]
    return groups


def _id(value: int | None, size: int, what: str) -> bytes:
    if not value:
        return b""
    try:
        return value.to_bytes(size, "big")
    except OverflowError:
        raise EncodeError(f"{what} {value:#x} does not fit in {size} bytes") from None


# -- signals ------------------------------------------------------------------------------------


def _build(
    items: Iterable[T], message: Any, resource_field: str, scope_field: str, fill: Callable[[Any, list[T]], None]
) -> Any:
    for resource, scopes in _group(items).items():
        resource_msg = getattr(message, resource_field).add()
        _set_resource(resource_msg, resource)
        for scope, members in scopes.items():
            scope_msg = getattr(resource_msg, scope_field).add()
            _set_scope(scope_msg, scope)
            fill(scope_msg, members)
    return message


def traces_request(spans: Iterable[model.Span]) -> ExportTraceServiceRequest:
    """Spans as one ``ExportTraceServiceRequest``."""
    return _build(spans, ExportTraceServiceRequest(), "resource_spans", "scope_spans", _fill_spans)


def _fill_spans(scope_msg: Any, spans: list[model.Span]) -> None:
    for span in spans:
        s = scope_msg.spans.add(
            name=span.name,
            trace_id=_id(span.trace_id, 16, "trace_id"),
            span_id=_id(span.span_id, 8, "span_id"),
            parent_span_id=_id(span.parent_span_id, 8, "parent_span_id"),
            kind=_SPAN_KINDS[span.kind],
            start_time_unix_nano=span.start_time_ns,
            end_time_unix_nano=span.end_time_ns,
        )
        s.status.code = _STATUS_CODES[span.status_code]
        s.status.message = span.status_description
        _set_attributes(s.attributes, span.attributes)
        for event in span.events:
            e = s.events.add(name=event.name, time_unix_nano=event.timestamp_ns)
            _set_attributes(e.attributes, event.attributes)
        for link in span.links:
            li = s.links.add(trace_id=_id(link.trace_id, 16, "link trace_id"), span_id=_id(link.span_id, 8, "link span_id"))
            _set_attributes(li.attributes, link.attributes)


def metrics_request(points: Iterable[model.MetricPoint]) -> ExportMetricsServiceRequest:
    """Metric points as one ``ExportMetricsServiceRequest``."""
    return _build(points, ExportMetricsServiceRequest(), "resource_metrics", "scope_metrics", _fill_metrics)


def _fill_metrics(scope_msg: Any, points: list[model.MetricPoint]) -> None:
    metrics: dict[tuple[Any, ...], Any] = {}
    for p in points:
        key = (p.name, p.kind, p.unit, p.description, p.temporality)
        metric = metrics.get(key)
        if metric is None:
            metric = metrics[key] = scope_msg.metrics.add(name=p.name, unit=p.unit, description=p.description)
            _init_metric(metric, p)
        _add_point(metric, p)


def _init_metric(metric: Any, p: model.MetricPoint) -> None:
    temporality = _TEMPORALITIES[p.temporality]
    if p.kind in (model.MetricKind.COUNTER, model.MetricKind.UP_DOWN_COUNTER):
        metric.sum.aggregation_temporality = temporality
        metric.sum.is_monotonic = p.kind is model.MetricKind.COUNTER
    elif p.kind is model.MetricKind.GAUGE:
        metric.gauge.SetInParent()
    elif p.kind is model.MetricKind.HISTOGRAM:
        metric.histogram.aggregation_temporality = temporality
    else:
        metric.exponential_histogram.aggregation_temporality = temporality


def _add_point(metric: Any, p: model.MetricPoint) -> None:
    which = metric.WhichOneof("data")
    container = getattr(metric, which).data_points
    point = container.add(start_time_unix_nano=p.start_time_ns, time_unix_nano=p.time_ns)
    _set_attributes(point.attributes, p.attributes)
    try:
        if which in ("sum", "gauge"):
            if isinstance(p.value, bool):
                raise EncodeError(f"metric {p.name!r}: a bool is not a number point value")
            if isinstance(p.value, int):
                point.as_int = p.value
            elif p.value is not None:
                point.as_double = float(p.value)
            return
        point.count = p.count or 0
        for field in ("sum", "min", "max"):
            if getattr(p, field) is not None:
                setattr(point, field, float(getattr(p, field)))
        if which == "histogram":
            point.bucket_counts.extend(p.bucket_counts)
            point.explicit_bounds.extend(p.explicit_bounds)
    except (ValueError, TypeError) as exc:
        if isinstance(exc, EncodeError):
            raise
        raise EncodeError(f"metric {p.name!r}: {exc}") from None


def logs_request(records: Iterable[model.LogRecord]) -> ExportLogsServiceRequest:
    """Log records as one ``ExportLogsServiceRequest``."""
    return _build(records, ExportLogsServiceRequest(), "resource_logs", "scope_logs", _fill_logs)


def _fill_logs(scope_msg: Any, records: list[model.LogRecord]) -> None:
    for r in records:
        lr = scope_msg.log_records.add(
            time_unix_nano=r.timestamp_ns,
            observed_time_unix_nano=r.observed_timestamp_ns,
            severity_number=r.severity_number,
            severity_text=r.severity_text,
            flags=r.trace_flags & 0xFF,
            trace_id=_id(r.trace_id, 16, "log trace_id"),
            span_id=_id(r.span_id, 8, "log span_id"),
            event_name=r.event_name,
        )
        set_any_value(lr.body, r.body)
        _set_attributes(lr.attributes, r.attributes)


# -- normal form ----------------------------------------------------------------------------------


def normalize(telemetry: model.Telemetry) -> model.Telemetry:
    """``telemetry`` as it comes back from an OTLP round trip (encode then decode).

    Sequences become tuples and mappings nested :class:`~telemetry_asserts.model.Attributes`; a
    gauge has no temporality; ``is_monotonic`` follows the kind; number points carry only ``value``
    and histograms everything but ``value``; exponential histograms lose their (absent) buckets;
    trace flags keep one byte. Comparing two sources "up to normalisation" means comparing this.
    """
    return model.Telemetry(
        spans=tuple(_normal_span(s) for s in telemetry.spans),
        metrics=tuple(_normal_point(p) for p in telemetry.metrics),
        logs=tuple(_normal_log(r) for r in telemetry.logs),
    )


def normal_value(value: Any) -> Any:
    """A Python value as OTLP gives it back (tuples, nested ``Attributes``, ``bytes``)."""
    if isinstance(value, Mapping):
        return model.Attributes([(str(k), normal_value(v)) for k, v in value.items()])
    if isinstance(value, (list, tuple)):
        return tuple(normal_value(v) for v in value)
    if isinstance(value, bytearray):
        return bytes(value)
    return value


def _normal_attrs(attrs: Mapping[str, Any]) -> model.Attributes:
    return model.Attributes([(k, normal_value(v)) for k, v in attrs.items()])


def _normal_resource(r: model.Resource) -> model.Resource:
    return model.Resource(_normal_attrs(r.attributes), r.schema_url)


def _normal_scope(s: model.Scope) -> model.Scope:
    return model.Scope(s.name, s.version, s.schema_url, _normal_attrs(s.attributes))


def _normal_span(s: model.Span) -> model.Span:
    return replace(
        s,
        parent_span_id=s.parent_span_id or None,
        attributes=_normal_attrs(s.attributes),
        events=tuple(replace(e, attributes=_normal_attrs(e.attributes)) for e in s.events),
        links=tuple(replace(li, attributes=_normal_attrs(li.attributes)) for li in s.links),
        resource=_normal_resource(s.resource),
        scope=_normal_scope(s.scope),
    )


def _normal_point(p: model.MetricPoint) -> model.MetricPoint:
    common = dict(
        attributes=_normal_attrs(p.attributes), resource=_normal_resource(p.resource), scope=_normal_scope(p.scope)
    )
    if p.kind in (model.MetricKind.COUNTER, model.MetricKind.UP_DOWN_COUNTER, model.MetricKind.GAUGE):
        return replace(
            p,
            count=None, sum=None, min=None, max=None, bucket_counts=(), explicit_bounds=(),
            is_monotonic=p.kind is model.MetricKind.COUNTER,
            temporality=model.Temporality.UNSPECIFIED if p.kind is model.MetricKind.GAUGE else p.temporality,
            **common,
        )
    exponential = p.kind is model.MetricKind.EXPONENTIAL_HISTOGRAM
    return replace(
        p,
        value=None,
        count=p.count or 0,
        bucket_counts=() if exponential else tuple(p.bucket_counts),
        explicit_bounds=() if exponential else tuple(p.explicit_bounds),
        is_monotonic=False,
        **common,
    )


def _normal_log(r: model.LogRecord) -> model.LogRecord:
    return replace(
        r,
        body=normal_value(r.body),
        trace_flags=r.trace_flags & 0xFF,
        attributes=_normal_attrs(r.attributes),
        resource=_normal_resource(r.resource),
        scope=_normal_scope(r.scope),
    )
