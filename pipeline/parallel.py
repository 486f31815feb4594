"""Batches across processes: a local process pool (``--workers N``) or a Dask cluster (``--dask-scheduler``).

One trace per file, all tied to the batch: the ``process_batch`` span's context travels to the
workers in a W3C ``traceparent`` carrier, and each file's ``process_file`` root carries a span link to
it. Each worker process sets up its own SDK (once, lazily) from the batch's ``OTEL_*`` variables as
:func:`pipeline.telemetry.worker_env` rewrites them, and flushes after every task, so nothing is lost
when a worker exits (see NOTES.md: forked children exit with ``os._exit``; spawned ones start with no
provider).

Where a worker's spans and logs go, exactly once each:

* out of the machine (OTLP): the worker exports them itself, right after the task;
* in the parent's process (console, ``--telemetry-summary``, any in-memory extra): the worker also
  collects them in memory and returns them with the task's result, as plain data
  (:class:`pipeline.spandata.FinishedTelemetry`); the parent hands them to its *in-process*
  processors only (``adopt``, e.g. :meth:`pipeline.telemetry.TelemetrySetup.adopt`), never to its
  OTLP exporters, and the worker has no console exporter of its own. So the parent's summary shows
  every file's trace, the same with the pool and with Dask, and the collector receives each span once.

Metrics are recorded once, in the parent: a worker's :class:`PipelineTelemetry` runs on a meter that
records raw measurements (instrument, value, attributes) instead of aggregating them; they travel back
with the task's result and the parent replays them on its own instruments. Counts therefore equal the
work done whatever the number of workers, and no worker exports a metric stream of its own.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, TypeVar

from opentelemetry import metrics, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from pipeline.config import PipelineConfig
from pipeline.errors import PipelineError
from pipeline.processor import FileResult, describe_error
from pipeline.spandata import FinishedTelemetry, WorkerCollector
from pipeline.telemetry import STATUS_FAILED, PipelineTelemetry, default_telemetry, worker_env
from pipeline.writer import ensure_output_dir

log = logging.getLogger("pipeline.parallel")
#: How long to wait for a Dask scheduler to answer before saying it is not there.
DASK_CONNECT_TIMEOUT_S = 3.0
START_A_SCHEDULER = "start one with `dask scheduler`, then `dask worker {address}` (see the README)"
_PROPAGATOR = TraceContextTextMapPropagator()
T = TypeVar("T")
R = TypeVar("R")

class SchedulerUnreachableError(PipelineError):
    """The Dask scheduler address is malformed or nothing answers there."""


def check_scheduler(address: str, timeout_s: float = DASK_CONNECT_TIMEOUT_S) -> None:
    """Raise :class:`SchedulerUnreachableError` (one line) unless ``address`` is a well-formed Dask
    address whose TCP port accepts a connection within ``timeout_s`` (other transports: format only)."""
    import socket

    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
        host, port = parse_host_port(location) if scheme in ("tcp", "tls") else (None, None)
    except (ValueError, TypeError) as exc:
        raise SchedulerUnreachableError(f"--dask-scheduler {address!r}: {exc} (expected e.g. tcp://127.0.0.1:8786)") from None
    if host is None:
        return
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as exc:
        why = f"no answer within {timeout_s:g} s" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc)).lower()
        raise SchedulerUnreachableError(
            f"no Dask scheduler at {address} ({why}); {START_A_SCHEDULER.format(address=address)}"
        ) from None


def _dask_client(address: str) -> Any:
    from distributed import Client

    check_scheduler(address)
    try:
        return Client(address, set_as_default=False, timeout=DASK_CONNECT_TIMEOUT_S)
    except OSError as exc:
        raise SchedulerUnreachableError(
            f"Dask scheduler at {address} did not answer: {exc}; {START_A_SCHEDULER.format(address=address)}") from None


# ------------------------------------------------------------------------------------------------
# W3C carriers
# ------------------------------------------------------------------------------------------------


def inject_carrier(span_context: SpanContext | None) -> dict[str, str]:
    """A W3C trace-context carrier (``traceparent``) for ``span_context``; empty when invalid."""
    carrier: dict[str, str] = {}
    if span_context is not None and span_context.is_valid:
        _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(NonRecordingSpan(span_context)))
    return carrier


def extract_span_context(carrier: Mapping[str, str]) -> SpanContext | None:
    """The remote span context in ``carrier``, or None when it carries none."""
    ctx = _PROPAGATOR.extract(dict(carrier))
    span_context = trace.get_current_span(ctx).get_span_context()
    return span_context if span_context.is_valid else None


# ------------------------------------------------------------------------------------------------
# Metrics recorded in a worker, replayed in the parent
# ------------------------------------------------------------------------------------------------

Measurement = tuple[str, str, float, dict[str, Any]]  # (PipelineTelemetry attribute, method, value, attributes)


class _RecordingInstrument:
    def __init__(self, sink: list[Measurement]) -> None:
        self._sink = sink
        self.attr_name = ""  # set once the PipelineTelemetry attribute holding it is known

    def add(self, amount: float, attributes: Mapping[str, Any] | None = None, *args: Any, **kwargs: Any) -> None:
        self._sink.append((self.attr_name, "add", amount, dict(attributes or {})))

    def record(self, amount: float, attributes: Mapping[str, Any] | None = None, *args: Any, **kwargs: Any) -> None:
        self._sink.append((self.attr_name, "record", amount, dict(attributes or {})))


class _RecordingMeter(metrics.NoOpMeter):
    """A meter whose synchronous instruments keep raw measurements; observable ones stay no-op."""

    def __init__(self, sink: list[Measurement]) -> None:
        super().__init__("pipeline.parallel.recording")
        self._sink = sink

    def create_counter(self, name: str, unit: str = "", description: str = "") -> Any:
        return _RecordingInstrument(self._sink)

    def create_up_down_counter(self, name: str, unit: str = "", description: str = "") -> Any:
        return _RecordingInstrument(self._sink)

    def create_histogram(self, name: str, unit: str = "", description: str = "", **kwargs: Any) -> Any:
        return _RecordingInstrument(self._sink)


class _RecordingMeterProvider(metrics.NoOpMeterProvider):
    def __init__(self) -> None:
        self.measurements: list[Measurement] = []

    def get_meter(self, name: str, version: str | None = None, schema_url: str | None = None, *args: Any, **kwargs: Any) -> Any:
        return _RecordingMeter(self.measurements)


def _recording_telemetry(tracer_provider: Any) -> tuple[PipelineTelemetry, list[Measurement]]:
    provider = _RecordingMeterProvider()
    tm = PipelineTelemetry(tracer_provider, provider)
    for attr, value in vars(tm).items():
        if isinstance(value, _RecordingInstrument):
            value.attr_name = attr
    return tm, provider.measurements


def replay_measurements(measurements: Iterable[Measurement], telemetry: PipelineTelemetry) -> None:
    """Record a worker's raw measurements on the parent's instruments."""
    for attr, method, value, attributes in measurements:
        instrument = getattr(telemetry, attr, None)
        if instrument is not None:
            getattr(instrument, method)(value, attributes)


# ------------------------------------------------------------------------------------------------
# The worker side
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileTask:
    """Everything a worker needs for one file (picklable: plain data only)."""

    path: str
    output_dir: str
    stages: tuple[str, ...]
    stage_params: dict[str, dict[str, Any]]
    large_file_threshold_bytes: int
    carrier: dict[str, str]


class _WorkerState:
    """The SDK of one worker process, built once from the batch's environment."""

    def __init__(self, env: Mapping[str, str]) -> None:
        from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor

        from pipeline.telemetry import configure_from_env

        self.env_key = _env_key(env)
        self.collector = WorkerCollector()  # what the parent's in-process processors will receive
        self.setup = configure_from_env(worker_env(env), **self.collector.extras())
        self.setup.instrument_logging(level=logging.INFO)
        logging.getLogger().setLevel(min(logging.getLogger().level or logging.INFO, logging.INFO))
        SQLite3Instrumentor().instrument(tracer_provider=self.setup.tracer_provider)
        self.registries: dict[str, Any] = {}

    def registry(self, output_dir: str) -> Any:
        from pipeline.registry import RunRegistry

        if output_dir not in self.registries:
            try:
                self.registries[output_dir] = RunRegistry.in_dir(output_dir)
            except Exception:  # the parent reports an unusable output dir; files still run
                return None
        return self.registries[output_dir]

    def flush(self) -> None:
        self.setup.tracer_provider.force_flush()
        self.setup.logger_provider.force_flush()


_STATE: _WorkerState | None = None
_STATE_LOCK = threading.Lock()


def _env_key(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in env.items() if k.startswith("OTEL_")))


def _worker_state(env: Mapping[str, str]) -> _WorkerState:
    global _STATE
    with _STATE_LOCK:
        if _STATE is None or _STATE.env_key != _env_key(env):
            if _STATE is not None:
                _STATE.setup.shutdown()
            _STATE = _WorkerState(env)
        return _STATE


def init_worker(env: Mapping[str, str]) -> None:
    """Process-pool initializer: set up this worker's SDK from the batch's ``OTEL_*`` variables."""
    _worker_state(env)


@dataclass(frozen=True)
class TaskOutcome:
    """What a worker sends back for one file: its result, the raw metric measurements to replay,
    and the spans and logs it finished (plain data)."""

    result: FileResult
    measurements: tuple[Measurement, ...] = ()
    finished: FinishedTelemetry = FinishedTelemetry()


def run_task(task: FileTask, env: Mapping[str, str]) -> TaskOutcome:
    """Process one file in a worker; returns its :class:`TaskOutcome`."""
    from pipeline.processor import process_file

    state = _worker_state(env)
    state.collector.take()  # nothing of an earlier, failed task leaks into this one
    tm, measurements = _recording_telemetry(state.setup.tracer_provider)
    config = PipelineConfig.create(task.stages, task.stage_params, large_file_threshold_bytes=task.large_file_threshold_bytes)
    try:
        result = process_file(
            task.path,
            task.output_dir,
            config,
            telemetry=tm,
            registry=state.registry(task.output_dir),
            batch_context=extract_span_context(task.carrier),
        )
    finally:
        state.flush()
    return TaskOutcome(result, tuple(measurements), state.collector.take())


def make_tasks(
    paths: Sequence[str | os.PathLike[str]], output_dir: str | os.PathLike[str], config: PipelineConfig,
    batch_context: SpanContext | None,
) -> list[FileTask]:
    carrier = inject_carrier(batch_context)
    params = {stage: dict(config.stage_params[stage]) for stage in config.stages}
    return [
        FileTask(str(p), str(output_dir), tuple(config.stages), params, config.large_file_threshold_bytes, carrier)
        for p in paths
    ]


# ------------------------------------------------------------------------------------------------
# The parent side
# ------------------------------------------------------------------------------------------------


def _outcome(task: FileTask, future: Any) -> TaskOutcome:
    """A finished task's outcome; a worker that died (crash, killed, lost, a pickling error) still
    yields a per-file status and its failed count."""
    try:
        return future.result()
    except Exception as exc:
        log.error("worker failed on %s: %s", task.path, exc, extra={"file_path": task.path})
        failed = FileResult(input_path=task.path, status=STATUS_FAILED,
                            error=f"{task.path}: worker failed: {describe_error(exc)}", error_reason="worker_failed")
        return TaskOutcome(failed, (("files_processed", "add", 1, {"status": STATUS_FAILED}),))


def run_batch(
    paths: Sequence[str | os.PathLike[str]],
    output_dir: str | os.PathLike[str],
    config: PipelineConfig,
    *,
    batch_context: SpanContext | None = None,
    workers: int = 2,
    dask_scheduler: str | None = None,
    env: Mapping[str, str] | None = None,
    telemetry: PipelineTelemetry | None = None,
    on_result: Callable[[FileResult], None] | None = None,
    adopt: Callable[[FinishedTelemetry], None] | None = None,
) -> list[FileResult]:
    """Process ``paths`` in worker processes; one result per path, in input order.

    With ``dask_scheduler`` the files run on that Dask cluster, else on a local pool of ``workers``
    spawned processes. ``env`` holds the ``OTEL_*`` variables the workers configure their SDK from
    (default ``os.environ``). Metrics are recorded on ``telemetry`` (default: the global providers).
    ``adopt`` receives each task's finished spans and logs (e.g. ``TelemetrySetup.adopt``: the
    parent's in-process processors); without it they are only where the workers exported them.
    A failing or crashing file never stops the others.
    """
    env = dict(os.environ if env is None else env)
    tm = telemetry or default_telemetry()
    tasks = make_tasks(paths, output_dir, config, batch_context)
    if not tasks:
        return []
    try:
        ensure_output_dir(output_dir)  # before the workers race to open the registry in it
    except PipelineError:
        pass  # every file then fails with the writer's clear error, in its own trace
    results: dict[int, FileResult] = {}

    def finish(index: int, outcome: TaskOutcome) -> None:
        replay_measurements(outcome.measurements, tm)
        if adopt is not None:
            adopt(outcome.finished)
        results[index] = outcome.result
        if on_result is not None:
            on_result(outcome.result)

    with ExitStack() as in_flight:
        for _ in tasks:  # the parent's gauge shows the files handed to workers and not yet back
            in_flight.enter_context(tm.active_task())
        if dask_scheduler:
            _run_on_dask(tasks, env, dask_scheduler, finish)
        else:
            _run_on_pool(tasks, env, workers, finish)
    return [results[i] for i in range(len(tasks))]


def _run_on_pool(tasks: Sequence[FileTask], env: dict[str, str], workers: int,
                 finish: Callable[[int, TaskOutcome], None]) -> None:
    ctx = multiprocessing.get_context("spawn")  # no forked SDK threads or locks, no os._exit losses
    with ProcessPoolExecutor(max_workers=max(1, min(workers, len(tasks))), mp_context=ctx,
                             initializer=init_worker, initargs=(env,)) as pool:
        futures = {pool.submit(run_task, task, env): i for i, task in enumerate(tasks)}
        for future in as_completed(futures):
            i = futures[future]
            finish(i, _outcome(tasks[i], future))


def _run_on_dask(tasks: Sequence[FileTask], env: dict[str, str], address: str,
                 finish: Callable[[int, TaskOutcome], None]) -> None:
    from distributed import as_completed as dask_as_completed

    with _dask_client(address) as client:
        futures = {client.submit(run_task, task, env, pure=False, key=f"process_file-{i}-{os.getpid()}-{id(task)}"): i
                   for i, task in enumerate(tasks)}
        for future in dask_as_completed(list(futures), loop=client.loop):
            i = futures[future]
            finish(i, _outcome(tasks[i], future))


def map_on_dask(fn: Callable[[T], R], items: Sequence[T], address: str,
                on_result: Callable[[R], None] | None = None) -> list[R]:
    """Run ``fn`` over ``items`` on the Dask scheduler at ``address``; results in input order.

    ``fn`` must be importable by the workers (a module-level function, or a ``functools.partial`` of
    one). ``on_result`` is called in the caller's thread as each result arrives. Exceptions propagate;
    a scheduler that is not there raises :class:`SchedulerUnreachableError` within a few seconds.
    """
    from distributed import as_completed as dask_as_completed

    with _dask_client(address) as client:
        futures = client.map(fn, list(items), pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        results: dict[int, R] = {}
        for future in dask_as_completed(futures, loop=client.loop):
            results[index[future.key]] = value = future.result()
            if on_result is not None:
                on_result(value)
        return [results[i] for i in range(len(futures))]


__all__ = [
    "DASK_CONNECT_TIMEOUT_S",
    "FileTask",
    "SchedulerUnreachableError",
    "TaskOutcome",
    "check_scheduler",
    "extract_span_context",
    "init_worker",
    "inject_carrier",
    "make_tasks",
    "map_on_dask",
    "replay_measurements",
    "run_batch",
    "run_task",
]
