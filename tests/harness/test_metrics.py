"""MetricView: selection, values per attribute set, point diffs and their messages."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from telemetry_asserts.capture import metrics_from_sdk
from telemetry_asserts.errors import TelemetryAssertionError
from telemetry_asserts.matchers import InRange, IsType
from telemetry_asserts.metrics import MetricView, format_attributes
from telemetry_asserts.model import Attributes, MetricKind, MetricPoint, Temporality

C = MetricKind.COUNTER


def counter(name: str, value: int | float, **attrs: object) -> MetricPoint:
    return MetricPoint(name, C, Attributes(attrs), unit="{execution}", description="stages run", value=value)


def hist(name: str, count: int, total: float, lo: float, hi: float, buckets=(), **attrs: object) -> MetricPoint:
    return MetricPoint(
        name,
        MetricKind.HISTOGRAM,
        Attributes(attrs),
        unit="s",
        count=count,
        sum=total,
        min=lo,
        max=hi,
        bucket_counts=tuple(buckets),
        explicit_bounds=(0.1, 1.0) if buckets else (),
    )


@pytest.fixture()
def view() -> MetricView:
    return MetricView(
        [
            counter("neuro.stages.executed", 2, **{"neuro.stage": "n4"}),
            counter("neuro.stages.executed", 1, **{"neuro.stage": "bias", "neuro.ok": True}),
            hist("neuro.stage.duration", 2, 3.0, 1.0, 2.0, (0, 1, 1), **{"neuro.stage": "n4"}),
            hist("neuro.stage.duration", 1, 0.5, 0.5, 0.5, (0, 1, 0), **{"neuro.stage": "bias"}),
            MetricPoint("neuro.queue", MetricKind.GAUGE, Attributes({"q": "a"}), value=7),
            MetricPoint("neuro.queue", MetricKind.GAUGE, Attributes({"q": "b"}), value=9),
        ]
    )


class TestSelection:
    def test_names_kind_unit_description(self, view: MetricView) -> None:
        assert view.names() == ["neuro.stages.executed", "neuro.stage.duration", "neuro.queue"]
        assert view.kind("neuro.stage.duration") is MetricKind.HISTOGRAM
        assert view.unit("neuro.stages.executed") == "{execution}"
        assert view.description("neuro.stages.executed") == "stages run"
        assert "neuro.queue" in view and "nope" not in view
        assert len(view) == 6

    def test_unknown_name_suggests_and_lists(self, view: MetricView) -> None:
        with pytest.raises(TelemetryAssertionError) as info:
            view.kind("neuro.stage.executed")
        assert str(info.value) == (
            "no metric 'neuro.stage.executed' was recorded (did you mean 'neuro.stages.executed'?)\n"
            "recorded metrics: neuro.stages.executed, neuro.stage.duration, neuro.queue"
        )

    def test_unknown_name_in_empty_view(self) -> None:
        with pytest.raises(TelemetryAssertionError, match="recorded metrics: none"):
            MetricView([]).assert_metric("x")

    def test_series_and_point(self, view: MetricView) -> None:
        series = view.series("neuro.stages.executed")
        assert [(p.attributes, p.value) for p in series] == [
            ({"neuro.stage": "n4"}, 2),
            ({"neuro.stage": "bias", "neuro.ok": True}, 1),
        ]
        assert view.point("neuro.stages.executed", {"neuro.stage": "bias"}).value == 1
        with pytest.raises(TelemetryAssertionError, match=r"counter 'neuro.stages.executed': 2 series match \{\}"):
            view.point("neuro.stages.executed")

    def test_series_keep_otel_types_apart(self) -> None:
        view = MetricView([counter("c", 1, ok=True), counter("c", 2, ok=1), counter("c", 4, ok=True)])
        assert [(p.attributes["ok"], p.value) for p in view.series("c")] == [(True, 4), (1, 2)]
        view.assert_counter("c", 2, {"ok": 1})
        view.assert_counter("c", 4, {"ok": True})


class TestValues:
    def test_counter_value_full_partial_and_all(self, view: MetricView) -> None:
        assert view.value("neuro.stages.executed", {"neuro.stage": "n4"}) == 2
        assert view.value("neuro.stages.executed") == 3
        assert view.value("neuro.stages.executed", {"neuro.stage": IsType(str)}) == 3

    def test_gauge_needs_one_series(self, view: MetricView) -> None:
        assert view.value("neuro.queue", {"q": "b"}) == 9
        with pytest.raises(TelemetryAssertionError) as info:
            view.value("neuro.queue")
        assert str(info.value) == (
            "gauge 'neuro.queue': 2 series match {}; give attributes that select one:\n"
            "  {q='a'}: value=7\n"
            "  {q='b'}: value=9"
        )

    def test_histogram_per_series_and_merged(self, view: MetricView) -> None:
        n4 = view.histogram("neuro.stage.duration", {"neuro.stage": "n4"})
        assert (n4.count, n4.sum, n4.min, n4.max, n4.bucket_counts) == (2, 3.0, 1.0, 2.0, (0, 1, 1))
        merged = view.histogram("neuro.stage.duration")
        assert (merged.count, merged.sum, merged.min, merged.max, merged.bucket_counts) == (3, 3.5, 0.5, 2.0, (0, 2, 1))

    def test_value_of_histogram_is_refused(self, view: MetricView) -> None:
        with pytest.raises(TelemetryAssertionError, match="is a histogram: use histogram"):
            view.value("neuro.stage.duration")

    def test_no_matching_series_message(self, view: MetricView) -> None:
        with pytest.raises(TelemetryAssertionError) as info:
            view.value("neuro.stages.executed", {"neuro.stag": "n4"})
        assert str(info.value) == (
            "metric 'neuro.stages.executed' has no series with attributes {neuro.stag='n4'}\n"
            "closest series {neuro.stage='n4'}:\n"
            "  missing attribute 'neuro.stag' (did you mean 'neuro.stage'?), expected 'n4' (str)\n"
            "recorded series:\n"
            "  {neuro.stage='n4'}: value=2\n"
            "  {neuro.stage='bias', neuro.ok=True}: value=1"
        )


class TestFolding:
    def test_cumulative_points_keep_the_latest(self) -> None:
        pts = [
            MetricPoint("c", C, value=1, time_ns=10, temporality=Temporality.CUMULATIVE),
            MetricPoint("c", C, value=3, time_ns=20, temporality=Temporality.CUMULATIVE),
        ]
        assert MetricView(pts).value("c") == 3

    def test_delta_points_add_up(self) -> None:
        pts = [
            MetricPoint("c", C, value=1, time_ns=10, temporality=Temporality.DELTA),
            MetricPoint("c", C, value=3, time_ns=20, temporality=Temporality.DELTA),
            MetricPoint(
                "h",
                MetricKind.HISTOGRAM,
                count=1,
                sum=1.0,
                min=1.0,
                max=1.0,
                temporality=Temporality.DELTA,
                bucket_counts=(1, 0),
                explicit_bounds=(5.0,),
                time_ns=1,
            ),
            MetricPoint(
                "h",
                MetricKind.HISTOGRAM,
                count=2,
                sum=9.0,
                min=2.0,
                max=7.0,
                temporality=Temporality.DELTA,
                bucket_counts=(1, 1),
                explicit_bounds=(5.0,),
                time_ns=2,
            ),
        ]
        v = MetricView(pts)
        assert v.value("c") == 4
        h = v.histogram("h")
        assert (h.count, h.sum, h.min, h.max, h.bucket_counts) == (3, 10.0, 1.0, 7.0, (2, 1))


class TestAssertions:
    def test_assert_metric(self, view: MetricView) -> None:
        view.assert_metric("neuro.stages.executed", kind="counter", unit="{execution}", description="stages run")
        with pytest.raises(TelemetryAssertionError) as info:
            view.assert_metric("neuro.stages.executed", kind=MetricKind.HISTOGRAM, unit="executions")
        assert str(info.value) == (
            "metric 'neuro.stages.executed':\n"
            "  kind: expected histogram, got counter\n"
            "  unit: expected 'executions', got '{execution}'"
        )

    def test_assert_counter(self, view: MetricView) -> None:
        view.assert_counter("neuro.stages.executed", 2, {"neuro.stage": "n4"})
        view.assert_counter("neuro.stages.executed", 3.0)
        view.assert_counter("neuro.stages.executed", InRange(1, 5))
        with pytest.raises(TelemetryAssertionError) as info:
            view.assert_counter("neuro.stages.executed", 5, {"neuro.stage": "n4"})
        assert str(info.value) == (
            "counter 'neuro.stages.executed' for {neuro.stage='n4'}: expected 5 (int), got 2 (int)\n"
            "recorded series:\n"
            "  {neuro.stage='n4'}: value=2\n"
            "  {neuro.stage='bias', neuro.ok=True}: value=1"
        )
        with pytest.raises(TelemetryAssertionError, match="is a histogram, not a counter"):
            view.assert_counter("neuro.stage.duration", 1)

    def test_bool_never_counts_as_number(self) -> None:
        with pytest.raises(TelemetryAssertionError):
            MetricView([counter("c", 1)]).assert_counter("c", True)

    def test_assert_gauge(self, view: MetricView) -> None:
        view.assert_gauge("neuro.queue", 7, {"q": "a"})
        with pytest.raises(TelemetryAssertionError, match=r"gauge 'neuro.queue': expected 8 \(int\), got 7 \(int\)"):
            view.assert_gauge("neuro.queue", 8, {"q": "a"})

    def test_assert_histogram(self, view: MetricView) -> None:
        data = view.assert_histogram(
            "neuro.stage.duration", count=2, sum=3, max=InRange(hi=2), attributes={"neuro.stage": "n4"}
        )
        assert data.min == 1.0
        with pytest.raises(TelemetryAssertionError) as info:
            view.assert_histogram(
                "neuro.stage.duration", count=4, bucket_counts=[0, 2, 1], attributes={"neuro.stage": "n4"}
            )
        assert str(info.value) == (
            "histogram 'neuro.stage.duration' for {neuro.stage='n4'}:\n"
            "  count: expected 4 (int), got 2 (int)\n"
            "  bucket_counts: expected [0, 2, 1] (array), got [0, 1, 1] (array)"
        )

    def test_assert_points_passes_partial_and_exact(self, view: MetricView) -> None:
        view.assert_points("neuro.stages.executed", [{"attributes": {"neuro.stage": "n4"}, "value": 2}])
        view.assert_points(
            "neuro.stages.executed",
            [
                {"attributes": {"neuro.stage": "bias", "neuro.ok": True}, "value": 1},
                {"attributes": {"neuro.stage": "n4"}, "value": 2},
            ],
            exact=True,
        )

    def test_assert_points_is_a_matching_not_first_wins(self) -> None:
        # The first expected point fits both series; only one assignment satisfies both.
        v = MetricView([counter("c", 1, a="x"), counter("c", 2, a="y")])
        v.assert_points("c", [{"attributes": {"a": IsType(str)}}, {"attributes": {"a": "x"}, "value": 1}], exact=False)

    def test_assert_points_message_lists_missing_and_unexpected(self, view: MetricView) -> None:
        with pytest.raises(TelemetryAssertionError) as info:
            view.assert_points(
                "neuro.stages.executed",
                [
                    {"attributes": {"neuro.stage": "n4"}, "value": 3},
                    {"attributes": {"neuro.stage": "skull"}, "value": 1},
                ],
                exact=True,
            )
        assert str(info.value) == (
            "metric 'neuro.stages.executed' (counter) points differ\n"
            "missing expected points:\n"
            "  {neuro.stage='n4'}: value=3\n"
            "    closest recorded {neuro.stage='n4'}: value=2\n"
            "      value: expected 3 (int), got 2 (int)\n"
            "  {neuro.stage='skull'}: value=1\n"
            "    closest recorded {neuro.stage='n4'}: value=2\n"
            "      attribute 'neuro.stage': expected 'skull' (str), got 'n4' (str)\n"
            "      value: expected 1 (int), got 2 (int)\n"
            "unexpected additional points:\n"
            "  {neuro.stage='n4'}: value=2\n"
            "  {neuro.stage='bias', neuro.ok=True}: value=1\n"
            "recorded points:\n"
            "  {neuro.stage='n4'}: value=2\n"
            "  {neuro.stage='bias', neuro.ok=True}: value=1"
        )

    def test_assert_points_partial_ignores_extra_series(self, view: MetricView) -> None:
        view.assert_points("neuro.stages.executed", [{"attributes": {"neuro.stage": "bias"}, "value": 1}])
        with pytest.raises(TelemetryAssertionError, match="unexpected additional points:\n  {neuro.stage='n4'}"):
            view.assert_points(
                "neuro.stages.executed",
                [{"attributes": {"neuro.stage": "bias", "neuro.ok": True}, "value": 1}],
                exact=True,
            )

    def test_assert_points_histogram_fields(self, view: MetricView) -> None:
        view.assert_points("neuro.stage.duration", [{"attributes": {"neuro.stage": "bias"}, "count": 1, "sum": 0.5}])
        with pytest.raises(TypeError, match="unknown expected point field"):
            view.assert_points("neuro.stage.duration", [{"attrs": {}}])

    def test_format_attributes(self) -> None:
        assert format_attributes({}) == "{}"
        assert format_attributes({"a": "x", "n": 1}) == "{a='x', n=1}"


def test_real_sdk_counter_and_histogram() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    meter = provider.get_meter("test")
    runs = meter.create_counter("neuro.stages.executed", unit="{execution}", description="Stages executed")
    took = meter.create_histogram("neuro.stage.duration", unit="s")
    for stage, seconds in [("n4", 0.2), ("n4", 4.0), ("mask", 0.05)]:
        runs.add(1, {"neuro.stage": stage})
        took.record(seconds, {"neuro.stage": stage})
    view = MetricView(metrics_from_sdk(reader.get_metrics_data()))
    provider.shutdown()
    view.assert_metric("neuro.stages.executed", kind="counter", unit="{execution}", description="Stages executed")
    view.assert_counter("neuro.stages.executed", 2, {"neuro.stage": "n4"})
    view.assert_points(
        "neuro.stages.executed",
        [{"attributes": {"neuro.stage": "n4"}, "value": 2}, {"attributes": {"neuro.stage": "mask"}, "value": 1}],
        exact=True,
    )
    data = view.assert_histogram(
        "neuro.stage.duration", count=2, sum=4.2, min=0.2, max=4.0, attributes={"neuro.stage": "n4"}
    )
    assert sum(data.bucket_counts) == 2
    assert view.histogram("neuro.stage.duration").count == 3


_attr_sets = st.lists(
    st.dictionaries(
        st.sampled_from(["stage", "status", "ok"]),
        st.one_of(st.booleans(), st.integers(0, 2), st.sampled_from(["a", "b"])),
        max_size=3,
    ),
    min_size=1,
    max_size=8,
    unique_by=lambda d: frozenset((k, type(v).__name__, v) for k, v in d.items()),
)


@settings(max_examples=60, deadline=None)
@given(_attr_sets, st.data())
def test_points_match_themselves_and_a_dropped_point_is_named(
    sets: list[dict[str, object]], data: st.DataObject
) -> None:
    view = MetricView([counter("c", i + 1, **attrs) for i, attrs in enumerate(sets)])
    expected = [{"attributes": attrs, "value": i + 1} for i, attrs in enumerate(sets)]
    order = data.draw(st.permutations(range(len(expected))))
    view.assert_points("c", [expected[i] for i in order], exact=True)
    dropped = data.draw(st.integers(0, len(expected) - 1))
    rest = [e for i, e in enumerate(expected) if i != dropped]
    view.assert_points("c", rest)
    with pytest.raises(TelemetryAssertionError) as info:
        view.assert_points("c", rest, exact=True)
    text = str(info.value)
    assert (
        f"unexpected additional points:\n  {format_attributes(Attributes(sets[dropped]))}: value={dropped + 1}\n"
        in text
    )


class TestMessagesPinned:
    def test_kind_mismatch_messages(self, view: MetricView) -> None:
        cases = [
            (
                lambda: view.histogram("neuro.stages.executed"),
                "metric 'neuro.stages.executed' is a counter, not a histogram",
            ),
            (
                lambda: view.assert_gauge("neuro.stages.executed", 1),
                "metric 'neuro.stages.executed' is a counter, not a gauge",
            ),
            (lambda: view.assert_counter("neuro.queue", 1), "metric 'neuro.queue' is a gauge, not a counter"),
            (
                lambda: view.value("neuro.stage.duration"),
                "metric 'neuro.stage.duration' is a histogram: use histogram() / assert_histogram()",
            ),
            (
                lambda: view.assert_metric("neuro.stages.executed", description="Stages run"),
                "metric 'neuro.stages.executed':\n  description: expected 'Stages run', got 'stages run'",
            ),
        ]
        for call, message in cases:
            with pytest.raises(TelemetryAssertionError) as info:
                call()
            assert str(info.value) == message

    def test_unknown_expected_field(self, view: MetricView) -> None:
        with pytest.raises(TypeError) as info:
            view.assert_points("neuro.stage.duration", [{"attrs": {}}])
        assert str(info.value) == (
            "unknown expected point field(s) ['attrs']; use attributes, value, count, sum, min, max, "
            "bucket_counts, explicit_bounds"
        )
