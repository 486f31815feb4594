"""Text renderings of telemetry for people: span trees, a waterfall, metric points, log records.

Used by the pytest plugin's "Captured telemetry" section, by failure messages, by the CLI and by the
pipeline's ``--telemetry-summary``. The tree uses the same box-drawing text that
:func:`telemetry_asserts.tree.parse_tree` reads, so a rendered tree can be pasted as an expectation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .model import LogRecord, MetricKind, MetricPoint, Span, StatusCode, Telemetry
from .tree import SpanForest

MarkKey = Span | tuple[int, int]

__all__ = [
    "format_duration",
    "render_logs",
    "render_metrics",
    "render_telemetry",
    "render_tree",
    "render_waterfall",
]


def format_duration(ns: int) -> str:
    """``1.23 s``, ``12.3 ms`` or ``45 µs``."""
    if ns >= 1_000_000_000:
        return f"{ns / 1e9:.2f} s"
    if ns >= 1_000_000:
        return f"{ns / 1e6:.1f} ms"
    return f"{ns / 1e3:.0f} µs"


def _mark_index(marks: Mapping[MarkKey, str] | None) -> dict[tuple[int, int], str]:
    out: dict[tuple[int, int], str] = {}
    for key, text in (marks or {}).items():
        if isinstance(key, Span):
            out[(key.trace_id, key.span_id)] = text
        else:
            out[(key[0], key[1])] = text
    return out


def _format_attributes(attributes: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{k}={v!r}" for k, v in attributes.items()) + "}"


def _yaml_value(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _span_label(span: Span, durations: bool, attributes: bool) -> str:
    label = span.name
    if durations:
        label += f" ({format_duration(span.duration_ns)})"
    if span.status_code is StatusCode.ERROR:
        label += f" [ERROR{': ' + span.status_description if span.status_description else ''}]"
    if attributes and span.attributes:
        # YAML flow style, the one parse_tree reads, so the line can be pasted as an expectation.
        label += " {" + ", ".join(f"{k}: {_yaml_value(v)}" for k, v in span.attributes.items()) + "}"
    return label


def tree_lines(
    forest: SpanForest,
    starts: Sequence[int] | None = None,
    *,
    label: Any = None,
) -> list[tuple[int, str]]:
    """``(node, line)`` pairs of the box-drawing rendering of ``forest`` from ``starts``.

    ``label(span) -> str`` formats one span (default: its name).
    """
    fmt = label or (lambda s: s.name)
    out: list[tuple[int, str]] = []
    # Stack of (node, prefix for the node's own line, prefix for its children).
    stack: list[tuple[int, str, str]] = [(i, "", "") for i in reversed(forest.roots if starts is None else starts)]
    while stack:
        i, own, child_prefix = stack.pop()
        out.append((i, own + fmt(forest.spans[i])))
        kids = forest.children[i]
        for n, c in reversed(list(enumerate(kids))):
            last = n == len(kids) - 1
            stack.append((c, child_prefix + ("└─ " if last else "├─ "), child_prefix + ("   " if last else "│  ")))
    return out


def render_tree(
    spans: Sequence[Span],
    *,
    durations: bool = True,
    attributes: bool = False,
    marks: Mapping[MarkKey, str] | None = None,
    max_lines: int | None = None,
) -> str:
    """The spans as box-drawing trees, one per root, parent-first, siblings by start time.

    ``durations`` appends each span's duration; ``attributes`` its attributes; ``marks`` maps a span
    (or ``(trace_id, span_id)``) to a note printed at the end of its line (``<-- note``). Several
    traces get a ``trace <id>`` header each. ``max_lines`` truncates with a count of what was left.
    """
    if not spans:
        return "(no spans recorded)"
    forest = SpanForest(spans)
    notes = _mark_index(marks)
    many_traces = len({s.trace_id for s in forest.spans}) > 1
    lines: list[str] = []
    last_trace: int | None = None
    for i, text in tree_lines(forest, label=lambda s: _span_label(s, durations, attributes)):
        span = forest.spans[i]
        if many_traces and forest.parent[i] is None and span.trace_id != last_trace:
            lines.append(f"trace {span.trace_id_hex}")
            last_trace = span.trace_id
        note = notes.get((span.trace_id, span.span_id))
        lines.append(f"{text}  <-- {note}" if note else text)
    return "\n".join(_truncate(lines, max_lines, "line"))


def _truncate(lines: list[str], max_lines: int | None, what: str) -> list[str]:
    if max_lines is None or len(lines) <= max_lines:
        return lines
    rest = len(lines) - max_lines
    return lines[:max_lines] + [f"... {rest} more {what}{'s' if rest != 1 else ''}"]


def render_waterfall(spans: Sequence[Span], *, width: int = 40, max_lines: int | None = None) -> str:
    """A text waterfall: one line per span (tree-indented name, a bar on its trace's time axis,
    the duration), so gaps and overlaps between stages are visible."""
    if not spans:
        return "(no spans recorded)"
    forest = SpanForest(spans)
    bounds: dict[int, tuple[int, int]] = {}
    for s in forest.spans:
        lo, hi = bounds.get(s.trace_id, (s.start_time_ns, s.end_time_ns))
        bounds[s.trace_id] = (min(lo, s.start_time_ns), max(hi, s.end_time_ns))
    rows = tree_lines(forest)
    name_width = max(len(text) for _, text in rows)
    lines = []
    for i, text in rows:
        s = forest.spans[i]
        lo, hi = bounds[s.trace_id]
        total = max(hi - lo, 1)
        a = min(round((s.start_time_ns - lo) * width / total), width - 1)
        b = max(a + 1, round((s.end_time_ns - lo) * width / total))
        bar = " " * a + "█" * (min(b, width) - a) + " " * (width - min(b, width))
        lines.append(f"{text.ljust(name_width)} |{bar}| {format_duration(s.duration_ns)}")
    return "\n".join(_truncate(lines, max_lines, "line"))


def _format_number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _point_values(p: MetricPoint) -> str:
    if p.kind in (MetricKind.HISTOGRAM, MetricKind.EXPONENTIAL_HISTOGRAM):
        parts = [f"count={p.count}", f"sum={_format_number(p.sum)}"]
        if p.min is not None:
            parts.append(f"min={_format_number(p.min)}")
        if p.max is not None:
            parts.append(f"max={_format_number(p.max)}")
        if p.bucket_counts and p.explicit_bounds:
            edges = [f"≤{_format_number(b)}" for b in p.explicit_bounds] + [f">{_format_number(p.explicit_bounds[-1])}"]
            filled = [f"{e}:{c}" for e, c in zip(edges, p.bucket_counts) if c]
            parts.append("buckets={" + " ".join(filled) + "}")
        return " ".join(parts)
    return f"value={_format_number(p.value)}"


def render_metrics(points: Sequence[MetricPoint], *, max_lines: int | None = None) -> str:
    """One line per point, grouped by metric name: kind, unit, attributes, and the value(s)."""
    if not points:
        return "(no metric points recorded)"
    lines = []
    ordered = sorted(points, key=lambda p: (p.name, repr(p.attributes.key())))
    previous = None
    for p in ordered:
        if p.name != previous:
            unit = f", unit {p.unit!r}" if p.unit else ""
            lines.append(f"{p.name} ({p.kind.value}{unit})")
            previous = p.name
        attrs = _format_attributes(p.attributes) if p.attributes else "{}"
        lines.append(f"  {attrs} {_point_values(p)}")
    return "\n".join(_truncate(lines, max_lines, "line"))


_HIDDEN_LOG_KEYS = ("code.", "otelSpanID", "otelTraceID", "otelServiceName", "otelTraceSampled")


def render_logs(records: Sequence[LogRecord], *, max_lines: int | None = None) -> str:
    """One line per log record: severity, body, its own attributes, and the span it belongs to."""
    if not records:
        return "(no log records)"
    lines = []
    for r in records:
        attrs = {k: v for k, v in r.attributes.items() if not k.startswith(_HIDDEN_LOG_KEYS)}
        where = f" span={r.span_id_hex}" if r.is_correlated else " (no span)"
        extra = " " + _format_attributes(attrs) if attrs else ""
        lines.append(f"{(r.severity_text or '-'):<5} {r.body}{extra}{where}")
    return "\n".join(_truncate(lines, max_lines, "line"))


def render_telemetry(telemetry: Telemetry, *, max_lines: int | None = 80) -> str:
    """Spans (tree with durations), metric points and log records in one report."""
    blocks = [
        f"spans ({len(telemetry.spans)}):",
        _indent(render_tree(telemetry.spans, max_lines=max_lines)),
        f"metric points ({len(telemetry.metrics)}):",
        _indent(render_metrics(telemetry.metrics, max_lines=max_lines)),
        f"log records ({len(telemetry.logs)}):",
        _indent(render_logs(telemetry.logs, max_lines=max_lines)),
    ]
    return "\n".join(blocks)


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())
