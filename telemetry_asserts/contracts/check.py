"""Run a contract against telemetry from any source, through the same judges as the Python API.

Each check turns its YAML data into calls on :class:`~telemetry_asserts.spans.SpanView`,
:class:`~telemetry_asserts.metrics.MetricView`, :class:`~telemetry_asserts.logs.LogView`, the
cardinality/sensitive/lint modules and the value matchers; a check fails with the message those
judges raise (:class:`~telemetry_asserts.errors.TelemetryAssertionError`). Nothing here re-decides
what matches.
"""

from __future__ import annotations

import re
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from .. import model
from ..cardinality import assert_max_cardinality, assert_max_series
from ..lint import lint as run_lint
from ..tree import ExpectedSpan, SpanForest, assert_tree, parse_tree
from ..errors import TelemetryAssertionError, did_you_mean
from ..junit import CaseResult, SuiteResult
from ..logs import LogView
from ..matchers import describe_mismatches, match_attributes
from ..metrics import MetricView
from ..spans import SpanAssert, SpanView
from .load import Check, Contract, expected_attributes, expected_value, load_contract

__all__ = ["CheckResult", "ContractResult", "prometheus_names", "run_contract"]

Marks = dict[tuple[int, int], str]


@dataclass(frozen=True)
class CheckResult:
    """The verdict on one check. ``error`` means the check could not be evaluated (a bug or an
    unusable input), which is reported apart from a violation."""

    check: Check
    passed: bool
    message: str = ""
    marks: Mapping[tuple[int, int], str] = field(default_factory=dict)
    error: bool = False
    time_s: float = 0.0

    @property
    def id(self) -> str:
        return self.check.id

    @property
    def points(self) -> float:
        """Points earned: the check's points when it passed, else 0."""
        return self.check.points if self.passed else 0.0

    @property
    def max_points(self) -> float:
        return self.check.points

    @property
    def feedback(self) -> str:
        return "" if self.passed else self.check.feedback


@dataclass(frozen=True)
class ContractResult:
    """Every check's verdict for one contract over one telemetry set."""

    contract: Contract
    results: tuple[CheckResult, ...]
    telemetry: model.Telemetry = field(repr=False, default_factory=model.Telemetry)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    @property
    def score(self) -> float:
        return sum(r.points for r in self.results)

    @property
    def max_score(self) -> float:
        return sum(r.max_points for r in self.results)

    def result(self, check_id: str) -> CheckResult:
        for r in self.results:
            if r.id == check_id:
                return r
        raise KeyError(f"no check {check_id!r}{did_you_mean(check_id, [r.id for r in self.results])}")

    @property
    def marks(self) -> Marks:
        """Every failed check's notes on spans, for :func:`telemetry_asserts.report.render_tree`."""
        out: Marks = {}
        for r in self.failures:
            for key, note in r.marks.items():
                out[key] = f"{out[key]}; {note}" if key in out else note
        return out

    def to_suite(self, name: str | None = None) -> SuiteResult:
        """One JUnit suite: a case per check (classname = section), scores as properties."""
        suite = name or self.contract.name or Path(self.contract.source).stem
        cases = []
        for r in self.results:
            details = r.message + (f"\n\nfeedback: {r.feedback}" if r.feedback else "")
            first = r.message.splitlines()[0] if r.message else ""
            cases.append(CaseResult(
                name=r.id,
                classname=f"{suite}.{r.check.section}",
                outcome="passed" if r.passed else ("error" if r.error else "failed"),
                message=first,
                details=details if not r.passed else "",
                time_s=r.time_s,
                score=r.points if r.check.points else None,
                max_score=r.max_points if r.check.points else None,
                properties={"title": r.check.describe()},
            ))
        props = {"contract": self.contract.source}
        if self.max_score:
            props |= {"score": f"{self.score:g}", "max_score": f"{self.max_score:g}"}
        return SuiteResult(suite, tuple(cases), sum(r.time_s for r in self.results), props)


def run_contract(
    contract: Contract | str | Path,
    telemetry: model.Telemetry,
    *,
    only: Sequence[str] | None = None,
) -> ContractResult:
    """Judge ``telemetry`` against every check of ``contract`` (a :class:`Contract` or a path).

    ``only`` restricts the run to some check ids. A check whose judge crashes is reported as an
    error result with the traceback; the other checks still run.
    """
    if not isinstance(contract, Contract):
        contract = load_contract(contract)
    if only is not None:
        contract = contract.select(only)
    results = []
    for check in contract.checks:
        judge = _JUDGES[check.kind]
        t0 = time.perf_counter()
        marks: Marks = {}
        try:
            problems = judge(check, telemetry, marks)
        except TelemetryAssertionError as exc:
            problems = [str(exc)]
        except Exception:  # noqa: BLE001 - one broken check must not hide the others' verdicts
            results.append(CheckResult(check, False, "the check could not be evaluated:\n" + traceback.format_exc(),
                                       error=True, time_s=time.perf_counter() - t0))
            continue
        message = "\n".join(p.rstrip() for p in problems)
        results.append(CheckResult(check, not problems, message, marks if problems else {},
                                   time_s=time.perf_counter() - t0))
    return ContractResult(contract, tuple(results), telemetry)


# --- helpers ----------------------------------------------------------------------------------


def _attempt(problems: list[str], fn: Callable[[], Any]) -> Any:
    """Run one judge call; a TelemetryAssertionError becomes a problem line."""
    try:
        return fn()
    except TelemetryAssertionError as exc:
        problems.append(str(exc))
        return None


def _count_ok(n: int, spec: int | Mapping[str, int] | None, default_min: int = 1) -> bool:
    if spec is None:
        return n >= default_min
    if isinstance(spec, int):
        return n == spec
    return spec.get("min", 0) <= n <= spec.get("max", n)


def _describe_count(spec: int | Mapping[str, int] | None, default_min: int = 1) -> str:
    if spec is None:
        return f"at least {default_min}"
    if isinstance(spec, int):
        return f"exactly {spec}"
    if "min" in spec and "max" in spec:
        return f"between {spec['min']} and {spec['max']}"
    return f"at least {spec['min']}" if "min" in spec else f"at most {spec['max']}"


def _traces_rooted_at(telemetry: model.Telemetry, root: str) -> list[tuple[int, model.Telemetry]]:
    """(trace id, that trace's telemetry) for each trace whose top span (a span without a recorded
    parent: the root, or the top of what was exported) is named ``root``. Linear in size."""
    spans: dict[int, list[model.Span]] = {}
    for s in telemetry.spans:
        spans.setdefault(s.trace_id, []).append(s)
    logs: dict[int, list[model.LogRecord]] = {}
    for r in telemetry.logs:
        logs.setdefault(r.trace_id, []).append(r)
    out = []
    for tid, group in spans.items():
        forest = SpanForest(group)
        if any(forest.spans[i].name == root for i in forest.roots):
            out.append((tid, model.Telemetry(tuple(group), telemetry.metrics, tuple(logs.get(tid, ())))))
    return out


def _root_names(telemetry: model.Telemetry) -> list[str]:
    forest = SpanForest(telemetry.spans)
    return list(dict.fromkeys(forest.spans[i].name for i in forest.roots))


def _scoped(
    check: Check, telemetry: model.Telemetry, marks: Marks,
    judge: Callable[[model.Telemetry, Marks], list[str]],
) -> list[str]:
    """Run ``judge`` on all telemetry, or per trace when the check has ``scope: {each_trace: ROOT}``."""
    scope = check.spec.get("scope")
    if not scope:
        return judge(telemetry, marks)
    root = scope["each_trace"]
    traces = _traces_rooted_at(telemetry, root)
    if not traces:
        return [f"no trace has a root span named {root!r}{did_you_mean(root, _root_names(telemetry))}; "
                f"root spans recorded: {', '.join(_root_names(telemetry)) or 'none'}"]
    problems = []
    for tid, trace in traces:
        found = judge(trace, marks)
        if found:
            problems.append(f"in trace {format(tid, '032x')} (root {root!r}):")
            problems += ["  " + line for p in found for line in p.splitlines()]
    return problems


# --- traces -----------------------------------------------------------------------------------


def _tree_expectation(tree: Any) -> Any:
    """The expected tree for :func:`assert_tree`, with contract matchers (``{type: int}``...) turned
    into matcher objects: in data trees, and in the ``{...}`` attributes of text tree lines."""
    if isinstance(tree, str):
        def convert(e: ExpectedSpan) -> ExpectedSpan:
            attrs = expected_attributes(e.attributes) if e.attributes is not None else None
            return replace(e, attributes=attrs, children=tuple(convert(c) for c in e.children))

        return [convert(root) for root in parse_tree(tree)]  # a list: a tuple would read as ("name", children)

    def node(n: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"name": n["name"]}
        if "attributes" in n:
            out["attributes"] = expected_attributes(n["attributes"])
        for key in ("exact", "kind", "status"):
            if key in n:
                out[key] = n[key]
        out["children"] = [node(c) for c in n.get("children", ())]
        return out

    return node(tree)


def _judge_trace(check: Check, telemetry: model.Telemetry, marks: Marks) -> list[str]:
    spec = check.spec
    root = spec["root"]
    traces = _traces_rooted_at(telemetry, root)
    problems: list[str] = []
    if not _count_ok(len(traces), spec.get("traces")):
        roots = _root_names(telemetry)
        problems.append(
            f"expected {_describe_count(spec.get('traces'))} trace(s) with root span {root!r}, found {len(traces)}"
            + (did_you_mean(root, roots) if not traces else "")
            + f"; root spans recorded: {', '.join(roots) or 'none'}"
        )
    expected = _tree_expectation(spec["tree"])
    for tid, trace in traces:
        try:
            assert_tree(trace.spans, expected, exact=bool(spec.get("exact", False)),
                             ordered=bool(spec.get("ordered", False)))
        except TelemetryAssertionError as exc:
            problems.append(f"trace {format(tid, '032x')}:\n" + _indent(str(exc)))
            forest = SpanForest(trace.spans)
            top = next((forest.spans[i] for i in forest.roots if forest.spans[i].name == root), trace.spans[0])
            marks[(top.trace_id, top.span_id)] = f"✗ {check.id}: {str(exc).splitlines()[0]}"
    return problems


# --- spans ------------------------------------------------------------------------------------


def _select_spans(view: SpanView, spec: Mapping[str, Any]) -> tuple[SpanView, SpanView]:
    """(spans named spec['name'], those also satisfying spec['where']), selected by the SpanView."""
    named = view.filter(spec["name"])
    where = spec.get("where") or {}
    if not where:
        return named, named
    selected = view.filter(
        spec["name"],
        attributes=expected_attributes(where["attributes"]) if "attributes" in where else None,
        parent=where.get("parent"),
        kind=where.get("kind"),
        status=where.get("status"),
    )
    return named, selected


def _judge_span(check: Check, telemetry: model.Telemetry, marks: Marks) -> list[str]:
    return _scoped(check, telemetry, marks, lambda t, mk: _span_problems(check, t, mk))


def _span_problems(check: Check, telemetry: model.Telemetry, marks: Marks) -> list[str]:
    spec = check.spec
    name = spec["name"]
    view = SpanView(telemetry.spans)
    named, selected = _select_spans(view, spec)
    where = " matching " + _describe_where(spec["where"]) if spec.get("where") else ""
    if spec.get("absent"):
        if selected:
            for s in selected:
                marks[(s.trace_id, s.span_id)] = f"✗ {check.id}: must not exist"
            return [f"expected no span {name!r}{where}, found {len(selected)}:\n"
                    + "\n".join(f"  - {view.path(s)} ({s.span_id_hex})" for s in selected)]
        return []
    count = spec.get("count")
    if not _count_ok(len(selected), count):
        problems: list[str] = []
        if not selected:  # the view explains: recorded names, nearest miss and why it was rejected
            w = spec.get("where") or {}
            _attempt(problems, lambda: view.one(
                name, attributes=expected_attributes(w["attributes"]) if "attributes" in w else None,
                parent=w.get("parent"), kind=w.get("kind"), status=w.get("status")))
        if not problems:
            problems.append(f"expected {_describe_count(count)} span(s) {name!r}{where}, found {len(selected)}"
                            + (f" ({len(named)} named so in all)" if where else ""))
            for s in selected:
                marks[(s.trace_id, s.span_id)] = f"✗ {check.id}: {len(selected)} such spans"
        return problems
    problems = []
    for span in selected:
        found = _one_span_problems(SpanAssert(span, view), view, spec)
        if found:
            first = found[0].splitlines()[0]
            marks[(span.trace_id, span.span_id)] = f"✗ {check.id}: {first.split('): ', 1)[-1]}"
            problems += found
    return problems


def _describe_where(where: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in where.items())


def _one_span_problems(sa: SpanAssert, view: SpanView, spec: Mapping[str, Any]) -> list[str]:
    """Every expectation of a span check on one span, each judged by :class:`SpanAssert`."""
    problems: list[str] = []
    if "parent" in spec:
        _attempt(problems, lambda: sa.assert_parent(spec["parent"]))
    if "kind" in spec:
        _attempt(problems, lambda: sa.assert_kind(spec["kind"]))
    if "attributes" in spec:
        _attempt(problems, lambda: sa.assert_attributes(expected_attributes(spec["attributes"]),
                                                        exact=bool(spec.get("exact_attributes", False))))
    if "status" in spec:
        st = spec["status"]
        code, desc = (st, None) if isinstance(st, str) else (st["code"], st.get("description"))
        _attempt(problems, lambda: sa.assert_status(code, expected_value(desc) if desc is not None else None))
    for event in spec.get("events", ()):
        attrs = expected_attributes(event["attributes"]) if "attributes" in event else None
        _attempt(problems, partial(sa.assert_event, event["name"], attrs))
    if spec.get("events_ordered") and spec.get("events"):
        _attempt(problems, lambda: sa.assert_events(*(e["name"] for e in spec["events"])))
    if "exception" in spec:
        exc = spec["exception"]
        if exc is False:
            _attempt(problems, sa.assert_no_exception)
        else:
            _attempt(problems, lambda: sa.assert_exception(
                expected_value(exc["type"]) if "type" in exc else None,
                expected_value(exc["message"]) if "message" in exc else None))
    span = sa.span
    here = f"span {view.path(span)!r} ({span.span_id_hex}): "
    if "links" in spec and not _count_ok(len(span.links), spec["links"]):
        problems.append(f"{here}expected {_describe_count(spec['links'])} link(s), got {len(span.links)}")
    if "linked_to" in spec:
        targets = view.filter(spec["linked_to"])
        ok = False
        for t in targets:
            try:
                sa.assert_link(t)
                ok = True
                break
            except TelemetryAssertionError:
                continue
        if not ok:
            known = {(s.trace_id, s.span_id): s.name for s in view}
            names = [known.get((ln.trace_id, ln.span_id)) for ln in span.links]
            shown = ", ".join(repr(n) if n else "(a span not recorded)" for n in names) or "no links"
            problems.append(f"{here}expected a link to a span {spec['linked_to']!r}, links to: {shown}")
    return problems


# --- resource -------------------------------------------------------------------------------------


def _judge_resource(check: Check, telemetry: model.Telemetry, marks: Marks) -> list[str]:
    want = expected_attributes(check.spec["attributes"])
    resources: dict[model.Resource, str] = {}
    for what, items in (("span", telemetry.spans), ("metric point", telemetry.metrics), ("log record", telemetry.logs)):
        for item in items:
            resources.setdefault(item.resource, what)
    if not resources:
        return ["no telemetry recorded: no resource to check"]
    problems = []
    for res, what in resources.items():
        mism = match_attributes(res.attributes, want)
        if mism:
            problems.append(f"resource of a {what} ({res.service_name or 'no service.name'}):\n"
                            + _indent(describe_mismatches(mism, actual=res.attributes)))
    return problems


# --- metrics ------------------------------------------------------------------------------------


def _judge_metric(check: Check, telemetry: model.Telemetry, marks: Marks) -> list[str]:
    spec = check.spec
    name = spec["name"]
    view = MetricView(telemetry.metrics)
    if spec.get("absent"):
        if name in view:
            series = view.series(name)
            return [f"expected no metric {name!r}, found {len(series)} series"]
        return []
    problems: list[str] = []
    desc = expected_value(spec["description"]) if "description" in spec else None
    _attempt(problems, lambda: view.assert_metric(name, kind=spec.get("type"), unit=spec.get("unit"),
                                                  description=desc))
    if name not in view:  # the view said so, with the recorded names and the closest one
        return problems
    if "prometheus_name" in spec:
        names = prometheus_names(view.points(name))
        if spec["prometheus_name"] not in names:
            unit = view.unit(name)
            problems.append(
                f"metric {name!r} (unit {unit!r}) is exported to Prometheus as {', '.join(names)}, "
                f"not {spec['prometheus_name']}: a query for {spec['prometheus_name']} finds nothing"
            )
    if "data_points" in spec:
        expected = [_expected_point(p) for p in spec["data_points"]]
        _attempt(problems, lambda: view.assert_points(name, expected, exact=bool(spec.get("exact_points", False))))
    return problems


def _expected_point(point: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in point.items():
        if key == "attributes":
            out[key] = expected_attributes(value)
        elif key == "bucket_counts":
            out[key] = tuple(value)
        else:
            out[key] = expected_value(value)
    return out


def prometheus_names(points: Sequence[model.MetricPoint]) -> tuple[str, ...]:
    """The series names OpenTelemetry's Prometheus exporter exposes for one metric's points.

    The points are handed, as SDK metric data, to the exporter's own collector
    (opentelemetry-exporter-prometheus): its name sanitising, unit mapping and suffixes decide.
    """
    from opentelemetry.exporter.prometheus import _CustomCollector
    from opentelemetry.sdk.metrics.export import (
        AggregationTemporality,
        Gauge,
        Histogram,
        HistogramDataPoint,
        Metric,
        MetricsData,
        NumberDataPoint,
        ResourceMetrics,
        ScopeMetrics,
        Sum,
    )
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    if not points:
        return ()
    p0 = points[0]
    temporality = (AggregationTemporality.DELTA if p0.temporality == model.Temporality.DELTA
                   else AggregationTemporality.CUMULATIVE)
    attrs = p0.attributes.to_dict()
    if p0.kind in (model.MetricKind.HISTOGRAM, model.MetricKind.EXPONENTIAL_HISTOGRAM):
        bounds = p0.explicit_bounds or ()
        hp = HistogramDataPoint(attrs, 0, 1, p0.count or 0, p0.sum or 0.0,
                                p0.bucket_counts or (0,) * (len(bounds) + 1), bounds, p0.min or 0.0, p0.max or 0.0)
        data: Any = Histogram([hp], temporality)
    else:
        np_ = NumberDataPoint(attrs, 0, 1, p0.value or 0)
        if p0.kind == model.MetricKind.GAUGE:
            data = Gauge([np_])
        else:
            data = Sum([np_], temporality, p0.kind == model.MetricKind.COUNTER)
    metric = Metric(p0.name, p0.description, p0.unit, data)
    md = MetricsData([ResourceMetrics(Resource.create({}), [ScopeMetrics(InstrumentationScope("x"), [metric], "")], "")])
    collector = _CustomCollector(disable_target_info=True, scope_info_enabled=False)
    collector.add_metrics_data(md)
    names: list[str] = []
    for family in collector.collect():
        names.extend(s.name for s in family.samples)
        if p0.kind in (model.MetricKind.HISTOGRAM, model.MetricKind.EXPONENTIAL_HISTOGRAM):
            names.append(family.name)
    return tuple(dict.fromkeys(names))


# --- logs -----------------------------------------------------------------------------------------


def _log_criteria(spec: Mapping[str, Any]) -> dict[str, Any]:
    crit: dict[str, Any] = {}
    if "body" in spec:
        crit["body"] = expected_value(spec["body"])
    sev = spec.get("severity")
    if isinstance(sev, str):
        crit["severity"] = sev
    elif isinstance(sev, Mapping):
        crit["min_severity"] = sev["at_least"]
    if "attributes" in spec:
        crit["attributes"] = expected_attributes(spec["attributes"])
    return crit


def _judge_log(check: Check, telemetry: model.Telemetry, marks: Marks) -> list[str]:
    spec = check.spec
    view = LogView(telemetry.logs, telemetry.spans)
    crit = _log_criteria(spec)
    if spec.get("absent"):
        problems: list[str] = []
        _attempt(problems, lambda: view.assert_no_log(**crit))
        return problems
    found = view.where(**crit)
    problems = []
    if not _count_ok(len(found), spec.get("count")):
        if isinstance(spec.get("count"), int) or len(found) == 0:
            count = spec["count"] if isinstance(spec.get("count"), int) else None
            _attempt(problems, lambda: view.assert_log(**crit, count=count))
        if not problems:
            problems.append(f"expected {_describe_count(spec.get('count'))} matching log record(s), found {len(found)}")
        return problems
    if "inside" in spec:
        problems += _correlation_problems(found.records, telemetry.spans, spec["inside"], marks, check.id)
    return problems


def _correlation_problems(records: Sequence[model.LogRecord], spans: Sequence[model.Span], inside: str,
                          marks: Marks, check_id: str) -> list[str]:
    """Each record carries the ids of a span named ``inside`` of its own trace (LogView judges)."""
    problems: list[str] = []
    by_trace: dict[int, list[model.Span]] = {}
    by_id = {(s.trace_id, s.span_id): s for s in spans}
    for s in spans:
        if s.name == inside:
            by_trace.setdefault(s.trace_id, []).append(s)
    for r in records:
        candidates = by_trace.get(r.trace_id, [])
        if r.is_correlated and any(s.span_id == r.span_id for s in candidates):
            continue
        if len(candidates) == 1:
            _attempt(problems, lambda: LogView([r], spans).assert_correlated(candidates[0]))
        elif not r.is_correlated:
            _attempt(problems, lambda: LogView([r], spans).assert_all_correlated())
        else:
            owner = by_id.get((r.trace_id, r.span_id))
            where = f"span {owner.name!r}" if owner else "a span that was not recorded"
            problems.append(f"log record {r.body!r} was emitted inside {where}, not inside {inside!r}")
        owner = by_id.get((r.trace_id, r.span_id))
        if owner is not None:
            marks[(owner.trace_id, owner.span_id)] = f"✗ {check_id}: log {r.body!r} emitted here"
    return problems


# --- limits ---------------------------------------------------------------------------------------


def _judge_limit(check: Check, telemetry: model.Telemetry, marks: Marks) -> list[str]:
    kind = check.kind
    spec = check.spec[kind]
    return _LIMITS[kind](spec, telemetry, marks, check.id)


def _items(telemetry: model.Telemetry, signal: str, name: str | None = None) -> list[Any]:
    items = {"spans": telemetry.spans, "metrics": telemetry.metrics, "logs": telemetry.logs}[signal]
    if name is None:
        return list(items)
    return [i for i in items if getattr(i, "name", None) == name]


def _limit_cardinality(spec: Mapping[str, Any], telemetry: model.Telemetry, marks: Marks, cid: str) -> list[str]:
    items = _items(telemetry, spec["signal"], spec.get("name"))
    problems: list[str] = []
    what = f"{spec['signal']}" + (f" named {spec['name']!r}" if spec.get("name") else "")
    _attempt(problems, lambda: assert_max_cardinality(items, spec["max"], [spec["key"]], what=what))
    return problems


def _limit_series(spec: Mapping[str, Any], telemetry: model.Telemetry, marks: Marks, cid: str) -> list[str]:
    problems: list[str] = []
    _attempt(problems, lambda: assert_max_series(telemetry.metrics, spec["max"], spec["metric"]))
    return problems


def _limit_forbidden(spec: Mapping[str, Any], telemetry: model.Telemetry, marks: Marks, cid: str) -> list[str]:
    signals = spec.get("signals") or ["spans", "metrics", "logs", "resource"]
    keys = set(spec["keys"])
    patterns = [re.compile(p) for p in spec.get("patterns", ())]

    def bad(key: str) -> bool:
        return key in keys or any(p.fullmatch(key) for p in patterns)

    found: dict[tuple[str, str, str], int] = {}
    for signal in signals:
        if signal == "resource":
            seen: set[model.Resource] = {s.resource for s in telemetry.spans}
            seen |= {p.resource for p in telemetry.metrics} | {r.resource for r in telemetry.logs}
            for res in seen:
                for k in res.attributes:
                    if bad(k):
                        key = ("resource", res.service_name or "", k)
                        found[key] = found.get(key, 0) + 1
            continue
        for item in _items(telemetry, signal):
            for k in item.attributes:
                if bad(k):
                    label = getattr(item, "name", None) or str(getattr(item, "body", ""))[:40]
                    found[(signal, label, k)] = found.get((signal, label, k), 0) + 1
                    if signal == "spans":
                        marks[(item.trace_id, item.span_id)] = f"✗ {cid}: forbidden attribute {k!r}"
    return [f"forbidden attribute {k!r} on {n} {signal[:-1] if signal != 'resource' else 'resource'}"
            f"{'s' if n > 1 and signal != 'resource' else ''} {label!r}"
            for (signal, label, k), n in found.items()]


def _limit_sensitive(spec: Any, telemetry: model.Telemetry, marks: Marks, cid: str) -> list[str]:
    from ..sensitive import SensitiveRules, assert_no_sensitive

    rules = SensitiveRules.default()
    if isinstance(spec, Mapping):
        rules = rules.extend(keys=spec.get("keys", ()), patterns=spec.get("patterns", ()))
    problems: list[str] = []
    _attempt(problems, lambda: assert_no_sensitive(telemetry, rules))
    return problems


def _limit_no_errors(spec: Any, telemetry: model.Telemetry, marks: Marks, cid: str) -> list[str]:
    for s in telemetry.spans:
        if s.status_code == model.StatusCode.ERROR:
            marks[(s.trace_id, s.span_id)] = f"✗ {cid}: ERROR status"
    problems: list[str] = []
    _attempt(problems, SpanView(telemetry.spans).assert_no_errors)
    return problems


def _limit_lint(spec: Any, telemetry: model.Telemetry, marks: Marks, cid: str) -> list[str]:
    options = dict(spec.get("options", {})) if isinstance(spec, Mapping) else {}
    disable = set(spec.get("disable", ())) if isinstance(spec, Mapping) else set()
    report = run_lint(telemetry, disable=disable, **options)
    return _lint_problems(report, marks, cid)


def _lint_problems(report: Any, marks: Marks, cid: str) -> list[str]:
    if not report:
        return []
    problems: list[str] = []
    _attempt(problems, report.assert_clean)
    if not problems:
        problems = [str(f) for f in report.findings]
    return problems


_LIMITS: dict[str, Callable[[Any, model.Telemetry, Marks, str], list[str]]] = {
    "cardinality": _limit_cardinality,
    "series": _limit_series,
    "forbidden_attributes": _limit_forbidden,
    "sensitive": _limit_sensitive,
    "no_errors": _limit_no_errors,
    "lint": _limit_lint,
}

_JUDGES: dict[str, Callable[[Check, model.Telemetry, Marks], list[str]]] = {
    "resource": _judge_resource,
    "trace": _judge_trace,
    "span": _judge_span,
    "metric": _judge_metric,
    "log": _judge_log,
    **{k: _judge_limit for k in _LIMITS},
}


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())
