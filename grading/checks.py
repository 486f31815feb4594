"""Judges for exercise checks: pure functions over the model and what the runner observed.

Each check kind takes the :class:`Evidence` of one graded run and the check's parameters (from the
exercise YAML) and returns a :class:`Verdict`: passed or not, and a detail text that names what was
expected and what arrived. Attribute comparisons go through :mod:`telemetry_asserts.matchers` with
contract-style matcher data (``{type: int}``, ``{regex: ...}``, ``{range: [a, b]}``...).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from telemetry_asserts import model
from telemetry_asserts.contracts.load import expected_attributes
from telemetry_asserts.errors import did_you_mean
from telemetry_asserts.matchers import describe_mismatches, describe_value, match_attributes


@dataclass(frozen=True)
class Verdict:
    passed: bool
    detail: str = ""


@dataclass(frozen=True)
class Evidence:
    """Everything the grader judges: telemetry per scenario, the run's outcome, Prometheus series."""

    telemetry: model.Telemetry
    scenarios: Mapping[str, model.Telemetry]
    outcome: Mapping[str, Any] = field(default_factory=dict)
    prometheus: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # family -> sample names
    work_dir: str = ""

    def scope(self, scenario: str | None) -> model.Telemetry:
        """The telemetry of one scenario (``None`` or ``"all"``: everything)."""
        if scenario in (None, "all"):
            return self.telemetry
        return self.scenarios.get(scenario, model.Telemetry())

    def outputs(self) -> Mapping[str, int]:
        return self.outcome.get("outputs", {}) or {}


Judge = Callable[[Evidence, Mapping[str, Any]], Verdict]
KINDS: dict[str, Judge] = {}


def judge(kind: str) -> Callable[[Judge], Judge]:
    def register(fn: Judge) -> Judge:
        KINDS[kind] = fn
        return fn

    return register


def run_check(kind: str, evidence: Evidence, params: Mapping[str, Any]) -> Verdict:
    """Run one check; an unknown kind is a course-content error (KeyError naming the kinds)."""
    if kind not in KINDS:
        raise KeyError(f"unknown check kind {kind!r}{did_you_mean(kind, KINDS)}; known: {', '.join(sorted(KINDS))}")
    return KINDS[kind](evidence, params)


# ------------------------------------------------------------------------------------ helpers


def _where(params: Mapping[str, Any]) -> str:
    scenario = params.get("scenario", "success")
    return "any run" if scenario in (None, "all") else f"the {scenario.replace('_', '-')} run"


def _names(spans: Iterable[model.Span]) -> list[str]:
    return sorted({s.name for s in spans})


def _spans(evidence: Evidence, params: Mapping[str, Any], name: str | None = None) -> list[model.Span]:
    telemetry = evidence.scope(params.get("scenario", "success"))
    name = name or params.get("span")
    if params.get("root") and not name:
        return [s for s in telemetry.spans if s.is_root]
    return [s for s in telemetry.spans if s.name == name]


def _missing_span(evidence: Evidence, params: Mapping[str, Any], name: str) -> Verdict:
    seen = _names(evidence.scope(params.get("scenario", "success")).spans)
    hint = did_you_mean(name, seen) if seen else ""
    listing = ", ".join(seen) if seen else "no spans at all"
    return Verdict(False, f"expected a span {name!r} in {_where(params)}{hint}; spans that arrived: {listing}")


def _by_id(telemetry: model.Telemetry) -> dict[tuple[int, int], model.Span]:
    return {(s.trace_id, s.span_id): s for s in telemetry.spans}


def _label(params: Mapping[str, Any]) -> str:
    return "the root span" if params.get("root") and not params.get("span") else f"span {params['span']!r}"


# ------------------------------------------------------------------------------------ spans


@judge("span_present")
def span_present(evidence: Evidence, params: Mapping[str, Any]) -> Verdict:
    """A span named ``span`` exists (``count``: exactly that many per trace)."""
    found = _spans(evidence, params)
    if not found:
        return _missing_span(evidence, params, params["span"])
    if "count" in params:
        per_trace: dict[int, int] = {}
        for s in found:
            per_trace[s.trace_id] = per_trace.get(s.trace_id, 0) + 1
        wrong = {t: n for t, n in per_trace.items() if n != params["count"]}
        if wrong:
            counts = ", ".join(str(n) for n in wrong.values())
            return Verdict(False, f"expected {params['count']} span(s) {params['span']!r} per trace, found {counts}")
    return Verdict(True, f"{len(found)} span(s) {params['span']!r}")


@judge("span_parent")
def span_parent(evidence: Evidence, params: Mapping[str, Any]) -> Verdict:
    """Every span ``span`` is a direct child of a span named ``parent``."""
    found = _spans(evidence, params)
    if not found:
        return _missing_span(evidence, params, params["span"])
    index = _by_id(evidence.telemetry)
    wrong = []
    for s in found:
        parent = index.get((s.trace_id, s.parent_span_id or 0))
        if parent is None or parent.name != params["parent"]:
            wrong.append(parent.name if parent is not None else "(no parent: a root span)")
    if wrong:
        return Verdict(
            False,
            f"expected span {params['span']!r} directly under {params['parent']!r}, "
            f"found it under {', '.join(repr(w) if not w.startswith('(') else w for w in wrong)}",
        )
    return Verdict(True, f"{params['span']!r} is under {params['parent']!r}")


@judge("span_attributes")
def span_attributes(evidence: Evidence, params: Mapping[str, Any]) -> Verdict:
    """Every span ``span`` (or the root) carries ``attributes`` (matcher data)."""
    found = _spans(evidence, params)
    if not found:
        return _missing_span(evidence, params, params.get("span") or "(root)")
    expected = expected_attributes(params["attributes"])
    for s in found:
        mismatches = match_attributes(s.attributes, expected)
        if mismatches:
            text = describe_mismatches(mismatches, actual=s.attributes)
            return Verdict(False, f"{_label(params)}: {text}")
    return Verdict(True, f"{_label(params)} has {', '.join(expected)}")


@judge("span_size_matches_output")
def span_size_matches_output(evidence: Evidence, params: Mapping[str, Any]) -> Verdict:
    """The span's size attribute equals the size of the output file its path attribute names."""
    found = _spans(evidence, params)
    if not found:
        return _missing_span(evidence, params, params["span"])
    outputs = evidence.outputs()
    path_key, size_key = params["path_attribute"], params["size_attribute"]
    for s in found:
        path, size = s.attributes.get(path_key), s.attributes.get(size_key)
        if not isinstance(path, str) or isinstance(size, bool) or not isinstance(size, int):
            return Verdict(False, f"span {s.name!r} needs {path_key!r} (str) and {size_key!r} (int) to compare")
        name = PurePosixPath(path).name
        match = [rel for rel in outputs if PurePosixPath(rel).name == name]
        if not match:
            return Verdict(
                False, f"{path_key}={path!r} names no file the run wrote (wrote: {', '.join(outputs) or 'nothing'})"
            )
        actual = outputs[match[0]]
        if actual != size:
            return Verdict(False, f"{size_key}={size} but {name} has {actual} bytes on disk")
    return Verdict(True, f"{size_key} equals the written file's size")


@judge("span_error")
def span_error(evidence: Evidence, params: Mapping[str, Any]) -> Verdict:
    """Span ``span`` (or the root) has ERROR status with a non-empty description."""
    found = _spans(evidence, params)
    if not found:
        return _missing_span(evidence, params, params.get("span") or "(root)")
    for s in found:
        if s.status_code != model.StatusCode.ERROR:
            return Verdict(
                False, f"{_label(params)} has status {s.status_code.value}, expected ERROR with a description"
            )
        if not s.status_description.strip():
            return Verdict(False, f"{_label(params)} has status ERROR but no description")
    return Verdict(True, f"{_label(params)}: ERROR {found[0].status_description!r}")


@judge("span_exception")
def span_exception(evidence: Evidence, params: Mapping[str, Any]) -> Verdict:
    """Span ``span`` (or the root) carries an ``exception`` event (``type``: regex on exception.type)."""
    found = _spans(evidence, params)
    if not found:
        return _missing_span(evidence, params, params.get("span") or "(root)")
    pattern = params.get("type")
    for s in found:
        events = s.exceptions()
        if not events:
            seen = ", ".join(e.name for e in s.events) or "none"
            return Verdict(
                False, f"{_label(params)} has no recorded exception (events: {seen}); call span.record_exception(exc)"
            )
        types = [str(e.attributes.get("exception.type", "")) for e in events]
        if pattern and not any(re.search(pattern, t) for t in types):
            return Verdict(
                False, f"{_label(params)} recorded {', '.join(types)}, expected an exception matching {pattern!r}"
            )
    return Verdict(True, f"{_label(params)} recorded the exception")


@judge("span_event")
def span_event(evidence: Evidence, params: Mapping[str, Any]) -> Verdict:
    """Some span (``span`` if given) carries an event named ``event`` (``min_count``, ``attributes``)."""
    telemetry = evidence.scope(params.get("scenario", "success"))
    spans = [s for s in telemetry.spans if "span" not in params or s.name == params["span"]]
    if "span" in params and not spans:
        return _missing_span(evidence, params, params["span"])
    expected = expected_attributes(params.get("attributes"))
    events = [e for s in spans for e in s.events if e.name == params["event"]]
    good = [e for e in events if not match_attributes(e.attributes, expected)]
    where = f"span {params['span']!r}" if "span" in params else "any span"
    want = int(params.get("min_count", 1))
    if len(good) >= want:
        return Verdict(True, f"{len(good)} event(s) {params['event']!r} on {where}")
    if events and expected:
        text = describe_mismatches(match_attributes(events[0].attributes, expected), actual=events[0].attributes)
        return Verdict(False, f"event {params['event']!r} on {where}: {text}")
    seen = sorted({e.name for s in spans for e in s.events})
    hint = did_you_mean(params["event"], seen) if seen else ""
    return Verdict(
        False,
        f"expected at least {want} event(s) {params['event']!r} on {where} in {_where(params)}, found {len(good)}"
        f"{hint}; events seen: {', '.join(seen) or 'none'}",
    )


# ------------------------------------------------------------------------------------ metrics


def _points(evidence: Evidence, name: str) -> list[model.MetricPoint]:
    return [p for p in evidence.telemetry.metrics if p.name == name]


def _missing_metric(evidence: Evidence, name: str) -> Verdict:
    seen = sorted({p.name for p in evidence.telemetry.metrics})
    hint = did_you_mean(name, seen) if seen else ""
    return Verdict(False, f"no metric {name!r} arrived{hint}; metrics seen: {', '.join(seen) or 'none'}")


def _series(points: Sequence[model.MetricPoint]) -> str:
    return "; ".join(f"{dict(p.attributes) or '{}'} = {p.value if p.value is not None else p.count}" for p in points)


@judge("metric_present")
def metric_present(evidence: Evidence, params: Mapping[str, Any]) -> Verdict:
    """A metric ``metric`` arrived (``kind``: counter/histogram/...; ``unit`` if given)."""
    points = _points(evidence, params["metric"])
    if not points:
        return _missing_metric(evidence, params["metric"])
    kind = params.get("kind")
    if kind and points[0].kind.value != kind:
        return Verdict(False, f"metric {params['metric']!r} is a {points[0].kind.value}, expected a {kind}")
    if "unit" in params and points[0].unit != params["unit"]:
        return Verdict(False, f"metric {params['metric']!r} has unit {points[0].unit!r}, expected {params['unit']!r}")
    return Verdict(True, f"metric {params['metric']!r} ({points[0].kind.value}, unit {points[0].unit!r})")


@judge("metric_attribute_keys")
def metric_attribute_keys(evidence: Evidence, params: Mapping[str, Any]) -> Verdict:
    """Every point of ``metric`` has exactly the attribute keys ``keys``."""
    points = _points(evidence, params["metric"])
    if not points:
        return _missing_metric(evidence, params["metric"])
    want = set(params["keys"])
    for p in points:
        have = set(p.attributes)
        if have != want:
            missing, extra = sorted(want - have), sorted(have - want)
            parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
                [f"unexpected {', '.join(extra)}"] if extra else []
            )
            return Verdict(
                False,
                f"metric {params['metric']!r} points must carry exactly {sorted(want)}: {'; '.join(parts)} "
                f"(points: {_series(points)})",
            )
    return Verdict(True, f"{params['metric']!r} points carry {sorted(want)}")


@judge("metric_value")
def metric_value(evidence: Evidence, params: Mapping[str, Any]) -> Verdict:
    """The sum of ``metric`` points whose attributes match ``attributes`` equals ``value``."""
    points = _points(evidence, params["metric"])
    if not points:
        return _missing_metric(evidence, params["metric"])
    expected = expected_attributes(params.get("attributes"))
    chosen = [p for p in points if not match_attributes(p.attributes, expected)]
    total = sum((p.value if p.value is not None else (p.count or 0)) for p in chosen)
    if not chosen or total != params["value"]:
        return Verdict(
            False,
            f"expected {params['metric']}{dict(params.get('attributes') or {})} = {params['value']}, "
            f"got {total if chosen else 'no such point'} (points: {_series(points)})",
        )
    return Verdict(True, f"{params['metric']}{dict(params.get('attributes') or {})} = {total}")


@judge("metric_counts_spans")
def metric_counts_spans(evidence: Evidence, params: Mapping[str, Any]) -> Verdict:
    """Counter ``metric`` by ``key`` equals the number of spans of each name under ``under`` (all runs)."""
    points = _points(evidence, params["metric"])
    if not points:
        return _missing_metric(evidence, params["metric"])
    index = _by_id(evidence.telemetry)
    expected: dict[str, int] = {}
    for s in evidence.telemetry.spans:
        parent = index.get((s.trace_id, s.parent_span_id or 0))
        if parent is not None and parent.name == params["under"]:
            expected[s.name] = expected.get(s.name, 0) + 1
    actual: dict[str, float] = {}
    for p in points:
        label = p.attributes.get(params["key"])
        actual[str(label) if label is not None else "(no " + params["key"] + ")"] = actual.get(
            str(label) if label is not None else "(no " + params["key"] + ")", 0
        ) + (p.value or 0)
    if actual != expected:
        return Verdict(
            False,
            f"expected {params['metric']} by {params['key']} to count each executed stage once: "
            f"expected {_fmt_counts(expected)}, got {_fmt_counts(actual)}",
        )
    return Verdict(True, f"{params['metric']} = {_fmt_counts(actual)}")


def _fmt_counts(counts: Mapping[str, float]) -> str:
    if not counts:
        return "{}"
    return "{" + ", ".join(f"{k}: {_num(v)}" for k, v in sorted(counts.items())) + "}"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


@judge("prometheus_series")
def prometheus_series(evidence: Evidence, params: Mapping[str, Any]) -> Verdict:
    """The Prometheus exporter serves a sample named ``series`` (the name the lesson's query uses)."""
    want = params["series"]
    samples = sorted({s for names in evidence.prometheus.values() for s in names})
    if want in samples:
        return Verdict(True, f"Prometheus serves {want}")
    stem = params.get("related", want.rsplit("_", 1)[0])
    related = [s for s in samples if s.startswith(stem)]
    return Verdict(
        False,
        f"the lesson's query needs the Prometheus series {want!r}, but the exporter serves "
        f"{', '.join(related) if related else 'no ' + stem + '* series'} (check the instrument's name and unit: "
        f"a unit such as 'executions' is appended to the series name; use a braced unit like '{{execution}}')",
    )


# ------------------------------------------------------------------------------------ logs


def _logs(evidence: Evidence, params: Mapping[str, Any]) -> list[model.LogRecord]:
    telemetry = evidence.scope(params.get("scenario", "success"))
    pattern = re.compile(params["body"])
    return [r for r in telemetry.logs if isinstance(r.body, str) and pattern.search(r.body)]


def _missing_log(evidence: Evidence, params: Mapping[str, Any]) -> Verdict:
    bodies = [str(r.body) for r in evidence.scope(params.get("scenario", "success")).logs]
    shown = ", ".join(repr(b[:60]) for b in bodies[:8]) or "none"
    return Verdict(False, f"expected a log record matching {params['body']!r} in {_where(params)}; logs seen: {shown}")


@judge("log_present")
def log_present(evidence: Evidence, params: Mapping[str, Any]) -> Verdict:
    """A log record whose body matches ``body`` carries ``attributes`` (matcher data)."""
    found = _logs(evidence, params)
    if not found:
        return _missing_log(evidence, params)
    expected = expected_attributes(params.get("attributes"))
    problems = []
    for r in found:
        mismatches = match_attributes(r.attributes, expected)
        if not mismatches:
            return Verdict(True, f"log {r.body!r} has {', '.join(expected)}")
        problems.append(describe_mismatches(mismatches, actual=r.attributes))
    return Verdict(False, f"log {found[0].body!r}: {problems[0]}")


@judge("log_inside_span")
def log_inside_span(evidence: Evidence, params: Mapping[str, Any]) -> Verdict:
    """Every log matching ``body`` (and ``attributes``, if given) was emitted inside a span named ``span``."""
    found = _logs(evidence, params)
    if not found:
        return _missing_log(evidence, params)
    expected = expected_attributes(params.get("attributes"))
    structured = [r for r in found if not match_attributes(r.attributes, expected)]
    if not structured:
        return Verdict(
            False,
            f"no log {found[0].body!r} with the fields {', '.join(expected)} arrived, so none can be inside {params['span']!r}",
        )
    index = _by_id(evidence.telemetry)
    for r in structured:
        if not r.is_correlated:
            return Verdict(
                False,
                f"log {r.body!r} has no trace/span id: it was emitted outside any span, expected inside {params['span']!r}",
            )
        span = index.get((r.trace_id, r.span_id))
        actual = span.name if span is not None else f"an unknown span {r.span_id_hex}"
        if span is None or span.name != params["span"]:
            return Verdict(False, f"log {r.body!r} was emitted inside {actual!r}, expected inside {params['span']!r}")
    return Verdict(True, f"log {structured[0].body!r} is inside {params['span']!r}")


# ------------------------------------------------------------------------------------ hygiene

_PATHLIKE = re.compile(r"(^/|^[A-Za-z]:\\|\.nii(\.gz)?$|/)")


@judge("no_path_in_metric_attributes")
def no_path_in_metric_attributes(evidence: Evidence, params: Mapping[str, Any]) -> Verdict:
    """No metric attribute value is a file path or file name (unbounded cardinality, user data)."""
    bad = sorted(
        {
            (p.name, k, str(v))
            for p in evidence.telemetry.metrics
            for k, v in p.attributes.items()
            if isinstance(v, str) and _PATHLIKE.search(v)
        }
    )
    if bad:
        name, key, value = bad[0]
        return Verdict(
            False,
            f"metric {name!r} has attribute {key}={value!r}: a path in a metric attribute makes one series per file (and leaks user paths); remove it",
        )
    return Verdict(True, "no paths in metric attributes")


@judge("no_work_dir_in_span_attributes")
def no_work_dir_in_span_attributes(evidence: Evidence, params: Mapping[str, Any]) -> Verdict:
    """No span/event attribute holds an absolute path under the run's directory (``allow``: keys exempt)."""
    root = evidence.work_dir
    allow = set(params.get("allow", ()))
    if not root:
        return Verdict(True, "no working directory known")
    for s in evidence.telemetry.spans:
        attr_sets = [("", s.attributes)] + [
            (f" event {e.name!r}", e.attributes) for e in s.events if e.name != "exception"
        ]
        for where, attrs in attr_sets:
            for k, v in attrs.items():
                values = v if isinstance(v, tuple) else (v,)
                if k not in allow and any(isinstance(x, str) and root in x for x in values):
                    return Verdict(
                        False,
                        f"span {s.name!r}{where} has {k}={describe_value(v)}: a full user path; record the file name only",
                    )
    return Verdict(True, "no full paths in span attributes")


@judge("metric_series_limit")
def metric_series_limit(evidence: Evidence, params: Mapping[str, Any]) -> Verdict:
    """Every metric has at most ``max_series`` series and only ``allowed_keys`` attribute keys."""
    by_metric: dict[str, set[Any]] = {}
    keys: dict[str, set[str]] = {}
    for p in evidence.telemetry.metrics:
        by_metric.setdefault(p.name, set()).add(p.attributes.key())
        keys.setdefault(p.name, set()).update(p.attributes)
    allowed = set(params.get("allowed_keys", ()))
    for name in sorted(by_metric):
        extra = sorted(keys[name] - allowed) if allowed else []
        if extra:
            return Verdict(
                False, f"metric {name!r} has attribute key(s) {', '.join(extra)}; allowed: {', '.join(sorted(allowed))}"
            )
        if len(by_metric[name]) > params["max_series"]:
            return Verdict(False, f"metric {name!r} has {len(by_metric[name])} series (limit {params['max_series']})")
    return Verdict(True, "metric cardinality within limits")


# ------------------------------------------------------------------------------------ contracts


@judge("contract")
def contract_check(evidence: Evidence, params: Mapping[str, Any]) -> Verdict:
    """One check written in the telemetry-contract format (``section``: traces/spans/metrics/logs/limits,
    ``check``: the check's mapping), run by :func:`telemetry_asserts.contracts.check.run_contract`."""
    import yaml

    from telemetry_asserts.contracts import parse_contract
    from telemetry_asserts.contracts.check import run_contract

    section = params["section"]
    body = {"id": "exercise_check", **dict(params["check"])}
    document = {"version": 1, "name": "exercise", section: body if section == "resource" else [body]}
    contract = parse_contract(yaml.safe_dump(document, sort_keys=False), source="exercise check")
    outcome = run_contract(contract, evidence.scope(params.get("scenario", "success")))
    result = outcome.results[0]
    if result.error:
        raise RuntimeError(f"contract check could not be evaluated: {result.message}")
    return Verdict(result.passed, result.message.strip() if not result.passed else "contract check passed")


__all__ = ["KINDS", "Evidence", "Verdict", "judge", "run_check"]
