"""In-memory capture with the real SDK: conversion to the model, per-window metric deltas, the
logging bridge, the global install, views and waiting."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading

import pytest
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import Link as SdkLink
from opentelemetry.trace import SpanKind as SdkSpanKind

from telemetry_asserts import model
from telemetry_asserts.capture import Capture, logs_from_sdk, metrics_from_sdk, spans_from_sdk
from telemetry_asserts.errors import TelemetryAssertionError
from telemetry_asserts.spans import SpanView
from telemetry_asserts.view import LiveTelemetryView, LiveView, TelemetryView, check
from telemetry_asserts.waiting import wait_until


@pytest.fixture
def capture() -> Capture:
    return Capture(Resource.create({"service.name": "neuro-test"}))


# ---------------------------------------------------------------------------------------------
# Conversion
# ---------------------------------------------------------------------------------------------


def test_spans_convert_with_every_field_and_come_parent_first(capture: Capture) -> None:
    tracer = capture.tracer_provider.get_tracer("pipeline", "1.2.3")
    with tracer.start_as_current_span("first") as first:
        pass
    with tracer.start_as_current_span("process_file", kind=SdkSpanKind.SERVER,
                                      links=[SdkLink(first.get_span_context(), {"why": "batch"})]) as root:
        with tracer.start_as_current_span("load_file", attributes={"dims": [176, 256, 256], "ok": True}) as load:
            load.add_event("opened", {"path": "a.nii"})
        try:
            with tracer.start_as_current_span("skull_strip"):
                raise ValueError("mask leaked")
        except ValueError:
            pass
    raw = capture.span_exporter.get_finished_spans()
    assert [s.name for s in raw][:2] == ["first", "load_file"]  # the SDK: end order
    spans = spans_from_sdk(raw)
    assert [s.name for s in spans] == ["first", "process_file", "load_file", "skull_strip"]
    first_m, root_m, load_m, strip_m = spans
    assert root_m.kind is model.SpanKind.SERVER and root_m.is_root
    assert root_m.span_id == root.get_span_context().span_id and root_m.trace_id == root.get_span_context().trace_id
    assert root_m.links == (model.Link(first_m.trace_id, first_m.span_id, model.attributes({"why": "batch"})),)
    assert load_m.parent_span_id == root_m.span_id
    assert load_m.attributes == {"dims": (176, 256, 256), "ok": True}
    assert load_m.events[0].name == "opened" and load_m.events[0].attributes == {"path": "a.nii"}
    assert load_m.events[0].timestamp_ns > 0 and load_m.end_time_ns >= load_m.start_time_ns > 0
    assert strip_m.status_code is model.StatusCode.ERROR
    assert strip_m.status_description == "ValueError: mask leaked"
    (exc,) = strip_m.exceptions()
    assert exc.attributes["exception.type"] == "ValueError"
    assert root_m.resource.service_name == "neuro-test"
    assert (root_m.scope.name, root_m.scope.version) == ("pipeline", "1.2.3")


def test_metrics_convert_every_kind_as_recorded() -> None:
    reader = InMemoryMetricReader()  # cumulative, as the SDK defaults
    provider = MeterProvider(
        metric_readers=[reader],
        views=[View(instrument_name="expo", aggregation=ExponentialBucketHistogramAggregation())],
    )
    meter = provider.get_meter("m", "0.1")
    assert metrics_from_sdk(reader.get_metrics_data()) == ()  # None before anything is recorded
    meter.create_counter("files", unit="{file}", description="files done").add(3, {"status": "ok"})
    meter.create_up_down_counter("queue").add(-2)
    meter.create_gauge("threshold").set(0.5)
    hist = meter.create_histogram("duration", unit="s")
    for v in (0.5, 7.0, 30.0):
        hist.record(v)
    meter.create_histogram("expo").record(3.0)
    points = {p.name: p for p in metrics_from_sdk(reader.get_metrics_data())}
    files = points["files"]
    assert (files.kind, files.value, files.unit, files.description) == (model.MetricKind.COUNTER, 3, "{file}", "files done")
    assert files.attributes == {"status": "ok"} and files.is_monotonic
    assert files.temporality is model.Temporality.CUMULATIVE and files.scope.name == "m"
    assert (points["queue"].kind, points["queue"].value) == (model.MetricKind.UP_DOWN_COUNTER, -2)
    assert (points["threshold"].kind, points["threshold"].value) == (model.MetricKind.GAUGE, 0.5)
    d = points["duration"]
    assert (d.kind, d.count, d.sum, d.min, d.max) == (model.MetricKind.HISTOGRAM, 3, 37.5, 0.5, 30.0)
    assert sum(d.bucket_counts) == 3 and len(d.bucket_counts) == len(d.explicit_bounds) + 1
    e = points["expo"]
    assert (e.kind, e.count, e.sum) == (model.MetricKind.EXPONENTIAL_HISTOGRAM, 1, 3.0)


def test_logs_convert_with_correlation(capture: Capture) -> None:
    logger = capture.logger_provider.get_logger("app")
    from opentelemetry._logs import LogRecord, SeverityNumber

    with capture.tracer_provider.get_tracer("t").start_as_current_span("work") as s:
        logger.emit(LogRecord(body="inside", severity_number=SeverityNumber.WARN, severity_text="WARN",
                              attributes={"k": 1}, event_name="stage.done"))
    logger.emit(LogRecord(body={"structured": True}, severity_number=SeverityNumber.INFO))
    inside, outside = logs_from_sdk(capture.log_exporter.get_finished_logs())
    ctx = s.get_span_context()
    assert (inside.body, inside.severity_number, inside.severity_text) == ("inside", 13, "WARN")
    assert (inside.trace_id, inside.span_id, inside.is_correlated) == (ctx.trace_id, ctx.span_id, True)
    assert inside.attributes == {"k": 1} and inside.event_name == "stage.done"
    assert inside.scope.name == "app" and inside.resource.service_name == "neuro-test"
    assert outside.body == {"structured": True} and outside.trace_id == 0 and not outside.is_correlated


# ---------------------------------------------------------------------------------------------
# Windows: clear() and per-window metric deltas
# ---------------------------------------------------------------------------------------------


def test_clear_starts_a_window_for_every_signal(capture: Capture) -> None:
    tracer = capture.tracer_provider.get_tracer("t")
    counter = capture.meter_provider.get_meter("m").create_counter("c")
    with tracer.start_as_current_span("old"):
        pass
    counter.add(10)
    capture.logger_provider.get_logger("l").emit(__import__("opentelemetry._logs", fromlist=["LogRecord"]).LogRecord(body="old"))
    capture.clear()
    assert capture.snapshot() == model.Telemetry()
    with tracer.start_as_current_span("new"):
        pass
    counter.add(1)
    t = capture.snapshot()
    assert [s.name for s in t.spans] == ["new"] and [p.value for p in t.metrics] == [1] and t.logs == ()


def test_metric_windows_give_deltas_whatever_was_recorded_before(capture: Capture) -> None:
    meter = capture.meter_provider.get_meter("m")
    counter, updown = meter.create_counter("c"), meter.create_up_down_counter("u")
    hist, gauge = meter.create_histogram("h"), meter.create_gauge("g")
    counter.add(5, {"k": "a"})
    hist.record(100.0)
    gauge.set(9)
    capture.clear()  # everything above is the baseline
    counter.add(1, {"k": "a"})
    counter.add(2, {"k": "b"})
    updown.add(-3)
    hist.record(2.0)
    assert {(p.name, p.attributes.get("k")): p.value for p in capture.snapshot().metrics if p.value is not None} == {
        ("c", "a"): 1, ("c", "b"): 2, ("u", None): -3,
    }
    counter.add(4, {"k": "a"})
    hist.record(6.0)
    gauge.set(3)
    gauge.set(4)
    points = {(p.name, p.attributes.get("k")): p for p in capture.snapshot().metrics}
    assert points[("c", "a")].value == 5  # 1 + 4, across two snapshots
    h = points[("h", None)]
    assert (h.count, h.sum, h.min, h.max) == (2, 8.0, 2.0, 6.0)  # min/max of this window only, not 100
    assert sum(h.bucket_counts) == 2
    assert points[("g", None)].value == 4
    assert capture.snapshot() == capture.snapshot()  # snapshots do not consume anything


def test_observable_counters_report_the_growth_within_the_window(capture: Capture) -> None:
    total = {"n": 100}

    def observe(options: CallbackOptions) -> list[Observation]:
        return [Observation(total["n"])]

    capture.meter_provider.get_meter("m").create_observable_counter("bytes", callbacks=[observe])
    capture.clear()
    total["n"] = 130
    (p,) = capture.snapshot().metrics
    assert p.value == 30


def test_new_spans_are_converted_incrementally_and_stay_parent_first(capture: Capture) -> None:
    tracer = capture.tracer_provider.get_tracer("t")
    with tracer.start_as_current_span("a"):
        with tracer.start_as_current_span("b"):
            pass
    first = capture.snapshot().spans
    with tracer.start_as_current_span("c"):
        pass
    second = capture.snapshot().spans
    assert second[:2] == first and [s.name for s in second] == ["a", "b", "c"]
    capture.span_exporter.clear()  # someone else cleared the exporter: no stale conversions
    assert capture.snapshot().spans == ()


# ---------------------------------------------------------------------------------------------
# The logging bridge
# ---------------------------------------------------------------------------------------------


def test_capturing_logs_bridges_a_logger_and_restores_it(capture: Capture) -> None:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    with capture.tracer_provider.get_tracer("t").start_as_current_span("work") as s:
        with capture.capturing_logs(level=logging.INFO):
            logging.getLogger("app.stage").info("voxels %d", 42, extra={"stage": "strip"})
            logging.getLogger("app.stage").debug("too detailed")
    logging.getLogger("app").warning("after the block")
    assert root.level == level and root.handlers == handlers
    (record,) = capture.snapshot().logs
    assert (record.body, record.severity_text, record.attributes["stage"]) == ("voxels 42", "INFO", "strip")
    assert record.span_id == s.get_span_context().span_id and record.scope.name == "app.stage"


def test_capturing_logs_on_a_named_logger(capture: Capture) -> None:
    with capture.capturing_logs(level=logging.DEBUG, logger="only.this"):
        logging.getLogger("only.this.child").debug("seen")
        logging.getLogger("elsewhere").error("not seen")
    assert [r.body for r in capture.snapshot().logs] == ["seen"]
    assert logging.getLogger("only.this").level == logging.NOTSET


# ---------------------------------------------------------------------------------------------
# The global install (needs a fresh process: the global API can be set once)
# ---------------------------------------------------------------------------------------------


def run_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_install_global_in_a_fresh_process_and_next_to_a_foreign_provider() -> None:
    out = run_python(
        """
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.trace import TracerProvider
        from telemetry_asserts.capture import Capture, install_global

        early = trace.get_tracer("early")          # a proxy fetched before the install
        a = Capture()
        print(install_global(a))
        with early.start_as_current_span("via_proxy"):
            pass
        metrics.get_meter("m").create_counter("c").add(1)
        print([s.name for s in a.snapshot().spans], [p.name for p in a.snapshot().metrics])
        b = Capture()                               # a second capture: traces still routed, metrics not
        print(install_global(b))
        with trace.get_tracer("x").start_as_current_span("both"):
            pass
        print([s.name for s in b.snapshot().spans])
        """
    )
    lines = out.splitlines()
    assert lines[0] == "GlobalInstall(traces=True, metrics=True, logs=True, problems=())"
    assert lines[1] == "['via_proxy'] ['c']"
    assert lines[2].startswith("GlobalInstall(traces=True, metrics=False, logs=False, problems=(")
    assert "a meter provider was installed globally before the plugin (MeterProvider)" in lines[2]
    assert lines[3] == "['both']"


# ---------------------------------------------------------------------------------------------
# Views
# ---------------------------------------------------------------------------------------------


def test_check_bundles_the_judges_over_any_telemetry(capture: Capture) -> None:
    with capture.tracer_provider.get_tracer("t").start_as_current_span("s"):
        pass
    capture.meter_provider.get_meter("m").create_counter("c").add(2)
    view = check(capture.snapshot())
    assert isinstance(view, TelemetryView) and isinstance(view.spans, SpanView)
    assert view.spans.one("s") and repr(view) == "TelemetryView(1 spans, 1 metric points, 0 logs)"
    from telemetry_asserts.logs import LogView
    from telemetry_asserts.metrics import MetricView

    assert isinstance(view.metrics, MetricView) and isinstance(view.logs, LogView)
    assert view.report().splitlines()[:2] == ["spans (1):", "  s (" + view.report().splitlines()[1].split("(")[1]]


def test_lint_is_reachable_from_the_view(capture: Capture) -> None:
    pytest.importorskip("telemetry_asserts.lint")
    with capture.tracer_provider.get_tracer("t").start_as_current_span("s", attributes={"password": "hunter2"}):
        pass
    report = check(capture.snapshot()).lint()
    assert "password" in str(report)


def test_live_view_re_snapshots_on_every_access(capture: Capture) -> None:
    live = LiveTelemetryView(capture)
    spans = LiveView(lambda: live.spans)
    assert len(spans) == 0 and not spans
    with live.tracer_provider.get_tracer("t").start_as_current_span("later"):
        pass
    assert len(spans) == 1 and spans[0].name == "later" and spans.one("later").name == "later"
    assert [s.name for s in spans] == ["later"] and spans == live.spans and spans[0] in spans
    assert live.meter_provider is capture.meter_provider and live.logger_provider is capture.logger_provider
    live.clear()
    assert live.snapshot() == model.Telemetry()
    assert repr(spans) == "live SpanView(0 spans: )"


# ---------------------------------------------------------------------------------------------
# Waiting
# ---------------------------------------------------------------------------------------------


def test_wait_until_retries_the_whole_assertion_until_it_passes(capture: Capture) -> None:
    live = LiveTelemetryView(capture)
    tracer = capture.tracer_provider.get_tracer("t")
    threading.Timer(0.05, lambda: tracer.start_span("async").end()).start()
    found = live.wait_until(lambda: live.spans.one("async"), timeout_s=10)
    assert found.name == "async"


def test_wait_until_fails_with_the_last_message_and_keeps_the_cause() -> None:
    calls = []

    def never() -> None:
        calls.append(1)
        raise TelemetryAssertionError(f"attempt {len(calls)}")

    with pytest.raises(TelemetryAssertionError) as info:
        wait_until(never, timeout_s=0.05, interval_s=0.01)
    n = len(calls)
    assert n >= 2 and str(info.value) == f"still failing after 0.05 s ({n} attempts): attempt {n}"
    assert isinstance(info.value.__cause__, TelemetryAssertionError)


def test_wait_until_with_zero_timeout_tries_once_and_other_errors_propagate() -> None:
    with pytest.raises(TelemetryAssertionError, match=r"^still failing after 0 s \(1 attempt\): nope$"):
        wait_until(lambda: (_ for _ in ()).throw(AssertionError("nope")), timeout_s=0)
    with pytest.raises(KeyError):
        wait_until(lambda: {}["missing"], timeout_s=5)
    with pytest.raises(ValueError, match="timeout_s must be >= 0"):
        wait_until(lambda: None, timeout_s=-1)
    before = []
    assert wait_until(lambda: 42, before_each=lambda: before.append(1)) == 42 and before == [1]
