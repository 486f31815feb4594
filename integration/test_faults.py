"""Faults around the collector: absent, restarted mid-batch, a slow receiver behind it, no engine.

Measured figures (shutdown time, loss, memory) go to the terminal summary of the run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest

from integration import FAST_ARGS, console_script, pipeline_env, settle
from integration.collector import (
    CollectorSettings,
    CollectorUnavailable,
    RotelCollector,
    build_context,
    context_digest,
    ensure_image,
    free_port,
    resolve_mode,
    rotel_binary,
)
from integration.conftest import ChainFactory

FILE_SPANS = (
    "process_file", "load_file", "process_image", "bias_correction", "skull_strip",
    "normalize", "smooth", "resample", "write_output", "write_metadata",
)
HANG_GUARD_S = 30.0
EXPORT_FAILURE = re.compile(r"export.*(fail|error|unavailable)|(fail|error|unavailable).*export", re.IGNORECASE)


class TimedRun:
    """``neuro-preprocess`` as a subprocess, timing when its summary line appears and when it exits."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [console_script(), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.summary_at: float | None = None
        self.exited = 0.0
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, self.stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: IO[str], lines: list[str]) -> None:
        for line in stream:
            lines.append(line)
            if stream is self.process.stdout and re.match(r"\d+ inputs?: ", line):
                self.summary_at = time.monotonic()

    def wait(self, timeout_s: float = 120.0) -> tuple[int, str]:
        """Exit code and stderr."""
        code = self.process.wait(timeout=timeout_s)
        self.exited = time.monotonic()
        for reader in self._readers:
            reader.join(5)
        return code, "".join(self.stderr)

    @property
    def shutdown_s(self) -> float:
        """From the summary line (printed right before telemetry shutdown) to the process exit."""
        assert self.summary_at is not None, f"no summary line in {''.join(self.stdout)!r}"
        return self.exited - self.summary_at


def _copies(phantoms: list[Path], folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        target = folder / f"sub-{i + 1:02d}_T1w.nii.gz"
        shutil.copyfile(phantoms[i % len(phantoms)], target)
        out.append(target)
    return out


def _outputs_written(out: Path, inputs: list[Path]) -> None:
    for path in inputs:
        stem = path.name.removesuffix(".nii.gz")
        assert (out / f"{stem}_preproc.nii.gz").is_file(), f"no output for {path.name}"
        assert (out / f"{stem}_metadata.json").is_file(), f"no metadata for {path.name}"


# --- collector not started --------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_collector_down_pipeline_finishes_and_logs_the_failure_once(
    protocol: str, phantoms: list[Path], tmp_path: Path, note: Callable[[str], None]
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    out = tmp_path / "out"
    env = pipeline_env(nobody, protocol, OTEL_BSP_SCHEDULE_DELAY="100", OTEL_BLRP_SCHEDULE_DELAY="100")
    run = TimedRun(["process", *map(str, phantoms[:2]), "-o", str(out), *FAST_ARGS], env)
    code, stderr = run.wait()
    assert code == 0, f"exit {code}:\n{stderr}"
    _outputs_written(out, phantoms[:2])
    failures = [line for line in stderr.splitlines() if EXPORT_FAILURE.search(line)]
    assert len(failures) == 1, "the export failure must be logged exactly once:\n" + "\n".join(failures)
    assert run.shutdown_s < HANG_GUARD_S
    note(
        f"collector down ({protocol}): telemetry shutdown took {run.shutdown_s:.2f} s, "
        f"whole run {run.exited - run.started:.2f} s, 1 export-failure line"
    )


# --- collector restarted mid-batch ------------------------------------------------------------------


def ended_spans(console_output: str) -> dict[int, tuple[str, int]]:
    """Every span the pipeline ended, from its console exporter's JSON on stdout: span id -> (name,
    end time in ns). The ground truth a restart's loss is counted against."""
    import json
    from datetime import datetime

    decoder = json.JSONDecoder()
    ended: dict[int, tuple[str, int]] = {}
    i = 0
    while (i := console_output.find("{", i)) != -1:
        try:
            obj, i = decoder.raw_decode(console_output, i)
        except json.JSONDecodeError:
            i += 1
            continue
        if isinstance(obj, dict) and "context" in obj and obj.get("end_time"):
            end = datetime.fromisoformat(obj["end_time"].replace("Z", "+00:00"))
            end_ns = int(end.timestamp()) * 10**9 + end.microsecond * 1000
            ended[int(obj["context"]["span_id"], 16)] = (obj["name"], end_ns)
    return ended


# The outage is longer than the 3 s retry budget the pipeline used to give each batch (which then
# lost the batch in flight) and shorter than the ~7 s of the 10 s budget it has now.
RESTART_DOWN_S = 3.5
# The exporters retry at about 1, 3 and 7 s (+-20 %) within the 10 s budget: an outage shorter than
# this is retried through, and must lose nothing at all.
WITHIN_RETRY_BUDGET_S = 5.5


def test_collector_restart_mid_batch_every_span_ended_after_the_restart_arrives(
    make_chain: ChainFactory, phantoms: list[Path], tmp_path: Path, note: Callable[[str], None]
) -> None:
    inputs = _copies(phantoms, tmp_path / "in", 20)  # ~0.25-2 s each (full N4): outlasts the restart
    out = tmp_path / "out"
    chain = make_chain.chain()
    # console next to OTLP: what the pipeline ended, whatever arrives
    env = pipeline_env(chain.endpoint("grpc"), "grpc", OTEL_TRACES_EXPORTER="otlp,console",
                       OTEL_BSP_SCHEDULE_DELAY="100", OTEL_BLRP_SCHEDULE_DELAY="100")
    run = TimedRun(["batch", str(tmp_path / "in"), "-o", str(out)], env)
    # restart as soon as the first file's load_file arrived: the batch is then under way
    chain.receiver.wait_for(lambda t: any(s.name == "load_file" for s in t.spans), timeout_s=60)
    down_ns = time.time_ns()
    chain.collector.restart(down_s=RESTART_DOWN_S)
    back_ns = time.time_ns()  # ready again: listening and logged its start line
    code, stderr = run.wait()
    assert code == 0, f"exit {code}:\n{stderr}"
    _outputs_written(out, inputs)
    ended = ended_spans("".join(run.stdout))
    telemetry = settle(chain.receiver, lambda t: {s.span_id for s in t.spans} >= {
        sid for sid, (_, end) in ended.items() if end > back_ns}, timeout_s=30, idle_s=1.0)

    arrived = Counter(s.span_id for s in telemetry.spans)
    after = {sid: v for sid, v in ended.items() if v[1] > back_ns}
    missing_after = sorted(name for sid, (name, _) in after.items() if sid not in arrived)
    lost = sorted((end, name) for sid, (name, end) in ended.items() if sid not in arrived)
    during = sum(down_ns <= end <= back_ns for end, _ in lost)
    roots = [s for s in telemetry.spans if s.name == "process_file"]
    note(
        f"collector restart mid-batch ({chain.collector.mode}, down {(back_ns - down_ns) / 1e9:.1f} s incl. stop and "
        f"start): {len(arrived)} of {len(ended)} spans arrived, {len(after) - len(missing_after)} of {len(after)} "
        f"ended after the restart; lost {len(lost)} ({during} ended during the outage, {len(lost) - during} before it)"
        + (f": {', '.join(name for _, name in lost[:12])}{' ...' if len(lost) > 12 else ''}" if lost else "")
        + f"; duplicates {sum(n - 1 for n in arrived.values())}; {len(roots)} of {len(inputs)} file traces"
    )
    assert ended and set(arrived) <= set(ended), "spans arrived that the pipeline never ended"
    assert len(after) >= len(FILE_SPANS), "less than a file's spans ended after the restart: make the batch longer"
    assert not missing_after, f"{len(missing_after)} of {len(after)} spans ended after the restart are missing: {missing_after}"
    for root in (r for r in roots if r.start_time_ns > back_ns):
        loading = [r for r in telemetry.trace(root.trace_id).logs if str(r.body) == "Loading file"]
        assert len(loading) == 1, f"{root.attributes.get('neuro.file.name')}: its log did not arrive"
    outage_s = (back_ns - down_ns) / 1e9
    if outage_s < WITHIN_RETRY_BUDGET_S:  # then the batch in flight is retried until the collector is back
        assert not lost, f"{len(lost)} spans lost although the outage ({outage_s:.1f} s) was within the retry budget"


# --- slow receiver behind the collector ---------------------------------------------------------------


def _push_spans(endpoint: str, total: int, batch: int = 1000) -> int:
    """Export ``total`` spans to ``endpoint`` over OTLP/gRPC, ``batch`` per request; spans acknowledged."""
    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource
    from opentelemetry.proto.trace.v1 import trace_pb2

    resource = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value="slow-receiver-test"))])
    acknowledged = 0
    with grpc.insecure_channel(endpoint.removeprefix("http://")) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        for start in range(0, total, batch):
            spans = [
                trace_pb2.Span(
                    trace_id=(i + 1).to_bytes(16, "big"), span_id=(i + 1).to_bytes(8, "big"), name="load",
                    start_time_unix_nano=1, end_time_unix_nano=2,
                    attributes=[KeyValue(key="payload", value=AnyValue(string_value="x" * 200))],
                )
                for i in range(start, min(start + batch, total))
            ]
            request = trace_service_pb2.ExportTraceServiceRequest(
                resource_spans=[trace_pb2.ResourceSpans(resource=resource, scope_spans=[trace_pb2.ScopeSpans(spans=spans)])]
            )
            try:
                response = stub.Export(request, timeout=30)
            except grpc.RpcError:
                continue
            acknowledged += len(spans) - response.partial_success.rejected_spans
    return acknowledged


class PeakRss:
    """Samples a process's RSS every 50 ms in a thread; ``peak`` in bytes."""

    def __init__(self, read: Callable[[], int]) -> None:
        self._read = read
        self.peak = read()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self.peak = max(self.peak, self._read())
            except (OSError, RuntimeError):
                return

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(2)
        return self.peak


def test_slow_receiver_memory_stays_bounded(make_chain: ChainFactory, note: Callable[[str], None]) -> None:
    bound_items = 20_000
    chain = make_chain.chain(
        receiver_options={"delay_s": 2.0, "max_buffered_items": bound_items},
        batch_max_size=2000,
        retry_max_elapsed_time="5s",
    )
    baseline = chain.collector.rss_bytes()
    sampler = PeakRss(chain.collector.rss_bytes)
    total = 60_000
    t0 = time.monotonic()
    acknowledged = _push_spans(chain.collector.grpc_endpoint, total)
    pushed_s = time.monotonic() - t0

    def delivered() -> int:  # kept plus dropped-at-the-bound: everything the receiver was handed
        return len(chain.receiver.telemetry().spans) + chain.receiver.stats.dropped_items

    deadline = time.monotonic() + 60
    while delivered() < acknowledged and time.monotonic() < deadline:
        time.sleep(0.2)
    drained_s = time.monotonic() - t0
    peak = sampler.stop()
    received = chain.receiver.telemetry()
    stats = chain.receiver.stats

    assert len(received.spans) <= bound_items
    assert len(received.spans) + stats.dropped_items == acknowledged, "the collector lost spans behind a slow receiver"
    growth_mb = (peak - baseline) / 2**20
    assert growth_mb < 256, f"collector RSS grew {growth_mb:.0f} MiB behind a slow receiver"
    note(
        f"slow receiver (2 s/request, bound {bound_items} items): {acknowledged} of {total} spans accepted by "
        f"the collector, all handed on; receiver kept {len(received.spans)}, dropped {stats.dropped_items} at its bound; collector RSS "
        f"{baseline / 2**20:.0f} -> peak {peak / 2**20:.0f} MiB (pushed in {pushed_s:.1f} s, drained after {drained_s:.1f} s)"
    )


# --- the stage never skips silently -------------------------------------------------------------------


def test_container_mode_without_an_engine_is_a_failure_with_the_reason(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    with pytest.raises(CollectorUnavailable) as info:
        resolve_mode("container")
    message = str(info.value)
    assert "NEURO_INTEGRATION_MODE=container but no Docker engine answers" in message
    assert "scripts/start_dockerd.sh" in message and "NEURO_INTEGRATION_MODE=process" in message
    assert resolve_mode("auto") == "process"
    monkeypatch.setenv("NEURO_INTEGRATION_MODE", "container")
    with pytest.raises(CollectorUnavailable, match="NEURO_INTEGRATION_MODE=container"):
        resolve_mode()


def test_unknown_mode_is_rejected() -> None:
    with pytest.raises(CollectorUnavailable, match=r"NEURO_INTEGRATION_MODE='podman': expected one of container, process, auto"):
        resolve_mode("podman")


def test_process_mode_runs_the_same_binary(make_chain: ChainFactory) -> None:
    receiver = make_chain.receiver(grpc_port=None)
    collector = RotelCollector(CollectorSettings(receiver.http_endpoint), "process").start()
    try:
        assert collector.running and f"binary {rotel_binary()}" in collector.describe()
        assert _push_spans(collector.grpc_endpoint, 10, batch=10) == 10
        assert len(receiver.wait_for(lambda t: len(t.spans) == 10, timeout_s=10).spans) == 10
    finally:
        collector.close()


def test_a_collector_that_cannot_start_fails_with_its_own_message(collector_mode: str, make_chain: ChainFactory) -> None:
    busy = make_chain.receiver(grpc_port=None)  # its HTTP port is taken: the collector cannot bind it
    with pytest.raises(CollectorUnavailable) as info:
        make_chain.collector("http://127.0.0.1:9", http_port=busy.http_port)
    message = str(info.value)
    assert f"{collector_mode} mode" in message and "exited during start-up" in message
    assert str(busy.http_port) in message  # the agent's own error names the address


def test_image_is_tagged_by_its_context_and_reused(collector_mode: str, tmp_path: Path) -> None:
    real = build_context(tmp_path / "a")
    again = build_context(tmp_path / "b")
    assert context_digest(real) == context_digest(again)
    other = build_context(tmp_path / "c", binary=Path(shutil.which("true") or "/bin/true"))
    assert context_digest(other) != context_digest(real)
    assert (real / "rootfs" / "tmp").stat().st_mode & 0o7777 == 0o1777
    if collector_mode == "container":
        first, second = ensure_image(), ensure_image()
        assert not second.built and (first.tag, first.image_id) == (second.tag, second.image_id)
        assert second.tag.endswith(context_digest(real)[:16])


def test_a_port_taken_after_picking_is_picked_again(
    collector_mode: str, make_chain: ChainFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    import integration.collector as collector_module

    receiver = make_chain.receiver(grpc_port=None)
    with socket.socket() as squatter:  # another process got the port between picking and binding
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        picks = iter([taken])
        real_free_port = collector_module.free_port
        monkeypatch.setattr(collector_module, "free_port", lambda host="127.0.0.1": next(picks, None) or real_free_port())
        collector = make_chain.collector(receiver.http_endpoint)
        # the first pick was the taken port: running now means it was picked again
        assert collector.running and taken not in (collector.grpc_port, collector.http_port)
        assert _push_spans(collector.grpc_endpoint, 5, batch=5) == 5
