"""LogView: selection by body/severity/attributes, and trace correlation (real SDK records)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from telemetry_asserts.capture import logs_from_sdk, spans_from_sdk
from telemetry_asserts.errors import TelemetryAssertionError
from telemetry_asserts.logs import LogView, severity_range
from telemetry_asserts.matchers import Contains, Regex
from telemetry_asserts.model import Attributes, LogRecord, Span


@dataclass
class Run:
    spans: tuple[Span, ...]
    logs: LogView


def _handler(provider: LoggerProvider) -> logging.Handler:
    from opentelemetry.instrumentation.logging.handler import LoggingHandler

    return LoggingHandler(level=logging.NOTSET, logger_provider=provider)


@pytest.fixture()
def run() -> Iterator[Run]:
    """A real SDK run: logs inside spans, one outside any span."""
    span_exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    log_exporter = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
    log = logging.getLogger("test_logs.pipeline")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    handler = _handler(logger_provider)
    log.addHandler(handler)
    tracer = tracer_provider.get_tracer("test")
    try:
        log.info("starting batch")  # outside any span: trace id 0
        with tracer.start_as_current_span("process_file"):
            with tracer.start_as_current_span("load_file"):
                log.info("loading file", extra={"neuro.subject_id": "sub-01"})
            log.warning("low contrast", extra={"neuro.contrast": 0.2})
            log.error("mask failed")
        logger_provider.force_flush()
        yield Run(
            spans_from_sdk(span_exporter.get_finished_spans()),
            LogView(
                logs_from_sdk(log_exporter.get_finished_logs()), spans_from_sdk(span_exporter.get_finished_spans())
            ),
        )
    finally:
        log.removeHandler(handler)
        logger_provider.shutdown()
        tracer_provider.shutdown()


def span(run: Run, name: str) -> Span:
    return next(s for s in run.spans if s.name == name)


class TestSeverity:
    def test_ranges(self) -> None:
        assert severity_range("warning") == (13, 16)
        assert severity_range("WARN") == (13, 16)
        assert severity_range("CRITICAL") == (21, 24)
        assert severity_range("INFO2") == (10, 10)
        assert severity_range(17) == (17, 17)
        with pytest.raises(ValueError, match=r"unknown severity 'WARNNING' \(did you mean 'WARNING'\?\)"):
            severity_range("WARNNING")
        with pytest.raises(ValueError):
            severity_range(0)

    def test_text_only_records_are_judged_by_text(self) -> None:
        view = LogView([LogRecord("x", severity_text="ERROR"), LogRecord("y", severity_text="debug")])
        assert view.where(min_severity="WARNING").bodies == ["x"]
        assert view.where(severity="DEBUG").bodies == ["y"]


class TestSelection:
    def test_where_body_severity_attributes(self, run: Run) -> None:
        logs = run.logs
        assert logs.bodies == ["starting batch", "loading file", "low contrast", "mask failed"]
        assert logs.where(severity="WARNING").bodies == ["low contrast"]
        assert logs.where(min_severity="WARNING").bodies == ["low contrast", "mask failed"]
        assert logs.where(body=Regex("lo.*")).bodies == ["loading file", "low contrast"]
        assert logs.where(attributes={"neuro.subject_id": "sub-01"}).bodies == ["loading file"]
        assert logs.where(body=Contains("mask"), severity=17).bodies == ["mask failed"]

    def test_one(self, run: Run) -> None:
        assert run.logs.one(severity="ERROR").body == "mask failed"
        with pytest.raises(
            TelemetryAssertionError, match="expected exactly one log record with severity at least 'INFO', found 4"
        ):
            run.logs.one(min_severity="INFO")

    def test_assert_log_passes_and_counts(self, run: Run) -> None:
        rec = run.logs.assert_log(body="low contrast", severity="WARNING", attributes={"neuro.contrast": 0.2})
        assert rec.severity_text == "WARN" or rec.severity_text == "WARNING"
        run.logs.assert_log(min_severity="INFO", count=4)

    def test_assert_log_message_pinned(self) -> None:
        view = LogView(
            [
                LogRecord(
                    "loading file",
                    severity_text="INFO",
                    severity_number=9,
                    attributes=Attributes({"neuro.subject_id": "sub-01"}),
                ),
                LogRecord("mask failed", severity_text="ERROR", severity_number=17),
            ]
        )
        with pytest.raises(TelemetryAssertionError) as info:
            view.assert_log(body="loading files", severity="WARNING", attributes={"neuro.subject": "sub-01"})
        assert str(info.value) == (
            "expected a log record with body='loading files' severity='WARNING' "
            "attributes {neuro.subject='sub-01'}, found 0\n"
            "closest: [INFO] 'loading file' {neuro.subject_id='sub-01'}\n"
            "  body: expected 'loading files' (str), got 'loading file' (str)\n"
            "  severity: expected WARNING, got INFO\n"
            "  missing attribute 'neuro.subject' (did you mean 'neuro.subject_id'?), expected 'sub-01' (str)\n"
            "recorded logs (2):\n"
            "  [INFO] 'loading file' {neuro.subject_id='sub-01'}\n"
            "  [ERROR] 'mask failed' {}"
        )

    def test_assert_log_count_message(self) -> None:
        view = LogView([LogRecord("a", severity_number=9, severity_text="INFO")] * 2)
        with pytest.raises(TelemetryAssertionError) as info:
            view.assert_log(body="a", count=1)
        assert str(info.value) == (
            "expected 1 log record with body='a', found 2\nrecorded logs (2):\n  [INFO] 'a' {}\n  [INFO] 'a' {}"
        )

    def test_long_listings_are_capped(self) -> None:
        view = LogView([LogRecord(f"m{i}", severity_number=9, severity_text="INFO") for i in range(45)])
        with pytest.raises(TelemetryAssertionError) as info:
            view.assert_log(body="zzz", severity="INFO")
        lines = str(info.value).splitlines()
        assert lines[-2:] == ["  [INFO] 'm39' {}", "  ... and 5 more"]
        assert len(lines) == 1 + 2 + 1 + 40 + 1

    def test_long_bodies_are_shortened(self) -> None:
        from telemetry_asserts.logs import describe_log

        text = describe_log(LogRecord("x" * 500, severity_text="INFO", attributes=Attributes({"k": "v" * 200})))
        assert text == "[INFO] '" + "x" * 156 + "... {k='" + "v" * 76 + "...}"

    def test_assert_no_log(self, run: Run) -> None:
        run.logs.assert_no_log(min_severity="FATAL")
        with pytest.raises(TelemetryAssertionError) as info:
            run.logs.assert_no_log(min_severity="ERROR")
        assert str(info.value).startswith(
            "expected no log record with severity at least 'ERROR', found 1:\n  [ERROR] 'mask failed' {"
        )


class TestCorrelation:
    def test_log_inside_span_is_correlated(self, run: Run) -> None:
        run.logs.assert_correlated(span(run, "load_file"), where={"body": "loading file"})
        run.logs.assert_correlated("process_file", where={"min_severity": "WARNING"})

    def test_accepts_the_span_that_spanview_one_returns(self, run: Run) -> None:
        from telemetry_asserts.spans import SpanView

        load = SpanView(run.spans).one(name="load_file")  # a SpanAssert, not a bare Span
        run.logs.assert_correlated(load, where={"body": "loading file"})
        with pytest.raises(TelemetryAssertionError, match="not correlated with span 'load_file'"):
            run.logs.assert_correlated(load, where={"body": "low contrast"})

    def test_wrong_span_shows_both_ids(self, run: Run) -> None:
        load = span(run, "load_file")
        with pytest.raises(TelemetryAssertionError) as info:
            run.logs.assert_correlated(load, where={"body": "low contrast"})
        text = str(info.value)
        assert text.startswith("1 of 1 log record(s) not correlated with span 'load_file':\n")
        assert f"  span 'load_file': trace_id={load.trace_id_hex} span_id={load.span_id_hex}\n" in text
        proc = span(run, "process_file")
        assert f"trace_id={proc.trace_id_hex} span_id={proc.span_id_hex} (span 'process_file')" in text

    def test_zero_trace_id_never_passes(self, run: Run) -> None:
        outside = run.logs.one(body="starting batch")
        assert outside.trace_id == 0
        with pytest.raises(TelemetryAssertionError) as info:
            run.logs.assert_all_correlated()
        assert str(info.value) == (
            "1 of 4 log record(s) not correlated with a recorded span:\n"
            "  [INFO] 'starting batch' {"
            + ", ".join(f"{k}={v!r}" for k, v in outside.attributes.items())
            + "}: trace_id=00000000000000000000000000000000 span_id=0000000000000000"
            " (no trace context: emitted outside any span?)"
        )
        run.logs.assert_all_correlated(where=lambda r: r.body != "starting batch")

    def test_zero_ids_fail_even_against_a_zero_span(self) -> None:
        zero_span = Span("weird", trace_id=0, span_id=0)
        view = LogView([LogRecord("x")], [zero_span])
        with pytest.raises(TelemetryAssertionError, match="no trace context"):
            view.assert_correlated(zero_span)
        with pytest.raises(TelemetryAssertionError):
            view.assert_all_correlated()

    def test_ids_of_unknown_span(self) -> None:
        view = LogView([LogRecord("x", trace_id=5, span_id=6)], [Span("a", trace_id=1, span_id=2)])
        with pytest.raises(TelemetryAssertionError, match=r"\(no recorded span has these ids\)"):
            view.assert_all_correlated()
        LogView([LogRecord("x", trace_id=5, span_id=6)]).assert_all_correlated()  # no spans known: ids only

    def test_nothing_selected_fails(self, run: Run) -> None:
        with pytest.raises(TelemetryAssertionError, match="no log record selected to check against span 'load_file'"):
            run.logs.assert_correlated("load_file", where={"body": "nope"})
        with pytest.raises(TelemetryAssertionError, match="nothing to check"):
            LogView([]).assert_all_correlated()

    def test_span_by_name_must_be_unique_and_suggests(self, run: Run) -> None:
        with pytest.raises(
            TelemetryAssertionError, match=r"no single span named 'load_files' \(did you mean 'load_file'\?\)"
        ):
            run.logs.assert_correlated("load_files")


class TestMessagesPinned:
    def test_one_and_no_log(self) -> None:
        view = LogView([LogRecord("a", severity_text="ERROR", severity_number=17)] * 2)
        with pytest.raises(TelemetryAssertionError) as info:
            view.one(body="a")
        assert str(info.value) == (
            "expected exactly one log record with body='a', found 2\n"
            "recorded logs (2):\n"
            "  [ERROR] 'a' {}\n"
            "  [ERROR] 'a' {}"
        )
        with pytest.raises(TelemetryAssertionError) as info:
            view.assert_no_log(min_severity="ERROR", attributes={})
        assert str(info.value) == (
            "expected no log record with severity at least 'ERROR' attributes {}, found 2:\n"
            "  [ERROR] 'a' {}\n"
            "  [ERROR] 'a' {}"
        )

    def test_correlation_messages(self) -> None:
        a1, a2 = Span("a", trace_id=1, span_id=2), Span("a", trace_id=1, span_id=3)
        view = LogView([LogRecord("x", severity_text="INFO", trace_id=1, span_id=3)], [a1, a2])
        with pytest.raises(TelemetryAssertionError) as info:
            view.assert_correlated("a")
        assert str(info.value) == "no single span named 'a': 2 spans have that name, pass the Span"
        with pytest.raises(TelemetryAssertionError) as info:
            view.assert_correlated(a1)
        assert str(info.value) == (
            "1 of 1 log record(s) not correlated with span 'a':\n"
            "  span 'a': trace_id=00000000000000000000000000000001 span_id=0000000000000002\n"
            "  log [INFO] 'x' {}: trace_id=00000000000000000000000000000001 span_id=0000000000000003 (span 'a')"
        )
        with pytest.raises(TelemetryAssertionError) as info:
            view.assert_correlated(a1, where={"body": "nope"})
        assert str(info.value) == (
            "no log record selected to check against span 'a'\nrecorded logs (1):\n  [INFO] 'x' {}"
        )
