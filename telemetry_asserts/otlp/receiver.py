"""An OTLP receiver for tests and tools: HTTP (protobuf/JSON, gzip) and gRPC, buffered and replayable.

Everything received is decoded into the shared model and kept (up to an optional item bound), so
waiting for one span never drops another. Malformed bodies get 400, oversize ones 413, unknown
content types 415, unknown paths 404; the receiver keeps serving after any of them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import urlsplit

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from telemetry_asserts import model
from telemetry_asserts.errors import TelemetryAssertionError, did_you_mean
from telemetry_asserts.otlp.decode import (
    JSON,
    DecodeError,
    PayloadTooLarge,
    Signal,
    UnsupportedContentType,
    decode_message,
    decode_request,
    media_type,
)

T = TypeVar("T")
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
PATHS: dict[str, Signal] = {"/v1/traces": "traces", "/v1/metrics": "metrics", "/v1/logs": "logs"}
_RESPONSES: dict[str, tuple[type[Message], str]] = {
    "traces": (trace_service_pb2.ExportTraceServiceResponse, "rejected_spans"),
    "metrics": (metrics_service_pb2.ExportMetricsServiceResponse, "rejected_data_points"),
    "logs": (logs_service_pb2.ExportLogsServiceResponse, "rejected_log_records"),
}


@dataclass(frozen=True)
class ReceiverStats:
    """Counters since start (``clear()`` does not reset them)."""

    requests: int = 0  #: export requests received (HTTP and gRPC, accepted or not)
    bytes: int = 0  #: request bytes received: HTTP bodies as sent (compressed if gzip), gRPC message sizes
    rejected: int = 0  #: requests answered with an error (400, 404, 405, 411, 413, 415, gRPC errors)
    dropped_items: int = 0  #: spans, points and records not kept because of ``max_buffered_items``
    last_error: str = ""  #: the message of the latest rejection


class OtlpReceiver:
    """OTLP/HTTP and OTLP/gRPC receiver bound to ``host`` on free ports (``None`` disables one).

    ``max_body_bytes`` bounds a request body and its decompressed size; ``max_buffered_items``
    (optional) bounds the spans + points + records kept, newer items beyond it are dropped and
    counted (and reported as a partial success); ``delay_s`` makes every request slow, to test
    exporters against a slow backend.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        http_port: int | None = 0,
        grpc_port: int | None = 0,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        *,
        max_buffered_items: int | None = None,
        delay_s: float = 0.0,
    ) -> None:
        self.host = host
        self.max_body_bytes = max_body_bytes
        self.max_buffered_items = max_buffered_items
        self.delay_s = delay_s
        self._wanted_ports = (http_port, grpc_port)
        self._cond = threading.Condition()
        self._spans: list[model.Span] = []
        self._metrics: list[model.MetricPoint] = []
        self._logs: list[model.LogRecord] = []
        self._version = 0
        self._stats = ReceiverStats()
        self._http: _HttpServer | None = None
        self._http_thread: threading.Thread | None = None
        self._grpc: grpc.Server | None = None
        self._http_port: int | None = None
        self._grpc_port: int | None = None
        self.serving = False

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> OtlpReceiver:
        """Bind and start serving; returns ``self``."""
        if self._http is not None or self._grpc is not None:
            raise RuntimeError("receiver already started")
        http_port, grpc_port = self._wanted_ports
        try:
            if http_port is not None:
                self._http = _HttpServer((self.host, http_port), _Handler, self)
                self._http_port = self._http.server_address[1]
                self._http_thread = threading.Thread(
                    target=self._http.serve_forever, kwargs={"poll_interval": 0.05},
                    name=f"otlp-http-{self._http_port}", daemon=True,
                )
                self._http_thread.start()
            if grpc_port is not None:
                self._start_grpc(grpc_port)
        except BaseException:
            self.stop()
            raise
        self.serving = True
        return self

    def _start_grpc(self, port: int) -> None:
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="otlp-grpc"),
            options=[
                ("grpc.max_receive_message_length", self.max_body_bytes),
                ("grpc.so_reuseport", 0),
            ],
        )
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceServicer(self), server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_MetricsServicer(self), server)
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_LogsServicer(self), server)
        bound = server.add_insecure_port(f"{self.host}:{port}")
        if not bound:
            raise OSError(f"cannot bind gRPC on {self.host}:{port}")
        server.start()
        self._grpc, self._grpc_port = server, bound

    def stop(self) -> None:
        """Stop serving (idempotent). Received telemetry stays readable."""
        self.serving = False  # requests on still-open keep-alive connections are refused from now on
        http, self._http = self._http, None
        if http is not None:
            http.shutdown()
            http.server_close()
            if self._http_thread is not None:
                self._http_thread.join(timeout=5)
        server, self._grpc = self._grpc, None
        if server is not None:
            server.stop(grace=None).wait(timeout=5)

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses --------------------------------------------------------------------------------

    @property
    def http_port(self) -> int:
        if self._http_port is None:
            raise RuntimeError("HTTP receiver not started (call start() or use `with`)")
        return self._http_port

    @property
    def grpc_port(self) -> int:
        if self._grpc_port is None:
            raise RuntimeError("gRPC receiver not started (call start() or use `with`)")
        return self._grpc_port

    @property
    def http_endpoint(self) -> str:
        """Base URL for OTLP/HTTP, e.g. ``http://127.0.0.1:4318`` (signals under ``/v1/...``)."""
        return f"http://{self.host}:{self.http_port}"

    @property
    def grpc_endpoint(self) -> str:
        """OTLP/gRPC endpoint as exporters take it, e.g. ``http://127.0.0.1:4317`` (insecure)."""
        return f"http://{self.host}:{self.grpc_port}"

    @property
    def grpc_address(self) -> str:
        """``host:port`` of the gRPC server (for ``grpc.insecure_channel``)."""
        return f"{self.host}:{self.grpc_port}"

    def exporter_env(self, protocol: str = "http/protobuf") -> dict[str, str]:
        """``OTEL_EXPORTER_OTLP_*`` variables pointing an SDK's exporters here.

        ``protocol`` is ``http/protobuf``, ``http/json`` or ``grpc``.
        """
        if protocol == "grpc":
            endpoint = self.grpc_endpoint
        elif protocol in ("http/protobuf", "http/json"):
            endpoint = self.http_endpoint
        else:
            raise ValueError(f"unknown OTLP protocol {protocol!r}; expected http/protobuf, http/json or grpc")
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
        }

    # -- the buffer -------------------------------------------------------------------------------

    def telemetry(self) -> model.Telemetry:
        """Everything received so far (since start or the last ``clear()``), in arrival order."""
        with self._cond:
            return self._snapshot()

    def clear(self) -> None:
        """Forget everything received so far (the stats are kept)."""
        with self._cond:
            self._spans.clear()
            self._metrics.clear()
            self._logs.clear()
            self._version += 1
            self._cond.notify_all()

    @property
    def stats(self) -> ReceiverStats:
        with self._cond:
            return self._stats

    def wait_for(
        self,
        predicate: Callable[[model.Telemetry], bool],
        timeout_s: float = 10.0,
        *,
        description: str = "",
    ) -> model.Telemetry:
        """Block until ``predicate(telemetry())`` holds and return that telemetry.

        Nothing is consumed or dropped. On timeout raises ``TelemetryAssertionError`` saying what
        was awaited and what did arrive.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            with self._cond:
                snapshot, version = self._snapshot(), self._version
            if predicate(snapshot):
                return snapshot
            with self._cond:
                while self._version == version:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TelemetryAssertionError(
                            f"timed out after {timeout_s:g} s waiting for "
                            f"{description or getattr(predicate, '__name__', 'a predicate')}; "
                            f"received {_summary(self._snapshot())}"
                        )
                    self._cond.wait(remaining)

    def wait_for_spans(
        self, n: int | None = None, name: str | None = None, timeout_s: float = 10.0
    ) -> tuple[model.Span, ...]:
        """Wait for at least ``n`` (default 1) spans, named ``name`` if given; return all such spans."""
        return self._wait_items("spans", "span", n, name, timeout_s)

    def wait_for_metrics(
        self, n: int | None = None, name: str | None = None, timeout_s: float = 10.0
    ) -> tuple[model.MetricPoint, ...]:
        """Wait for at least ``n`` (default 1) metric points, of metric ``name`` if given."""
        return self._wait_items("metrics", "metric point", n, name, timeout_s)

    def wait_for_logs(self, n: int | None = None, timeout_s: float = 10.0) -> tuple[model.LogRecord, ...]:
        """Wait for at least ``n`` (default 1) log records; return all of them."""
        return self._wait_items("logs", "log record", n, None, timeout_s)

    def _wait_items(self, field: str, noun: str, n: int | None, name: str | None, timeout_s: float) -> Any:
        need = 1 if n is None else n

        def select(t: model.Telemetry) -> tuple[Any, ...]:
            items = getattr(t, field)
            return items if name is None else tuple(i for i in items if i.name == name)

        what = f"{need} {noun}(s)" + (f" named {name!r}" if name is not None else "")
        try:
            return select(self.wait_for(lambda t: len(select(t)) >= need, timeout_s, description=what))
        except TelemetryAssertionError as exc:
            if name is None:
                raise
            names = [i.name for i in getattr(self.telemetry(), field)]
            raise TelemetryAssertionError(f"{exc}{did_you_mean(name, names)}") from None

    def _snapshot(self) -> model.Telemetry:
        return model.Telemetry(tuple(self._spans), tuple(self._metrics), tuple(self._logs))

    def _store(self, telemetry: model.Telemetry) -> int:
        """Keep ``telemetry`` (as far as the bound allows); returns the number of items dropped."""
        with self._cond:
            dropped = 0
            for items, target in (
                (telemetry.spans, self._spans),
                (telemetry.metrics, self._metrics),
                (telemetry.logs, self._logs),
            ):
                room = len(items)
                if self.max_buffered_items is not None:
                    held = len(self._spans) + len(self._metrics) + len(self._logs)
                    room = max(0, min(room, self.max_buffered_items - held))
                target.extend(items[:room])
                dropped += len(items) - room
            self._count(dropped_items=dropped)
            self._version += 1
            self._cond.notify_all()
            return dropped

    def _count(self, *, error: str = "", **deltas: int) -> None:
        with self._cond:
            s = self._stats
            self._stats = ReceiverStats(
                requests=s.requests + deltas.get("requests", 0),
                bytes=s.bytes + deltas.get("bytes", 0),
                rejected=s.rejected + deltas.get("rejected", 0),
                dropped_items=s.dropped_items + deltas.get("dropped_items", 0),
                last_error=error or s.last_error,
            )

    def _accept(self, signal: Signal, telemetry: model.Telemetry) -> Message:
        """Store decoded telemetry and build the export response (partial success on drops)."""
        if self.delay_s:
            time.sleep(self.delay_s)
        dropped = self._store(telemetry)
        response_type, rejected_field = _RESPONSES[signal]
        response = response_type()
        if dropped:
            setattr(response.partial_success, rejected_field, dropped)
            response.partial_success.error_message = (
                f"receiver buffer full (max_buffered_items={self.max_buffered_items}); dropped {dropped}"
            )
        return response

    # -- gRPC -------------------------------------------------------------------------------------

    def _grpc_export(self, signal: Signal, request: Message, context: grpc.ServicerContext) -> Message:
        self._count(requests=1, bytes=request.ByteSize())
        try:
            telemetry = decode_message(request)
        except DecodeError as exc:
            self._count(rejected=1, error=str(exc))
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return self._accept(signal, telemetry)


def _summary(t: model.Telemetry) -> str:
    names = list(dict.fromkeys(s.name for s in t.spans))
    shown = ", ".join(repr(n) for n in names[:20]) + (", ..." if len(names) > 20 else "")
    spans = f"{len(t.spans)} span(s)" + (f" [{shown}]" if names else "")
    metric_names = list(dict.fromkeys(p.name for p in t.metrics))
    metrics = f"{len(t.metrics)} metric point(s)" + (
        f" [{', '.join(repr(n) for n in metric_names[:20])}]" if metric_names else ""
    )
    return f"{spans}, {metrics}, {len(t.logs)} log record(s)"


class _TraceServicer(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(self, request: Message, context: grpc.ServicerContext) -> Message:  # noqa: N802
        return self._receiver._grpc_export("traces", request, context)


class _MetricsServicer(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(self, request: Message, context: grpc.ServicerContext) -> Message:  # noqa: N802
        return self._receiver._grpc_export("metrics", request, context)


class _LogsServicer(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(self, request: Message, context: grpc.ServicerContext) -> Message:  # noqa: N802
        return self._receiver._grpc_export("logs", request, context)


# -- HTTP -----------------------------------------------------------------------------------------


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not hold up stop()
    allow_reuse_address = False

    def __init__(self, address: tuple[str, int], handler: type, receiver: OtlpReceiver) -> None:
        self.receiver = receiver
        super().__init__(address, handler)


_RPC_CODES = {413: code_pb2.RESOURCE_EXHAUSTED, 500: code_pb2.INTERNAL}  # other 4xx: INVALID_ARGUMENT


class _BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "telemetry-asserts-otlp"
    timeout = 30  # seconds a client may stall mid-request
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet by design
        pass

    def do_POST(self) -> None:  # noqa: N802
        receiver = self.server.receiver
        if not receiver.serving:
            self._reject(503, "receiver stopped", None, text=True)
            return
        content_type = self.headers.get("Content-Type", "")
        kind = media_type(content_type)
        signal = PATHS.get(urlsplit(self.path).path)
        receiver._count(requests=1)
        if signal is None:
            self._reject(404, f"unknown path {self.path!r}; OTLP/HTTP paths are {', '.join(PATHS)}", kind, text=True)
            return
        try:
            if kind is None:
                raise UnsupportedContentType(
                    f"unsupported Content-Type {content_type!r}; expected application/x-protobuf or application/json"
                )
            body = self._read_body(receiver.max_body_bytes)
            receiver._count(bytes=len(body))
            telemetry = decode_request(
                signal, body, content_type, self.headers.get("Content-Encoding", ""),
                max_bytes=receiver.max_body_bytes,
            )
        except _BodyError as exc:
            self._reject(exc.status, str(exc), kind)
            return
        except UnsupportedContentType as exc:
            self._reject(415, str(exc), kind)
            return
        except PayloadTooLarge as exc:
            self._reject(413, str(exc), kind)
            return
        except DecodeError as exc:
            self._reject(400, str(exc), kind)
            return
        except Exception as exc:  # a bug: answer rather than drop the connection
            self._reject(500, f"internal error: {type(exc).__name__}: {exc}", kind)
            return
        response = receiver._accept(signal, telemetry)
        self._send(200, response, kind)

    def _not_post(self) -> None:
        self.server.receiver._count(requests=1)
        if urlsplit(self.path).path in PATHS:
            self._reject(405, f"method {self.command} not allowed; OTLP/HTTP uses POST", None, text=True,
                         headers={"Allow": "POST"})
        else:
            self._reject(404, f"unknown path {self.path!r}", None, text=True)

    do_GET = do_PUT = do_DELETE = do_PATCH = _not_post  # noqa: N815

    def _read_body(self, limit: int) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(limit)
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            raise _BodyError(411, "Content-Length required")
        try:
            length = int(length_header)
        except ValueError:
            raise _BodyError(400, f"invalid Content-Length {length_header!r}") from None
        if length < 0:
            raise _BodyError(400, f"invalid Content-Length {length_header!r}")
        if length > limit:
            raise _BodyError(413, f"body of {length} bytes exceeds the limit of {limit} bytes")
        body = self.rfile.read(length)
        if len(body) != length:
            raise _BodyError(400, f"body ended after {len(body)} of {length} bytes")
        return body

    def _read_chunked(self, limit: int) -> bytes:
        body = bytearray()
        while True:
            line = self.rfile.readline(1026)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BodyError(400, f"invalid chunk size line {line[:40]!r}") from None
            if size < 0:
                raise _BodyError(400, "invalid chunk size")
            if len(body) + size > limit:
                raise _BodyError(413, f"chunked body exceeds the limit of {limit} bytes")
            if size == 0:
                while self.rfile.readline(1026).strip():  # trailers
                    pass
                return bytes(body)
            chunk = self.rfile.read(size)
            if len(chunk) != size or self.rfile.readline(3).strip():
                raise _BodyError(400, "truncated or malformed chunk")
            body += chunk

    def _reject(
        self, status: int, message: str, kind: str | None, *, text: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.server.receiver._count(rejected=1, error=message)
        self.close_connection = True  # the body may be unread: never reuse this connection
        if text:
            self._write(status, message.encode("utf-8"), "text/plain; charset=utf-8", headers)
            return
        code = _RPC_CODES.get(status, code_pb2.INVALID_ARGUMENT)
        self._send(status, status_pb2.Status(code=code, message=message), kind, headers)

    def _send(self, status: int, message: Message, kind: str | None, headers: dict[str, str] | None = None) -> None:
        if kind == JSON:
            body = json_format.MessageToJson(message, indent=None).encode("utf-8")
            content_type = JSON
        else:
            body, content_type = message.SerializeToString(), "application/x-protobuf"
        self._write(status, body, content_type, headers)

    def _write(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
