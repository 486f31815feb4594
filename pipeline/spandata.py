"""Finished spans and log records as plain data, so they can cross a process boundary.

A worker process collects what it finished (:class:`WorkerCollector`: an in-memory span processor
and log processor added next to its exporters), turns it into plain dicts (picklable, no SDK locks)
and sends them back with the task's result; the parent turns them back into SDK objects
(``ReadableSpan``, ``ReadWriteLogRecord``) and hands them to its in-process processors
(:meth:`pipeline.telemetry.TelemetrySetup.adopt`). Ids, timestamps, parents, links, events, status,
resource and scope survive the round trip unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk._logs import ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

log = logging.getLogger("pipeline.spandata")

#: At most this many spans and this many log records travel back per task (a file makes about a
#: dozen of each); the rest are dropped and counted, so a runaway task cannot flood the parent.
MAX_ITEMS_PER_TASK = 10_000

SpanData = dict[str, Any]
LogData = dict[str, Any]


# ------------------------------------------------------------------------------------------------
# Spans
# ------------------------------------------------------------------------------------------------


def _context_to_data(ctx: SpanContext | None) -> dict[str, Any] | None:
    if ctx is None:
        return None
    return {"trace_id": ctx.trace_id, "span_id": ctx.span_id, "flags": int(ctx.trace_flags),
            "remote": ctx.is_remote, "state": ctx.trace_state.to_header()}


def _context_from_data(data: Mapping[str, Any] | None) -> SpanContext | None:
    if data is None:
        return None
    return SpanContext(data["trace_id"], data["span_id"], bool(data["remote"]), TraceFlags(data["flags"]),
                       TraceState.from_header([data["state"]]) if data["state"] else TraceState())


def _scope_to_data(scope: InstrumentationScope | None) -> dict[str, Any] | None:
    if scope is None:
        return None
    return {"name": scope.name, "version": scope.version, "schema_url": scope.schema_url,
            "attributes": dict(scope.attributes or {})}


def _scope_from_data(data: Mapping[str, Any] | None) -> InstrumentationScope | None:
    if data is None:
        return None
    return InstrumentationScope(data["name"], data["version"], data["schema_url"], data["attributes"] or None)


def _resource_to_data(resource: Resource | None) -> dict[str, Any]:
    resource = resource or Resource.get_empty()
    return {"attributes": dict(resource.attributes), "schema_url": resource.schema_url}


def _resource_from_data(data: Mapping[str, Any]) -> Resource:
    return Resource(dict(data["attributes"]), data["schema_url"])


def span_to_data(span: ReadableSpan) -> SpanData:
    """A finished span as a plain dict (see :func:`span_from_data`)."""
    return {
        "name": span.name,
        "context": _context_to_data(span.context),
        "parent": _context_to_data(span.parent),
        "kind": span.kind.value,
        "start_time": span.start_time,
        "end_time": span.end_time,
        "attributes": dict(span.attributes or {}),
        "events": [{"name": e.name, "timestamp": e.timestamp, "attributes": dict(e.attributes or {})}
                   for e in span.events],
        "links": [{"context": _context_to_data(link.context), "attributes": dict(link.attributes or {})}
                  for link in span.links],
        "status": {"code": span.status.status_code.value, "description": span.status.description},
        "resource": _resource_to_data(span.resource),
        "scope": _scope_to_data(span.instrumentation_scope),
    }


def span_from_data(data: Mapping[str, Any]) -> ReadableSpan:
    """The ``ReadableSpan`` that :func:`span_to_data` described."""
    status = data["status"]
    return ReadableSpan(
        name=data["name"],
        context=_context_from_data(data["context"]),
        parent=_context_from_data(data["parent"]),
        resource=_resource_from_data(data["resource"]),
        attributes=dict(data["attributes"]),
        events=tuple(Event(e["name"], dict(e["attributes"]), e["timestamp"]) for e in data["events"]),
        links=tuple(Link(_context_from_data(link["context"]), dict(link["attributes"]))  # type: ignore[arg-type]
                    for link in data["links"]),
        kind=SpanKind(data["kind"]),
        status=Status(StatusCode(status["code"]), status["description"]),
        start_time=data["start_time"],
        end_time=data["end_time"],
        instrumentation_scope=_scope_from_data(data["scope"]),
    )


# ------------------------------------------------------------------------------------------------
# Log records
# ------------------------------------------------------------------------------------------------


def log_to_data(record: ReadableLogRecord | ReadWriteLogRecord) -> LogData:
    """A finished log record as a plain dict (see :func:`log_from_data`)."""
    r = record.log_record
    return {
        "timestamp": r.timestamp,
        "observed_timestamp": r.observed_timestamp,
        "trace_id": r.trace_id or 0,
        "span_id": r.span_id or 0,
        "flags": int(r.trace_flags or 0),
        "severity_text": r.severity_text,
        "severity_number": None if r.severity_number is None else r.severity_number.value,
        "body": r.body,
        "attributes": dict(r.attributes or {}),
        "event_name": r.event_name,
        "resource": _resource_to_data(record.resource),
        "scope": _scope_to_data(record.instrumentation_scope),
    }


def log_from_data(data: Mapping[str, Any]) -> ReadWriteLogRecord:
    """The ``ReadWriteLogRecord`` (what log processors receive) that :func:`log_to_data` described."""
    from opentelemetry._logs import LogRecord, SeverityNumber

    span_context = SpanContext(data["trace_id"], data["span_id"], True, TraceFlags(data["flags"]))
    record = LogRecord(
        timestamp=data["timestamp"],
        observed_timestamp=data["observed_timestamp"],
        context=trace.set_span_in_context(NonRecordingSpan(span_context)),
        severity_text=data["severity_text"],
        severity_number=None if data["severity_number"] is None else SeverityNumber(data["severity_number"]),
        body=data["body"],
        attributes=dict(data["attributes"]),
        event_name=data["event_name"],
    )
    return ReadWriteLogRecord(record, _resource_from_data(data["resource"]), _scope_from_data(data["scope"]))


# ------------------------------------------------------------------------------------------------
# The worker side: collect what a task finished
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FinishedTelemetry:
    """The spans and log records one task finished, as plain data (picklable)."""

    spans: tuple[SpanData, ...] = ()
    logs: tuple[LogData, ...] = ()
    dropped: int = 0

    def sdk_spans(self) -> list[ReadableSpan]:
        return [span_from_data(s) for s in self.spans]

    def sdk_logs(self) -> list[ReadWriteLogRecord]:
        return [log_from_data(r) for r in self.logs]


@dataclass
class WorkerCollector:
    """In-memory span and log processors for a worker's providers; :meth:`take` empties them."""

    span_exporter: InMemorySpanExporter = field(default_factory=InMemorySpanExporter)
    log_exporter: InMemoryLogRecordExporter = field(default_factory=InMemoryLogRecordExporter)

    def __post_init__(self) -> None:
        self.span_processor = SimpleSpanProcessor(self.span_exporter)
        self.log_processor = SimpleLogRecordProcessor(self.log_exporter)

    def extras(self) -> dict[str, Any]:
        """Keyword arguments for :func:`pipeline.telemetry.configure_from_env`."""
        return {"extra_span_processors": [self.span_processor], "extra_log_processors": [self.log_processor]}

    def take(self, limit: int = MAX_ITEMS_PER_TASK) -> FinishedTelemetry:
        """Everything finished since the last call, as data (at most ``limit`` spans and logs each)."""
        spans = self.span_exporter.get_finished_spans()
        self.span_exporter.clear()
        logs = self.log_exporter.get_finished_logs()
        self.log_exporter.clear()
        dropped = max(0, len(spans) - limit) + max(0, len(logs) - limit)
        if dropped:
            log.warning("%d spans/log records of one task not sent back (limit %d each)", dropped, limit)
        return FinishedTelemetry(tuple(span_to_data(s) for s in spans[:limit]),
                                 tuple(log_to_data(r) for r in logs[:limit]), dropped)


def adopt_into(span_processors: Sequence[Any], log_processors: Sequence[Any], finished: FinishedTelemetry) -> None:
    """Hand another process's finished spans and logs to these processors, as if ended here."""
    if span_processors:
        for span in finished.sdk_spans():
            for proc in span_processors:
                proc.on_end(span)
    if log_processors:
        for record in finished.sdk_logs():
            for proc in log_processors:
                proc.on_emit(record)


__all__ = [
    "MAX_ITEMS_PER_TASK",
    "FinishedTelemetry",
    "WorkerCollector",
    "adopt_into",
    "log_from_data",
    "log_to_data",
    "span_from_data",
    "span_to_data",
]
