"""The pytest plugin, exercised the way users meet it: in fresh pytest processes (pytester).

Each run is a subprocess because the OpenTelemetry global providers can be set once per process;
a fresh process is exactly what a project that only installs this package gets.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

SUITE = '''
import logging
import threading

import pytest
from opentelemetry import metrics, trace

tracer = trace.get_tracer("suite")  # global API, fetched at import time, before the plugin installs
meter = metrics.get_meter("suite")
files = meter.create_counter("files", unit="{file}")
latency = meter.create_histogram("latency", unit="s")
level = meter.create_gauge("level")


def test_global_api_spans_are_captured(telemetry):
    with tracer.start_as_current_span("process_file"):
        with tracer.start_as_current_span("load_file"):
            pass
    telemetry.spans.assert_tree("process_file\\n└─ load_file", exact=True)


def test_the_previous_test_spans_are_gone(spans):
    assert len(spans) == 0
    with tracer.start_as_current_span("mine"):
        pass
    assert spans.names() == ["mine"]  # the fixture is live: it sees spans ended after setup


def test_a_test_without_the_fixture_records_into_nothing_it_can_see():
    with tracer.start_as_current_span("unobserved"):
        pass


def test_spans_from_tests_without_the_fixture_do_not_leak(telemetry):
    assert telemetry.snapshot().spans == ()


def test_metric_deltas_first(telemetry):
    files.add(2, {"k": "a"})
    level.set(7)
    (f, g) = sorted(telemetry.snapshot().metrics, key=lambda p: p.name)
    assert (f.name, f.value, dict(f.attributes), f.unit) == ("files", 2, {"k": "a"}, "{file}")
    assert (g.name, g.value) == ("level", 7)


def test_metric_deltas_second_sees_only_its_own(telemetry):
    files.add(3, {"k": "a"})
    latency.record(1.0)
    latency.record(4.0)
    points = {p.name: p for p in telemetry.snapshot().metrics}
    assert sorted(points) == ["files", "latency"]  # the gauge was not set in this test
    assert points["files"].value == 3
    h = points["latency"]
    assert (h.count, h.sum, h.min, h.max) == (2, 5.0, 1.0, 4.0)
    files.add(1, {"k": "a"})
    assert {p.name: p for p in telemetry.snapshot().metrics}["files"].value == 4  # repeated snapshots add up


def test_untouched_metrics_are_absent(telemetry):
    assert telemetry.snapshot().metrics == ()


def test_injected_providers_are_the_captured_ones(telemetry):
    injected = telemetry.tracer_provider.get_tracer("injected")
    with injected.start_as_current_span("injected_span"):
        pass
    telemetry.meter_provider.get_meter("injected").create_counter("injected_total").add(1)
    assert telemetry.spans.one("injected_span").scope.name == "injected"
    assert [p.name for p in telemetry.snapshot().metrics] == ["injected_total"]
    assert telemetry.tracer_provider is trace.get_tracer_provider()


def test_logs_are_bridged_and_correlated(telemetry, logs):
    with tracer.start_as_current_span("work") as span:
        logging.getLogger("app").info("inside %s", "work", extra={"file": "a.nii"})
    logging.getLogger("app").info("outside")
    inside, outside = telemetry.snapshot().logs
    assert (inside.body, inside.severity_text, inside.attributes["file"]) == ("inside work", "INFO", "a.nii")
    assert (inside.trace_id, inside.span_id) == (span.get_span_context().trace_id, span.get_span_context().span_id)
    assert not outside.is_correlated
    assert len(logs.records) == 2


def test_the_log_bridge_is_removed_after_the_test():
    assert not any("LoggingHandler" in type(h).__name__ for h in logging.getLogger().handlers)
    assert logging.getLogger().level == logging.WARNING


def test_clear_starts_over(telemetry):
    with tracer.start_as_current_span("before"):
        pass
    files.add(5)
    telemetry.clear()
    with tracer.start_as_current_span("after"):
        pass
    assert telemetry.spans.names() == ["after"]
    assert telemetry.snapshot().metrics == ()


def test_wait_until_sees_a_span_ended_later(telemetry):
    timer = threading.Timer(0.05, lambda: tracer.start_span("late").end())
    timer.start()
    assert telemetry.wait_until(lambda: telemetry.spans.one("late"), timeout_s=10).name == "late"


def test_wait_until_fails_with_the_last_message(telemetry):
    with pytest.raises(AssertionError, match=r"still failing after 0.1 s \\(\\d+ attempts\\): no span matches name='never'"):
        telemetry.wait_until(lambda: telemetry.spans.one("never"), timeout_s=0.1)


def test_the_fixture_can_be_requested_late(request):
    with tracer.start_as_current_span("early"):
        pass
    telemetry = request.getfixturevalue("telemetry")
    with tracer.start_as_current_span("late"):
        pass
    assert telemetry.spans.names() == ["late"]
'''

N_SUITE = SUITE.count("\ndef test_")


def test_fixtures_isolate_tests_and_capture_the_global_api(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=N_SUITE)


def test_works_under_xdist(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=N_SUITE)


FAILING = '''
from opentelemetry import metrics, trace

tracer = trace.get_tracer("suite")
files = metrics.get_meter("suite").create_counter("files.processed", unit="{file}")


def test_tree_fails(telemetry):
    with tracer.start_as_current_span("process_file"):
        with tracer.start_as_current_span("skul_strip"):
            pass
    files.add(1, {"status": "ok"})
    telemetry.spans.assert_tree("process_file\\n└─ skull_strip")


def test_attributes_compare(spans):
    with tracer.start_as_current_span("a", attributes={"x": 1}):
        pass
    assert spans.one("a").attributes == {"x": 2, "y": "z"}


def test_fails_without_the_fixture():
    assert 1 == 2
'''


def test_failing_tests_get_a_captured_telemetry_section(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_failing=FAILING)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=3)
    out = result.stdout.str()
    # The assertion message: both trees, the missing span and its closest candidate.
    result.stdout.fnmatch_lines(
        [
            "E   *TelemetryAssertionError: span tree does not match (partial, any order): missing span "
            "'skull_strip' under process_file; closest candidate: 'skul_strip' (a child of process_file)",
            "E       expected:",
            "E         process_file",
            "E         └─ skull_strip  <-- missing",
            "E       recorded (2 spans in 1 trace):",
            "E         process_file (*)",
            "E         └─ skul_strip (*)  <-- closest candidate",
        ]
    )
    # The report section, like "Captured log call": spans with durations, then metric points.
    result.stdout.fnmatch_lines(
        [
            "*- Captured telemetry call -*",
            "spans (2):",
            "  process_file (*)",
            "  └─ skul_strip (*)",
            "metric points (1):",
            "  files.processed (counter, unit '{file}')",
            "    {status='ok'} value=1",
            "log records (0):",
            "  (no log records)",
        ]
    )
    # pytest_assertrepr_compare explains attribute mappings the OpenTelemetry way.
    result.stdout.fnmatch_lines(
        [
            "E       AssertionError: assert Attributes({'x': 1}) == {'x': 2, 'y': 'z'}",
            "E         recorded attributes differ from the expected mapping:",
            "E         attribute 'x': expected 2 (int), got 1 (int)",
            "E         missing attribute 'y', expected 'z' (str)",
        ]
    )
    assert out.count("Captured telemetry call") == 2  # not for the test without the fixture


FOREIGN_CONFTEST = '''
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

# The project installed its own providers before the plugin could.
trace.set_tracer_provider(TracerProvider())
metrics.set_meter_provider(MeterProvider())
'''

FOREIGN_SUITE = '''
import logging

from opentelemetry import trace

def test_spans_reach_the_capture_through_the_foreign_provider(telemetry):
    with trace.get_tracer("x").start_as_current_span("foreign"):
        logging.getLogger("app").info("below the bridge level")
        logging.getLogger("app").warning("at the bridge level")
    telemetry.spans.one("foreign")
    assert [r.body for r in telemetry.snapshot().logs] == ["at the bridge level"]

def test_fails(telemetry):
    with trace.get_tracer("x").start_as_current_span("foreign"):
        pass
    assert False
'''


def test_options_no_report_log_level_and_a_foreign_global_provider(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(FOREIGN_CONFTEST)
    pytester.makepyfile(test_foreign=FOREIGN_SUITE)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--telemetry-no-report", "--telemetry-log-level=WARNING", "-W",
        "default::pytest.PytestWarning",
    )
    result.assert_outcomes(passed=1, failed=1)
    assert "Captured telemetry" not in result.stdout.str()
    result.stdout.fnmatch_lines(
        ["*PytestWarning: telemetry_asserts: a meter provider was installed globally before the plugin "
         "(MeterProvider): global metrics are not captured"]
    )


def test_the_plugin_can_be_disabled(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_off="def test_uses(telemetry):\n    pass\n\ndef test_plain():\n    pass\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:telemetry_asserts", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*fixture 'telemetry' not found*"])


def test_help_lists_the_options(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help", "-p", "no:benchmark")
    result.stdout.fnmatch_lines(
        [
            "telemetry assertions (telemetry_asserts):",
            "*--telemetry-no-report*",
            "*--telemetry-report-lines=N*",
            "*--telemetry-log-level=LEVEL*",
            "*--telemetry-no-global*",
        ]
    )


def test_a_bad_log_level_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest("--telemetry-log-level=LOUD")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--telemetry-log-level: unknown level 'LOUD' (use DEBUG, INFO, ..., or off)"])


def test_explicit_dash_p_works_with_plugin_autoload_disabled(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`pytest -p telemetry_asserts` in a project that turns autoloading of plugins off."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(
        test_explicit=(
            "from opentelemetry import trace\n\n"
            "def test_uses(spans):\n"
            "    with trace.get_tracer('x').start_as_current_span('explicit'):\n"
            "        pass\n"
            "    spans.one('explicit')\n"
        )
    )
    without = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    without.assert_outcomes(errors=1)
    result = pytester.runpytest_subprocess("-p", "telemetry_asserts", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_no_global_keeps_the_global_api_untouched_and_report_lines_truncate(pytester: pytest.Pytester) -> None:
    # In-process is safe here: with --telemetry-no-global the inner run never sets a global provider.
    pytester.makepyfile(
        test_local='''
from opentelemetry import trace

def test_injected_only(telemetry):
    with telemetry.tracer_provider.get_tracer("x").start_as_current_span("injected"):
        pass
    with trace.get_tracer("x").start_as_current_span("global_api"):
        pass
    assert telemetry.tracer_provider is not trace.get_tracer_provider()
    assert telemetry.spans.names() == ["injected"]

def test_report_is_truncated(telemetry):
    tracer = telemetry.tracer_provider.get_tracer("x")
    with tracer.start_as_current_span("root"):
        for i in range(5):
            with tracer.start_as_current_span(f"child{i}"):
                pass
    assert False
'''
    )
    result = pytester.runpytest(
        "--telemetry-no-global", "--telemetry-report-lines=2", "-p", "no:cacheprovider", "-p", "no:benchmark"
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*- Captured telemetry call -*", "spans (6):", "  root (*)", "  ├─ child0 (*)", "  ... 4 more lines",
         "metric points (0):"]
    )


OTLP_USER = '''
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor


def test_receives_what_an_exporter_sends(otlp_receiver):
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=otlp_receiver.http_endpoint + "/v1/traces")))
    with tp.get_tracer("user").start_as_current_span("outer"):
        with tp.get_tracer("user").start_as_current_span("inner"):
            pass
    tp.shutdown()
    spans = otlp_receiver.wait_for_spans(n=2, timeout_s=10)
    assert sorted(s.name for s in spans) == ["inner", "outer"]
'''


def test_otlp_receiver_fixture_comes_with_the_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_otlp_user=OTLP_USER)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
