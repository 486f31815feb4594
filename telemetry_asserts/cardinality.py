"""Cardinality: distinct attribute values, series per metric, and id-like metric attribute values.

Values are counted as OpenTelemetry distinguishes them: ``True``, ``1`` and ``1.0`` are three
distinct values (Python's sets would merge them). Metric attributes should be bounded enumerations;
a value that looks like an id, UUID, path, e-mail address, URL or timestamp makes every request a
new time series (the course's "bad attributes" list).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .errors import TelemetryAssertionError
from .model import Attributes, MetricPoint

__all__ = [
    "IdLikeAttribute",
    "assert_max_cardinality",
    "assert_max_series",
    "attribute_cardinality",
    "classify_key",
    "classify_value",
    "distinct_values",
    "find_id_like",
    "series_count",
]


class HasAttributes(Protocol):
    @property
    def attributes(self) -> Mapping[str, Any]: ...


def _items(attrs: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    """Fast item iteration (the model's Attributes copies to a dict faster than ItemsView walks)."""
    return attrs.to_dict().items() if isinstance(attrs, Attributes) else attrs.items()


def _typed(value: Any) -> Any:
    """A hashable identity that keeps OTel's types apart (True vs 1 vs 1.0)."""
    if isinstance(value, (list, tuple)):
        return ("array", tuple(_typed(v) for v in value))
    return (type(value).__name__, value)


def distinct_values(items: Iterable[HasAttributes], key: str | None = None) -> dict[str, list[Any]]:
    """Distinct values per attribute key (first-seen order) across spans, points or log records;
    ``key`` limits the answer to one key."""
    seen: dict[str, dict[Any, Any]] = {}
    for item in items:
        attrs = item.attributes
        keys = (key,) if key is not None else attrs.keys()
        for k in keys:
            if k in attrs:
                v = attrs[k]
                seen.setdefault(k, {}).setdefault(_typed(v), v)
    return {k: list(vs.values()) for k, vs in seen.items()}


def attribute_cardinality(items: Iterable[HasAttributes]) -> dict[str, int]:
    """Number of distinct values per attribute key."""
    counts: dict[str, set[Any]] = {}
    for item in items:
        for k, v in _items(item.attributes):
            counts.setdefault(k, set()).add(_typed(v))
    return {k: len(v) for k, v in counts.items()}


def series_count(points: Iterable[MetricPoint]) -> dict[str, int]:
    """Number of distinct attribute sets (time series) per metric name."""
    series: dict[str, set[Any]] = {}
    for p in points:
        series.setdefault(p.name, set()).add(frozenset([(k, _typed(v)) for k, v in _items(p.attributes)]))
    return {name: len(s) for name, s in series.items()}


def _sample(values: Sequence[Any], n: int = 3) -> str:
    shown = ", ".join(repr(v) for v in values[:n])
    return shown + (", ..." if len(values) > n else "")


def assert_max_cardinality(
    items: Iterable[HasAttributes], max_values: int, keys: Iterable[str] | None = None, *, what: str = "items"
) -> None:
    """Each attribute key (or each of ``keys``) has at most ``max_values`` distinct values."""
    values = distinct_values(items)
    wanted = list(keys) if keys is not None else list(values)
    over = [(k, values.get(k, [])) for k in wanted if len(values.get(k, [])) > max_values]
    if over:
        lines = [f"attribute cardinality above {max_values} across {what}:"]
        lines += [f"  {k!r}: {len(vs)} distinct values ({_sample(vs)})" for k, vs in over]
        raise TelemetryAssertionError("\n".join(lines))


def assert_max_series(points: Iterable[MetricPoint], max_series: int, name: str | None = None) -> None:
    """Each metric (or metric ``name``) has at most ``max_series`` attribute sets."""
    counts = series_count(points)
    if name is not None and name not in counts:
        raise TelemetryAssertionError(f"no metric {name!r} was recorded; recorded: {', '.join(counts) or 'none'}")
    over = {n: c for n, c in counts.items() if c > max_series and (name is None or n == name)}
    if over:
        lines = [f"metrics with more than {max_series} series:"]
        lines += [f"  {n!r}: {c} series" for n, c in over.items()]
        raise TelemetryAssertionError("\n".join(lines))


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX_ID = re.compile(r"(?:0x)?[0-9a-fA-F]{16,}")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?")
_WIN_PATH = re.compile(r"[A-Za-z]:[\\/]\S*")
_POSIX_PATH = re.compile(r"(?:~|\.{1,2})?/[^\s/]+(?:/[^\s/]*)*|[^\s/:]+(?:/[^\s/]+)+\.[A-Za-z0-9]{1,6}")
_LONG_DIGITS = re.compile(r"\d{10,}")
_OPAQUE_ID = re.compile(r"(?=(?:[A-Za-z]*\d){2})(?=(?:\d*[A-Za-z]){2})[A-Za-z0-9]{20,}")


def classify_value(value: Any) -> str | None:
    """What kind of unbounded identifier ``value`` looks like, or None.

    One of ``"uuid"``, ``"hex id"``, ``"e-mail address"``, ``"url"``, ``"timestamp"``, ``"path"``,
    ``"numeric id"`` (a string or int of 10+ digits: ids, epoch times) or ``"opaque id"`` (20+
    letters and digits, mixed, no separators: base62/base64-ish tokens). Short enumerations
    (``"n4"``, ``"T1w"``, ``200``) are None.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return "numeric id" if abs(value) >= 10**9 else None
    if not isinstance(value, str):
        return None
    v = value.strip()
    if _UUID.fullmatch(v):
        return "uuid"
    if _HEX_ID.fullmatch(v) and any(c.isdigit() for c in v):
        return "hex id"
    if _EMAIL.fullmatch(v):
        return "e-mail address"
    if _URL.fullmatch(v):
        return "url"
    if _TIMESTAMP.fullmatch(v):
        return "timestamp"
    if _WIN_PATH.fullmatch(v) or _POSIX_PATH.fullmatch(v):
        return "path"
    if _LONG_DIGITS.fullmatch(v):
        return "numeric id"
    if _OPAQUE_ID.fullmatch(v):
        return "opaque id"
    return None


_ID_KEY_WORDS = {
    "id": "id",
    "uuid": "uuid",
    "guid": "uuid",
    "path": "path",
    "filepath": "path",
    "filename": "file name",
    "email": "e-mail address",
    "url": "url",
    "uri": "url",
    "timestamp": "timestamp",
}


def classify_key(key: str) -> str | None:
    """What kind of identifier an attribute NAME announces (``request_id``, ``user.id``,
    ``file.path``, ``userEmail``), judged by its last word; None for bounded-sounding names."""
    words = [w for w in re.split(r"[^a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key).lower()) if w]
    if not words:
        return None
    if words[-1] in _ID_KEY_WORDS:
        return _ID_KEY_WORDS[words[-1]]
    if len(words) >= 2 and words[-2:] == ["file", "name"]:
        return "file name"
    return None


@dataclass(frozen=True)
class IdLikeAttribute:
    """A metric attribute whose values look like identifiers (``by_name``: its key announces one)."""

    metric: str
    key: str
    kind: str
    examples: tuple[Any, ...]
    distinct: int
    by_name: bool = False


def find_id_like(points: Iterable[MetricPoint], *, min_fraction: float = 0.5) -> list[IdLikeAttribute]:
    """Metric attributes where at least ``min_fraction`` of the distinct values look like ids (the
    most common kind is reported) or whose name announces an identifier (:func:`classify_key`), in
    first-seen order of (metric, key)."""
    return _id_like(_metric_values(points), min_fraction)


def _metric_values(points: Iterable[MetricPoint]) -> dict[tuple[str, str], dict[Any, Any]]:
    """Distinct values (typed identity -> value) per (metric name, attribute key)."""
    values: dict[tuple[str, str], dict[Any, Any]] = {}
    for p in points:
        name = p.name
        for k, v in _items(p.attributes):
            values.setdefault((name, k), {}).setdefault(_typed(v), v)
    return values


def _id_like(values: Mapping[tuple[str, str], Mapping[Any, Any]], min_fraction: float) -> list[IdLikeAttribute]:
    found = []
    for (metric, key), distinct in values.items():
        kinds: dict[str, list[Any]] = {}
        for v in distinct.values():
            kind = classify_value(v)
            if kind is not None:
                kinds.setdefault(kind, []).append(v)
        flagged = sum(len(vs) for vs in kinds.values())
        if flagged and flagged >= min_fraction * len(distinct):
            kind, examples = max(kinds.items(), key=lambda kv: len(kv[1]))
            found.append(IdLikeAttribute(metric, key, kind, tuple(examples[:3]), len(distinct)))
        else:
            by_key = classify_key(key)
            if by_key is not None:
                found.append(
                    IdLikeAttribute(metric, key, by_key, tuple(list(distinct.values())[:3]), len(distinct), True)
                )
    return found
