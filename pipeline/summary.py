"""``--telemetry-summary``: in-memory copies of the run's spans and metrics, printed at the end.

:class:`TelemetrySummary` provides a span processor and a metric reader to add *next to* the
configured exporters (:func:`pipeline.telemetry.configure_from_env` takes them as extras), then
renders the span tree with durations and the metric totals with ``telemetry_asserts.report``
(converting SDK objects with ``telemetry_asserts.capture``'s functions).
"""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


class TelemetrySummary:
    """Collects a copy of everything the run records and renders it as text."""

    def __init__(self) -> None:
        self.span_exporter = InMemorySpanExporter()
        self.span_processor = SimpleSpanProcessor(self.span_exporter)
        self.metric_reader = InMemoryMetricReader()

    def extras(self) -> dict[str, Any]:
        """Keyword arguments for :func:`pipeline.telemetry.configure_from_env`."""
        return {"extra_span_processors": [self.span_processor], "extra_metric_readers": [self.metric_reader]}

    def render(self, *, max_tree_lines: int | None = 400, sampler_note: str | None = None) -> str:
        """The span tree (durations) and one line per metric point; call before shutting down."""
        from telemetry_asserts.capture import metrics_from_sdk, spans_from_sdk
        from telemetry_asserts.report import render_metrics, render_tree

        spans = spans_from_sdk(self.span_exporter.get_finished_spans())
        points = metrics_from_sdk(self.metric_reader.get_metrics_data())
        tree = render_tree(spans, durations=True, max_lines=max_tree_lines)
        if not spans and sampler_note:
            tree = f"{tree} ({sampler_note})"
        traces = len({s.trace_id for s in spans})
        header = f"== Telemetry summary: {len(spans)} spans in {traces} trace{'s' if traces != 1 else ''} =="
        return "\n".join([header, tree, "", "== Metrics ==", render_metrics(points)])


__all__ = ["TelemetrySummary"]
