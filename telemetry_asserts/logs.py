"""Log assertions over model log records: body, severity, attributes, and trace correlation.

Severities follow OpenTelemetry's numbers (TRACE 1-4, DEBUG 5-8, INFO 9-12, WARN 13-16, ERROR 17-20,
FATAL 21-24); a name matches its whole range, and Python's names are accepted (``WARNING`` is WARN,
``CRITICAL`` is FATAL). A record without a number is judged by its text. Correlation checks never
accept the all-zero trace or span id (a record emitted outside any span carries those).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from .errors import TelemetryAssertionError, did_you_mean
from .matchers import describe_mismatches, describe_value, match_attributes, values_equal
from .model import LogRecord, Span

__all__ = ["LogView", "describe_log", "severity_range"]

_RANGES = {
    "TRACE": (1, 4),
    "DEBUG": (5, 8),
    "INFO": (9, 12),
    "WARN": (13, 16),
    "ERROR": (17, 20),
    "FATAL": (21, 24),
}
_ALIASES = {"WARNING": "WARN", "CRITICAL": "FATAL", "NOTSET": "TRACE"}

Where = Mapping[str, Any] | Callable[[LogRecord], bool] | None

MAX_LISTED = 40


def _cap(lines: list[str], limit: int = MAX_LISTED) -> list[str]:
    """At most ``limit`` listing lines, then how many were left out."""
    return lines if len(lines) <= limit else [*lines[:limit], f"  ... and {len(lines) - limit} more"]


def severity_range(severity: str | int) -> tuple[int, int]:
    """The OTel severity-number range a name or number stands for (``"warning"`` -> (13, 16))."""
    if isinstance(severity, int) and not isinstance(severity, bool):
        if not 1 <= severity <= 24:
            raise ValueError(f"severity number {severity} is outside OpenTelemetry's 1..24")
        return (severity, severity)
    name = str(severity).upper()
    if name in _ALIASES:
        return _RANGES[_ALIASES[name]]
    base, suffix = name.rstrip("1234"), name[len(name.rstrip("1234")) :]
    if base not in _RANGES or len(suffix) > 1:
        raise ValueError(f"unknown severity {severity!r}{did_you_mean(name, [*_RANGES, *_ALIASES])}")
    lo, hi = _RANGES[base]
    if suffix:  # WARN2 and the like: one exact number
        return (lo + int(suffix) - 1,) * 2
    return (lo, hi)


def _record_number(r: LogRecord) -> int | None:
    if r.severity_number:
        return r.severity_number
    if r.severity_text:
        try:
            return severity_range(r.severity_text)[0]
        except ValueError:
            return None
    return None


def _severity_name(r: LogRecord) -> str:
    return r.severity_text or (f"#{r.severity_number}" if r.severity_number else "UNSPECIFIED")


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def describe_log(r: LogRecord) -> str:
    """``[WARNING] 'body' {k='v'}`` for messages (long bodies and values shortened)."""
    attrs = "{" + ", ".join(f"{k}={_short(repr(v), 80)}" for k, v in r.attributes.items()) + "}"
    return f"[{_severity_name(r)}] {_short(repr(r.body))} {attrs}"


def _ids(trace_id: int, span_id: int) -> str:
    return f"trace_id={trace_id:032x} span_id={span_id:016x}"


class LogView:
    """Read-only selection and assertions over log records; ``spans`` enables correlation checks."""

    def __init__(self, records: Sequence[LogRecord], spans: Sequence[Span] = ()) -> None:
        self._records = tuple(records)
        self._spans = tuple(spans)

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[LogRecord]:
        return iter(self._records)

    def __getitem__(self, index: int) -> LogRecord:
        return self._records[index]

    def __repr__(self) -> str:
        return f"LogView({len(self._records)} records)"

    @property
    def records(self) -> tuple[LogRecord, ...]:
        return self._records

    @property
    def bodies(self) -> list[Any]:
        return [r.body for r in self._records]

    # -- selection -------------------------------------------------------------------------------
    def where(
        self,
        body: Any = None,
        severity: str | int | None = None,
        min_severity: str | int | None = None,
        attributes: Mapping[str, Any] | None = None,
        *,
        exact: bool = False,
    ) -> LogView:
        """Records whose body equals ``body`` (a value or matcher), whose severity is ``severity``
        (a name's whole range, or one number) or at least ``min_severity``, and whose attributes
        match (partial unless ``exact``)."""
        criteria = _criteria(body, severity, min_severity, attributes, exact)
        return LogView([r for r in self._records if not _problems(r, criteria)], self._spans)

    def all(self) -> tuple[LogRecord, ...]:
        return self._records

    def one(self, **criteria: Any) -> LogRecord:
        """The single record matching ``criteria`` (keywords of :meth:`where`)."""
        found = self.where(**criteria) if criteria else self
        if len(found) != 1:
            raise TelemetryAssertionError(self._selection_message(criteria, len(found)))
        return found[0]

    def assert_log(
        self,
        body: Any = None,
        severity: str | int | None = None,
        min_severity: str | int | None = None,
        attributes: Mapping[str, Any] | None = None,
        *,
        exact: bool = False,
        count: int | None = None,
    ) -> LogRecord:
        """At least one record (exactly ``count`` if given) matches; returns the first."""
        crit = dict(body=body, severity=severity, min_severity=min_severity, attributes=attributes, exact=exact)
        found = self.where(**crit)
        if not found or (count is not None and len(found) != count):
            raise TelemetryAssertionError(self._selection_message(crit, len(found), expected_count=count))
        return found[0]

    def assert_no_log(
        self,
        body: Any = None,
        severity: str | int | None = None,
        min_severity: str | int | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        """No record matches (e.g. ``assert_no_log(min_severity="ERROR")``)."""
        found = self.where(body=body, severity=severity, min_severity=min_severity, attributes=attributes)
        if found:
            crit = _describe_criteria(
                dict(body=body, severity=severity, min_severity=min_severity, attributes=attributes)
            )
            listed = "\n".join(_cap([f"  {describe_log(r)}" for r in found]))
            raise TelemetryAssertionError(f"expected no log record with {crit}, found {len(found)}:\n{listed}")

    def _selection_message(self, crit: Mapping[str, Any], n: int, expected_count: int | None = None) -> str:
        want = (
            "exactly one"
            if expected_count is None and n > 1
            else (f"{expected_count}" if expected_count is not None else "a")
        )
        lines = [f"expected {want} log record with {_describe_criteria(crit)}, found {n}"]
        criteria = _criteria(
            **{k: crit.get(k) for k in ("body", "severity", "min_severity", "attributes")},
            exact=bool(crit.get("exact")),
        )
        if n == 0 and self._records:
            best = min(
                self._records, key=lambda r: (len(_problems(r, criteria)), -_body_similarity(r, crit.get("body")))
            )
            lines.append(f"closest: {describe_log(best)}")
            lines += [f"  {p}" for p in _problems(best, criteria)]
        lines.append(f"recorded logs ({len(self._records)}):")
        lines += _cap([f"  {describe_log(r)}" for r in self._records]) or ["  none"]
        return "\n".join(lines)

    # -- correlation -----------------------------------------------------------------------------
    def _resolve_span(self, span: Span | str) -> Span:
        if isinstance(span, Span):
            return span
        if isinstance(getattr(span, "span", None), Span):  # a SpanAssert, as SpanView.one() returns
            return span.span  # type: ignore[union-attr]
        named = [s for s in self._spans if s.name == span]
        if len(named) != 1:
            names = list(dict.fromkeys(s.name for s in self._spans))
            extra = did_you_mean(span, names) if not named else f": {len(named)} spans have that name, pass the Span"
            raise TelemetryAssertionError(f"no single span named {span!r}{extra}")
        return named[0]

    def assert_correlated(self, span: Span | str, where: Where = None) -> None:
        """Every selected record (all by default) carries ``span``'s trace id and span id; at least
        one record must be selected. ``span`` is a :class:`Span` (or the ``SpanAssert`` that
        ``SpanView.one()`` returns) or the name of a unique span."""
        target = self._resolve_span(span)
        selected = self._select(where)
        if not selected:
            raise TelemetryAssertionError(
                f"no log record selected to check against span {target.name!r}\n"
                f"recorded logs ({len(self._records)}):\n"
                + ("\n".join(_cap([f"  {describe_log(r)}" for r in self._records])) or "  none")
            )
        bad = [
            r for r in selected if (r.trace_id, r.span_id) != (target.trace_id, target.span_id) or not r.is_correlated
        ]
        if bad:
            lines = [f"{len(bad)} of {len(selected)} log record(s) not correlated with span {target.name!r}:"]
            lines.append(f"  span {target.name!r}: {_ids(target.trace_id, target.span_id)}")
            for r in bad:
                lines.append(f"  log {describe_log(r)}: {_ids(r.trace_id, r.span_id)}{self._why(r)}")
            raise TelemetryAssertionError("\n".join(lines))

    def assert_all_correlated(self, where: Where = None) -> None:
        """Every selected record carries a valid (non-zero) trace id and span id, and, when spans are
        known, points at one of them."""
        selected = self._select(where)
        if not selected:
            raise TelemetryAssertionError("no log record selected: nothing to check for correlation")
        known = {(s.trace_id, s.span_id) for s in self._spans}
        bad = [r for r in selected if not r.is_correlated or (known and (r.trace_id, r.span_id) not in known)]
        if bad:
            lines = [f"{len(bad)} of {len(selected)} log record(s) not correlated with a recorded span:"]
            lines += _cap([f"  {describe_log(r)}: {_ids(r.trace_id, r.span_id)}{self._why(r)}" for r in bad])
            raise TelemetryAssertionError("\n".join(lines))

    def _why(self, r: LogRecord) -> str:
        if not r.is_correlated:
            return " (no trace context: emitted outside any span?)"
        owner = next((s for s in self._spans if (s.trace_id, s.span_id) == (r.trace_id, r.span_id)), None)
        if owner is not None:
            return f" (span {owner.name!r})"
        return " (no recorded span has these ids)" if self._spans else ""

    def _select(self, where: Where) -> tuple[LogRecord, ...]:
        if where is None:
            return self._records
        if callable(where):
            return tuple(r for r in self._records if where(r))
        return self.where(**where).records


def _criteria(
    body: Any,
    severity: str | int | None,
    min_severity: str | int | None,
    attributes: Mapping[str, Any] | None,
    exact: bool,
) -> dict[str, Any]:
    return {
        "body": body,
        "severity": severity_range(severity) if severity is not None else None,
        "severity_label": severity,
        "min": severity_range(min_severity)[0] if min_severity is not None else None,
        "min_label": min_severity,
        "attributes": attributes,
        "exact": exact,
    }


def _problems(r: LogRecord, c: Mapping[str, Any]) -> list[str]:
    out = []
    if c["body"] is not None and not values_equal(r.body, c["body"]):
        out.append(f"body: expected {describe_value(c['body'])}, got {describe_value(r.body)}")
    number = _record_number(r)
    if c["severity"] is not None:
        lo, hi = c["severity"]
        if number is None or not lo <= number <= hi:
            out.append(f"severity: expected {c['severity_label']}, got {_severity_name(r)}")
    if c["min"] is not None and (number is None or number < c["min"]):
        out.append(f"severity: expected at least {c['min_label']}, got {_severity_name(r)}")
    if c["attributes"] is not None:
        mism = match_attributes(r.attributes, c["attributes"], exact=c["exact"])
        out += describe_mismatches(mism, actual=r.attributes).splitlines()
    return out


def _describe_criteria(crit: Mapping[str, Any]) -> str:
    parts = []
    if crit.get("body") is not None:
        parts.append(f"body={crit['body']!r}")
    if crit.get("severity") is not None:
        parts.append(f"severity={crit['severity']!r}")
    if crit.get("min_severity") is not None:
        parts.append(f"severity at least {crit['min_severity']!r}")
    if crit.get("attributes") is not None:
        parts.append("attributes {" + ", ".join(f"{k}={v!r}" for k, v in crit["attributes"].items()) + "}")
    return " ".join(parts) or "any content"


def _body_similarity(r: LogRecord, body: Any) -> float:
    if isinstance(body, str) and isinstance(r.body, str):
        return difflib.SequenceMatcher(None, body, r.body).ratio()
    return 0.0
