"""``SpanView.count``: selection criteria like ``filter`` (issue 13 item 8), ``Sequence`` meaning kept."""

from __future__ import annotations

import pytest

from telemetry_asserts.matchers import Regex
from telemetry_asserts.model import Span, attributes
from telemetry_asserts.spans import SpanView

T = 0x1234


def _span(name: str, span_id: int, parent: int | None = None, **attrs: object) -> Span:
    return Span(name, T, span_id, parent, attributes=attributes(attrs))


VIEW = SpanView([_span("process_file", 1), _span("stage", 2, 1, stage="bias"), _span("stage", 3, 1, stage="strip"),
                 _span("load_file", 4, 1)])


def test_count_takes_the_criteria_of_filter() -> None:
    assert VIEW.count(name="stage") == 2
    assert VIEW.count(name="stage", attributes={"stage": "bias"}) == 1
    assert VIEW.count(name=Regex("stage|load_file"), parent="process_file") == 3
    assert VIEW.count(root=True) == 1
    assert VIEW.count(name="missing") == 0


def test_count_positional_name_and_plain_len() -> None:
    assert VIEW.count("stage") == 2
    assert VIEW.count() == len(VIEW) == 4


def test_count_of_a_span_keeps_the_sequence_meaning() -> None:
    assert VIEW.count(VIEW[1]) == 1
    assert VIEW.count(VIEW.one(name="load_file")) == 1  # a SpanAssert counts its span
    assert VIEW.count(_span("stage", 99)) == 0


@pytest.mark.parametrize(("call", "message"), [
    (lambda: VIEW.count(VIEW[0], name="x"), r"count\(span\) takes no criteria: use count\(\*\*criteria\) to select"),
    (lambda: VIEW.count("a", name="b"), r"count\(\) got the name twice \(positionally and as name=\)"),
    (lambda: VIEW.count(colour="red"), r"unexpected keyword argument 'colour'"),
], ids=["span_and_criteria", "name_twice", "unknown_criterion"])
def test_count_misuse_is_a_clear_type_error(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TypeError, match=message):
        call()
