"""Metric assertions over model metric points: by name, kind, unit, per attribute set.

Several points of one series (same name and attributes) are folded into one: cumulative (and
unspecified) points keep the latest, delta points are added up, gauges keep the latest. Numbers are
compared by value here (``3 == 3.0``; OTLP carries histogram sums as doubles whatever was recorded),
but ``bool`` is still not a number and attribute values keep OpenTelemetry's types.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .errors import TelemetryAssertionError, did_you_mean
from .matchers import describe_mismatches, describe_value, match_attributes, values_equal
from .cardinality import _items, _typed
from .model import MetricKind, MetricPoint, Temporality

__all__ = ["HistogramData", "MetricView", "format_attributes"]

_SUMS = (MetricKind.COUNTER, MetricKind.UP_DOWN_COUNTER)
_HISTOGRAMS = (MetricKind.HISTOGRAM, MetricKind.EXPONENTIAL_HISTOGRAM)
_POINT_FIELDS = ("value", "count", "sum", "min", "max", "bucket_counts", "explicit_bounds")

MAX_LISTED = 40


def _cap(lines: list[str], limit: int = MAX_LISTED) -> list[str]:
    """At most ``limit`` listing lines, then how many were left out."""
    return lines if len(lines) <= limit else [*lines[:limit], f"  ... and {len(lines) - limit} more"]


@dataclass(frozen=True)
class HistogramData:
    """Histogram aggregates of one series, or merged over several (counts and sums added)."""

    count: int
    sum: float | None
    min: float | None
    max: float | None
    bucket_counts: tuple[int, ...]
    explicit_bounds: tuple[float, ...]


def format_attributes(attrs: Mapping[str, Any]) -> str:
    """``{key='v', n=1}``: the key of a series in messages."""
    return "{" + ", ".join(f"{k}={v!r}" for k, v in attrs.items()) + "}"


def _describe_point(p: MetricPoint) -> str:
    if p.kind in _HISTOGRAMS:
        parts = [f"count={p.count!r}", f"sum={p.sum!r}", f"min={p.min!r}", f"max={p.max!r}"]
        if p.bucket_counts:
            parts.append(f"bucket_counts={list(p.bucket_counts)!r}")
        return " ".join(parts)
    return f"value={p.value!r}"


def _fold(points: Sequence[MetricPoint]) -> MetricPoint:
    """One point for one series (see the module docstring)."""
    if len(points) == 1:
        return points[0]
    ordered = sorted(points, key=lambda p: p.time_ns)  # stable: ties keep arrival order
    last = ordered[-1]
    if last.kind == MetricKind.GAUGE or any(p.temporality != Temporality.DELTA for p in ordered):
        return last
    if last.kind in _SUMS:
        return replace(last, value=sum(p.value or 0 for p in ordered), start_time_ns=ordered[0].start_time_ns)
    merged = _merge_histograms(ordered)
    return replace(
        last,
        count=merged.count,
        sum=merged.sum,
        min=merged.min,
        max=merged.max,
        bucket_counts=merged.bucket_counts,
        start_time_ns=ordered[0].start_time_ns,
    )


def _merge_histograms(points: Sequence[MetricPoint]) -> HistogramData:
    sums = [p.sum for p in points if p.sum is not None]
    mins = [p.min for p in points if p.min is not None and p.count]
    maxs = [p.max for p in points if p.max is not None and p.count]
    bounds = points[0].explicit_bounds
    buckets: tuple[int, ...] = ()
    if all(p.explicit_bounds == bounds and p.bucket_counts for p in points):
        buckets = tuple(sum(col) for col in zip(*(p.bucket_counts for p in points), strict=True))
    elif len(points) == 1:
        buckets = points[0].bucket_counts
    return HistogramData(
        count=sum(p.count or 0 for p in points),
        sum=sum(sums) if sums else None,
        min=min(mins) if mins else None,
        max=max(maxs) if maxs else None,
        bucket_counts=buckets,
        explicit_bounds=bounds if buckets else (),
    )


class MetricView:
    """Read-only assertions over metric points (usually one test's deltas)."""

    def __init__(self, points: Sequence[MetricPoint]) -> None:
        self._points = tuple(points)
        by_name: dict[str, list[MetricPoint]] = {}
        for p in self._points:
            by_name.setdefault(p.name, []).append(p)
        self._by_name = by_name
        self._series: dict[str, tuple[MetricPoint, ...]] = {}

    # -- selection -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._points)

    def __iter__(self) -> Iterator[MetricPoint]:
        return iter(self._points)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __repr__(self) -> str:
        return f"MetricView({len(self._by_name)} metrics, {len(self._points)} points)"

    def names(self) -> list[str]:
        """Recorded metric names, first-seen order."""
        return list(self._by_name)

    def points(self, name: str | None = None) -> tuple[MetricPoint, ...]:
        """All raw points, or those of one metric (which must exist)."""
        return self._points if name is None else tuple(self._require(name))

    def series(self, name: str) -> tuple[MetricPoint, ...]:
        """One folded point per attribute set of metric ``name``, first-seen order. Attribute sets
        are told apart with OpenTelemetry's types (``{ok: True}`` and ``{ok: 1}`` are two series)."""
        if name not in self._series:
            groups: dict[Any, list[MetricPoint]] = {}
            for p in self._require(name):
                groups.setdefault(frozenset([(k, _typed(v)) for k, v in _items(p.attributes)]), []).append(p)
            self._series[name] = tuple(_fold(ps) for ps in groups.values())
        return self._series[name]

    def point(self, name: str, attributes: Mapping[str, Any] | None = None) -> MetricPoint:
        """The folded point of the one series whose attributes match ``attributes`` (partially)."""
        found = self._matching(name, attributes)
        if len(found) != 1:
            listed = "\n".join(_cap([f"  {format_attributes(p.attributes)}: {_describe_point(p)}" for p in found]))
            raise TelemetryAssertionError(
                f"{self.kind(name).value} {name!r}: {len(found)} series match {format_attributes(attributes or {})}; "
                f"give attributes that select one:\n{listed}"
            )
        return found[0]

    def kind(self, name: str) -> MetricKind:
        return self._require(name)[0].kind

    def unit(self, name: str) -> str:
        return self._require(name)[0].unit

    def description(self, name: str) -> str:
        return self._require(name)[0].description

    def _require(self, name: str) -> list[MetricPoint]:
        try:
            return self._by_name[name]
        except KeyError:
            recorded = ", ".join(self._by_name) or "none"
            raise TelemetryAssertionError(
                f"no metric {name!r} was recorded{did_you_mean(name, self._by_name)}\nrecorded metrics: {recorded}"
            ) from None

    def _matching(self, name: str, attributes: Mapping[str, Any] | None) -> list[MetricPoint]:
        series = self.series(name)
        if attributes is None:
            return list(series)
        found = [p for p in series if not match_attributes(p.attributes, attributes)]
        if not found:
            raise TelemetryAssertionError(self._no_series_message(name, attributes))
        return found

    def _no_series_message(self, name: str, attributes: Mapping[str, Any]) -> str:
        series = self.series(name)
        lines = [f"metric {name!r} has no series with attributes {format_attributes(attributes)}"]
        best = min((p.attributes for p in series), key=lambda a: len(match_attributes(a, attributes)), default=None)
        if best is not None:
            lines.append(f"closest series {format_attributes(best)}:")
            lines += [
                "  " + ln for ln in describe_mismatches(match_attributes(best, attributes), actual=best).splitlines()
            ]
        lines.append("recorded series:")
        lines += _cap([f"  {format_attributes(p.attributes)}: {_describe_point(p)}" for p in series])
        return "\n".join(lines)

    # -- values ----------------------------------------------------------------------------------
    def value(self, name: str, attributes: Mapping[str, Any] | None = None) -> int | float:
        """A counter's sum or a gauge's value.

        ``attributes`` may be partial: a sum adds up every matching series (``None`` = all series);
        a gauge must then match exactly one series (adding gauges means nothing).
        """
        kind = self.kind(name)
        if kind in _HISTOGRAMS:
            raise TelemetryAssertionError(f"metric {name!r} is a {kind.value}: use histogram() / assert_histogram()")
        if kind == MetricKind.GAUGE:
            return self.point(name, attributes).value  # type: ignore[return-value]
        return sum(p.value or 0 for p in self._matching(name, attributes))

    def histogram(self, name: str, attributes: Mapping[str, Any] | None = None) -> HistogramData:
        """Histogram aggregates of the matching series (merged when ``attributes`` is partial)."""
        kind = self.kind(name)
        if kind not in _HISTOGRAMS:
            raise TelemetryAssertionError(f"metric {name!r} is a {kind.value}, not a histogram")
        return _merge_histograms(self._matching(name, attributes))

    # -- assertions ------------------------------------------------------------------------------
    def assert_metric(
        self,
        name: str,
        kind: MetricKind | str | None = None,
        unit: str | None = None,
        description: str | Any | None = None,
    ) -> None:
        """The metric exists, with the given kind, unit and description (each optional)."""
        first = self._require(name)[0]
        problems = []
        if kind is not None and first.kind != MetricKind(kind):
            problems.append(f"kind: expected {MetricKind(kind).value}, got {first.kind.value}")
        if unit is not None and not values_equal(first.unit, unit):
            problems.append(f"unit: expected {unit!r}, got {first.unit!r}")
        if description is not None and not values_equal(first.description, description):
            problems.append(f"description: expected {description!r}, got {first.description!r}")
        if problems:
            raise TelemetryAssertionError(f"metric {name!r}:\n  " + "\n  ".join(problems))

    def assert_counter(self, name: str, value: Any, attributes: Mapping[str, Any] | None = None) -> None:
        """A sum (counter or up-down counter) equals ``value`` (a number or matcher)."""
        kind = self.kind(name)
        if kind not in _SUMS:
            raise TelemetryAssertionError(f"metric {name!r} is a {kind.value}, not a counter")
        actual = self.value(name, attributes)
        if not values_equal(actual, value, strict_numbers=False):
            where = f" for {format_attributes(attributes)}" if attributes is not None else ""
            series = "\n".join(
                _cap([f"  {format_attributes(p.attributes)}: {_describe_point(p)}" for p in self.series(name)])
            )
            raise TelemetryAssertionError(
                f"counter {name!r}{where}: expected {describe_value(value)}, got {describe_value(actual)}\n"
                f"recorded series:\n{series}"
            )

    def assert_gauge(self, name: str, value: Any, attributes: Mapping[str, Any] | None = None) -> None:
        """A gauge's single matching series has ``value``."""
        kind = self.kind(name)
        if kind != MetricKind.GAUGE:
            raise TelemetryAssertionError(f"metric {name!r} is a {kind.value}, not a gauge")
        actual = self.value(name, attributes)
        if not values_equal(actual, value, strict_numbers=False):
            raise TelemetryAssertionError(
                f"gauge {name!r}: expected {describe_value(value)}, got {describe_value(actual)}"
            )

    def assert_histogram(
        self,
        name: str,
        count: Any = None,
        sum: Any = None,  # noqa: A002 - mirrors the OTel field name
        min: Any = None,  # noqa: A002
        max: Any = None,  # noqa: A002
        bucket_counts: Any = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> HistogramData:
        """Check the given aggregates (each optional; numbers or matchers) and return them."""
        data = self.histogram(name, attributes)
        wanted = {"count": count, "sum": sum, "min": min, "max": max, "bucket_counts": bucket_counts}
        problems = [
            f"{field}: expected {describe_value(want)}, got {describe_value(getattr(data, field))}"
            for field, want in wanted.items()
            if want is not None and not values_equal(getattr(data, field), want, strict_numbers=False)
        ]
        if problems:
            where = f" for {format_attributes(attributes)}" if attributes is not None else ""
            raise TelemetryAssertionError(f"histogram {name!r}{where}:\n  " + "\n  ".join(problems))
        return data

    def assert_points(self, name: str, expected: Sequence[Mapping[str, Any]], *, exact: bool = False) -> None:
        """Every expected point (``dict(attributes=..., value=... | count=..., sum=...)``) matches its
        own recorded series; with ``exact`` attributes must match exactly and no other series may
        exist. The failure lists "missing expected" and "unexpected additional" points, keyed by
        attributes, as Go's metricdatatest does."""
        for e in expected:
            unknown = set(e) - {"attributes", *_POINT_FIELDS}
            if unknown:
                raise TypeError(
                    f"unknown expected point field(s) {sorted(unknown)}; use attributes, {', '.join(_POINT_FIELDS)}"
                )
        series = list(self.series(name))
        fits = [[i for i, p in enumerate(series) if not self._point_problems(p, e, exact)] for e in expected]
        assignment = _bipartite(fits, len(series))
        missing = [j for j in range(len(expected)) if assignment[j] is None]
        used = {i for i in assignment if i is not None}
        extra = [p for i, p in enumerate(series) if i not in used] if exact else []
        if not missing and not extra:
            return
        lines = [f"metric {name!r} ({self.kind(name).value}) points differ"]
        if missing:
            lines.append("missing expected points:")
            for j in missing:
                e = expected[j]
                lines.append(f"  {format_attributes(e.get('attributes', {}))}: {_describe_expected(e)}")
                near = self._closest(series, e, exact)
                if near is not None:
                    lines.append(f"    closest recorded {format_attributes(near.attributes)}: {_describe_point(near)}")
                    lines += ["      " + ln for ln in self._point_problems(near, e, exact)]
        if extra:
            lines.append("unexpected additional points:")
            lines += _cap([f"  {format_attributes(p.attributes)}: {_describe_point(p)}" for p in extra])
        lines.append("recorded points:")
        lines += _cap([f"  {format_attributes(p.attributes)}: {_describe_point(p)}" for p in series]) or ["  none"]
        raise TelemetryAssertionError("\n".join(lines))

    @staticmethod
    def _point_problems(point: MetricPoint, expected: Mapping[str, Any], exact: bool) -> list[str]:
        attrs = expected.get("attributes", {})
        problems = describe_mismatches(match_attributes(point.attributes, attrs, exact=exact), actual=point.attributes)
        out = problems.splitlines()
        for field in _POINT_FIELDS:
            if field in expected:
                got, want = getattr(point, field), expected[field]
                if not values_equal(got, want, strict_numbers=False):
                    out.append(f"{field}: expected {describe_value(want)}, got {describe_value(got)}")
        return out

    def _closest(self, series: list[MetricPoint], expected: Mapping[str, Any], exact: bool) -> MetricPoint | None:
        if not series:
            return None
        attrs = expected.get("attributes", {})

        def score(p: MetricPoint) -> tuple[int, int]:
            return (
                len(match_attributes(p.attributes, attrs, exact=exact)),
                len(self._point_problems(p, expected, exact)),
            )

        return min(series, key=score)


def _describe_expected(e: Mapping[str, Any]) -> str:
    return " ".join(f"{f}={e[f]!r}" for f in _POINT_FIELDS if f in e) or "(any value)"


def _bipartite(fits: list[list[int]], n_right: int) -> list[int | None]:
    """Maximum matching (augmenting paths): expected index -> series index or None."""
    owner: list[int | None] = [None] * n_right

    def augment(j: int, seen: set[int]) -> bool:
        for i in fits[j]:
            if i in seen:
                continue
            seen.add(i)
            if owner[i] is None or augment(owner[i], seen):  # type: ignore[arg-type]
                owner[i] = j
                return True
        return False

    for j in range(len(fits)):
        augment(j, set())
    result: list[int | None] = [None] * len(fits)
    for i, claimed_by in enumerate(owner):
        if claimed_by is not None:
            result[claimed_by] = i
    return result
