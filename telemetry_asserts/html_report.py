"""A self-contained HTML trace view: waterfall per trace, violations, lint findings, metrics, logs.

One file, no network: the CSS and JavaScript (``html_report.css``/``.js`` beside this module) are
inlined, and the telemetry travels as JSON in a ``<script type="application/json">`` block, with
``<``, ``>``, ``&`` and U+2028/2029 escaped so no value can close the block. The page builds its DOM
with ``textContent`` only, so every value from code under test (span names, attribute keys and
values, log bodies, exception texts) renders as text. Untrusted sizes are bounded here first.

:func:`render_static_html` is the script-free variant for places that strip scripts (Gradescope).
Reads only the model and the judges' findings (a :class:`ContractResult`, a :class:`LintReport`).
"""

from __future__ import annotations

import hashlib
import html as _html
import json
import re
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ._files import write_text_atomic
from .lint import LintReport
from .model import AttributeValue, LogRecord, MetricKind, MetricPoint, Span, StatusCode, Telemetry
from .report import format_duration, tree_lines
from .tree import SpanForest

__all__ = ["Limits", "ReportSection", "contract_lint", "render_html", "render_static_html", "report_data", "script_json",
           "write_html", "write_test_report"]


@dataclass(frozen=True)
class Limits:
    """Bounds applied to untrusted telemetry before it is embedded (what is cut is counted)."""

    max_spans: int = 50_000
    max_value_chars: int = 2_000
    max_attributes: int = 128
    max_events: int = 128
    max_logs: int = 5_000
    max_metric_points: int = 5_000
    max_text_chars: int = 20_000
    #: all attribute keys and values together; past it values are cut to 64 characters and, past
    #: twice it, attributes are left out (counted), so no input makes the page unbounded
    max_total_chars: int = 30_000_000


class _Budget:
    """The limits of one report plus what is left of its total size budget."""

    def __init__(self, limits: Limits) -> None:
        self.__dict__.update(vars(limits))
        self.left = limits.max_total_chars


@dataclass(frozen=True)
class ReportSection:
    """A free section (title + text, or expected/actual side by side), e.g. a grader check."""

    title: str
    status: str = "info"  # passed | failed | error | info
    text: str = ""
    expected: str = ""
    actual: str = ""
    feedback: str = ""
    points: str = ""


_INLINE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def script_json(data: Any) -> str:
    """JSON safe to place inside ``<script>``: no ``</script>``, ``<!--`` or line separators survive."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False).translate(_INLINE)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"… ({len(text) - limit} more characters)"


def _display(value: Any, limit: int) -> str:
    """An attribute value as text: strings as they are, others in JSON spelling (true, 1.5, [..])."""
    if isinstance(value, str):
        return _clip(value, limit)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, (tuple, list)):
        return _clip("[" + ", ".join(json.dumps(v, ensure_ascii=False) if isinstance(v, str) else _display(v, limit)
                                     for v in value) + "]", limit)
    return _clip(str(value), limit)


def _type_name(value: AttributeValue) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "double"
    if isinstance(value, tuple):
        return "array"
    return "string"


def _attrs(attributes: Mapping[str, Any], lim: Any) -> list[list[str]]:
    items = list(attributes.items())
    if not items:
        return []
    if lim.left <= -lim.max_total_chars:
        return [["…", f"{len(items)} attributes not shown (the report's size limit)", ""]]
    width = lim.max_value_chars if lim.left > 0 else 64
    out = [[_clip(k, 200), _display(v, width), _type_name(v)] for k, v in items[: lim.max_attributes]]
    lim.left -= sum(len(k) + len(v) for k, v, _ in out)
    if len(items) > lim.max_attributes:
        out.append(["…", f"{len(items) - lim.max_attributes} more attributes not shown", ""])
    return out


def _key(trace_id: int, span_id: int) -> str:
    return f"{trace_id:032x}:{span_id:016x}"


def _trace_data(spans: Sequence[Span], marks: Mapping[tuple[int, int], str], logs_by_span: Mapping[str, list[int]],
                lim: Any) -> dict[str, Any]:
    forest = SpanForest(spans)
    order = list(forest.walk())
    index = {node: row for row, (node, _) in enumerate(order)}
    t0 = min(s.start_time_ns for s in forest.spans)
    t1 = max(max(s.end_time_ns, s.start_time_ns) for s in forest.spans)
    rows = []
    for node, depth in order:
        s = forest.spans[node]
        parent = forest.parent[node]
        key = _key(s.trace_id, s.span_id)
        row: dict[str, Any] = {
            "n": _clip(s.name, 500), "id": f"{s.span_id:016x}", "d": depth,
            "p": index[parent] if parent is not None else -1,
            "s": s.start_time_ns - t0, "e": s.duration_ns, "k": s.kind.value, "st": s.status_code.value,
        }
        if s.status_description:
            row["sd"] = _clip(s.status_description, lim.max_text_chars)
        if s.attributes:
            row["a"] = _attrs(s.attributes, lim)
        if s.events:
            row["ev"] = [[_clip(e.name, 500), e.timestamp_ns - t0, _attrs(e.attributes, lim)]
                         for e in s.events[: lim.max_events]]
        if s.links:
            row["ln"] = [[_key(ln.trace_id, ln.span_id), _attrs(ln.attributes, lim)] for ln in s.links[: lim.max_events]]
        note = marks.get((s.trace_id, s.span_id))
        if note:
            row["m"] = _clip(note, lim.max_text_chars)
        if key in logs_by_span:
            row["lg"] = logs_by_span[key]
        if s.resource.service_name:
            row["svc"] = _clip(s.resource.service_name, 200)
        rows.append(row)
    root = forest.spans[forest.roots[0]]
    return {"id": f"{root.trace_id:032x}", "root": _clip(root.name, 500), "dur": t1 - t0, "spans": rows,
            "errors": sum(1 for s in forest.spans if s.status_code is StatusCode.ERROR),
            "marked": sum(1 for r in rows if "m" in r)}


def _log_data(records: Sequence[LogRecord], lim: Any) -> tuple[list[dict[str, Any]], dict[str, list[int]]]:
    out, by_span = [], {}
    for i, r in enumerate(records[: lim.max_logs]):
        body = r.body if isinstance(r.body, str) else json.dumps(r.body, default=str, ensure_ascii=False)
        entry: dict[str, Any] = {"b": _clip(body, lim.max_text_chars), "sev": _clip(r.severity_text or "-", 40),
                                 "t": r.timestamp_ns}
        attrs = {k: v for k, v in r.attributes.items() if not k.startswith(("otel", "code."))}
        if attrs:
            entry["a"] = _attrs(attrs, lim)
        if r.is_correlated:
            entry["span"] = _key(r.trace_id, r.span_id)
            by_span.setdefault(entry["span"], []).append(i)
        out.append(entry)
    return out, by_span


def _metric_data(points: Sequence[MetricPoint], lim: Any) -> list[dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for p in sorted(points[: lim.max_metric_points], key=lambda p: (p.name, repr(p.attributes.key()))):
        g = groups.setdefault(p.name, {"name": _clip(p.name, 500), "kind": p.kind.value, "unit": _clip(p.unit, 100),
                                       "desc": _clip(p.description, 1000), "points": []})
        point: dict[str, Any] = {"a": _attrs(p.attributes, lim)}
        if p.kind in (MetricKind.HISTOGRAM, MetricKind.EXPONENTIAL_HISTOGRAM):
            point |= {"count": p.count, "sum": _display(p.sum, 40) if p.sum is not None else None,
                      "min": _display(p.min, 40) if p.min is not None else None,
                      "max": _display(p.max, 40) if p.max is not None else None}
            if p.bucket_counts and p.kind is MetricKind.HISTOGRAM:  # exponential ones: count/sum/min/max
                bounds = [_display(b, 40) for b in p.explicit_bounds[:_MAX_BUCKETS]]
                labels = [f"≤ {b}" for b in bounds] + ([f"> {bounds[-1]}"] if bounds else ["all"])
                point["buckets"] = [[lab, int(c)] for lab, c in zip(labels, p.bucket_counts[: _MAX_BUCKETS + 1])]
        else:
            point["v"] = _display(p.value, 60) if p.value is not None else None
        g["points"].append(point)
    return list(groups.values())


_MAX_BUCKETS = 200


def _lint_data(report: LintReport | None, spans: Sequence[Span]) -> list[dict[str, Any]] | None:
    if report is None:
        return None
    forest = SpanForest(spans)
    by_name: dict[str, list[int]] = {}
    for i, s in enumerate(forest.spans):
        by_name.setdefault(s.name, []).append(i)

    def named(where: str) -> list[str]:
        """The spans at the path ``root > ... > name`` a finding names (a metric's name finds none).
        Each candidate is checked upwards for as many levels as the path has: no path is built."""
        parts = where.split(" > ")
        found = []
        for i in by_name.get(parts[-1], [])[:1000]:
            node: int | None = i
            for name in reversed(parts):
                if node is None or forest.spans[node].name != name:
                    break
                node = forest.parent[node]
            else:
                if node is None:
                    found.append(_key(forest.spans[i].trace_id, forest.spans[i].span_id))
                    if len(found) == 50:
                        break
        return found

    return [{"rule": f.rule, "sev": f.severity, "where": _clip(f.where, 2000), "msg": _clip(f.message, 5000),
             "spans": named(f.where)} for f in report.findings[:2000]]


def _check_data(result: Any, lim: Limits) -> list[dict[str, Any]]:
    """Each check of a :class:`~telemetry_asserts.contracts.check.ContractResult`; a failed tree
    check also carries its expected tree and the recorded tree of each trace it judged."""
    out = []
    for r in result.results:
        entry: dict[str, Any] = {
            "id": r.id, "title": _clip(r.check.describe(), 1000), "section": r.check.section,
            "status": "passed" if r.passed else ("error" if r.error else "failed"),
            "msg": _clip(r.message, lim.max_text_chars), "feedback": _clip(r.feedback, 5000),
            "spans": [_key(t, s) for t, s in r.marks],
        }
        if r.max_points:
            entry["points"] = f"{r.points:g}/{r.max_points:g}"
        if not r.passed and r.check.kind == "trace":
            tree = r.check.spec.get("tree")
            entry["expected"] = "\n".join(line for line, _ in _expected_lines(tree, None))
            entry["pairs"] = [_tree_pair(tree, result.telemetry.trace(t).spans) for t, _ in r.marks][:5]
        out.append(entry)
    return out


def _expected_lines(tree: Any, recorded: set[str] | None) -> list[list[str]]:
    """``[line, note]`` per line of an expected tree; the note says when no span of the trace
    (``recorded``: its span names) carries that node's name."""
    from .tree import ExpectedSpan, expected_tree, render_expected

    try:
        roots = expected_tree(tree)
    except (TypeError, ValueError):  # shown as given; the check's message says what is wrong
        return [[line, ""] for line in json.dumps(tree, default=str, ensure_ascii=False, indent=2).splitlines()]
    nodes: list[ExpectedSpan] = [n for root in roots for n in root.walk()]

    def note(node: ExpectedSpan) -> str:
        missing = recorded is not None and isinstance(node.name, str) and node.name not in recorded
        return "no span of this name in the trace" if missing else ""

    if isinstance(tree, str):
        lines = tree.expandtabs(4).splitlines()
        notes = {n.line: note(n) for n in nodes}
        out = [[_clip(line, 1000), notes.get(number, "")] for number, line in enumerate(lines, start=1)]
        while out and not out[-1][0].strip():
            out.pop()
        while out and not out[0][0].strip():
            out.pop(0)
        return out[:500]
    text = render_expected(roots).splitlines()  # one line per node, in walk order
    return [[_clip(line, 1000), note(n)] for line, n in zip(text, nodes)][:500]


def _tree_pair(tree: Any, spans: Sequence[Span]) -> dict[str, Any]:
    """A failed tree check on one trace: the expected lines and the recorded ones, side by side.
    Recorded lines are ``[line, span key, note]`` (the key lets the page jump to the span)."""
    from .tree import expected_tree

    forest = SpanForest(spans)
    try:
        wanted = {n.name for root in expected_tree(tree) for n in root.walk() if isinstance(n.name, str)}
    except (TypeError, ValueError):
        wanted = set()
    label = lambda s: f"{s.name} ({format_duration(s.duration_ns)})" + (  # noqa: E731
        " [ERROR]" if s.status_code is StatusCode.ERROR else "")
    rows = tree_lines(forest, label=label)[:500]
    actual = [[_clip(text, 1000), _key(forest.spans[i].trace_id, forest.spans[i].span_id),
               "" if forest.spans[i].name in wanted else "not in the expected tree"] for i, text in rows]
    return {"exp": _expected_lines(tree, {s.name for s in forest.spans}), "act": actual}


def report_data(
    telemetry: Telemetry,
    *,
    result: Any = None,
    lint_report: LintReport | None = None,
    title: str = "telemetry",
    subtitle: str = "",
    sections: Sequence[ReportSection] = (),
    limits: Limits | None = None,
) -> dict[str, Any]:
    """The JSON document the page renders: traces (spans parent-first with depth, offsets, marks),
    logs, metric points by name, lint findings with the spans they name, contract checks."""
    lim: Any = _Budget(limits or Limits())
    spans = telemetry.spans[: lim.max_spans]
    marks = result.marks if result is not None else {}
    logs, logs_by_span = _log_data(telemetry.logs, lim)
    by_trace: dict[int, list[Span]] = {}
    for s in spans:
        by_trace.setdefault(s.trace_id, []).append(s)
    traces = [_trace_data(group, marks, logs_by_span, lim) for group in by_trace.values()]
    # traces with violations first, then by the order they arrived
    traces.sort(key=lambda t: 0 if t["marked"] else 1)
    data: dict[str, Any] = {
        "title": _clip(title, 500), "subtitle": _clip(subtitle, 2000), "traces": traces, "logs": logs,
        "metrics": _metric_data(telemetry.metrics, lim), "lint": _lint_data(lint_report, spans),
        "counts": {"spans": len(telemetry.spans), "metrics": len(telemetry.metrics), "logs": len(telemetry.logs),
                   "spans_shown": len(spans), "logs_shown": len(logs),
                   "metrics_shown": min(len(telemetry.metrics), lim.max_metric_points)},
        "sections": [{k: _clip(v, lim.max_text_chars) for k, v in vars(s).items()} for s in sections],
    }
    if result is not None:
        data["verdict"] = {"passed": result.passed, "n": len(result.results), "failed": len(result.failures),
                           "contract": _clip(str(result.contract.source), 1000),
                           "name": _clip(result.contract.name or "", 500)}
        if result.max_score:
            data["verdict"]["score"] = f"{result.score:g}/{result.max_score:g}"
        data["checks"] = _check_data(result, lim)
    return data


def contract_lint(result: Any) -> LintReport:
    """The lint findings to show beside a contract's verdict: with the options of the contract's
    ``lint`` check when it has one (its thresholds, its disabled rules), else the defaults."""
    from .lint import lint

    for r in result.results:
        if r.check.kind == "lint":
            spec = r.check.spec.get("lint")
            spec = spec if isinstance(spec, Mapping) else {}
            return lint(result.telemetry, disable=set(spec.get("disable", ())), **dict(spec.get("options", {})))
    return lint(result.telemetry)


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def render_html(telemetry: Telemetry, **options: Any) -> str:
    """One self-contained HTML page (see :func:`report_data` for ``options``)."""
    data = report_data(telemetry, **options)
    title = _html.escape(data["title"])
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{title}</title>\n<style>{_asset('html_report.css')}</style></head>\n"
        f"<body><noscript><p>This report draws its trace view with JavaScript; "
        f"open it in a browser with scripts enabled.</p></noscript>\n<div id=\"app\"></div>\n"
        f"<script type=\"application/json\" id=\"telemetry-data\">{script_json(data)}</script>\n"
        f"<script>{_asset('html_report.js')}</script>\n</body></html>\n"
    )


def write_html(path: str | os.PathLike[str], telemetry: Telemetry, **options: Any) -> Path:
    """Write :func:`render_html` atomically (a temp file renamed into place); returns the path."""
    return write_text_atomic(path, render_html(telemetry, **options))


def test_report_name(nodeid: str, when: str = "call") -> str:
    """A file name for one test's report: readable, filesystem-safe, unique per node id (a hash of
    it, never of anything that changes between runs)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("._")[:120] or "test"
    digest = hashlib.sha256(nodeid.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{stem}-{digest}" + ("" if when == "call" else f"-{when}") + ".html"


def write_test_report(directory: str | os.PathLike[str], nodeid: str, when: str, telemetry: Telemetry,
                      failure: str = "") -> str:
    """Write a failing test's trace view into ``directory``; returns the line the pytest "Captured
    telemetry" section prints (the path, or why it could not be written)."""
    path = Path(directory) / test_report_name(nodeid, when)
    sections = [ReportSection(f"{nodeid} ({when})", "failed", text=failure)] if failure else []
    try:
        write_html(path, telemetry, title=f"{nodeid} ({when})", subtitle="a failing test's captured telemetry",
                   sections=sections, lint_report=None)
    except OSError as exc:
        return f"HTML trace view not written: {path}: {exc.strerror or exc}"
    return f"HTML trace view: {path}"


test_report_name.__test__ = False  # type: ignore[attr-defined]  # not a pytest test, despite the name
write_test_report.__test__ = False  # type: ignore[attr-defined]


def render_static_html(telemetry: Telemetry, *, sections: Sequence[ReportSection] = (), max_spans: int = 200,
                       limits: Limits | None = None) -> str:
    """A script-free HTML fragment (inline styles only): the sections with expected and actual side
    by side, then each trace's waterfall as bars. For viewers that strip scripts and style sheets."""
    lim = limits or Limits()
    e = _html.escape
    parts: list[str] = []
    colours = {"passed": "#1a7f37", "failed": "#cf222e", "error": "#9a6700", "info": "#57606a"}
    for s in sections:
        head = f"<strong style=\"color:{colours.get(s.status, '#57606a')}\">{e(s.status.upper())}</strong> "
        parts.append(f"<h3>{head}{e(_clip(s.title, 500))}{(' (' + e(s.points) + ')') if s.points else ''}</h3>")
        if s.text:
            parts.append(f"<p>{e(_clip(s.text, lim.max_text_chars))}</p>")
        if s.feedback:
            parts.append(f"<p><em>what to do:</em> {e(_clip(s.feedback, lim.max_text_chars))}</p>")
        if s.expected or s.actual:
            parts.append("<table style=\"width:100%;border-collapse:collapse\"><tr><th align=\"left\">expected</th>"
                         "<th align=\"left\">your run</th></tr><tr>"
                         f"<td style=\"vertical-align:top;border:1px solid #d0d7de\"><pre>"
                         f"{e(_clip(s.expected, lim.max_text_chars))}</pre></td>"
                         f"<td style=\"vertical-align:top;border:1px solid #d0d7de\"><pre>"
                         f"{e(_clip(s.actual, lim.max_text_chars))}</pre></td></tr></table>")
    spans = telemetry.spans[: lim.max_spans]
    by_trace: dict[int, list[Span]] = {}
    for sp in spans:
        by_trace.setdefault(sp.trace_id, []).append(sp)
    shown = 0
    for group in by_trace.values():
        forest = SpanForest(group)
        t0 = min(s.start_time_ns for s in group)
        total = max(max(s.end_time_ns for s in group) - t0, 1)
        parts.append(f"<h3>trace {forest.spans[forest.roots[0]].trace_id:032x}</h3>"
                     "<table style=\"width:100%;border-collapse:collapse;font-family:monospace;font-size:12px\">")
        for node, depth in forest.walk():
            if shown >= max_spans:
                break
            shown += 1
            s = forest.spans[node]
            left = (s.start_time_ns - t0) * 100 / total
            width = max(s.duration_ns * 100 / total, 0.3)
            colour = "#cf222e" if s.status_code is StatusCode.ERROR else "#0969da"
            parts.append(
                f"<tr><td style=\"white-space:nowrap;padding-left:{depth * 12}px\">{e(_clip(s.name, 200))}</td>"
                f"<td style=\"width:60%\"><div style=\"margin-left:{left:.2f}%;width:{width:.2f}%;height:10px;"
                f"background:{colour}\"></div></td><td style=\"white-space:nowrap\">"
                f"{e(format_duration(s.duration_ns))}</td></tr>")
        parts.append("</table>")
    if len(telemetry.spans) > shown:
        parts.append(f"<p>{len(telemetry.spans) - shown} more spans not drawn; open feedback.html for all.</p>")
    return "\n".join(parts)
