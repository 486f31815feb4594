"""Value matchers and attribute comparison with OpenTelemetry's types.

OpenTelemetry keeps ``bool``, ``int`` (int_value), ``float`` (double_value), ``str`` and homogeneous
arrays distinct, while Python says ``True == 1 == 1.0``. :func:`values_equal` compares the OTel way:

* ``bool`` is never equal to a number (``True != 1``);
* ``int`` and ``float`` are distinct types by default (``1 != 1.0``), because an attribute recorded
  as a double is a different attribute value on the wire; pass ``strict_numbers=False`` to compare
  numbers by value (metric values do that: OTLP carries histogram sums as doubles whatever was
  recorded);
* lists equal tuples element-wise (the SDK turns every list attribute into a tuple);
* two NaNs are equal (a recorded NaN should match an expected NaN);
* an expected :class:`Matcher` (or any foreign object with its own ``__eq__``, e.g. from the
  dirty-equals library) decides by itself.

Matchers are values: they compose with ``==`` (``{"k": 3} == {"k": InRange(1, 5)}``), with ``&``,
``|`` and ``~``, and print themselves as they were written.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import did_you_mean

__all__ = [
    "Absent",
    "AllOf",
    "AnyOf",
    "AnyValue",
    "AttributeMismatch",
    "Contains",
    "InRange",
    "IsOneOf",
    "IsType",
    "Matcher",
    "Not",
    "Predicate",
    "Regex",
    "describe_mismatches",
    "describe_value",
    "match_attributes",
    "values_equal",
]

_PLAIN = (str, bool, int, float, bytes, list, tuple, type(None))


class Matcher:
    """Base of every matcher: subclasses implement :meth:`matches` and :meth:`__repr__`."""

    __hash__ = None  # type: ignore[assignment]  # matchers compare by predicate, not identity

    def matches(self, value: Any) -> bool:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return self.matches(other)

    def __ne__(self, other: object) -> bool:
        return not self.matches(other)

    def __and__(self, other: Any) -> Matcher:
        return AllOf(self, other)

    def __or__(self, other: Any) -> Matcher:
        return AnyOf(self, other)

    def __invert__(self) -> Matcher:
        return Not(self)


def values_equal(actual: Any, expected: Any, *, strict_numbers: bool = True) -> bool:
    """True when ``actual`` (a recorded value) satisfies ``expected`` under OpenTelemetry's types."""
    if isinstance(expected, Matcher):
        return expected.matches(actual)
    if not isinstance(expected, _PLAIN):
        # dirty-equals objects, enums, numpy scalars...: let the expected object decide.
        return bool(expected == actual)
    if isinstance(expected, (list, tuple)):
        if not isinstance(actual, (list, tuple)) or len(actual) != len(expected):
            return False
        return all(values_equal(a, e, strict_numbers=strict_numbers) for a, e in zip(actual, expected, strict=True))
    want, got = _kind(expected), _kind(actual)
    if want in ("int", "float") and got in ("int", "float") and not strict_numbers:
        return actual == expected
    if want != got:
        return False
    if want == "float" and math.isnan(actual):  # type: ignore[arg-type]  # _kind says float
        return math.isnan(expected)  # type: ignore[arg-type]
    return bool(actual == expected)


def _kind(value: Any) -> str:
    """OpenTelemetry's scalar kind of a value (subclasses such as str or int enums count as their base)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return type(value).__name__


def describe_value(value: Any) -> str:
    """``repr`` plus the OTel type for plain values (``1 (int)``, ``'1' (str)``); matchers as written."""
    if isinstance(value, Matcher) or not isinstance(value, _PLAIN):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return f"{list(value)!r} (array)"
    return f"{value!r} ({type(value).__name__})"


def _type_name(types: tuple[type, ...]) -> str:
    names = [t.__name__ for t in types]
    return names[0] if len(names) == 1 else "(" + ", ".join(names) + ")"


class IsType(Matcher):
    """The value has one of ``types``. ``bool`` is not an ``int``; ``list`` and ``tuple`` both mean
    an array attribute (the SDK stores arrays as tuples)."""

    def __init__(self, *types: type) -> None:
        if not types or not all(isinstance(t, type) for t in types):
            raise TypeError("IsType needs one or more types, e.g. IsType(int) or IsType(int, float)")
        self.types = types

    def matches(self, value: Any) -> bool:
        for t in self.types:
            if t in (list, tuple):
                if isinstance(value, (list, tuple)):
                    return True
            elif t is int or t is float:
                if type(value) is t or (isinstance(value, t) and not isinstance(value, bool)):
                    return True
            elif isinstance(value, t):
                return True
        return False

    def __repr__(self) -> str:
        return f"IsType({', '.join(t.__name__ for t in self.types)})"


class Regex(Matcher):
    """A ``str`` value that the regular expression matches as a whole (``re.fullmatch``)."""

    def __init__(self, pattern: str | re.Pattern[str], flags: int = 0) -> None:
        self.pattern = re.compile(pattern, flags) if isinstance(pattern, str) else pattern

    def matches(self, value: Any) -> bool:
        return isinstance(value, str) and self.pattern.fullmatch(value) is not None

    def __repr__(self) -> str:
        flags = self.pattern.flags & ~re.UNICODE
        return f"Regex({self.pattern.pattern!r}{', flags=' + str(flags) if flags else ''})"


class InRange(Matcher):
    """A number (not a bool) between ``lo`` and ``hi``; either bound may be ``None`` (open);
    bounds are inclusive unless ``inclusive=False``."""

    def __init__(self, lo: float | None = None, hi: float | None = None, *, inclusive: bool = True) -> None:
        if lo is None and hi is None:
            raise ValueError("InRange needs at least one bound")
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"InRange: lo {lo!r} is greater than hi {hi!r}")
        self.lo, self.hi, self.inclusive = lo, hi, inclusive

    def matches(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            return False
        if self.lo is not None and (value < self.lo if self.inclusive else value <= self.lo):
            return False
        if self.hi is not None and (value > self.hi if self.inclusive else value >= self.hi):
            return False
        return True

    def __repr__(self) -> str:
        extra = ", inclusive=False" if not self.inclusive else ""
        if self.hi is None:
            return f"InRange(lo={self.lo!r}{extra})"
        if self.lo is None:
            return f"InRange(hi={self.hi!r}{extra})"
        return f"InRange({self.lo!r}, {self.hi!r}{extra})"


class Predicate(Matcher):
    """``fn(value)`` is truthy. A ``TypeError``/``ValueError`` raised by ``fn`` counts as no match
    (a predicate meant for numbers meeting a string); other exceptions propagate."""

    def __init__(self, fn: Callable[[Any], Any], description: str | None = None) -> None:
        self.fn = fn
        self.description = description or getattr(fn, "__name__", repr(fn))

    def matches(self, value: Any) -> bool:
        try:
            return bool(self.fn(value))
        except (TypeError, ValueError):
            return False

    def __repr__(self) -> str:
        return f"Predicate({self.description})"


class AnyValue(Matcher):
    """Any value, but the key must be present."""

    def matches(self, value: Any) -> bool:
        return True

    def __repr__(self) -> str:
        return "AnyValue()"


class IsOneOf(Matcher):
    """Equal (under :func:`values_equal`) to one of ``values``."""

    def __init__(self, *values: Any) -> None:
        if not values:
            raise ValueError("IsOneOf needs at least one value")
        self.values = values

    def matches(self, value: Any) -> bool:
        return any(values_equal(value, v) for v in self.values)

    def __repr__(self) -> str:
        return f"IsOneOf({', '.join(map(repr, self.values))})"


class Contains(Matcher):
    """An array containing every one of ``items`` (each compared with :func:`values_equal`), or a
    string containing every given substring."""

    def __init__(self, *items: Any) -> None:
        if not items:
            raise ValueError("Contains needs at least one item")
        self.items = items

    def matches(self, value: Any) -> bool:
        if isinstance(value, str):
            return all(isinstance(i, str) and i in value for i in self.items)
        if not isinstance(value, (list, tuple)):
            return False
        return all(any(values_equal(v, item) for v in value) for item in self.items)

    def __repr__(self) -> str:
        return f"Contains({', '.join(map(repr, self.items))})"


class Absent(Matcher):
    """Used as an expected attribute value: the key must NOT be present. Matches no actual value."""

    def matches(self, value: Any) -> bool:
        return False

    def __repr__(self) -> str:
        return "Absent()"


class AllOf(Matcher):
    """Every one of the matchers/values matches (``m1 & m2``)."""

    def __init__(self, *parts: Any) -> None:
        self.parts = parts

    def matches(self, value: Any) -> bool:
        return all(values_equal(value, p) for p in self.parts)

    def __repr__(self) -> str:
        return " & ".join(_wrap(p) for p in self.parts)


class AnyOf(Matcher):
    """At least one of the matchers/values matches (``m1 | m2``)."""

    def __init__(self, *parts: Any) -> None:
        self.parts = parts

    def matches(self, value: Any) -> bool:
        return any(values_equal(value, p) for p in self.parts)

    def __repr__(self) -> str:
        return " | ".join(_wrap(p) for p in self.parts)


class Not(Matcher):
    """The matcher/value does not match (``~m``)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def matches(self, value: Any) -> bool:
        return not values_equal(value, self.inner)

    def __repr__(self) -> str:
        return f"~{_wrap(self.inner)}"


def _wrap(part: Any) -> str:
    text = repr(part)
    return f"({text})" if isinstance(part, (AllOf, AnyOf)) else text


@dataclass(frozen=True)
class AttributeMismatch:
    """One difference between expected and actual attributes.

    ``kind`` is ``"missing"`` (expected key not recorded; ``actual`` is None), ``"unexpected"``
    (recorded key that must be absent or, with ``exact``, was not expected; ``expected`` is the
    :class:`Absent` matcher or None) or ``"different"`` (value does not satisfy the expectation).
    """

    key: str
    kind: str
    expected: Any
    actual: Any


def match_attributes(
    actual: Mapping[str, Any], expected: Mapping[str, Any], *, exact: bool = False
) -> list[AttributeMismatch]:
    """Compare attribute mappings; empty list means they match.

    Partial by default (extra actual keys allowed); ``exact=True`` also reports every recorded key
    that ``expected`` does not name. An expected value of :class:`Absent` requires the key to be
    missing; any other expected value requires the key to be present.
    """
    out: list[AttributeMismatch] = []
    for key, want in expected.items():
        present = key in actual
        if isinstance(want, Absent):
            if present:
                out.append(AttributeMismatch(key, "unexpected", want, actual[key]))
        elif not present:
            out.append(AttributeMismatch(key, "missing", want, None))
        elif not values_equal(actual[key], want):
            out.append(AttributeMismatch(key, "different", want, actual[key]))
    if exact:
        out.extend(AttributeMismatch(k, "unexpected", None, actual[k]) for k in actual if k not in expected)
    return out


def describe_mismatches(mismatches: Sequence[AttributeMismatch], *, actual: Mapping[str, Any]) -> str:
    """One readable line per mismatch; a missing key suggests the nearest recorded key."""
    lines = []
    for m in mismatches:
        if m.kind == "missing":
            hint = did_you_mean(m.key, actual.keys())
            lines.append(f"missing attribute {m.key!r}{hint}, expected {describe_value(m.expected)}")
        elif m.kind == "unexpected":
            why = "must be absent" if isinstance(m.expected, Absent) else "not expected"
            lines.append(f"unexpected attribute {m.key!r} = {describe_value(m.actual)} ({why})")
        else:
            lines.append(f"attribute {m.key!r}: expected {describe_value(m.expected)}, got {describe_value(m.actual)}")
    return "\n".join(lines)
