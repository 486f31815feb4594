"""Load benchmark: push >= 100k spans and >= 100k metric points through the real collector.

    load generator --OTLP gRPC|HTTP--> rotel collector --OTLP/HTTP--> OtlpReceiver (decodes to the model)

Every span and every point carries a unique id, so delivery is counted exactly: an item is
delivered when the receiver decoded it, and the run fails (exit 1) unless delivered == sent for
both signals. Prints the figures and one markdown table row for the README. Not a pytest test:

    python benchmarks/bench_collector_load.py [--spans 100000] [--points 100000] [--batch 1000]
                                              [--protocol grpc|http] [--mode container|process|auto]
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1 import trace_pb2

from integration.collector import resolve_mode, start_collector
from telemetry_asserts.otlp.receiver import OtlpReceiver

SERVICE = "collector-load-bench"
RESOURCE = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value=SERVICE))])
SCOPE = InstrumentationScope(name="bench", version="1")


def _kv(key: str, value: int | str) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def span_requests(total: int, batch: int) -> Iterator[tuple[trace_service_pb2.ExportTraceServiceRequest, int]]:
    """Requests of ``batch`` spans; span ``i`` has span id ``i + 1`` and 10 spans share a trace."""
    now = time.time_ns()
    for start in range(0, total, batch):
        spans = [
            trace_pb2.Span(
                trace_id=(i // 10 + 1).to_bytes(16, "big"),
                span_id=(i + 1).to_bytes(8, "big"),
                name="bench.span",
                kind=trace_pb2.Span.SPAN_KIND_INTERNAL,
                start_time_unix_nano=now,
                end_time_unix_nano=now + 1000,
                attributes=[_kv("bench.index", i), _kv("bench.stage", "normalize")],
            )
            for i in range(start, min(start + batch, total))
        ]
        request = trace_service_pb2.ExportTraceServiceRequest(
            resource_spans=[trace_pb2.ResourceSpans(resource=RESOURCE, scope_spans=[trace_pb2.ScopeSpans(scope=SCOPE, spans=spans)])]
        )
        yield request, len(spans)


def metric_requests(total: int, batch: int) -> Iterator[tuple[metrics_service_pb2.ExportMetricsServiceRequest, int]]:
    """Requests of ``batch`` gauge points; point ``i`` has attribute ``bench.index=i`` and value ``i``."""
    now = time.time_ns()
    for start in range(0, total, batch):
        points = [
            metrics_pb2.NumberDataPoint(attributes=[_kv("bench.index", i)], time_unix_nano=now, as_double=float(i))
            for i in range(start, min(start + batch, total))
        ]
        metric = metrics_pb2.Metric(name="bench.points", unit="{point}", gauge=metrics_pb2.Gauge(data_points=points))
        request = metrics_service_pb2.ExportMetricsServiceRequest(
            resource_metrics=[
                metrics_pb2.ResourceMetrics(resource=RESOURCE, scope_metrics=[metrics_pb2.ScopeMetrics(scope=SCOPE, metrics=[metric])])
            ]
        )
        yield request, len(points)


class Sender:
    """Sends export requests to the collector over gRPC or HTTP; counts items acknowledged in full."""

    def __init__(self, protocol: str, grpc_address: str, http_endpoint: str) -> None:
        self.protocol = protocol
        self.http_endpoint = http_endpoint
        self.channel = grpc.insecure_channel(grpc_address)
        self.traces = trace_service_pb2_grpc.TraceServiceStub(self.channel)
        self.metrics = metrics_service_pb2_grpc.MetricsServiceStub(self.channel)

    def send(self, signal: str, request: object, items: int) -> int:
        """Send one request; the number of items the collector accepted (0 on any failure)."""
        try:
            if self.protocol == "grpc":
                stub = self.traces if signal == "traces" else self.metrics
                response = stub.Export(request, timeout=30)
                rejected = response.partial_success.rejected_spans if signal == "traces" else response.partial_success.rejected_data_points
                return items - int(rejected)
            body = gzip.compress(request.SerializeToString(), compresslevel=1)  # type: ignore[attr-defined]
            http_request = urllib.request.Request(
                f"{self.http_endpoint}/v1/{signal}",
                data=body,
                headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
                method="POST",
            )
            with urllib.request.urlopen(http_request, timeout=30) as answer:
                return items if answer.status == 200 else 0
        except (grpc.RpcError, OSError) as exc:
            print(f"send failed: {exc}", file=sys.stderr)
            return 0

    def close(self) -> None:
        self.channel.close()


@dataclass(frozen=True)
class Result:
    mode: str
    protocol: str
    spans_sent: int
    spans_delivered: int
    points_sent: int
    points_delivered: int
    send_s: float
    total_s: float
    collector_cpu_s: float

    @property
    def complete(self) -> bool:
        return self.spans_delivered == self.spans_sent and self.points_delivered == self.points_sent

    def markdown_row(self) -> str:
        items = self.spans_delivered + self.points_delivered
        return (
            f"| {self.mode} | {self.protocol} | {self.spans_delivered:,}/{self.spans_sent:,} "
            f"({100 * self.spans_delivered / max(1, self.spans_sent):.1f}%) | "
            f"{self.points_delivered:,}/{self.points_sent:,} ({100 * self.points_delivered / max(1, self.points_sent):.1f}%) | "
            f"{self.total_s:.1f} s | {items / self.total_s:,.0f} items/s | {self.collector_cpu_s:.1f} s |"
        )


def delivered(receiver: OtlpReceiver, spans_sent: int, points_sent: int) -> tuple[int, int]:
    """Distinct benchmark span ids and point indexes the receiver holds that were sent."""
    t = receiver.telemetry()
    span_ids = {s.span_id for s in t.spans if s.resource.service_name == SERVICE and 1 <= s.span_id <= spans_sent}
    points = {
        p.attributes.get("bench.index")
        for p in t.metrics
        if p.name == "bench.points" and p.resource.service_name == SERVICE
    }
    return len(span_ids), len({i for i in points if isinstance(i, int) and 0 <= i < points_sent})


def process_cpu_s(pid: int | None) -> float:
    """User + system CPU seconds a process used so far (from /proc; the collector's pid as the host sees it)."""
    if pid is None:
        raise RuntimeError("collector is not running")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(spans: int, points: int, batch: int, protocol: str, mode: str, timeout_s: float) -> Result:
    resolved = resolve_mode(mode)
    with OtlpReceiver("127.0.0.1", grpc_port=None) as receiver:
        collector = start_collector(receiver.http_endpoint, mode=resolved)
        try:
            print(f"# {collector.describe()}", file=sys.stderr)
            sender = Sender(protocol, f"127.0.0.1:{collector.grpc_port}", collector.http_endpoint)
            spans_sent = points_sent = 0
            cpu_before = process_cpu_s(collector.pid())
            t0 = time.perf_counter()
            for span_request, metric_request in zip_longest(span_requests(spans, batch), metric_requests(points, batch)):
                if span_request is not None:
                    spans_sent += sender.send("traces", span_request[0], span_request[1])
                if metric_request is not None:
                    points_sent += sender.send("metrics", metric_request[0], metric_request[1])
            send_s = time.perf_counter() - t0
            sender.close()
            deadline = time.monotonic() + timeout_s
            got = delivered(receiver, spans_sent, points_sent)
            while got != (spans_sent, points_sent) and time.monotonic() < deadline:
                time.sleep(0.2)
                got = delivered(receiver, spans_sent, points_sent)
            total_s = time.perf_counter() - t0
            cpu_s = process_cpu_s(collector.pid()) - cpu_before
        finally:
            collector.close()
    return Result(resolved, protocol, spans_sent, got[0], points_sent, got[1], send_s, total_s, cpu_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000, help="items per export request")
    parser.add_argument("--protocol", choices=("grpc", "http"), default="grpc")
    parser.add_argument("--mode", choices=("container", "process", "auto"), default=os.environ.get("NEURO_INTEGRATION_MODE", "auto"))
    parser.add_argument("--timeout-s", type=float, default=120.0, help="how long to wait for delivery after sending")
    args = parser.parse_args(argv)
    result = run(args.spans, args.points, args.batch, args.protocol, args.mode, args.timeout_s)
    items = result.spans_delivered + result.points_delivered
    print(f"mode={result.mode} protocol={result.protocol}")
    print(f"spans  delivered/sent: {result.spans_delivered}/{result.spans_sent}")
    print(f"points delivered/sent: {result.points_delivered}/{result.points_sent}")
    print(f"send {result.send_s:.2f} s, all delivered after {result.total_s:.2f} s: {items / result.total_s:,.0f} items/s")
    print(f"collector CPU {result.collector_cpu_s:.2f} s of {result.total_s:.2f} s wall")
    print("| mode | protocol | spans delivered/sent | points delivered/sent | wall time | throughput | collector CPU |")
    print("|---|---|---|---|---|---|---|")
    print(result.markdown_row())
    if not result.complete:
        print("FAILED: not everything sent was delivered", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
