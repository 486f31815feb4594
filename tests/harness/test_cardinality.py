"""Cardinality counts (checked against brute force), series counts and the id-like detector."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry_asserts.cardinality import (
    IdLikeAttribute,
    assert_max_cardinality,
    assert_max_series,
    attribute_cardinality,
    classify_key,
    classify_value,
    distinct_values,
    find_id_like,
    series_count,
)
from telemetry_asserts.errors import TelemetryAssertionError
from telemetry_asserts.model import Attributes, MetricKind, MetricPoint, Span


def span(i: int, **attrs: object) -> Span:
    return Span("s", trace_id=1, span_id=i + 1, attributes=Attributes(attrs))


def point(name: str, **attrs: object) -> MetricPoint:
    return MetricPoint(name, MetricKind.COUNTER, Attributes(attrs), value=1)


class TestCounts:
    def test_distinct_values_keep_otel_types_apart(self) -> None:
        items = [span(0, v=True), span(1, v=1), span(2, v=1.0), span(3, v=1), span(4, v=(1, 2)), span(5, v=[1, 2])]
        assert distinct_values(items) == {"v": [True, 1, 1.0, (1, 2)]}
        assert attribute_cardinality(items) == {"v": 4}

    def test_distinct_values_for_one_key(self) -> None:
        items = [span(0, a="x", b=1), span(1, a="y"), span(2, b=2)]
        assert distinct_values(items, "a") == {"a": ["x", "y"]}
        assert distinct_values(items, "zzz") == {}

    def test_series_count(self) -> None:
        pts = [point("m", a="x"), point("m", a="x"), point("m", a="y"), point("m"), point("n", b=True), point("n", b=1)]
        assert series_count(pts) == {"m": 3, "n": 2}

    def test_assert_max_cardinality_message(self) -> None:
        items = [span(i, file=f"f{i}.nii", stage="n4") for i in range(5)]
        assert_max_cardinality(items, 5)
        assert_max_cardinality(items, 1, keys=["stage"])
        with pytest.raises(TelemetryAssertionError) as info:
            assert_max_cardinality(items, 2, what="spans")
        assert str(info.value) == (
            "attribute cardinality above 2 across spans:\n"
            "  'file': 5 distinct values ('f0.nii', 'f1.nii', 'f2.nii', ...)"
        )

    def test_assert_max_series_message(self) -> None:
        pts = [point("m", a=str(i)) for i in range(4)] + [point("n")]
        assert_max_series(pts, 4)
        assert_max_series(pts, 1, name="n")
        with pytest.raises(TelemetryAssertionError) as info:
            assert_max_series(pts, 3)
        assert str(info.value) == "metrics with more than 3 series:\n  'm': 4 series"
        with pytest.raises(TelemetryAssertionError, match="no metric 'x' was recorded; recorded: m, n"):
            assert_max_series(pts, 3, name="x")


_keys = st.sampled_from(["a", "b", "c", "d"])
_vals = st.one_of(
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.0, 1.0, 2.5]),
    st.sampled_from(["x", "y", "1"]),
    st.lists(st.integers(0, 2), max_size=2),
)
_attr_sets = st.lists(st.dictionaries(_keys, _vals, max_size=4), max_size=30)


def _brute_distinct(sets: list[dict[str, object]]) -> dict[str, int]:
    out: dict[str, list[tuple[str, object]]] = {}
    for s in sets:
        for k, v in s.items():
            frozen = Attributes({k: v})[k]
            ident = (type(frozen).__name__, repr(frozen))  # repr keeps True/1/1.0 apart
            if ident not in out.setdefault(k, []):
                out[k].append(ident)
    return {k: len(v) for k, v in out.items()}


@settings(max_examples=80, deadline=None)
@given(_attr_sets)
def test_cardinality_equals_brute_force(sets: list[dict[str, object]]) -> None:
    spans = [span(i, **s) for i, s in enumerate(sets)]
    assert attribute_cardinality(spans) == _brute_distinct(sets)
    assert {k: len(v) for k, v in distinct_values(spans).items()} == _brute_distinct(sets)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["m", "n"]), st.dictionaries(_keys, _vals, max_size=3)), max_size=30))
def test_series_count_equals_brute_force(rows: list[tuple[str, dict[str, object]]]) -> None:
    brute: dict[str, list[list[tuple[str, str, str]]]] = {}
    for name, attrs in rows:
        ident = sorted((k, type(v).__name__, repr(v)) for k, v in Attributes(attrs).items())
        if ident not in brute.setdefault(name, []):
            brute[name].append(ident)
    assert series_count([point(n, **a) for n, a in rows]) == {n: len(v) for n, v in brute.items()}


class TestIdLike:
    @pytest.mark.parametrize(
        ("value", "kind"),
        [
            ("550e8400-e29b-41d4-a716-446655440000", "uuid"),
            ("4bf92f3577b34da6a3ce929d0e0e4736", "hex id"),
            ("00f067aa0ba902b7", "hex id"),
            ("jane.doe@example.org", "e-mail address"),
            ("https://example.org/a?b=1", "url"),
            ("2026-11-25T13:20:00Z", "timestamp"),
            ("2026-11-25 13:20:00.123+01:00", "timestamp"),
            ("/data/sub-01/anat/sub-01_T1w.nii.gz", "path"),
            ("sub-01/anat/sub-01_T1w.nii.gz", "path"),
            ("./out", "path"),
            ("C:\\data\\x.nii", "path"),
            ("1700000000", "numeric id"),
            (1_700_000_000_000, "numeric id"),
            ("aZ3kP9xQ7mN2bV5cX8zL", "opaque id"),
        ],
    )
    def test_id_like_values(self, value: object, kind: str) -> None:
        assert classify_value(value) == kind

    @pytest.mark.parametrize(
        "value",
        [
            "n4",
            "skull_strip",
            "T1w",
            "sub-01",
            "ok",
            "nii.gz",
            "1.45.1",
            "application/json",
            "mm/s",
            "/",
            "gaussian_smoothing_fwhm6mm",
            "deadbeefdeadbeefdead",
            200,
            3.5,
            True,
            ("a", "b"),
        ],
    )
    def test_bounded_values_are_not_ids(self, value: object) -> None:
        assert classify_value(value) is None

    def test_find_id_like_per_metric_and_key(self) -> None:
        pts = [point("neuro.files", path=f"/data/sub-{i:02d}/T1w.nii.gz", stage="n4") for i in range(4)]
        pts += [point("neuro.req", id="550e8400-e29b-41d4-a716-446655440000", ok=True)]
        assert find_id_like(pts) == [
            IdLikeAttribute(
                "neuro.files",
                "path",
                "path",
                ("/data/sub-00/T1w.nii.gz", "/data/sub-01/T1w.nii.gz", "/data/sub-02/T1w.nii.gz"),
                4,
            ),
            IdLikeAttribute("neuro.req", "id", "uuid", ("550e8400-e29b-41d4-a716-446655440000",), 1),
        ]

    def test_find_id_like_needs_a_share_of_values(self) -> None:
        pts = [point("m", k=v) for v in ["a", "b", "c", "/x/y"]]
        assert find_id_like(pts) == []
        assert [f.key for f in find_id_like(pts, min_fraction=0.25)] == ["k"]


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("request_id", "id"),
        ("user.id", "id"),
        ("thread.id", "id"),
        ("file.path", "path"),
        ("userEmail", "e-mail address"),
        ("neuro.file.name", "file name"),
        ("fileName", "file name"),
        ("session.uuid", "uuid"),
    ],
)
def test_id_like_keys(key: str, kind: str) -> None:
    assert classify_key(key) == kind


@pytest.mark.parametrize(
    "key", ["status", "stage", "url.scheme", "http.route", "error.type", "valid", "paid", "neuro.stage.name"]
)
def test_bounded_keys(key: str) -> None:
    assert classify_key(key) is None


def test_find_id_like_by_key_name() -> None:
    pts = [point("app.requests", request_id=str(i), status="ok") for i in range(3)]
    assert find_id_like(pts) == [IdLikeAttribute("app.requests", "request_id", "id", ("0", "1", "2"), 3, by_name=True)]
