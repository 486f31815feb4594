"""The OTLP receiver: OTLP/HTTP answers per the spec, gRPC, buffering that never drops, bounds."""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterable

import grpc
import pytest
from google.rpc import code_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from telemetry_asserts import model
from telemetry_asserts.errors import TelemetryAssertionError
from telemetry_asserts.otlp import OtlpReceiver, ReceiverStats, encode_request

PB = "application/x-protobuf"
JSON = "application/json"


def _spans(*names: str, trace_id: int = 0xABC) -> model.Telemetry:
    return model.Telemetry(spans=tuple(model.Span(n, trace_id, i + 1) for i, n in enumerate(names)))


def _post(
    receiver: OtlpReceiver, path: str, body: bytes | Iterable[bytes], content_type: str | None = PB,
    **headers: str,
) -> tuple[int, http.client.HTTPResponse, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", receiver.http_port, timeout=10)
    try:
        all_headers = {k.replace("_", "-"): v for k, v in headers.items()}
        if content_type is not None:
            all_headers["Content-Type"] = content_type
        chunked = not isinstance(body, bytes)
        conn.request("POST", path, body=body, headers=all_headers, encode_chunked=chunked)
        response = conn.getresponse()
        return response.status, response, response.read()
    finally:
        conn.close()


def _status(body: bytes) -> status_pb2.Status:
    return status_pb2.Status.FromString(body)


# -- OTLP/HTTP responses -------------------------------------------------------------------------


def test_garbage_post_gets_400_with_a_status_and_the_receiver_keeps_working(otlp_receiver: OtlpReceiver) -> None:
    status, response, body = _post(otlp_receiver, "/v1/traces", b"\xff\xfe garbage \x00\x01")
    assert status == 400 and response.getheader("Content-Type") == PB
    error = _status(body)
    assert error.code == code_pb2.INVALID_ARGUMENT
    assert error.message.startswith("invalid protobuf ExportTraceServiceRequest: ")

    status, response, body = _post(otlp_receiver, "/v1/traces", encode_request("traces", _spans("after")))
    assert (status, body, response.getheader("Content-Type")) == (200, b"", PB)  # empty ExportTraceServiceResponse
    assert [s.name for s in otlp_receiver.telemetry().spans] == ["after"]
    stats = otlp_receiver.stats
    assert (stats.requests, stats.rejected, stats.last_error) == (2, 1, error.message)


def test_json_requests_get_json_responses(otlp_receiver: OtlpReceiver) -> None:
    status, response, body = _post(otlp_receiver, "/v1/logs", encode_request(
        "logs", model.Telemetry(logs=(model.LogRecord("hello"),)), JSON), "application/json; charset=utf-8")
    assert (status, body, response.getheader("Content-Type")) == (200, b"{}", JSON)
    assert otlp_receiver.telemetry().logs[0].body == "hello"

    status, response, body = _post(otlp_receiver, "/v1/logs", b'{"resourceLogs": "nope"}', JSON)
    assert status == 400 and response.getheader("Content-Type") == JSON
    error = json.loads(body)
    assert error["code"] == code_pb2.INVALID_ARGUMENT
    assert error["message"].startswith("invalid OTLP/JSON for ExportLogsServiceRequest: ")


def test_gzip_bodies_are_accepted(otlp_receiver: OtlpReceiver) -> None:
    body = gzip.compress(encode_request("traces", _spans("zipped")))
    status, _, _ = _post(otlp_receiver, "/v1/traces", body, Content_Encoding="gzip")
    assert status == 200
    assert otlp_receiver.wait_for_spans(name="zipped")[0].trace_id == 0xABC
    assert otlp_receiver.stats.bytes == len(body)


def test_chunked_bodies_are_accepted(otlp_receiver: OtlpReceiver) -> None:
    body = encode_request("traces", _spans("chunked"))
    status, _, _ = _post(otlp_receiver, "/v1/traces", iter([body[:5], body[5:]]))
    assert status == 200 and otlp_receiver.telemetry().spans[0].name == "chunked"


def test_oversize_bodies_get_413_before_being_read_and_after_decompression() -> None:
    with OtlpReceiver(grpc_port=None, max_body_bytes=1024) as receiver:
        status, response, body = _post(receiver, "/v1/traces", b"\0" * 4096)
        assert status == 413 and response.getheader("Connection") == "close"
        assert _status(body) == status_pb2.Status(
            code=code_pb2.RESOURCE_EXHAUSTED, message="body of 4096 bytes exceeds the limit of 1024 bytes")

        status, _, body = _post(receiver, "/v1/traces", gzip.compress(b"\0" * 1_000_000), Content_Encoding="gzip")
        assert status == 413
        assert _status(body).message == "gzip body inflates beyond the limit of 1024 bytes"

        status, _, body = _post(receiver, "/v1/traces", iter([b"\0" * 800, b"\0" * 800]))
        assert status == 413 and _status(body).message == "chunked body exceeds the limit of 1024 bytes"

        assert _post(receiver, "/v1/traces", encode_request("traces", _spans("small")))[0] == 200
        assert receiver.stats.rejected == 3


@pytest.mark.parametrize(
    ("method", "path", "content_type", "status", "message"),
    [
        ("POST", "/v1/profiles", PB, 404,
         "unknown path '/v1/profiles'; OTLP/HTTP paths are /v1/traces, /v1/metrics, /v1/logs"),
        ("GET", "/v1/traces", None, 405, "method GET not allowed; OTLP/HTTP uses POST"),
        ("GET", "/", None, 404, "unknown path '/'"),
    ],
)
def test_unknown_paths_and_methods(
    otlp_receiver: OtlpReceiver, method: str, path: str, content_type: str | None, status: int, message: str
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", otlp_receiver.http_port, timeout=10)
    conn.request(method, path, body=b"" if method == "POST" else None,
                 headers={"Content-Type": content_type} if content_type else {})
    response = conn.getresponse()
    assert (response.status, response.read().decode()) == (status, message)
    if status == 405:
        assert response.getheader("Allow") == "POST"
    conn.close()


def test_unknown_content_type_gets_415(otlp_receiver: OtlpReceiver) -> None:
    status, _, body = _post(otlp_receiver, "/v1/metrics", b"{}", "text/plain")
    assert status == 415
    assert _status(body).message == (
        "unsupported Content-Type 'text/plain'; expected application/x-protobuf or application/json")
    assert _post(otlp_receiver, "/v1/metrics", b"{}", None)[0] == 415


def test_missing_content_length_gets_411(otlp_receiver: OtlpReceiver) -> None:
    with socket.create_connection(("127.0.0.1", otlp_receiver.http_port), timeout=10) as sock:
        sock.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n\r\n")
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 411 ")
    assert otlp_receiver.stats.last_error == "Content-Length required"


@pytest.mark.parametrize(
    ("head", "body", "status", "message"),
    [
        (b"Content-Length: abc\r\n", b"", 400, "invalid Content-Length 'abc'"),
        (b"Content-Length: -1\r\n", b"", 400, "invalid Content-Length '-1'"),
        (b"Content-Length: 10\r\n", b"12345", 400, "body ended after 5 of 10 bytes"),
        (b"Transfer-Encoding: chunked\r\n", b"zz\r\n", 400, "invalid chunk size line b'zz\\r\\n'"),
        (b"Transfer-Encoding: chunked\r\n", b"5\r\n12\r\n", 400, "truncated or malformed chunk"),
    ],
)
def test_broken_framing_is_rejected_with_the_reason(
    otlp_receiver: OtlpReceiver, head: bytes, body: bytes, status: int, message: str
) -> None:
    with socket.create_connection(("127.0.0.1", otlp_receiver.http_port), timeout=10) as sock:
        sock.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n" + head
                     + b"\r\n" + body)
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(65536):  # the receiver closes the connection after an error
            reply += chunk
    assert reply.startswith(f"HTTP/1.1 {status} ".encode())
    assert _status(reply.split(b"\r\n\r\n", 1)[1]).message == message
    assert otlp_receiver.stats.last_error == message


def test_an_internal_error_is_a_500_with_the_reason_and_the_receiver_survives(
    otlp_receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    import telemetry_asserts.otlp.receiver as receiver_module

    def broken(*args: object, **kwargs: object) -> model.Telemetry:
        raise RuntimeError("decoder bug")

    monkeypatch.setattr(receiver_module, "decode_request", broken)  # a bug cannot be provoked for real
    status, _, body = _post(otlp_receiver, "/v1/traces", b"")
    assert status == 500
    assert _status(body) == status_pb2.Status(code=code_pb2.INTERNAL, message="internal error: RuntimeError: decoder bug")
    monkeypatch.undo()
    assert _post(otlp_receiver, "/v1/traces", encode_request("traces", _spans("fine")))[0] == 200


# -- buffering ---------------------------------------------------------------------------------


def test_waiting_for_one_span_never_drops_the_others(otlp_receiver: OtlpReceiver) -> None:
    _post(otlp_receiver, "/v1/traces", encode_request("traces", _spans("load", "n4", "write")))
    assert [s.name for s in otlp_receiver.wait_for_spans(name="n4")] == ["n4"]
    assert [s.name for s in otlp_receiver.wait_for_spans(2)] == ["load", "n4", "write"]
    assert [s.name for s in otlp_receiver.telemetry().spans] == ["load", "n4", "write"]  # replayable
    otlp_receiver.clear()
    assert otlp_receiver.telemetry() == model.Telemetry()
    assert otlp_receiver.stats.requests == 1  # counters survive clear()


def test_wait_for_wakes_up_when_data_arrives(otlp_receiver: OtlpReceiver) -> None:
    def send_later() -> None:
        time.sleep(0.1)
        _post(otlp_receiver, "/v1/traces", encode_request("traces", _spans("late")))

    sender = threading.Thread(target=send_later)
    sender.start()
    got = otlp_receiver.wait_for(lambda t: any(s.name == "late" for s in t.spans), timeout_s=10)
    sender.join()
    assert [s.name for s in got.spans] == ["late"]


def test_wait_timeout_says_what_was_awaited_and_what_arrived(otlp_receiver: OtlpReceiver) -> None:
    _post(otlp_receiver, "/v1/traces", encode_request("traces", _spans("stage.n4")))
    with pytest.raises(TelemetryAssertionError) as info:
        otlp_receiver.wait_for_spans(name="stage.n5", timeout_s=0.05)
    assert str(info.value) == (
        "timed out after 0.05 s waiting for 1 span(s) named 'stage.n5'; received 1 span(s) ['stage.n4'], "
        "0 metric point(s), 0 log record(s) (did you mean 'stage.n4'?)"
    )
    with pytest.raises(TelemetryAssertionError) as info:
        otlp_receiver.wait_for(lambda t: bool(t.logs), timeout_s=0.05, description="any log record")
    assert str(info.value) == (
        "timed out after 0.05 s waiting for any log record; received 1 span(s) ['stage.n4'], "
        "0 metric point(s), 0 log record(s)"
    )


def test_max_buffered_items_bounds_memory_and_reports_partial_success() -> None:
    with OtlpReceiver(grpc_port=None, max_buffered_items=3) as receiver:
        status, _, body = _post(receiver, "/v1/traces", encode_request("traces", _spans("a", "b", "c", "d", "e")))
        assert status == 200
        response = trace_service_pb2.ExportTraceServiceResponse.FromString(body)
        assert response.partial_success.rejected_spans == 2
        assert response.partial_success.error_message == "receiver buffer full (max_buffered_items=3); dropped 2"
        assert [s.name for s in receiver.telemetry().spans] == ["a", "b", "c"]
        assert receiver.stats.dropped_items == 2
        receiver.clear()
        assert _post(receiver, "/v1/traces", encode_request("traces", _spans("f")))[2] == b""
        assert [s.name for s in receiver.telemetry().spans] == ["f"]


def test_delay_s_holds_every_request() -> None:
    with OtlpReceiver(grpc_port=None, delay_s=0.2) as receiver:
        started = time.monotonic()
        assert _post(receiver, "/v1/traces", encode_request("traces", _spans("slow")))[0] == 200
        assert time.monotonic() - started >= 0.2  # a lower bound only: sleep() guarantees it


def test_concurrent_senders_lose_nothing(otlp_receiver: OtlpReceiver) -> None:
    def send(worker: int) -> None:
        for i in range(5):
            telemetry = model.Telemetry(spans=(model.Span(f"w{worker}", 1, worker * 100 + i + 1),))
            assert _post(otlp_receiver, "/v1/traces", encode_request("traces", telemetry))[0] == 200

    threads = [threading.Thread(target=send, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spans = otlp_receiver.wait_for_spans(30)
    assert sorted(s.span_id for s in spans) == sorted(w * 100 + i + 1 for w in range(6) for i in range(5))
    assert otlp_receiver.stats == ReceiverStats(requests=30, bytes=otlp_receiver.stats.bytes)


# -- gRPC ----------------------------------------------------------------------------------------


def test_grpc_exporter_spans_arrive_with_resource_and_scope(otlp_receiver: OtlpReceiver) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(GrpcSpanExporter(endpoint=otlp_receiver.grpc_endpoint)))
    with provider.get_tracer("grpc.scope", "2.0").start_as_current_span("outer"):
        with provider.get_tracer("grpc.scope", "2.0").start_as_current_span("inner"):
            pass
    provider.shutdown()
    inner, outer = otlp_receiver.wait_for_spans(2)
    assert (inner.name, outer.name, inner.parent_span_id) == ("inner", "outer", outer.span_id)
    assert inner.scope == model.Scope("grpc.scope", "2.0")
    assert inner.resource.attributes["telemetry.sdk.language"] == "python"


def test_grpc_invalid_request_is_invalid_argument_and_oversize_is_resource_exhausted() -> None:
    with OtlpReceiver(http_port=None, max_body_bytes=2048) as receiver:
        with grpc.insecure_channel(receiver.grpc_address) as channel:
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            bad = trace_service_pb2.ExportTraceServiceRequest()
            bad.resource_spans.add().scope_spans.add().spans.add(name="x", trace_id=b"abc", span_id=b"12345678")
            with pytest.raises(grpc.RpcError) as info:
                stub.Export(bad, timeout=10)
            assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert info.value.details() == "span 'x': trace_id must be 16 bytes, got 3 (616263)"

            huge = trace_service_pb2.ExportTraceServiceRequest()
            huge.resource_spans.add().scope_spans.add().spans.add(name="x" * 4096)
            with pytest.raises(grpc.RpcError) as info:
                stub.Export(huge, timeout=10)
            assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED

            good = trace_service_pb2.ExportTraceServiceRequest.FromString(encode_request("traces", _spans("ok")))
            assert stub.Export(good, timeout=10) == trace_service_pb2.ExportTraceServiceResponse()
        assert [s.name for s in receiver.telemetry().spans] == ["ok"]
        assert (receiver.stats.requests, receiver.stats.rejected) == (2, 1)


# -- lifecycle and addresses ---------------------------------------------------------------------


def test_endpoints_bind_loopback_on_free_ports_and_env_points_an_sdk_here(
    otlp_receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert otlp_receiver.http_endpoint == f"http://127.0.0.1:{otlp_receiver.http_port}"
    assert otlp_receiver.grpc_endpoint == f"http://127.0.0.1:{otlp_receiver.grpc_port}"
    assert otlp_receiver.grpc_address == f"127.0.0.1:{otlp_receiver.grpc_port}"
    assert otlp_receiver.http_port != otlp_receiver.grpc_port
    assert otlp_receiver.exporter_env("grpc")["OTEL_EXPORTER_OTLP_ENDPOINT"] == otlp_receiver.grpc_endpoint
    with pytest.raises(ValueError, match="unknown OTLP protocol 'udp'"):
        otlp_receiver.exporter_env("udp")

    for key, value in otlp_receiver.exporter_env("http/protobuf").items():
        monkeypatch.setenv(key, value)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(HttpSpanExporter()))  # endpoint from the environment
    provider.get_tracer("env").start_span("via-env").end()
    provider.shutdown()
    assert otlp_receiver.wait_for_spans(name="via-env")


def test_not_started_and_stopped_receivers() -> None:
    receiver = OtlpReceiver(grpc_port=None)
    with pytest.raises(RuntimeError, match=r"HTTP receiver not started \(call start\(\) or use `with`\)"):
        receiver.http_endpoint
    body = encode_request("traces", _spans("kept"))
    with receiver:
        port = receiver.http_port
        keep_alive = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        keep_alive.request("POST", "/v1/traces", body=body, headers={"Content-Type": PB})
        assert keep_alive.getresponse().read() == b""
        with pytest.raises(RuntimeError, match="gRPC receiver not started"):
            receiver.grpc_endpoint
    receiver.stop()  # idempotent
    keep_alive.request("POST", "/v1/traces", body=body, headers={"Content-Type": PB})  # the pooled connection
    late = keep_alive.getresponse()
    assert (late.status, late.read()) == (503, b"receiver stopped")
    keep_alive.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert [s.name for s in receiver.telemetry().spans] == ["kept"]  # still readable after stop
