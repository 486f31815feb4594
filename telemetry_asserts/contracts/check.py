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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import model, tree
from ..errors import TelemetryAssertionError, did_you_mean
from ..junit import CaseResult, SuiteResult
from ..logs import LogView
from ..matchers import describe_mismatches, match_attributes, values_equal
from ..metrics import MetricView
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
    """(trace id, that trace's telemetry) for each trace that has a root span named ``root``."""
    out = []
    for tid in telemetry.trace_ids:
        trace = telemetry.trace(tid)
        if any(s.name == root and s.is_root for s in trace.spans):
            out.append((tid, trace))
        elif any(s.name == root for s in trace.spans) and not any(s.is_root for s in trace.spans):
            out.append((tid, trace))  # the real root was not exported; its child is the top
    return out


def _root_names(telemetry: model.Telemetry) -> list[str]:
    return list(dict.fromkeys(s.name for s in telemetry.spans if s.is_root))


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


def _names_message(name: str, spans: Sequence[model.Span]) -> str:
    names = list(dict.fromkeys(s.name for s in spans))
    return (f"no span named {name!r} was recorded{did_you_mean(name, names)}; "
            f"recorded span names: {', '.join(names) or 'none'}")


# --- traces -----------------------------------------------------------------------------------


def _tree_expectation(tree: Any) -> Any:
    """Text trees go to the tree parser as they are; data trees get their matchers converted."""
    if isinstance(tree, str):
        return tree

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
            tree.assert_tree(trace.spans, expected, exact=bool(spec.get("exact", False)),
                             ordered=bool(spec.get("ordered", False)))
        except TelemetryAssertionError as exc:
            problems.append(f"trace {format(tid, '032x')}:\n" + _indent(str(exc)))
            top = next((s for s in trace.spans if s.name == root and s.is_root), trace.spans[0])
            marks[(top.trace_id, top.span_id)] = f"✗ {check.id}: {str(exc).splitlines()[0]}"
    return problems


# --- spans ------------------------------------------------------------------------------------


def _select_spans(telemetry: model.Telemetry, spec: Mapping[str, Any]) -> tuple[list[model.Span], list[model.Span]]:
    """(spans named spec['name'], those also satisfying spec['where'])."""
    named = [s for s in telemetry.spans if s.name == spec["name"]]
    where = spec.get("where") or {}
    if not where:
        return named, named
    by_id = {(s.trace_id, s.span_id): s for s in telemetry.spans}
    attrs = expected_attributes(where.get("attributes"))

    def keep(s: model.Span) -> bool:
        if attrs and match_attributes(s.attributes, attrs):
            return False
        if "parent" in where:
            parent = by_id.get((s.trace_id, s.parent_span_id or 0))
            if parent is None or parent.name != where["parent"]:
                return False
        if "kind" in where and s.kind != model.SpanKind(where["kind"]):
            return False
        return not ("status" in where and s.status_code != model.StatusCode(where["status"]))

    return named, [s for s in named if keep(s)]


def _judge_span(check: Check, telemetry: model.Telemetry, marks: Marks) -> list[str]:
    return _scoped(check, telemetry, marks, lambda t, mk: _span_problems(check, t, mk))


def _span_problems(check: Check, telemetry: model.Telemetry, marks: Marks) -> list[str]:
    spec = check.spec
    name = spec["name"]
    named, selected = _select_spans(telemetry, spec)
    where = " matching " + _describe_where(spec["where"]) if spec.get("where") else ""
    if spec.get("absent"):
        if selected:
            for s in selected:
                marks[(s.trace_id, s.span_id)] = f"✗ {check.id}: must not exist"
            return [f"expected no span {name!r}{where}, found {len(selected)}"]
        return []
    if not _count_ok(len(selected), spec.get("count")):
        if not named:
            return [_names_message(name, telemetry.spans)]
        return [f"expected {_describe_count(spec.get('count'))} span(s) {name!r}{where}, found {len(selected)}"
                + (f" ({len(named)} named so in all)" if where else "")]
    problems = []
    for span in selected:
        found = _one_span_problems(telemetry.spans, span, spec)
        if found:
            marks[(span.trace_id, span.span_id)] = f"✗ {check.id}: {found[0].splitlines()[0]}"
            problems.append(f"span {name!r} ({span.span_id_hex}):\n" + _indent("\n".join(found)))
    return problems


def _describe_where(where: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in where.items())


def _one_span_problems(view: Sequence[model.Span], span: model.Span, spec: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    if "parent" in spec:
        parent = next((s for s in view if s.trace_id == span.trace_id and s.span_id == span.parent_span_id), None)
        if parent is None or parent.name != spec["parent"]:
            got = repr(parent.name) if parent is not None else "no parent (a root span)"
            problems.append(f"parent: expected {spec['parent']!r}, got {got}")
    if "kind" in spec and span.kind != model.SpanKind(spec["kind"]):
        problems.append(f"kind: expected {spec['kind']}, got {span.kind.value}")
    if "attributes" in spec:
        mism = match_attributes(span.attributes, expected_attributes(spec["attributes"]),
                                exact=bool(spec.get("exact_attributes", False)))
        if mism:
            problems += describe_mismatches(mism, actual=span.attributes).splitlines()
    if "status" in spec:
        st = spec["status"]
        code, desc = (st, None) if isinstance(st, str) else (st["code"], st.get("description"))
        if span.status_code != model.StatusCode(code):
            problems.append(f"status: expected {code}, got {span.status_code.value}"
                            + (f" ({span.status_description!r})" if span.status_description else ""))
        elif desc is not None and not values_equal(span.status_description, expected_value(desc)):
            problems.append(f"status description: expected {desc!r}, got {span.status_description!r}")
    if "events" in spec:
        problems += _event_problems(span, spec["events"], bool(spec.get("events_ordered", False)))
    if "exception" in spec:
        problems += _exception_problems(span, spec["exception"])
    if "links" in spec and not _count_ok(len(span.links), spec["links"]):
        problems.append(f"links: expected {_describe_count(spec['links'])}, got {len(span.links)}")
    if "linked_to" in spec:
        targets = {(s.trace_id, s.span_id): s.name for s in view}
        names = [targets.get((ln.trace_id, ln.span_id)) for ln in span.links]
        if spec["linked_to"] not in names:
            shown = ", ".join(repr(n) if n else "(span not recorded)" for n in names) or "no links"
            problems.append(f"links: expected a link to a span {spec['linked_to']!r}, got {shown}")
    return problems


def _event_problems(span: model.Span, expected: Sequence[Mapping[str, Any]], ordered: bool) -> list[str]:
    """Each expected event is found (in that order when ``ordered``), attributes partial."""
    events = list(span.events)
    problems = []
    start = 0
    for want in expected:
        attrs = expected_attributes(want.get("attributes"))
        pool = range(start, len(events)) if ordered else range(len(events))
        hit = next((i for i in pool if events[i].name == want["name"]
                    and not match_attributes(events[i].attributes, attrs)), None)
        if hit is None:
            same = [e for e in events if e.name == want["name"]]
            if same:
                why = describe_mismatches(match_attributes(same[0].attributes, attrs), actual=same[0].attributes)
                later = " after the previous expected event" if ordered and not why else ""
                problems.append(f"event {want['name']!r}{later}: " + (why.replace("\n", "; ") or "out of order"))
            else:
                got = [e.name for e in events]
                problems.append(f"missing event {want['name']!r}{did_you_mean(want['name'], got)}; "
                                f"events recorded: {', '.join(got) or 'none'}")
        elif ordered:
            start = hit + 1
    return problems


def _exception_problems(span: model.Span, expected: Any) -> list[str]:
    excs = span.exceptions()
    if expected is False:
        if excs:
            first = excs[0].attributes
            return [f"expected no recorded exception, got {first.get('exception.type')}: "
                    f"{first.get('exception.message')}"]
        return []
    if not excs:
        return ["expected a recorded exception (an 'exception' event from record_exception), got none"]
    want = {}
    if "type" in expected:
        want["exception.type"] = expected_value(expected["type"])
    if "message" in expected:
        want["exception.message"] = expected_value(expected["message"])
    if any(not match_attributes(e.attributes, want) for e in excs):
        return []
    e = excs[0]
    return ["recorded exception differs: "
            + describe_mismatches(match_attributes(e.attributes, want), actual=e.attributes).replace("\n", "; ")]


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
    if _attempt(problems, lambda: view.assert_metric(name, kind=spec.get("type"), unit=spec.get("unit"),
                                                     description=desc)) is None and problems:
        if name not in view:
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
    for r in records:
        candidates = [s for s in spans if s.name == inside and s.trace_id == r.trace_id]
        if r.is_correlated and (r.trace_id, r.span_id) in {(s.trace_id, s.span_id) for s in candidates}:
            continue
        if len(candidates) == 1:
            _attempt(problems, lambda: LogView([r], spans).assert_correlated(candidates[0]))
        elif not r.is_correlated:
            _attempt(problems, lambda: LogView([r], spans).assert_all_correlated())
        else:
            owner = next((s for s in spans if (s.trace_id, s.span_id) == (r.trace_id, r.span_id)), None)
            where = f"span {owner.name!r}" if owner else "a span that was not recorded"
            problems.append(f"log record {r.body!r} was emitted inside {where}, not inside {inside!r}")
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
    from .. import cardinality

    items = _items(telemetry, spec["signal"], spec.get("name"))
    problems: list[str] = []
    what = f"{spec['signal']}" + (f" named {spec['name']!r}" if spec.get("name") else "")
    _attempt(problems, lambda: cardinality.assert_max_cardinality(items, spec["max"], [spec["key"]], what=what))
    return problems


def _limit_series(spec: Mapping[str, Any], telemetry: model.Telemetry, marks: Marks, cid: str) -> list[str]:
    from .. import cardinality

    problems: list[str] = []
    _attempt(problems, lambda: cardinality.assert_max_series(telemetry.metrics, spec["max"], spec["metric"]))
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
            seen = {i.resource for i in (*telemetry.spans, *telemetry.metrics, *telemetry.logs)}
            for res in seen:
                for k in res.attributes:
                    if bad(k):
                        found[("resource", res.service_name or "", k)] = found.get(("resource", res.service_name or "", k), 0) + 1
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
    from .. import lint

    options: dict[str, Any] = {}
    if isinstance(spec, Mapping) and (spec.get("keys") or spec.get("patterns")):
        from ..sensitive import SensitiveRules

        options["sensitive_rules"] = SensitiveRules.default().extend(keys=spec.get("keys", ()),
                                                                     patterns=spec.get("patterns", ()))
    report = lint.lint(telemetry, only={"sensitive"}, **options)
    return _lint_problems(report, marks, cid)


def _limit_no_errors(spec: Any, telemetry: model.Telemetry, marks: Marks, cid: str) -> list[str]:
    errors = [s for s in telemetry.spans if s.status_code == model.StatusCode.ERROR]
    for s in errors:
        marks[(s.trace_id, s.span_id)] = f"✗ {cid}: ERROR status"
    if not errors:
        return []
    lines = [f"expected no span with ERROR status, found {len(errors)}:"]
    for s in errors:
        exc = s.exceptions()
        detail = f"; exception {exc[0].attributes.get('exception.type')}" if exc else ""
        lines.append(f"  {s.name} ({s.span_id_hex}): {s.status_description or 'no description'}{detail}")
    return ["\n".join(lines)]


def _limit_lint(spec: Any, telemetry: model.Telemetry, marks: Marks, cid: str) -> list[str]:
    from .. import lint

    options = dict(spec.get("options", {})) if isinstance(spec, Mapping) else {}
    disable = set(spec.get("disable", ())) if isinstance(spec, Mapping) else set()
    report = lint.lint(telemetry, disable=disable, **options)
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
