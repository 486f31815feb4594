"""Telemetry between the isolated runner and the grader: SDK objects -> model -> JSON -> model.

The runner converts what the grader-owned SDK exporters captured into the shared model
(:mod:`telemetry_asserts.model`) and writes it as plain JSON; the grader reads it back. JSON keeps
attribute types (bool, int, float, str and homogeneous tuples) exactly; ids travel as hex strings.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from telemetry_asserts import model

# ---------------------------------------------------------------------------- SDK -> model


def _attrs(raw: Mapping[str, Any] | None) -> model.Attributes:
    return model.Attributes(dict(raw or {}))


def _resource(raw: Any) -> model.Resource:
    if raw is None:
        return model.Resource()
    return model.Resource(_attrs(raw.attributes), getattr(raw, "schema_url", "") or "")


def _scope(raw: Any) -> model.Scope:
    if raw is None:
        return model.Scope()
    return model.Scope(raw.name or "", raw.version or "", getattr(raw, "schema_url", "") or "")


def span_from_sdk(span: Any) -> model.Span:
    """An SDK ``ReadableSpan`` as a model span."""
    ctx = span.get_span_context()
    parent = span.parent.span_id if span.parent is not None else None
    return model.Span(
        name=span.name,
        trace_id=ctx.trace_id,
        span_id=ctx.span_id,
        parent_span_id=parent,
        kind=model.SpanKind(span.kind.name),
        start_time_ns=span.start_time or 0,
        end_time_ns=span.end_time or 0,
        status_code=model.StatusCode(span.status.status_code.name),
        status_description=span.status.description or "",
        attributes=_attrs(span.attributes),
        events=tuple(model.Event(e.name, e.timestamp or 0, _attrs(e.attributes)) for e in span.events),
        links=tuple(
            model.Link(link.context.trace_id, link.context.span_id, _attrs(link.attributes)) for link in span.links
        ),
        resource=_resource(span.resource),
        scope=_scope(span.instrumentation_scope),
    )


def metrics_from_sdk(data: Any) -> tuple[model.MetricPoint, ...]:
    """Every point of an SDK ``MetricsData`` (None before anything was recorded) as model points."""
    if data is None:
        return ()
    from opentelemetry.sdk.metrics.export import AggregationTemporality, Gauge, Histogram, Sum

    points: list[model.MetricPoint] = []
    for rm in data.resource_metrics:
        resource = _resource(rm.resource)
        for sm in rm.scope_metrics:
            scope = _scope(sm.scope)
            for metric in sm.metrics:
                agg = metric.data
                temporality = model.Temporality.UNSPECIFIED
                if getattr(agg, "aggregation_temporality", None) is not None:
                    temporality = (
                        model.Temporality.DELTA
                        if agg.aggregation_temporality == AggregationTemporality.DELTA
                        else model.Temporality.CUMULATIVE
                    )
                common: dict[str, Any] = {
                    "name": metric.name,
                    "unit": metric.unit or "",
                    "description": metric.description or "",
                    "temporality": temporality,
                    "resource": resource,
                    "scope": scope,
                }
                for p in agg.data_points:
                    base = dict(common, attributes=_attrs(p.attributes), start_time_ns=getattr(p, "start_time_unix_nano", 0) or 0, time_ns=p.time_unix_nano or 0)
                    if isinstance(agg, Sum):
                        kind = model.MetricKind.COUNTER if agg.is_monotonic else model.MetricKind.UP_DOWN_COUNTER
                        points.append(model.MetricPoint(kind=kind, value=p.value, is_monotonic=agg.is_monotonic, **base))
                    elif isinstance(agg, Gauge):
                        points.append(model.MetricPoint(kind=model.MetricKind.GAUGE, value=p.value, **base))
                    elif isinstance(agg, Histogram):
                        points.append(
                            model.MetricPoint(
                                kind=model.MetricKind.HISTOGRAM,
                                count=p.count,
                                sum=p.sum,
                                min=p.min,
                                max=p.max,
                                bucket_counts=tuple(p.bucket_counts),
                                explicit_bounds=tuple(p.explicit_bounds),
                                **base,
                            )
                        )
    return tuple(points)


def log_from_sdk(record: Any) -> model.LogRecord:
    """An SDK ``ReadableLogRecord`` (or its inner API ``LogRecord``) as a model log record."""
    inner = getattr(record, "log_record", record)
    severity = inner.severity_number
    return model.LogRecord(
        body=_plain(inner.body),
        severity_text=inner.severity_text or "",
        severity_number=int(severity.value) if severity is not None else 0,
        timestamp_ns=inner.timestamp or 0,
        observed_timestamp_ns=inner.observed_timestamp or 0,
        trace_id=inner.trace_id or 0,
        span_id=inner.span_id or 0,
        trace_flags=int(inner.trace_flags or 0),
        attributes=_attrs(inner.attributes),
        event_name=getattr(inner, "event_name", "") or "",
        resource=_resource(getattr(record, "resource", None)),
        scope=_scope(getattr(record, "instrumentation_scope", None)),
    )


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


# ---------------------------------------------------------------------------- model <-> JSON


def _value_to_json(value: Any) -> Any:
    if isinstance(value, tuple):
        return {"list": [_value_to_json(v) for v in value]}
    if isinstance(value, float) and math.isnan(value):  # NaN is not JSON
        return {"float": "nan"}
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return {"float": "inf" if value > 0 else "-inf"}
    return value


def _value_from_json(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"list"}:
        return tuple(_value_from_json(v) for v in value["list"])
    if isinstance(value, dict) and set(value) == {"float"}:
        return float(value["float"])
    return value


def _attrs_to_json(attrs: model.Attributes) -> list[list[Any]]:
    return [[k, _value_to_json(v)] for k, v in attrs.items()]


def _attrs_from_json(raw: Sequence[Sequence[Any]]) -> model.Attributes:
    return model.Attributes([(str(k), _value_from_json(v)) for k, v in raw])


def _res_to_json(r: model.Resource) -> dict[str, Any]:
    return {"attributes": _attrs_to_json(r.attributes), "schema_url": r.schema_url}


def _res_from_json(raw: Mapping[str, Any]) -> model.Resource:
    return model.Resource(_attrs_from_json(raw.get("attributes", [])), raw.get("schema_url", ""))


def _scope_to_json(s: model.Scope) -> dict[str, Any]:
    return {"name": s.name, "version": s.version, "schema_url": s.schema_url}


def _scope_from_json(raw: Mapping[str, Any]) -> model.Scope:
    return model.Scope(raw.get("name", ""), raw.get("version", ""), raw.get("schema_url", ""))


def _hex(value: int | None, width: int) -> str | None:
    return None if value is None else format(value, f"0{width}x")


def _int(value: str | None) -> int | None:
    return None if value is None else int(value, 16)


def to_json(telemetry: model.Telemetry) -> dict[str, Any]:
    """A JSON-ready dict holding every span, metric point and log record of ``telemetry``."""
    return {
        "spans": [
            {
                "name": s.name,
                "trace_id": _hex(s.trace_id, 32),
                "span_id": _hex(s.span_id, 16),
                "parent_span_id": _hex(s.parent_span_id, 16),
                "kind": s.kind.value,
                "start_time_ns": s.start_time_ns,
                "end_time_ns": s.end_time_ns,
                "status_code": s.status_code.value,
                "status_description": s.status_description,
                "attributes": _attrs_to_json(s.attributes),
                "events": [[e.name, e.timestamp_ns, _attrs_to_json(e.attributes)] for e in s.events],
                "links": [[_hex(lk.trace_id, 32), _hex(lk.span_id, 16), _attrs_to_json(lk.attributes)] for lk in s.links],
                "resource": _res_to_json(s.resource),
                "scope": _scope_to_json(s.scope),
            }
            for s in telemetry.spans
        ],
        "metrics": [
            {
                "name": p.name,
                "kind": p.kind.value,
                "attributes": _attrs_to_json(p.attributes),
                "unit": p.unit,
                "description": p.description,
                "value": _value_to_json(p.value),
                "count": p.count,
                "sum": _value_to_json(p.sum),
                "min": _value_to_json(p.min),
                "max": _value_to_json(p.max),
                "bucket_counts": list(p.bucket_counts),
                "explicit_bounds": [_value_to_json(b) for b in p.explicit_bounds],
                "start_time_ns": p.start_time_ns,
                "time_ns": p.time_ns,
                "temporality": p.temporality.value,
                "is_monotonic": p.is_monotonic,
                "resource": _res_to_json(p.resource),
                "scope": _scope_to_json(p.scope),
            }
            for p in telemetry.metrics
        ],
        "logs": [
            {
                "body": r.body,
                "severity_text": r.severity_text,
                "severity_number": r.severity_number,
                "timestamp_ns": r.timestamp_ns,
                "observed_timestamp_ns": r.observed_timestamp_ns,
                "trace_id": _hex(r.trace_id, 32),
                "span_id": _hex(r.span_id, 16),
                "trace_flags": r.trace_flags,
                "attributes": _attrs_to_json(r.attributes),
                "event_name": r.event_name,
                "resource": _res_to_json(r.resource),
                "scope": _scope_to_json(r.scope),
            }
            for r in telemetry.logs
        ],
    }


def from_json(raw: Mapping[str, Any]) -> model.Telemetry:
    """Rebuild a :class:`model.Telemetry` from :func:`to_json`'s output (raises ValueError if malformed)."""
    try:
        spans = tuple(
            model.Span(
                name=str(s["name"]),
                trace_id=_int(s["trace_id"]) or 0,
                span_id=_int(s["span_id"]) or 0,
                parent_span_id=_int(s["parent_span_id"]),
                kind=model.SpanKind(s["kind"]),
                start_time_ns=int(s["start_time_ns"]),
                end_time_ns=int(s["end_time_ns"]),
                status_code=model.StatusCode(s["status_code"]),
                status_description=str(s["status_description"]),
                attributes=_attrs_from_json(s["attributes"]),
                events=tuple(model.Event(n, int(t), _attrs_from_json(a)) for n, t, a in s["events"]),
                links=tuple(model.Link(_int(t) or 0, _int(i) or 0, _attrs_from_json(a)) for t, i, a in s["links"]),
                resource=_res_from_json(s["resource"]),
                scope=_scope_from_json(s["scope"]),
            )
            for s in raw.get("spans", [])
        )
        metrics = tuple(
            model.MetricPoint(
                name=str(p["name"]),
                kind=model.MetricKind(p["kind"]),
                attributes=_attrs_from_json(p["attributes"]),
                unit=str(p["unit"]),
                description=str(p["description"]),
                value=_value_from_json(p["value"]),
                count=p["count"],
                sum=_value_from_json(p["sum"]),
                min=_value_from_json(p["min"]),
                max=_value_from_json(p["max"]),
                bucket_counts=tuple(p["bucket_counts"]),
                explicit_bounds=tuple(_value_from_json(b) for b in p["explicit_bounds"]),
                start_time_ns=int(p["start_time_ns"]),
                time_ns=int(p["time_ns"]),
                temporality=model.Temporality(p["temporality"]),
                is_monotonic=bool(p["is_monotonic"]),
                resource=_res_from_json(p["resource"]),
                scope=_scope_from_json(p["scope"]),
            )
            for p in raw.get("metrics", [])
        )
        logs = tuple(
            model.LogRecord(
                body=r["body"],
                severity_text=str(r["severity_text"]),
                severity_number=int(r["severity_number"]),
                timestamp_ns=int(r["timestamp_ns"]),
                observed_timestamp_ns=int(r["observed_timestamp_ns"]),
                trace_id=_int(r["trace_id"]) or 0,
                span_id=_int(r["span_id"]) or 0,
                trace_flags=int(r["trace_flags"]),
                attributes=_attrs_from_json(r["attributes"]),
                event_name=str(r["event_name"]),
                resource=_res_from_json(r["resource"]),
                scope=_scope_from_json(r["scope"]),
            )
            for r in raw.get("logs", [])
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed telemetry record: {exc!r}") from exc
    return model.Telemetry(spans, metrics, logs)


def collect(spans: Iterable[Any], metrics_data: Any, logs: Iterable[Any]) -> model.Telemetry:
    """Convert captured SDK spans, one ``MetricsData`` and SDK log records into one model."""
    return model.Telemetry(
        tuple(span_from_sdk(s) for s in spans),
        metrics_from_sdk(metrics_data),
        tuple(log_from_sdk(r) for r in logs),
    )


__all__ = ["collect", "from_json", "log_from_sdk", "metrics_from_sdk", "span_from_sdk", "to_json"]
