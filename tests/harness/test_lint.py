"""Instrumentation lint: each rule, thresholds, switches, aggregation and the acceptance run."""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pipeline.phantom import make_head_phantom
from pipeline.processor import process_batch
from pipeline.registry import RunRegistry
from pipeline.telemetry import PipelineTelemetry
from telemetry_asserts.capture import Capture, metrics_from_sdk, spans_from_sdk
from telemetry_asserts.errors import TelemetryAssertionError
from telemetry_asserts.lint import DEFAULT_MEANINGLESS, RULES, Finding, LintOptions, LintReport, lint
from telemetry_asserts.model import (
    Attributes,
    Event,
    LogRecord,
    MetricKind,
    MetricPoint,
    Span,
    SpanKind,
    StatusCode,
    Telemetry,
)
from telemetry_asserts.sensitive import SensitiveRules

US = 1_000
MS = 1_000_000


class Forest:
    """Model spans with chosen timings (no clocks involved)."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self._next = 1

    def add(self, name: str, parent: Span | None = None, duration_ns: int = 5 * MS, **kw: object) -> Span:
        span = Span(
            name,
            trace_id=1,
            span_id=self._next,
            parent_span_id=parent.span_id if parent else None,
            start_time_ns=1_000 * MS,
            end_time_ns=1_000 * MS + duration_ns,
            **kw,  # type: ignore[arg-type]
        )
        self._next += 1
        self.spans.append(span)
        return span

    def telemetry(self, metrics: tuple[MetricPoint, ...] = (), logs: tuple[LogRecord, ...] = ()) -> Telemetry:
        return Telemetry(tuple(self.spans), metrics, logs)


def point(name: str, **attrs: object) -> MetricPoint:
    return MetricPoint(name, MetricKind.COUNTER, Attributes(attrs), value=1)


def test_acceptance_real_sdk_run_gives_exactly_three_findings() -> None:
    """A span per loop item, a password attribute and a file path in a metric attribute."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    tracer = tracer_provider.get_tracer("lint-acceptance")
    files = meter_provider.get_meter("lint-acceptance").create_counter("app.files.processed", unit="{file}")

    with tracer.start_as_current_span("process_batch") as batch:
        batch.set_attribute("password", "hunter2")
        for i in range(100):
            with tracer.start_as_current_span("process_item") as item:
                item.set_attribute("app.item.index", i)
            files.add(1, {"file.path": f"/data/sub-{i:03d}/anat/sub-{i:03d}_T1w.nii.gz", "status": "ok"})

    telemetry = Telemetry(spans_from_sdk(exporter.get_finished_spans()), metrics_from_sdk(reader.get_metrics_data()))
    tracer_provider.shutdown()
    meter_provider.shutdown()
    assert len(telemetry.spans) == 101

    report = lint(telemetry)
    assert [(f.rule, f.where) for f in report] == [
        ("tight_loop", "process_batch"),
        ("id_like_metric_attribute", "metric 'app.files.processed'"),
        ("sensitive_data", "process_batch"),
    ]
    assert report.findings[0].message.startswith(
        "100 sibling spans named 'process_item' under one parent (more than 20)"
    )
    assert "hunter2" not in report.text()
    with pytest.raises(TelemetryAssertionError, match="instrumentation lint: 3 findings"):
        report.assert_clean()
    # every problem can be switched off, the others stay (with the loop rule off, the quick per-item
    # spans may count as trivial, depending on the machine's speed: switch that off too)
    assert lint(telemetry, disable={"tight_loop", "trivial_span"}).rules() == [
        "id_like_metric_attribute",
        "sensitive_data",
    ]
    assert lint(telemetry, disable={"sensitive_data"}).rules() == ["tight_loop", "id_like_metric_attribute"]
    assert lint(telemetry, disable={"id_like_metric_attribute"}).rules() == [
        "tight_loop",
        "high_cardinality_metric",
        "sensitive_data",
    ]
    assert not lint(
        telemetry,
        disable={"tight_loop", "id_like_metric_attribute", "sensitive_data", "trivial_span", "high_cardinality_metric"},
    )


class TestTightLoop:
    def test_threshold_is_more_than_n(self) -> None:
        f = Forest()
        root = f.add("batch")
        for _ in range(20):
            f.add("item", root)
        assert not lint(f.telemetry(), loop_threshold=20)
        f.add("item", root)
        assert lint(f.telemetry(), loop_threshold=20).rules() == ["tight_loop"]
        assert not lint(f.telemetry(), loop_threshold=21)

    def test_aggregated_over_parents(self) -> None:
        f = Forest()
        root = f.add("batch")
        for n in (30, 25):
            parent = f.add("process_file", root)
            for _ in range(n):
                f.add("slice", parent, duration_ns=1 * US)
        report = lint(f.telemetry(), disable={"meaningless_attribute"})
        assert report.findings == [
            Finding(
                "tight_loop",
                "30 sibling spans named 'slice' under one parent in 2 parents (more than 20): a span per loop "
                "iteration; make the loop one span and record the iterations as a count attribute or events",
                "batch > process_file",
                "warning",
            )
        ]

    def test_roots_are_not_siblings(self) -> None:
        f = Forest()
        for _ in range(50):
            f.add("process_file")
        assert not lint(f.telemetry())


class TestTrivialSpan:
    def test_short_internal_leaf_is_trivial(self) -> None:
        f = Forest()
        root = f.add("process_file")
        f.add("add_numbers", root, duration_ns=3 * US)
        f.add("add_numbers", root, duration_ns=12 * US)
        f.add("load_file", root, duration_ns=2 * MS)
        report = lint(f.telemetry())
        assert [str(x) for x in report] == [
            "[warning] trivial_span at process_file > add_numbers: 2 leaf spans shorter than 50 us (longest 12.0 us): "
            "too little work for a span; use an event or an attribute on the parent"
        ]

    def test_threshold_and_exemptions(self) -> None:
        f = Forest()
        root = f.add("process_file")
        f.add("quick", root, duration_ns=80 * US)
        f.add("db", root, duration_ns=1 * US, kind=SpanKind.CLIENT)
        f.add("closed", root, duration_ns=1 * US, events=(Event("file_closed"),))
        f.add("failed", root, duration_ns=1 * US, status_code=StatusCode.ERROR)
        f.add("planned", root, duration_ns=1 * US, attributes=Attributes({"neuro.batch.to_process": 3}))
        assert not lint(f.telemetry())
        assert [x.where for x in lint(f.telemetry(), trivial_threshold_us=100)] == ["process_file > quick"]

    def test_spans_without_timing_are_not_judged(self) -> None:
        spans = (Span("a", 1, 1), Span("b", 1, 2, parent_span_id=1))
        assert not lint(Telemetry(spans))


class TestAttributes:
    def test_meaningless_names(self) -> None:
        f = Forest()
        f.add("s", attributes=Attributes({"data": 1, "temp2": 2, "x": 3, "neuro.voxel_count": 4, "Value": 5}))
        report = lint(
            f.telemetry(metrics=(point("m", foo="a"),), logs=(LogRecord("hi", attributes=Attributes({"info": "i"})),))
        )
        assert [(x.where, x.message.split(" says")[0]) for x in report] == [
            ("s", "attribute name 'data'"),
            ("s", "attribute name 'temp2'"),
            ("s", "attribute name 'x'"),
            ("s", "attribute name 'Value'"),
            ("metric 'm'", "attribute name 'foo'"),
            ("log", "attribute name 'info'"),
        ]
        assert [x.message.split(" says")[0] for x in lint(f.telemetry(), meaningless_names=["temp"])] == [
            "attribute name 'temp2'",
            "attribute name 'x'",
        ]  # a list (as YAML gives) replaces the default set
        custom = LintOptions(meaningless_names=DEFAULT_MEANINGLESS | {"neuro.voxel_count"})
        assert len(lint(f.telemetry(), custom)) == 5

    def test_oversize_values(self) -> None:
        f = Forest()
        f.add(
            "s",
            attributes=Attributes(
                {
                    "neuro.header": "h" * 1025,
                    "neuro.ok": "h" * 1024,
                    "neuro.shape": tuple(range(129)),
                    "exception.stacktrace": "t" * 5000,
                }
            ),
        )
        report = lint(f.telemetry())
        assert [x.message for x in report] == [
            "attribute 'neuro.header' holds 1025 characters (limit 1024): attributes are indexed labels, not "
            "payloads; summarise it or log it",
            "attribute 'neuro.shape' holds 129 elements (limit 128): attributes are indexed labels, not payloads; "
            "summarise it or log it",
        ]
        assert len(lint(f.telemetry(), max_attribute_length=2000)) == 1

    def test_sensitive_keys_and_values_with_custom_rules(self) -> None:
        f = Forest()
        root = f.add("login", attributes=Attributes({"user.email": "jane@example.org", "patient": "Doe"}))
        f.add("child", root)
        assert [x.message for x in lint(f.telemetry())] == [
            "attribute 'user.email': value looks like an e-mail address (1x); never record secrets or personal data"
        ]
        rules = SensitiveRules.default().extend(keys=["patient"])
        assert len(lint(f.telemetry(), sensitive_rules=rules)) == 2
        f.add("send", root, events=(Event("retry", attributes=Attributes({"auth.token": "t"})),))
        assert [x.where for x in lint(f.telemetry())] == ["login", "login > send event 'retry'"]


class TestMetrics:
    def test_high_cardinality_attribute(self) -> None:
        pts = tuple(point("neuro.stages", stage=f"stage{i}") for i in range(51))
        report = lint(Telemetry(metrics=pts))
        assert [str(x) for x in report] == [
            "[error] high_cardinality_metric at metric 'neuro.stages': attribute 'stage' has 51 distinct values "
            "(more than 50): metric attributes must be a small, bounded set"
        ]
        assert not lint(Telemetry(metrics=pts), max_metric_attribute_values=51)

    def test_series_count(self) -> None:
        pts = tuple(point("m", region=f"r{i}", scanner=f"s{j}") for i in range(10) for j in range(10))
        assert not lint(Telemetry(metrics=pts))
        assert [x.message for x in lint(Telemetry(metrics=pts), max_series_per_metric=99)] == [
            "100 time series (more than 99): too many attribute combinations"
        ]

    def test_id_like_is_one_finding_not_also_high_cardinality(self) -> None:
        pts = tuple(point("m", request=f"550e8400-e29b-41d4-a716-4466554400{i:02d}") for i in range(60))
        report = lint(Telemetry(metrics=pts))
        assert report.rules() == ["id_like_metric_attribute"]
        assert report.findings[0].message.startswith(
            "attribute 'request' holds uuid values (e.g. '550e8400-e29b-41d4-a716-446655440000', "
            "'550e8400-e29b-41d4-a716-446655440001'; 60 distinct)"
        )
        assert lint(Telemetry(metrics=pts), disable={"id_like_metric_attribute"}).rules() == ["high_cardinality_metric"]


class TestReport:
    def test_report_protocol_and_clean_message(self) -> None:
        empty = LintReport([])
        assert not empty and len(empty) == 0
        assert empty.text() == "instrumentation lint: no findings"
        empty.assert_clean()
        report = LintReport(
            [Finding("trivial_span", "m1", "a > b"), Finding("sensitive_data", "m2", "span 'a'", "error")]
        )
        assert report and len(report) == 2
        with pytest.raises(TelemetryAssertionError) as info:
            report.assert_clean()
        assert str(info.value) == (
            "instrumentation lint: 2 findings\n"
            "  [warning] trivial_span at a > b: m1\n"
            "  [error] sensitive_data at span 'a': m2\n"
            "(switch a rule off with lint(..., disable={'trivial_span'}) or raise its threshold)"
        )
        with pytest.raises(TelemetryAssertionError, match=r"1 finding\n  \[error\] sensitive_data"):
            report.assert_clean(min_severity="error")
        LintReport([Finding("trivial_span", "m1", "a > b")]).assert_clean(min_severity="error")
        with pytest.raises(ValueError):
            report.assert_clean(min_severity="fatal")

    def test_unknown_rule_or_option(self) -> None:
        with pytest.raises(ValueError, match=r"unknown lint rule 'trivial_spans' \(did you mean 'trivial_span'\?\)"):
            lint(Telemetry(), disable={"trivial_spans"})
        with pytest.raises(TypeError, match=r"unknown lint option 'loop_treshold' \(did you mean 'loop_threshold'\?\)"):
            lint(Telemetry(), loop_treshold=3)

    def test_every_rule_can_be_disabled(self) -> None:
        assert not lint(Telemetry(), disable=set(RULES))


def test_the_pipeline_run_is_clean(tmp_path: Path) -> None:
    """Dogfooding: a real batch (a good input, a broken one, then a resumed re-run) gives no finding."""
    nib.save(make_head_phantom(shape=(32, 32, 32), voxel_size_mm=(6.0, 6.0, 6.0)), tmp_path / "sub-01_T1w.nii.gz")
    broken = tmp_path / "sub-99_T1w.nii.gz"
    broken.write_bytes(b"not a nifti file")
    inputs = sorted(tmp_path.glob("*.nii.gz"))
    (tmp_path / "out").mkdir()
    capture = Capture()
    try:
        with capture.capturing_logs(logging.DEBUG, "pipeline"):
            tm = PipelineTelemetry(capture.tracer_provider, capture.meter_provider)
            registry = RunRegistry(tmp_path / "out" / "runs.sqlite")
            process_batch(inputs, tmp_path / "out", telemetry=tm, registry=registry)
            process_batch(inputs, tmp_path / "out", telemetry=tm, registry=registry, resume=True)
        telemetry = capture.snapshot()
    finally:
        capture.shutdown()
    assert {"process_batch", "plan_batch", "process_file", "load_file"} <= {s.name for s in telemetry.spans}
    assert telemetry.metrics and telemetry.logs
    lint(telemetry).assert_clean()


def test_rule_messages_pinned() -> None:
    f = Forest()
    f.add("s", attributes=Attributes({"data": 1}))
    pts = (point("m", request="550e8400-e29b-41d4-a716-446655440000"), point("n", request_id=7))
    assert [str(x) for x in lint(f.telemetry(metrics=pts))] == [
        "[warning] meaningless_attribute at s: attribute name 'data' says nothing (1x): use a namespaced, "
        "specific name (e.g. 'http.response.body.size')",
        "[error] id_like_metric_attribute at metric 'm': attribute 'request' holds uuid values "
        "(e.g. '550e8400-e29b-41d4-a716-446655440000'; 1 distinct): every value is a new time series; "
        "use a bounded value and keep the identifier on spans or logs",
        "[error] id_like_metric_attribute at metric 'n': attribute 'request_id' is named like an id "
        "(e.g. 7; 1 distinct): every value is a new time series; use a bounded value and keep the identifier "
        "on spans or logs",
    ]
