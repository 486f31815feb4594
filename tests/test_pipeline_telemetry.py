"""pipeline.telemetry (providers from OTEL_*, bounded shutdown, once-only export errors, Prometheus)
and pipeline.tracing (@traced, open_resource, use_tracer)."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import urllib.request
from pathlib import Path

import pytest
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import sampling
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pipeline import __version__
from pipeline.config import PipelineConfig
from pipeline.processor import process_file
from pipeline.telemetry import (
    SCOPE_NAME,
    SERVICE_NAME,
    PipelineTelemetry,
    TelemetryConfigError,
    configure_from_env,
    default_telemetry,
    sampler_from_env,
)
from pipeline.tracing import open_resource, traced, use_tracer
from telemetry_asserts.capture import logs_from_sdk, spans_from_sdk
from telemetry_asserts.model import StatusCode
from telemetry_asserts.view import LiveTelemetryView

FAST = ("smooth",)


@pytest.fixture
def capture(telemetry: LiveTelemetryView) -> LiveTelemetryView:
    """The telemetry_asserts plugin's per-test capture (real SDK providers, in memory)."""
    return telemetry


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- configure_from_env ---------------------------------------------------------------------------


def test_default_is_no_exporters_with_the_service_identity() -> None:
    setup = configure_from_env({})
    try:
        assert setup.exporters == {"traces": (), "metrics": (), "logs": ()}
        attrs = setup.tracer_provider.resource.attributes
        assert attrs["service.name"] == SERVICE_NAME == "neuro-preprocess"
        assert attrs["service.version"] == __version__
        assert setup.meter_provider._sdk_config.resource.attributes["service.name"] == SERVICE_NAME
        assert isinstance(setup.tracer_provider.sampler, sampling.ParentBased)
    finally:
        setup.shutdown(1)


def test_service_name_and_resource_attributes_from_env() -> None:
    setup = configure_from_env({"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=course,service.name=ignored",
                                "OTEL_SERVICE_NAME": "neuro-student-7"})
    try:
        attrs = setup.tracer_provider.resource.attributes
        assert attrs["service.name"] == "neuro-student-7"  # OTEL_SERVICE_NAME wins, as the spec says
        assert attrs["deployment.environment"] == "course"
    finally:
        setup.shutdown(1)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER='zipkin': unsupported 'zipkin' (use otlp|console|none)"),
        ({"OTEL_LOGS_EXPORTER": "prometheus"}, "OTEL_LOGS_EXPORTER='prometheus': unsupported 'prometheus' (use otlp|console|none)"),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
         "OTEL_EXPORTER_OTLP_PROTOCOL='http/json' for traces: use grpc or http/protobuf"),
        ({"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER='sometimes': unsupported"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "half"},
         "OTEL_TRACES_SAMPLER_ARG='half' is not a ratio"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"},
         "OTEL_TRACES_SAMPLER_ARG='2' must be within [0, 1]"),
        ({"OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TIMEOUT": "soon"},
         "OTEL_EXPORTER_OTLP_TIMEOUT='soon' is not a number of seconds"),
        ({"OTEL_METRIC_EXPORT_INTERVAL": "often"}, "OTEL_METRIC_EXPORT_INTERVAL='often' is not milliseconds"),
        ({"OTEL_METRICS_EXPORTER": "prometheus", "OTEL_EXPORTER_PROMETHEUS_PORT": "http"},
         "OTEL_EXPORTER_PROMETHEUS_PORT='http' is not a port number"),
    ],
)
def test_unsupported_values_are_clear_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(TelemetryConfigError) as info:
        configure_from_env(env)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(
    ("env", "description"),
    [
        ({}, "ParentBased{root:AlwaysOnSampler"),
        ({"OTEL_TRACES_SAMPLER": "always_off"}, "AlwaysOffSampler"),
        ({"OTEL_TRACES_SAMPLER": "always_on"}, "AlwaysOnSampler"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}, "TraceIdRatioBased{0.25}"),
        ({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"},
         "ParentBased{root:TraceIdRatioBased{0.5}"),
        ({"OTEL_TRACES_SAMPLER": "parentbased_always_off"}, "ParentBased{root:AlwaysOffSampler"),
    ],
)
def test_sampler_from_env(env: dict[str, str], description: str) -> None:
    assert sampler_from_env(env).get_description().startswith(description)


def test_exporter_lists_and_per_signal_protocols_are_honoured() -> None:
    port = free_port()
    setup = configure_from_env({
        "OTEL_TRACES_EXPORTER": "otlp,console",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
    })
    try:
        assert setup.exporters["traces"] == ("otlp", "console")
        exporters = [type(p.span_exporter).__module__ if hasattr(p, "span_exporter") else type(p._batch_processor._exporter).__module__
                     for p in setup._span_processors]
        assert exporters[0].startswith("opentelemetry.exporter.otlp.proto.grpc")
        [log_proc] = setup._log_processors
        log_exporter = log_proc._batch_processor._exporter
        assert type(log_exporter).__module__.startswith("opentelemetry.exporter.otlp.proto.http")
        assert log_exporter._endpoint == f"http://127.0.0.1:{port}/v1/logs"
    finally:
        setup.shutdown(1)


def test_console_exporter_prints_spans(phantom: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    setup = configure_from_env({"OTEL_TRACES_EXPORTER": "console"})
    process_file(phantom, tmp_path, PipelineConfig.create(FAST), telemetry=setup.telemetry())
    setup.shutdown(2)
    out = capfd.readouterr().out
    assert '"name": "process_file"' in out and '"name": "write_metadata"' in out
    assert '"service.name": "neuro-preprocess"' in out


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_collector_down_finishes_writes_and_shuts_down_within_the_bound(
    protocol: str, phantom: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()  # nothing listens there
    env = {
        "OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "otlp", "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "1",
    }
    caplog.set_level(logging.WARNING)
    setup = configure_from_env(env)
    setup.instrument_logging(logging.INFO)
    tm = setup.telemetry()
    results = [process_file(phantom, tmp_path, PipelineConfig.create(FAST), telemetry=tm) for _ in range(3)]
    assert [r.status for r in results] == ["success"] * 3
    assert (tmp_path / "sub-01_T1w_preproc.nii.gz").exists()

    done = threading.Event()
    thread = threading.Thread(target=lambda: (setup.shutdown(timeout_s=2), done.set()), daemon=True)
    thread.start()
    thread.join(30)  # a hang guard, not a timing assertion: shutdown is bounded by its timeout_s
    assert done.is_set(), "shutdown did not return with the collector down"

    export_errors = [r for r in caplog.records if r.name.startswith("opentelemetry") and r.levelno >= logging.WARNING]
    assert len(export_errors) == 1, [r.getMessage() for r in export_errors]  # once, not per batch or signal
    assert export_errors[0].getMessage().startswith("telemetry export failed; further export errors are suppressed:")


def test_prometheus_exporter_serves_the_course_names(phantom: Path, tmp_path: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    port = free_port()
    setup = configure_from_env({"OTEL_METRICS_EXPORTER": "prometheus", "OTEL_EXPORTER_PROMETHEUS_PORT": str(port)})
    try:
        assert setup.prometheus_address == ("127.0.0.1", port)
        process_file(phantom, tmp_path, PipelineConfig.create(("smooth", "normalize")), telemetry=setup.telemetry())
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            text = response.read().decode()
    finally:
        setup.shutdown(2)
    samples = {(s.name, tuple(sorted((k, v) for k, v in s.labels.items() if not k.startswith("otel_scope")))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    scope = [s.labels.get("otel_scope_name") for f in text_string_to_metric_families(text) for s in f.samples
             if s.name == "neuro_stages_executed_total"]
    assert scope == ["neuro_preprocess", "neuro_preprocess"]
    assert samples[("neuro_stages_executed_total", (("stage", "smooth"),))] == 1
    assert samples[("neuro_files_processed_total", (("status", "success"),))] == 1
    assert samples[("neuro_process_duration_seconds_count", (("status", "success"),))] == 1
    assert ("neuro_input_size_bytes_count", ()) in samples


def test_prometheus_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(TelemetryConfigError) as info:
            configure_from_env({"OTEL_METRICS_EXPORTER": "prometheus", "OTEL_EXPORTER_PROMETHEUS_PORT": str(port)})
    assert str(info.value) == (f"cannot serve Prometheus metrics on 127.0.0.1:{port} (Address already in use); "
                               "set OTEL_EXPORTER_PROMETHEUS_PORT")


def test_logging_bridge_correlates_and_skips_opentelemetry_records(phantom: Path, tmp_path: Path) -> None:
    logs = InMemoryLogRecordExporter()
    spans = InMemorySpanExporter()
    setup = configure_from_env({}, extra_log_processors=[SimpleLogRecordProcessor(logs)],
                               extra_span_processors=[SimpleSpanProcessor(spans)])
    handler = setup.instrument_logging(logging.INFO)
    root = logging.getLogger()
    old = root.level
    root.setLevel(logging.INFO)
    try:
        process_file(phantom, tmp_path, PipelineConfig.create(FAST), telemetry=setup.telemetry())
        logging.getLogger("opentelemetry.exporter.fake").warning("must not be bridged")
    finally:
        root.setLevel(old)
        setup.shutdown(1)
    assert handler not in root.handlers  # removed by shutdown
    records = logs_from_sdk(logs.get_finished_logs())
    model_spans = {s.span_id: s for s in spans_from_sdk(spans.get_finished_spans())}
    [loading] = [r for r in records if r.body == "Loading file"]
    assert model_spans[loading.span_id].name == "load_file"
    assert not [r for r in records if r.body == "must not be bridged"]
    assert records[0].resource.service_name == SERVICE_NAME


# -- PipelineTelemetry --------------------------------------------------------------------------


def test_default_telemetry_is_shared_per_provider_pair() -> None:
    assert default_telemetry() is default_telemetry()
    setup = configure_from_env({})
    try:
        assert setup.telemetry() is setup.telemetry()
    finally:
        setup.shutdown(1)


def test_spans_carry_the_pipeline_scope(phantom: Path, tmp_path: Path, capture: LiveTelemetryView) -> None:
    tm = PipelineTelemetry(capture.tracer_provider, capture.meter_provider)
    process_file(phantom, tmp_path, PipelineConfig.create(FAST), telemetry=tm)
    scopes = {(s.scope.name, s.scope.version) for s in capture.snapshot().spans}
    assert scopes == {(SCOPE_NAME, __version__)}


# -- pipeline.tracing -----------------------------------------------------------------------------


@traced()
def add(a: int, b: int) -> int:
    return a + b


@traced("checked_division", attributes={"neuro.op": "divide"})
def divide(a: float, b: float) -> float:
    return a / b


@traced("async_work")
async def async_work(x: int) -> int:
    await asyncio.sleep(0)
    return await asyncio.to_thread(add, x, 1)


def test_traced_names_nests_and_records_errors(capture: LiveTelemetryView) -> None:
    tracer = capture.tracer_provider.get_tracer("test")
    with use_tracer(tracer), tracer.start_as_current_span("outer"):
        assert add(2, 3) == 5
        with pytest.raises(ZeroDivisionError):
            divide(1, 0)
    spans = {s.name: s for s in capture.snapshot().spans}
    assert spans["add"].parent_span_id == spans["outer"].span_id
    failed = spans["checked_division"]
    assert failed.attributes["neuro.op"] == "divide"
    assert failed.status_code is StatusCode.ERROR and failed.status_description == "ZeroDivisionError: division by zero"
    assert [e.attributes["exception.type"] for e in failed.exceptions()] == ["ZeroDivisionError"]
    assert spans["outer"].status_code is StatusCode.UNSET


def test_traced_async_keeps_context_through_await_and_threads(capture: LiveTelemetryView) -> None:
    tracer = capture.tracer_provider.get_tracer("test")

    async def main() -> int:
        with use_tracer(tracer):
            return await async_work(1)

    assert asyncio.run(main()) == 2
    spans = {s.name: s for s in capture.snapshot().spans}
    assert spans["add"].parent_span_id == spans["async_work"].span_id  # made in a worker thread


def test_open_resource_records_size_and_close(tmp_path: Path, capture: LiveTelemetryView) -> None:
    target = tmp_path / "data.bin"
    with use_tracer(capture.tracer_provider.get_tracer("test")):
        with open_resource(target, "wb") as fh:
            fh.write(b"x" * 1234)
        with open_resource(target) as fh:
            assert fh.read() == b"x" * 1234
    write, read = capture.snapshot().spans
    assert write.attributes == {"neuro.file.name": "data.bin", "neuro.file.mode": "wb", "neuro.file.size_bytes": 1234}
    assert [e.name for e in write.events] == ["file_closed"] and read.attributes["neuro.file.mode"] == "rb"
    assert fh.closed


def test_open_resource_errors(tmp_path: Path, capture: LiveTelemetryView) -> None:
    with use_tracer(capture.tracer_provider.get_tracer("test")):
        with pytest.raises(FileNotFoundError), open_resource(tmp_path / "nope.bin"):
            pass
        with pytest.raises(ValueError, match="bad header"), open_resource(tmp_path / "new.bin", "wb"):
            raise ValueError("bad header")
    missing, bad = capture.snapshot().spans
    assert missing.status_code is StatusCode.ERROR
    assert missing.status_description == "cannot open nope.bin: No such file or directory"
    assert str(tmp_path) not in missing.status_description
    assert bad.status_description == "ValueError: bad header" and len(bad.exceptions()) == 1
    assert bad.attributes["neuro.file.size_bytes"] == 0 and [e.name for e in bad.events] == ["exception", "file_closed"]
