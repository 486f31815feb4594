"""One immutable data model for telemetry from every source.

In-memory SDK capture, OTLP received over HTTP/gRPC and OTLP JSON files all decode into these frozen
dataclasses; every judge (tree matcher, attribute matchers, metric diff, lint, contracts) reads only
this model. Ids are ints (as the SDK keeps them); ``*_hex`` properties give the W3C spelling.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Union

Scalar = Union[str, bool, int, float]
AttributeValue = Union[Scalar, tuple[str, ...], tuple[bool, ...], tuple[int, ...], tuple[float, ...]]

INVALID_TRACE_ID = 0
INVALID_SPAN_ID = 0


def _freeze_value(value: Any) -> AttributeValue:
    """Normalise an attribute value the way OpenTelemetry stores it (sequences become tuples)."""
    if isinstance(value, (list, tuple)):
        return tuple(_freeze_value(v) for v in value)  # type: ignore[return-value]
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    return value


class Attributes(Mapping[str, AttributeValue]):
    """An immutable, hashable, insertion-ordered attribute mapping."""

    __slots__ = ("_data", "_hash")

    def __init__(self, data: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None) -> None:
        items = data.items() if isinstance(data, Mapping) else (data or ())
        self._data: dict[str, AttributeValue] = {str(k): _freeze_value(v) for k, v in items}
        self._hash: int | None = None

    def __getitem__(self, key: str) -> AttributeValue:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset((k, _hashable(v)) for k, v in self._data.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        """Same keys, values equal by OpenTelemetry's types: ``True != 1``, ``1 != 1.0``, list == tuple.

        Expected values may be matchers (``IsType(int)``, ``Regex(...)``): see :mod:`.matchers`.
        """
        if not isinstance(other, Mapping):
            return NotImplemented
        if len(self._data) != len(other) or any(k not in other for k in self._data):
            return False
        from .matchers import values_equal

        return all(values_equal(v, other[k]) for k, v in self._data.items())

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __repr__(self) -> str:
        return f"Attributes({self._data!r})"

    def to_dict(self) -> dict[str, AttributeValue]:
        return dict(self._data)

    def key(self) -> tuple[tuple[str, AttributeValue], ...]:
        """A sorted, hashable identity of the attribute set (for keying metric points)."""
        return tuple(sorted(self._data.items(), key=lambda kv: kv[0]))


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def attributes(data: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None) -> Attributes:
    """Build :class:`Attributes` from any mapping (returns the same object if already frozen)."""
    return data if isinstance(data, Attributes) else Attributes(data)


EMPTY = Attributes()


@dataclass(frozen=True)
class Resource:
    attributes: Attributes = EMPTY
    schema_url: str = ""

    @property
    def service_name(self) -> str | None:
        value = self.attributes.get("service.name")
        return str(value) if value is not None else None


@dataclass(frozen=True)
class Scope:
    """The instrumentation scope (tracer/meter/logger name and version)."""

    name: str = ""
    version: str = ""
    schema_url: str = ""
    attributes: Attributes = EMPTY


class StatusCode(str, enum.Enum):
    UNSET = "UNSET"
    OK = "OK"
    ERROR = "ERROR"


class SpanKind(str, enum.Enum):
    INTERNAL = "INTERNAL"
    SERVER = "SERVER"
    CLIENT = "CLIENT"
    PRODUCER = "PRODUCER"
    CONSUMER = "CONSUMER"


@dataclass(frozen=True)
class Event:
    name: str
    timestamp_ns: int = 0
    attributes: Attributes = EMPTY


@dataclass(frozen=True)
class Link:
    trace_id: int
    span_id: int
    attributes: Attributes = EMPTY

    @property
    def trace_id_hex(self) -> str:
        return format(self.trace_id, "032x")

    @property
    def span_id_hex(self) -> str:
        return format(self.span_id, "016x")


@dataclass(frozen=True)
class Span:
    name: str
    trace_id: int
    span_id: int
    parent_span_id: int | None = None
    kind: SpanKind = SpanKind.INTERNAL
    start_time_ns: int = 0
    end_time_ns: int = 0
    status_code: StatusCode = StatusCode.UNSET
    status_description: str = ""
    attributes: Attributes = EMPTY
    events: tuple[Event, ...] = ()
    links: tuple[Link, ...] = ()
    resource: Resource = field(default_factory=Resource)
    scope: Scope = field(default_factory=Scope)

    @property
    def duration_ns(self) -> int:
        return max(0, self.end_time_ns - self.start_time_ns)

    @property
    def duration_s(self) -> float:
        return self.duration_ns / 1e9

    @property
    def trace_id_hex(self) -> str:
        return format(self.trace_id, "032x")

    @property
    def span_id_hex(self) -> str:
        return format(self.span_id, "016x")

    @property
    def is_root(self) -> bool:
        return not self.parent_span_id

    def exceptions(self) -> tuple[Event, ...]:
        """The ``exception`` events recorded on this span (``record_exception``)."""
        return tuple(e for e in self.events if e.name == "exception")


class MetricKind(str, enum.Enum):
    COUNTER = "counter"  # monotonic sum
    UP_DOWN_COUNTER = "updowncounter"  # non-monotonic sum
    GAUGE = "gauge"
    HISTOGRAM = "histogram"
    EXPONENTIAL_HISTOGRAM = "exponential_histogram"


class Temporality(str, enum.Enum):
    CUMULATIVE = "cumulative"
    DELTA = "delta"
    UNSPECIFIED = "unspecified"


@dataclass(frozen=True)
class MetricPoint:
    """One data point of one metric stream, carrying its metric's identity.

    ``value`` is set for sums and gauges; ``count``/``sum``/``min``/``max``/``bucket_counts``/
    ``explicit_bounds`` for histograms.
    """

    name: str
    kind: MetricKind
    attributes: Attributes = EMPTY
    unit: str = ""
    description: str = ""
    value: int | float | None = None
    count: int | None = None
    sum: float | None = None
    min: float | None = None
    max: float | None = None
    bucket_counts: tuple[int, ...] = ()
    explicit_bounds: tuple[float, ...] = ()
    start_time_ns: int = 0
    time_ns: int = 0
    temporality: Temporality = Temporality.UNSPECIFIED
    is_monotonic: bool = False
    resource: Resource = field(default_factory=Resource)
    scope: Scope = field(default_factory=Scope)

    @property
    def series_key(self) -> tuple[str, tuple[tuple[str, AttributeValue], ...]]:
        """Identity of the time series: metric name plus sorted attributes."""
        return (self.name, self.attributes.key())


@dataclass(frozen=True)
class LogRecord:
    body: Any
    severity_text: str = ""
    severity_number: int = 0
    timestamp_ns: int = 0
    observed_timestamp_ns: int = 0
    trace_id: int = INVALID_TRACE_ID
    span_id: int = INVALID_SPAN_ID
    trace_flags: int = 0
    attributes: Attributes = EMPTY
    event_name: str = ""
    resource: Resource = field(default_factory=Resource)
    scope: Scope = field(default_factory=Scope)

    @property
    def is_correlated(self) -> bool:
        """True only with a valid (non-zero) trace id and span id."""
        return self.trace_id != INVALID_TRACE_ID and self.span_id != INVALID_SPAN_ID

    @property
    def trace_id_hex(self) -> str:
        return format(self.trace_id, "032x")

    @property
    def span_id_hex(self) -> str:
        return format(self.span_id, "016x")


@dataclass(frozen=True)
class Telemetry:
    """Everything captured from one source: spans, metric points and log records."""

    spans: tuple[Span, ...] = ()
    metrics: tuple[MetricPoint, ...] = ()
    logs: tuple[LogRecord, ...] = ()

    def __add__(self, other: Telemetry) -> Telemetry:
        return Telemetry(self.spans + other.spans, self.metrics + other.metrics, self.logs + other.logs)

    def with_(self, **changes: Any) -> Telemetry:
        return replace(self, **changes)

    @property
    def trace_ids(self) -> tuple[int, ...]:
        """Distinct trace ids in first-seen order."""
        return tuple(dict.fromkeys(s.trace_id for s in self.spans))

    def trace(self, trace_id: int) -> Telemetry:
        """Only the spans and logs of one trace (metrics are kept: they are not per trace)."""
        return Telemetry(
            tuple(s for s in self.spans if s.trace_id == trace_id),
            self.metrics,
            tuple(r for r in self.logs if r.trace_id == trace_id),
        )


def parse_trace_id(value: str | int) -> int:
    """Accept an int or a 32-hex-digit string."""
    return value if isinstance(value, int) else int(value, 16)


def parse_span_id(value: str | int) -> int:
    """Accept an int or a 16-hex-digit string."""
    return value if isinstance(value, int) else int(value, 16)
