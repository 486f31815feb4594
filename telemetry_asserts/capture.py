"""In-memory capture of spans, metrics and logs with the real OpenTelemetry SDK, converted to the model.

:class:`Capture` owns a TracerProvider (SimpleSpanProcessor into an InMemorySpanExporter), a
MeterProvider (an InMemoryMetricReader asking for delta temporality) and a LoggerProvider
(SimpleLogRecordProcessor into an in-memory log exporter). :meth:`Capture.clear` starts a new window
(a test): spans and logs are dropped and metrics are baselined, so :meth:`Capture.snapshot` shows
only what happened since - counters and histograms as sums of the deltas, gauges as last values.

``spans_from_sdk``, ``metrics_from_sdk`` and ``logs_from_sdk`` convert SDK objects to the model; they
are public because the pipeline's telemetry summary and the grader use them too.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from opentelemetry import _logs as logs_api
from opentelemetry import metrics as metrics_api
from opentelemetry import trace as trace_api
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics import _Gauge as SyncGauge
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    ExponentialHistogram,
    Gauge,
    InMemoryMetricReader,
    MetricsData,
    Sum,
)
from opentelemetry.sdk.metrics.export import Histogram as HistogramData
from opentelemetry.sdk.resources import Resource as SdkResource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from . import model
from .tree import order_parent_first

__all__ = [
    "Capture",
    "GlobalInstall",
    "install_global",
    "logs_from_sdk",
    "metrics_from_sdk",
    "spans_from_sdk",
]

_DELTA: dict[type, AggregationTemporality] = {
    kind: AggregationTemporality.DELTA
    for kind in (
        Counter,
        UpDownCounter,
        Histogram,
        SyncGauge,
        ObservableCounter,
        ObservableUpDownCounter,
        ObservableGauge,
    )
}


# ---------------------------------------------------------------------------------------------
# SDK -> model conversion
# ---------------------------------------------------------------------------------------------


def _resource(resource: Any) -> model.Resource:
    if resource is None:
        return model.Resource()
    return model.Resource(model.attributes(resource.attributes or {}), resource.schema_url or "")


def _scope(scope: Any) -> model.Scope:
    if scope is None:
        return model.Scope()
    return model.Scope(
        scope.name or "",
        scope.version or "",
        getattr(scope, "schema_url", "") or "",
        model.attributes(getattr(scope, "attributes", None) or {}),
    )


def _span(s: ReadableSpan) -> model.Span:
    ctx = s.context
    parent = s.parent
    status = s.status
    return model.Span(
        name=s.name,
        trace_id=ctx.trace_id,
        span_id=ctx.span_id,
        parent_span_id=parent.span_id if parent is not None and parent.is_valid else None,
        kind=model.SpanKind[s.kind.name],
        start_time_ns=s.start_time or 0,
        end_time_ns=s.end_time or 0,
        status_code=model.StatusCode[status.status_code.name],
        status_description=status.description or "",
        attributes=model.attributes(s.attributes or {}),
        events=tuple(
            model.Event(e.name, e.timestamp or 0, model.attributes(e.attributes or {})) for e in s.events
        ),
        links=tuple(
            model.Link(link.context.trace_id, link.context.span_id, model.attributes(link.attributes or {}))
            for link in s.links
        ),
        resource=_resource(s.resource),
        scope=_scope(s.instrumentation_scope),
    )


def spans_from_sdk(spans: Iterable[ReadableSpan]) -> tuple[model.Span, ...]:
    """Model spans, parent-first (each trace depth-first, siblings by start time)."""
    return order_parent_first([_span(s) for s in spans])


def _temporality(value: Any) -> model.Temporality:
    if value == AggregationTemporality.DELTA:
        return model.Temporality.DELTA
    if value == AggregationTemporality.CUMULATIVE:
        return model.Temporality.CUMULATIVE
    return model.Temporality.UNSPECIFIED


def metrics_from_sdk(data: MetricsData | None) -> tuple[model.MetricPoint, ...]:
    """One model point per SDK data point (``None``, as the reader gives before any record, is empty).

    Exponential histograms keep count, sum, min and max; their exponential buckets are not carried.
    """
    if data is None:
        return ()
    points: list[model.MetricPoint] = []
    for rm in data.resource_metrics:
        resource = _resource(rm.resource)
        for sm in rm.scope_metrics:
            scope = _scope(sm.scope)
            for metric in sm.metrics:
                base: dict[str, Any] = {
                    "name": metric.name,
                    "unit": metric.unit or "",
                    "description": metric.description or "",
                    "resource": resource,
                    "scope": scope,
                }
                d: Any = metric.data
                for p in d.data_points:
                    common: dict[str, Any] = {
                        **base,
                        "attributes": model.attributes(p.attributes or {}),
                        "start_time_ns": p.start_time_unix_nano or 0,
                        "time_ns": p.time_unix_nano or 0,
                    }
                    if isinstance(d, Sum):
                        kind = model.MetricKind.COUNTER if d.is_monotonic else model.MetricKind.UP_DOWN_COUNTER
                        points.append(
                            model.MetricPoint(
                                kind=kind,
                                value=p.value,
                                temporality=_temporality(d.aggregation_temporality),
                                is_monotonic=bool(d.is_monotonic),
                                **common,
                            )
                        )
                    elif isinstance(d, Gauge):
                        points.append(model.MetricPoint(kind=model.MetricKind.GAUGE, value=p.value, **common))
                    elif isinstance(d, HistogramData):
                        points.append(
                            model.MetricPoint(
                                kind=model.MetricKind.HISTOGRAM,
                                count=p.count,
                                sum=p.sum,
                                min=p.min,
                                max=p.max,
                                bucket_counts=tuple(p.bucket_counts),
                                explicit_bounds=tuple(p.explicit_bounds),
                                temporality=_temporality(d.aggregation_temporality),
                                **common,
                            )
                        )
                    elif isinstance(d, ExponentialHistogram):
                        points.append(
                            model.MetricPoint(
                                kind=model.MetricKind.EXPONENTIAL_HISTOGRAM,
                                count=p.count,
                                sum=p.sum,
                                min=p.min,
                                max=p.max,
                                temporality=_temporality(d.aggregation_temporality),
                                **common,
                            )
                        )
    return tuple(points)


def _log(item: Any) -> model.LogRecord:
    # ReadableLogRecord (SDK >= 1.39) and the older LogData both hold .log_record.
    r = item.log_record
    resource = getattr(item, "resource", None) or getattr(r, "resource", None)
    severity = r.severity_number
    return model.LogRecord(
        body=r.body,
        severity_text=r.severity_text or "",
        severity_number=int(severity.value) if severity is not None else 0,
        timestamp_ns=r.timestamp or 0,
        observed_timestamp_ns=r.observed_timestamp or 0,
        trace_id=r.trace_id or 0,
        span_id=r.span_id or 0,
        trace_flags=int(r.trace_flags or 0),
        attributes=model.attributes(r.attributes or {}),
        event_name=getattr(r, "event_name", None) or "",
        resource=_resource(resource),
        scope=_scope(item.instrumentation_scope),
    )


def logs_from_sdk(records: Iterable[Any]) -> tuple[model.LogRecord, ...]:
    """Model log records from the SDK's exported records (``ReadableLogRecord`` or ``LogData``)."""
    return tuple(_log(r) for r in records)


# ---------------------------------------------------------------------------------------------
# Per-window metric accumulation
# ---------------------------------------------------------------------------------------------


def _series(p: model.MetricPoint) -> tuple[Any, ...]:
    return (p.scope.name, p.scope.version, p.name, p.kind, p.attributes.key())


def _merge(old: model.MetricPoint, new: model.MetricPoint) -> model.MetricPoint:
    """Fold a newer delta point into the window's running point."""
    if new.kind is model.MetricKind.GAUGE:
        return replace(new, start_time_ns=old.start_time_ns or new.start_time_ns)
    if new.kind in (model.MetricKind.COUNTER, model.MetricKind.UP_DOWN_COUNTER):
        return replace(new, value=(old.value or 0) + (new.value or 0), start_time_ns=old.start_time_ns)
    buckets = new.bucket_counts
    if old.bucket_counts and old.explicit_bounds == new.explicit_bounds:
        buckets = tuple(a + b for a, b in zip(old.bucket_counts, new.bucket_counts))
    return replace(
        new,
        count=(old.count or 0) + (new.count or 0),
        sum=(old.sum or 0) + (new.sum or 0),
        min=_pick(min, old.min, new.min),
        max=_pick(max, old.max, new.max),
        bucket_counts=buckets,
        start_time_ns=old.start_time_ns,
    )


def _pick(fn: Any, a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return fn(a, b)


# ---------------------------------------------------------------------------------------------
# The capture
# ---------------------------------------------------------------------------------------------


class Capture:
    """Real SDK providers recording into memory, read back as :class:`model.Telemetry`."""

    def __init__(self, resource: SdkResource | None = None) -> None:
        self.resource = resource or SdkResource.create({})
        self.span_exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider(resource=self.resource)
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.span_exporter))
        self.metric_reader = InMemoryMetricReader(preferred_temporality=dict(_DELTA))
        self.meter_provider = MeterProvider(resource=self.resource, metric_readers=[self.metric_reader])
        self.log_exporter = InMemoryLogRecordExporter()
        self.logger_provider = LoggerProvider(resource=self.resource)
        self.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(self.log_exporter))
        self._lock = threading.RLock()
        self._points: dict[tuple[Any, ...], model.MetricPoint] = {}
        self._converted: list[tuple[ReadableSpan, model.Span]] = []

    # -- windows ------------------------------------------------------------------------------

    def clear(self) -> None:
        """Start a new window: forget spans and logs; metrics recorded so far become the baseline."""
        with self._lock:
            self.span_exporter.clear()
            self.log_exporter.clear()
            self._converted = []
            self.metric_reader.get_metrics_data()  # delta temporality: this collect is the baseline
            self._points = {}

    def snapshot(self) -> model.Telemetry:
        """Everything recorded since the last :meth:`clear` (spans parent-first)."""
        with self._lock:
            return model.Telemetry(self._spans(), self._metrics(), self._logs())

    def _spans(self) -> tuple[model.Span, ...]:
        finished = self.span_exporter.get_finished_spans()
        done = self._converted
        # The exporter only appends between clears: convert just the new spans.
        if len(done) > len(finished) or (done and finished[len(done) - 1] is not done[-1][0]):
            done = []
        done = done + [(s, _span(s)) for s in finished[len(done) :]]
        self._converted = done
        return order_parent_first([m for _, m in done])

    def _metrics(self) -> tuple[model.MetricPoint, ...]:
        for p in metrics_from_sdk(self.metric_reader.get_metrics_data()):
            key = _series(p)
            old = self._points.get(key)
            self._points[key] = p if old is None else _merge(old, p)
        return tuple(self._points.values())

    def _logs(self) -> tuple[model.LogRecord, ...]:
        return logs_from_sdk(self.log_exporter.get_finished_logs())

    # -- logging bridge -----------------------------------------------------------------------

    def log_handler(self, level: int = logging.NOTSET) -> logging.Handler:
        """A stdlib logging handler that emits into this capture's logger provider."""
        try:
            from opentelemetry.instrumentation.logging.handler import LoggingHandler
        except ImportError:  # pragma: no cover - older contrib: fall back to the SDK's handler
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                from opentelemetry.sdk._logs import LoggingHandler  # type: ignore[assignment]

                return LoggingHandler(level=level, logger_provider=self.logger_provider)
        return LoggingHandler(level=level, logger_provider=self.logger_provider)

    @contextmanager
    def capturing_logs(self, level: int = logging.INFO, logger: str | None = None) -> Iterator[logging.Handler]:
        """Bridge ``logger`` (default: root) into this capture for the block, lowering its level to
        ``level`` if needed; both are restored afterwards."""
        target = logging.getLogger(logger)
        handler = self.log_handler()
        old_level = target.level
        target.addHandler(handler)
        if level and target.getEffectiveLevel() > level:
            target.setLevel(level)
        try:
            yield handler
        finally:
            target.removeHandler(handler)
            target.setLevel(old_level)

    # -- lifecycle ----------------------------------------------------------------------------

    def force_flush(self, timeout_millis: int = 5_000) -> None:
        self.tracer_provider.force_flush(timeout_millis)
        self.logger_provider.force_flush(timeout_millis)

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
        self.logger_provider.shutdown()


# ---------------------------------------------------------------------------------------------
# Global API
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GlobalInstall:
    """Which signals of the global OpenTelemetry API now reach a capture, and why not if not."""

    traces: bool
    metrics: bool
    logs: bool
    problems: tuple[str, ...] = ()


def install_global(capture: Capture) -> GlobalInstall:
    """Make ``capture``'s providers the global ones (the API allows that once per process).

    If a tracer provider was already installed by someone else and it is an SDK provider, the
    capture's exporter is attached to it as an extra processor so global spans still arrive. A
    foreign meter or logger provider cannot be redirected: that is reported in ``problems``.
    """
    problems: list[str] = []

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _quietly(trace_api.set_tracer_provider, capture.tracer_provider)
        _quietly(metrics_api.set_meter_provider, capture.meter_provider)
        _quietly(logs_api.set_logger_provider, capture.logger_provider)

    current_tp = trace_api.get_tracer_provider()
    traces = current_tp is capture.tracer_provider
    if not traces and isinstance(current_tp, TracerProvider):
        current_tp.add_span_processor(SimpleSpanProcessor(capture.span_exporter))
        traces = True
    elif not traces:
        problems.append(f"the global tracer provider is {type(current_tp).__name__}, not an SDK TracerProvider")
    metrics_ok = metrics_api.get_meter_provider() is capture.meter_provider
    if not metrics_ok:
        problems.append(
            "a meter provider was installed globally before the plugin "
            f"({type(metrics_api.get_meter_provider()).__name__}): global metrics are not captured"
        )
    logs_ok = logs_api.get_logger_provider() is capture.logger_provider
    if not logs_ok:
        problems.append("a logger provider was installed globally before the plugin: OTel-API logs are not captured")
    return GlobalInstall(traces, metrics_ok, logs_ok, tuple(problems))


def _quietly(setter: Any, provider: Any) -> None:
    """Call a ``set_*_provider`` without its 'override not allowed' log line."""
    quiet = [logging.getLogger(n) for n in ("opentelemetry.trace", "opentelemetry.metrics._internal",
                                            "opentelemetry._logs._internal", "opentelemetry.util._once")]
    levels = [q.level for q in quiet]
    for q in quiet:
        q.setLevel(logging.CRITICAL)
    try:
        setter(provider)
    finally:
        for q, lvl in zip(quiet, levels):
            q.setLevel(lvl)
