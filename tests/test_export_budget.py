"""The OTLP exporters' retry budget outlasts a collector restart, and shutdown still ends on time
(issue 13 item 9; the restart itself is exercised against a real collector in integration/test_faults.py)."""

from __future__ import annotations

import socket

from pipeline.telemetry import DEFAULT_EXPORT_TIMEOUT_S, GRPC_MAX_RECONNECT_BACKOFF_MS, configure_from_env


def _refused_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # closed again: connections are refused


def _env(protocol: str, **extra: str) -> dict[str, str]:
    return {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_LOGS_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol, "OTEL_EXPORTER_OTLP_ENDPOINT": _refused_endpoint(), **extra}


def test_the_retry_budget_covers_a_restart_and_grpc_reconnects_promptly() -> None:
    assert DEFAULT_EXPORT_TIMEOUT_S >= 10.0  # retries at ~1, 3, 7 s: a restart of a few seconds loses nothing
    setup = configure_from_env(_env("grpc"))
    try:
        for exporter in setup._otlp_exporters:
            assert exporter._timeout == DEFAULT_EXPORT_TIMEOUT_S
            options = dict(exporter._channel_options)
            assert options["grpc.max_reconnect_backoff_ms"] == GRPC_MAX_RECONNECT_BACKOFF_MS
        assert len(setup._otlp_exporters) == 3
    finally:
        setup.shutdown(0.5)
    explicit = configure_from_env(_env("http/protobuf", OTEL_EXPORTER_OTLP_TIMEOUT="2.5"))
    try:
        # the environment still decides (the HTTP exporters keep it on their client)
        assert all((getattr(e, "_timeout", None) or e._client._timeout) == 2.5 for e in explicit._otlp_exporters)
    finally:
        explicit.shutdown(0.5)


def test_shutdown_stops_exporters_still_retrying_a_collector_that_is_gone() -> None:
    setup = configure_from_env(_env("grpc", OTEL_BSP_SCHEDULE_DELAY="10"))
    tracer = setup.tracer_provider.get_tracer("t")
    for i in range(3):
        tracer.start_span(f"s{i}").end()
    setup.shutdown(0.5)  # the span exporter is inside its 10 s of retries now
    span_exporter = setup._otlp_exporters[0]
    assert span_exporter._shutdown and span_exporter._shutdown_in_progress.is_set()  # its retry wait is over
