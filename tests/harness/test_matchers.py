"""Value matchers and attribute comparison under OpenTelemetry's types."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry_asserts.matchers import (
    Absent,
    AnyValue,
    AttributeMismatch,
    Contains,
    InRange,
    IsOneOf,
    IsType,
    Predicate,
    Regex,
    describe_mismatches,
    match_attributes,
    values_equal,
)
from telemetry_asserts.model import Attributes


class TestValuesEqual:
    def test_bool_is_not_int(self) -> None:
        assert not values_equal(True, 1)
        assert not values_equal(1, True)
        assert not values_equal(False, 0)
        assert values_equal(True, True)

    def test_int_and_float_are_distinct_unless_loose(self) -> None:
        assert not values_equal(1, 1.0)
        assert not values_equal(1.0, 1)
        assert values_equal(1, 1.0, strict_numbers=False)
        assert not values_equal(True, 1.0, strict_numbers=False)

    def test_lists_equal_tuples_elementwise(self) -> None:
        assert values_equal((1, 2), [1, 2])
        assert values_equal([1, 2], (1, 2))
        assert not values_equal((1, 2), [1, 2, 3])
        assert not values_equal((True,), [1])
        assert not values_equal("ab", ["a", "b"])

    def test_matchers_inside_sequences(self) -> None:
        assert values_equal(("a", 5), ["a", InRange(1, 9)])
        assert not values_equal(("a", 50), ["a", InRange(1, 9)])

    def test_nan_equals_nan(self) -> None:
        assert values_equal(math.nan, math.nan)
        assert not values_equal(1.0, math.nan)

    def test_enum_subclasses_count_as_their_base_kind(self) -> None:
        import enum

        from telemetry_asserts.model import StatusCode

        class Level(enum.IntEnum):
            HIGH = 3

        assert values_equal("ERROR", StatusCode.ERROR)
        assert values_equal(3, Level.HIGH)
        assert not values_equal(3.0, Level.HIGH)
        assert not values_equal(True, Level.HIGH)

    def test_str_is_not_number(self) -> None:
        assert not values_equal("1", 1)
        assert values_equal("1", "1")

    def test_foreign_objects_decide_by_their_eq(self) -> None:
        class AnyEven:
            def __eq__(self, other: object) -> bool:
                return isinstance(other, int) and other % 2 == 0

        assert values_equal(4, AnyEven())
        assert not values_equal(3, AnyEven())

    def test_dirty_equals_if_installed(self) -> None:
        dirty_equals = pytest.importorskip("dirty_equals")
        assert values_equal(5, dirty_equals.IsPositiveInt)
        assert match_attributes({"k": "abc"}, {"k": dirty_equals.IsStr(regex="a.c")}) == []


class TestMatchers:
    def test_is_type(self) -> None:
        assert IsType(int) == 3
        assert IsType(int) != True  # noqa: E712 - the point of the test
        assert IsType(int) != 3.0
        assert IsType(float) == 3.0
        assert IsType(bool) == False  # noqa: E712
        assert IsType(int, float) == 2.5
        assert IsType(list) == (1, 2)
        assert IsType(tuple) == [1, 2]
        assert IsType(str) != b"x"
        assert repr(IsType(int, float)) == "IsType(int, float)"
        with pytest.raises(TypeError):
            IsType()

    def test_regex_is_a_full_match_on_strings(self) -> None:
        assert Regex(r"sub-\d+") == "sub-01"
        assert Regex(r"sub-\d+") != "xsub-01"
        assert Regex(r"sub-\d+") != 1
        assert Regex(r"SUB", re.IGNORECASE) == "sub"
        assert repr(Regex(r"a.")) == "Regex('a.')"

    def test_in_range(self) -> None:
        r = InRange(1, 5)
        assert r == 1 and r == 5 and r == 3.5
        assert r != 0 and r != 5.01 and r != True and r != "3"  # noqa: E712
        assert InRange(1, 5, inclusive=False) != 5
        assert InRange(1, 5, inclusive=False) != 1
        assert InRange(lo=0) == 10**9
        assert InRange(hi=0) == -3
        assert InRange(lo=0) != math.nan
        assert repr(InRange(1, 5)) == "InRange(1, 5)"
        assert repr(InRange(lo=0)) == "InRange(lo=0)"
        assert repr(InRange(hi=2, inclusive=False)) == "InRange(hi=2, inclusive=False)"
        with pytest.raises(ValueError):
            InRange()
        with pytest.raises(ValueError):
            InRange(5, 1)

    def test_predicate(self) -> None:
        p = Predicate(lambda v: v % 2 == 0, "even")
        assert p == 4
        assert p != 3
        assert p != "x"  # TypeError inside the predicate means no match
        assert repr(p) == "Predicate(even)"

        def positive(v: float) -> bool:
            return v > 0

        assert repr(Predicate(positive)) == "Predicate(positive)"

    def test_predicate_propagates_real_bugs(self) -> None:
        def broken(v: object) -> bool:
            raise KeyError("bug")

        with pytest.raises(KeyError):
            Predicate(broken).matches(1)

    def test_any_value_one_of_contains(self) -> None:
        assert AnyValue() == object()
        assert IsOneOf("a", "b") == "b"
        assert IsOneOf(1, 2) != True  # noqa: E712
        assert Contains("x") == ("x", "y")
        assert Contains("x", "y") == ["y", "x", "z"]
        assert Contains(1) != (True,)
        assert Contains("lo") == "hello"
        assert Contains("x") != 5
        assert repr(IsOneOf("a", 1)) == "IsOneOf('a', 1)"
        assert repr(Contains("a")) == "Contains('a')"

    def test_absent_matches_nothing(self) -> None:
        assert Absent() != None  # noqa: E711
        assert repr(Absent()) == "Absent()"

    def test_composition(self) -> None:
        m = IsType(int) & InRange(0, 10)
        assert m == 3
        assert m != 3.0
        assert m != 11
        either = Regex("a+") | IsOneOf(1)
        assert either == "aaa" and either == 1 and either != 2
        assert ~IsType(str) == 1
        assert repr((IsType(int) & ~IsOneOf(1)) | Regex("a")) == "(IsType(int) & ~IsOneOf(1)) | Regex('a')"

    def test_matchers_compose_inside_dicts(self) -> None:
        assert {"k": 3, "s": "sub-01"} == {"k": InRange(1, 5), "s": Regex(r"sub-\d\d")}

    def test_matchers_are_unhashable(self) -> None:
        with pytest.raises(TypeError):
            hash(IsType(int))


class TestMatchAttributes:
    actual = Attributes({"neuro.subject_id": "sub-01", "neuro.voxels": 1.0, "password": "x", "n": 3})

    def test_partial_by_default(self) -> None:
        assert match_attributes(self.actual, {"n": 3}) == []
        assert match_attributes(self.actual, {}) == []

    def test_kinds(self) -> None:
        got = match_attributes(
            self.actual, {"neuro.subject": "sub-01", "neuro.voxels": 1, "password": Absent(), "gone": Absent()}
        )
        assert got[:2] == [
            AttributeMismatch("neuro.subject", "missing", "sub-01", None),
            AttributeMismatch("neuro.voxels", "different", 1, 1.0),
        ]
        assert len(got) == 3
        assert got[2].key == "password" and got[2].kind == "unexpected"
        assert isinstance(got[2].expected, Absent) and got[2].actual == "x"

    def test_exact_reports_extra_keys(self) -> None:
        got = match_attributes({"a": 1, "b": 2, "c": 3}, {"a": 1}, exact=True)
        assert [(m.key, m.kind, m.expected, m.actual) for m in got] == [
            ("b", "unexpected", None, 2),
            ("c", "unexpected", None, 3),
        ]

    def test_exact_does_not_require_absent_keys(self) -> None:
        assert match_attributes({"a": 1}, {"a": 1, "b": Absent()}, exact=True) == []

    def test_any_value_requires_presence(self) -> None:
        got = match_attributes({}, {"a": AnyValue()})
        assert [(m.key, m.kind) for m in got] == [("a", "missing")]

    def test_message_text_is_pinned(self) -> None:
        mismatches = match_attributes(
            self.actual,
            {"neuro.subject": "sub-01", "neuro.voxels": 1, "n": InRange(5, 9), "password": Absent()},
        )
        assert describe_mismatches(mismatches, actual=self.actual) == (
            "missing attribute 'neuro.subject' (did you mean 'neuro.subject_id'?), expected 'sub-01' (str)\n"
            "attribute 'neuro.voxels': expected 1 (int), got 1.0 (float)\n"
            "attribute 'n': expected InRange(5, 9), got 3 (int)\n"
            "unexpected attribute 'password' = 'x' (str) (must be absent)"
        )

    def test_message_for_exact_and_arrays(self) -> None:
        actual = {"tags": ("a", "b"), "extra": True}
        mismatches = match_attributes(actual, {"tags": ["a"]}, exact=True)
        assert describe_mismatches(mismatches, actual=actual) == (
            "attribute 'tags': expected ['a'] (array), got ['a', 'b'] (array)\n"
            "unexpected attribute 'extra' = True (bool) (not expected)"
        )

    def test_missing_without_near_miss_has_no_hint(self) -> None:
        mismatches = match_attributes({"zzz": 1}, {"neuro.stage": "n4"})
        assert describe_mismatches(mismatches, actual={"zzz": 1}) == (
            "missing attribute 'neuro.stage', expected 'n4' (str)"
        )


_scalars = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=8),
)
_values = st.one_of(_scalars, st.lists(st.integers(), max_size=4), st.lists(st.text(max_size=3), max_size=4))


@settings(max_examples=60, deadline=None)
@given(_values)
def test_every_value_equals_itself_and_its_frozen_form(value: object) -> None:
    frozen = Attributes({"k": value})["k"]
    assert values_equal(frozen, value)
    assert match_attributes({"k": frozen}, {"k": value}, exact=True) == []


@settings(max_examples=60, deadline=None)
@given(_scalars, _scalars)
def test_values_equal_never_crosses_otel_types(a: object, b: object) -> None:
    if values_equal(a, b):
        assert type(a) is type(b)
