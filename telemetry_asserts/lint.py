"""Instrumentation lint: the course's "what not to instrument" and "bad attributes" lists as rules.

``lint(telemetry)`` reports one :class:`Finding` per problem (a loop of 100 spans is one finding,
not 100), each naming the span path or metric it came from. Every rule has a threshold in
:class:`LintOptions` and can be switched off per call: ``lint(t, disable={"trivial_span"},
loop_threshold=50)``.

Rules: Findings about spans name the span's path (``process_batch > process_file``), metric findings
``metric 'name'``, log findings ``log`` (with the logger scope when known).

``tight_loop`` (more than ``loop_threshold`` same-named siblings under one parent),
``trivial_span`` (an INTERNAL leaf span without attributes, events, links or error, shorter than
``trivial_threshold_us``: it only says a function ran; a span that records a result carries
information and is left alone), ``meaningless_attribute`` (``data``, ``temp``, ``value``, one letter...),
``oversize_attribute`` (strings over ``max_attribute_length`` chars, arrays over
``max_array_length``), ``id_like_metric_attribute`` (ids, UUIDs, paths, e-mails, timestamps as
metric attribute values), ``high_cardinality_metric`` (a metric attribute with more than
``max_metric_attribute_values`` values, or more than ``max_series_per_metric`` series) and
``sensitive_data`` (see :mod:`telemetry_asserts.sensitive`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .cardinality import _id_like, _items, _metric_values, series_count
from .errors import TelemetryAssertionError, did_you_mean
from .model import Span, SpanKind, StatusCode, Telemetry
from .sensitive import SensitiveRules, find_sensitive

__all__ = ["DEFAULT_MEANINGLESS", "RULES", "Finding", "LintOptions", "LintReport", "lint"]

RULES = (
    "tight_loop",
    "trivial_span",
    "meaningless_attribute",
    "oversize_attribute",
    "id_like_metric_attribute",
    "high_cardinality_metric",
    "sensitive_data",
)
_SEVERITY = {
    "tight_loop": "warning",
    "trivial_span": "warning",
    "meaningless_attribute": "warning",
    "oversize_attribute": "warning",
    "id_like_metric_attribute": "error",
    "high_cardinality_metric": "error",
    "sensitive_data": "error",
}
_LEVELS = {"warning": 0, "error": 1}

# fmt: off
DEFAULT_MEANINGLESS = frozenset(
    {
        "data", "temp", "tmp", "value", "val", "values", "info", "foo", "bar", "baz", "qux", "test", "stuff",
        "thing", "things", "misc", "var", "attr", "attribute", "field", "obj", "object", "item", "result",
        "res", "output", "input", "number", "num", "string", "str", "flag", "key", "name", "type", "id",
        "my_attribute", "attr1", "unknown", "other", "extra", "debug", "payload",
    }
)
# fmt: on


@dataclass(frozen=True)
class LintOptions:
    """Thresholds and switches of every rule (defaults keep a well-instrumented pipeline clean)."""

    loop_threshold: int = 20
    trivial_threshold_us: float = 50.0
    max_attribute_length: int = 1024
    max_array_length: int = 128
    max_metric_attribute_values: int = 50
    max_series_per_metric: int = 500
    id_like_fraction: float = 0.5
    meaningless_names: frozenset[str] = DEFAULT_MEANINGLESS
    oversize_exempt_keys: frozenset[str] = frozenset({"exception.stacktrace", "db.statement", "db.query.text"})
    sensitive_rules: SensitiveRules = field(default_factory=SensitiveRules.default)
    disable: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Finding:
    """One problem: which rule, what, where (a span path or metric name), how bad."""

    rule: str
    message: str
    where: str
    severity: str = "warning"

    def __str__(self) -> str:
        return f"[{self.severity}] {self.rule} at {self.where}: {self.message}"


class LintReport:
    """The findings of one :func:`lint` call; truthy when there are findings (like a list)."""

    def __init__(self, findings: Iterable[Finding]) -> None:
        self.findings: list[Finding] = list(findings)

    def __len__(self) -> int:
        return len(self.findings)

    def __bool__(self) -> bool:
        return bool(self.findings)

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.findings)

    def __repr__(self) -> str:
        return f"LintReport({len(self.findings)} findings)"

    def rules(self) -> list[str]:
        """The rules that fired, in rule order."""
        fired = {f.rule for f in self.findings}
        return [r for r in RULES if r in fired]

    def by_rule(self, rule: str) -> list[Finding]:
        return [f for f in self.findings if f.rule == rule]

    def text(self) -> str:
        if not self.findings:
            return "instrumentation lint: no findings"
        n = len(self.findings)
        lines = [f"instrumentation lint: {n} finding{'s' if n != 1 else ''}"]
        lines += [f"  {f}" for f in self.findings]
        return "\n".join(lines)

    __str__ = text

    def assert_clean(self, min_severity: str = "warning") -> None:
        """Fail, listing every finding at ``min_severity`` or worse, if there is any."""
        if min_severity not in _LEVELS:
            raise ValueError(f"min_severity must be one of {sorted(_LEVELS)}")
        bad = [f for f in self.findings if _LEVELS[f.severity] >= _LEVELS[min_severity]]
        if bad:
            shown = LintReport(bad).text()
            example = bad[0].rule
            raise TelemetryAssertionError(
                f"{shown}\n(switch a rule off with lint(..., disable={{{example!r}}}) or raise its threshold)"
            )


def lint(
    telemetry: Telemetry, options: LintOptions | None = None, *, disable: Iterable[str] = (), **thresholds: Any
) -> LintReport:
    """Run every enabled rule over ``telemetry``; ``thresholds`` override :class:`LintOptions` fields."""
    opts = options or LintOptions()
    known = {f.name for f in fields(LintOptions)} - {"disable"}
    for name in thresholds:
        if name not in known:
            raise TypeError(f"unknown lint option {name!r}{did_you_mean(name, known)}")
    off = frozenset(disable) | opts.disable
    for rule in off:
        if rule not in RULES:
            raise ValueError(f"unknown lint rule {rule!r}{did_you_mean(rule, RULES)}; rules: {', '.join(RULES)}")
    for name in ("meaningless_names", "oversize_exempt_keys"):
        if name in thresholds and not isinstance(thresholds[name], frozenset):
            thresholds[name] = frozenset(thresholds[name])  # lists from YAML contracts
    opts = replace(opts, disable=off, **thresholds)
    return LintReport(_Linter(telemetry, opts).run())


class _Linter:
    def __init__(self, telemetry: Telemetry, opts: LintOptions) -> None:
        self.t = telemetry
        self.o = opts
        self.by_id = {(s.trace_id, s.span_id): s for s in telemetry.spans}
        self.children: dict[tuple[int, int], list[Span]] = {}
        for s in telemetry.spans:
            if s.parent_span_id and (s.trace_id, s.parent_span_id) in self.by_id:
                self.children.setdefault((s.trace_id, s.parent_span_id), []).append(s)
        self._paths: dict[tuple[int, int], str] = {}
        self._metric_values: dict[tuple[str, str], dict[Any, Any]] | None = None
        self._meaningless_memo: dict[str, bool] = {}
        self.findings: list[Finding] = []

    def metric_values(self) -> dict[tuple[str, str], dict[Any, Any]]:
        if self._metric_values is None:
            self._metric_values = _metric_values(self.t.metrics)
        return self._metric_values

    def add(self, rule: str, where: str, message: str) -> None:
        self.findings.append(Finding(rule, message, where, _SEVERITY[rule]))

    def on(self, rule: str) -> bool:
        return rule not in self.o.disable

    def path(self, s: Span) -> str:
        key = (s.trace_id, s.span_id)
        if key not in self._paths:
            names = []
            seen = set()
            cur: Span | None = s
            while cur is not None and (cur.trace_id, cur.span_id) not in seen:
                seen.add((cur.trace_id, cur.span_id))
                names.append(cur.name)
                cur = self.by_id.get((cur.trace_id, cur.parent_span_id)) if cur.parent_span_id else None
            self._paths[key] = " > ".join(reversed(names))
        return self._paths[key]

    def run(self) -> list[Finding]:
        looped = self.tight_loops() if self.on("tight_loop") else set()
        if self.on("trivial_span"):
            self.trivial_spans(looped)
        if self.on("meaningless_attribute"):
            self.meaningless()
        if self.on("oversize_attribute"):
            self.oversize()
        sensitive = self.sensitive() if self.on("sensitive_data") else set()
        flagged = self.id_like(sensitive) if self.on("id_like_metric_attribute") else set()
        if self.on("high_cardinality_metric"):
            self.high_cardinality(flagged | sensitive)
        order = {r: i for i, r in enumerate(RULES)}
        return sorted(self.findings, key=lambda f: order[f.rule])  # stable: first-seen within a rule

    # -- spans -----------------------------------------------------------------------------------
    def tight_loops(self) -> set[str]:
        """One finding per (parent path, child name); returns the looped child paths."""
        groups: dict[tuple[str, str], list[int]] = {}
        for kids in self.children.values():
            counts: dict[str, int] = {}
            for k in kids:
                counts[k.name] = counts.get(k.name, 0) + 1
            for name, n in counts.items():
                if n > self.o.loop_threshold:
                    groups.setdefault((self.path(kids[0]).rsplit(" > ", 1)[0], name), []).append(n)
        for (parent, name), ns in groups.items():
            parents = f" in {len(ns)} parents" if len(ns) > 1 else ""
            self.add(
                "tight_loop",
                parent,
                f"{max(ns)} sibling spans named {name!r} under one parent{parents} (more than "
                f"{self.o.loop_threshold}): a span per loop iteration; make the loop one span and record "
                "the iterations as a count attribute or events",
            )
        return {f"{parent} > {name}" for parent, name in groups}

    def trivial_spans(self, looped: set[str]) -> None:
        limit_ns = self.o.trivial_threshold_us * 1000
        groups: dict[str, list[int]] = {}
        for s in self.t.spans:
            if (
                s.kind == SpanKind.INTERNAL
                and (s.trace_id, s.span_id) not in self.children
                and not s.attributes
                and not s.events
                and not s.links
                and s.status_code != StatusCode.ERROR
                and s.end_time_ns > 0
                and s.duration_ns < limit_ns
            ):
                path = self.path(s)
                if path not in looped:
                    groups.setdefault(path, []).append(s.duration_ns)
        for path, durations in groups.items():
            n = len(durations)
            self.add(
                "trivial_span",
                path,
                f"{n} leaf span{'s' if n != 1 else ''} shorter than {self.o.trivial_threshold_us:g} us "
                f"(longest {max(durations) / 1000:.1f} us): too little work for a span; "
                "use an event or an attribute on the parent",
            )

    # -- attributes ------------------------------------------------------------------------------
    def _all_attributes(self) -> Iterator[tuple[str, Mapping[str, Any]]]:
        for s in self.t.spans:
            yield self.path(s), s.attributes
            for e in s.events:
                yield f"{self.path(s)} event {e.name!r}", e.attributes
        for p in self.t.metrics:
            yield f"metric {p.name!r}", p.attributes
        for r in self.t.logs:
            yield f"log {r.scope.name!r}" if r.scope.name else "log", r.attributes

    def _meaningless(self, key: str) -> bool:
        hit = self._meaningless_memo.get(key)
        if hit is None:
            k = key.lower()
            names = self.o.meaningless_names
            hit = len(k) == 1 or k in names or re.sub(r"\d+$", "", k) in names
            self._meaningless_memo[key] = hit
        return hit

    def meaningless(self) -> None:
        seen: dict[tuple[str, str], int] = {}
        for where, attrs in self._all_attributes():
            for key in list(attrs):
                if self._meaningless(key):
                    seen[(where, key)] = seen.get((where, key), 0) + 1
        for (where, key), n in seen.items():
            self.add(
                "meaningless_attribute",
                where,
                f"attribute name {key!r} says nothing ({n}x): use a namespaced, specific name "
                "(e.g. 'http.response.body.size')",
            )

    def oversize(self) -> None:
        seen: dict[tuple[str, str], tuple[int, str]] = {}
        for where, attrs in self._all_attributes():
            for key, value in _items(attrs):
                if key in self.o.oversize_exempt_keys:
                    continue
                if isinstance(value, str) and len(value) > self.o.max_attribute_length:
                    size, what = len(value), f"characters (limit {self.o.max_attribute_length})"
                elif isinstance(value, tuple) and len(value) > self.o.max_array_length:
                    size, what = len(value), f"elements (limit {self.o.max_array_length})"
                else:
                    continue
                old = seen.get((where, key))
                if old is None or size > old[0]:
                    seen[(where, key)] = (size, what)
        for (where, key), (size, what) in seen.items():
            self.add(
                "oversize_attribute",
                where,
                f"attribute {key!r} holds {size} {what}: attributes are indexed labels, not payloads; "
                "summarise it or log it",
            )

    # -- metrics ---------------------------------------------------------------------------------
    def id_like(self, skip: set[tuple[str, str]]) -> set[tuple[str, str]]:
        flagged = set()
        for f in _id_like(self.metric_values(), self.o.id_like_fraction):
            where = f"metric {f.metric!r}"
            if (where, f.key) in skip:
                continue
            flagged.add((where, f.key))
            examples = ", ".join(repr(v) for v in f.examples[:2])
            what = (
                f"is named like {'an' if f.kind[0] in 'aeiou' else 'a'} {f.kind}"
                if f.by_name
                else f"holds {f.kind} values"
            )
            self.add(
                "id_like_metric_attribute",
                where,
                f"attribute {f.key!r} {what} (e.g. {examples}; {f.distinct} distinct): every value is a new "
                "time series; use a bounded value and keep the identifier on spans or logs",
            )
        return flagged

    def high_cardinality(self, skip: set[tuple[str, str]]) -> None:
        values = self.metric_values()
        reported = {where for where, _ in skip}
        for (name, key), vs in values.items():
            where = f"metric {name!r}"
            if (where, key) in skip or len(vs) <= self.o.max_metric_attribute_values:
                continue
            reported.add(where)
            self.add(
                "high_cardinality_metric",
                where,
                f"attribute {key!r} has {len(vs)} distinct values (more than "
                f"{self.o.max_metric_attribute_values}): metric attributes must be a small, bounded set",
            )
        for name, n in series_count(self.t.metrics).items():
            where = f"metric {name!r}"
            if n > self.o.max_series_per_metric and where not in reported:
                self.add(
                    "high_cardinality_metric",
                    where,
                    f"{n} time series (more than {self.o.max_series_per_metric}): too many attribute combinations",
                )

    def sensitive(self) -> set[tuple[str, str]]:
        out = set()
        for f in find_sensitive(self.t, self.o.sensitive_rules, span_label=self.path):
            out.add((f.where, f.key))
            what = "log body" if f.key == "<body>" else f"attribute {f.key!r}"
            self.add(
                "sensitive_data", f.where, f"{what}: {f.reason} ({f.count}x); never record secrets or personal data"
            )
        return out
