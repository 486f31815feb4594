"""The shared model: Attributes compare with OpenTelemetry's types and stay hashable/immutable."""

import pytest

from telemetry_asserts.matchers import IsType, Regex
from telemetry_asserts.model import Attributes, Span, Telemetry, attributes


def test_sequences_are_stored_as_tuples_and_equal_lists():
    a = Attributes({"shape": [176, 256, 256]})
    assert a["shape"] == (176, 256, 256)
    assert a == {"shape": [176, 256, 256]}


@pytest.mark.parametrize(
    ("recorded", "expected"),
    [(1, True), (True, 1), (1, 1.0), (0, False), ("1", 1)],
)
def test_bool_int_float_and_str_are_different_values(recorded, expected):
    assert Attributes({"x": recorded}) != {"x": expected}
    assert not Attributes({"x": recorded}) == Attributes({"x": expected})


def test_keys_must_match_exactly():
    assert Attributes({"a": 1}) != {"a": 1, "b": 2}
    assert Attributes({"a": 1, "b": 2}) != {"a": 1}
    assert Attributes({"a": 1}) != {"b": 1}


def test_matchers_as_expected_values():
    a = Attributes({"neuro.file.name": "sub-01_T1w.nii.gz", "neuro.file.size_bytes": 1024})
    assert a == {"neuro.file.name": Regex(r"sub-\d+_T1w\.nii\.gz"), "neuro.file.size_bytes": IsType(int)}
    assert a != {"neuro.file.name": Regex(r"sub-\d+"), "neuro.file.size_bytes": IsType(float)}


def test_hashable_and_reused():
    a = Attributes({"stage": "smooth"})
    assert hash(a) == hash(Attributes({"stage": "smooth"}))
    assert attributes(a) is a
    assert len({a, Attributes({"stage": "smooth"})}) == 1


def test_telemetry_trace_selects_one_trace():
    s1 = Span("a", trace_id=1, span_id=1)
    s2 = Span("b", trace_id=2, span_id=2)
    t = Telemetry(spans=(s1, s2))
    assert t.trace_ids == (1, 2)
    assert t.trace(2).spans == (s2,)
