"""Orchestration: one input file through load -> stages -> write, traced, measured and logged.

Trace shape (one trace per file, always a fresh root, even inside a batch)::

    process_file                      neuro.file.name, neuro.file.size_bytes, neuro.stages, ...
      load_file                       "Loading file" log; large_file_detected event
      process_image
        <stage> x N                   named exactly as the stage; stage_started/completed events
      write_output
        write_metadata                metadata.path, metadata.size_bytes

A batch is a ``process_batch`` span in its own trace; every file's ``process_file`` carries a span
link to it (``batch_context``), which is also how a worker process ties its files to the batch.

Attribute policy: span attributes name files by *basename only* (``neuro.file.name``, and
``metadata.path`` is the file name inside the output directory); full paths appear only in log
fields (``file_path``) and in the local run registry. Metric attributes carry only ``status`` or
``stage``. A failure gets ERROR status and the recorded exception on the span where it happened and
on the root (spans in between get ERROR status only), an ERROR log, and
``neuro.files.processed{status=failed}``; nothing of the failed input stays in the output directory.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import platform
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, SpanContext, Status, StatusCode

from pipeline import __version__
from pipeline.config import PipelineConfig
from pipeline.errors import PipelineError
from pipeline.loader import LoadedVolume, file_facts, load_volume
from pipeline.registry import RunRegistry
from pipeline.stages import ImageState, run_stage
from pipeline.telemetry import STATUS_FAILED, STATUS_SKIPPED, STATUS_SUCCESS, PipelineTelemetry, default_telemetry
from pipeline.tracing import open_resource, traced, use_tracer
from pipeline.writer import ensure_output_dir, write_json_atomic, write_nifti_atomic

log = logging.getLogger("pipeline.processor")

NIFTI_SUFFIXES = (".nii.gz", ".nii")
SOFTWARE_DISTRIBUTIONS = {
    "numpy": "numpy",
    "nibabel": "nibabel",
    "scipy": "scipy",
    "SimpleITK": "SimpleITK",
    "opentelemetry-sdk": "opentelemetry-sdk",
    "neuro-otel-harness": "neuro-otel-harness",
}


@dataclass(frozen=True)
class FileResult:
    """What happened to one input. ``status`` is success | failed | skipped."""

    input_path: str
    status: str
    outputs: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None
    error_reason: str | None = None
    stage_durations_s: Mapping[str, float] = field(default_factory=dict)
    duration_s: float = 0.0
    checksum: str | None = None
    trace_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.status != STATUS_FAILED


@dataclass(frozen=True)
class BatchResult:
    """Per-input results of a batch, in input order, plus the resume plan's counts."""

    results: tuple[FileResult, ...]
    to_process: int
    already_done: int
    trace_id: str | None = None

    @property
    def failed(self) -> tuple[FileResult, ...]:
        return tuple(r for r in self.results if r.status == STATUS_FAILED)

    @property
    def succeeded(self) -> tuple[FileResult, ...]:
        return tuple(r for r in self.results if r.status == STATUS_SUCCESS)

    @property
    def skipped(self) -> tuple[FileResult, ...]:
        return tuple(r for r in self.results if r.status == STATUS_SKIPPED)


def output_stem(path: str | os.PathLike[str]) -> str:
    """``sub-001_T1w.nii.gz`` -> ``sub-001_T1w``."""
    name = Path(path).name
    for suffix in NIFTI_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def output_paths(path: str | os.PathLike[str], output_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Where ``path``'s outputs go: ``<stem>_preproc.nii.gz`` and ``<stem>_metadata.json``."""
    stem, out = output_stem(path), Path(output_dir)
    return {"image": out / f"{stem}_preproc.nii.gz", "metadata": out / f"{stem}_metadata.json"}


def software_versions() -> dict[str, str]:
    """Versions written to the metadata file (python and the libraries that shape the output)."""
    versions = {"python": platform.python_version()}
    for label, dist in SOFTWARE_DISTRIBUTIONS.items():
        try:
            versions[label] = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            versions[label] = __version__ if dist == "neuro-otel-harness" else "unknown"
    return versions


def describe_error(exc: BaseException) -> str:
    """The one-line description used for span status, registry and the CLI."""
    if isinstance(exc, PipelineError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _reason(exc: BaseException) -> str:
    return exc.reason if isinstance(exc, PipelineError) else "internal"


def _trace_id(span: trace.Span) -> str | None:
    ctx = span.get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid and ctx.trace_flags.sampled else None


def _record_failure(span: trace.Span, exc: BaseException, *, record: bool) -> None:
    """Mark ``span`` failed: recorded exception (if ``record``) and ERROR status with a description."""
    # >>> exercise: error_recording
    if record:
        span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, describe_error(exc)))
    # === starter
    # | pass  # TODO: record the exception and set an ERROR status with a description
    # <<< exercise: error_recording


@contextmanager
def _child_span(tracer: trace.Tracer, name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[trace.Span]:
    """A child span that records an escaping exception once (where it happened) and re-raises."""
    with tracer.start_as_current_span(
        name, attributes=attributes, record_exception=False, set_status_on_exception=False
    ) as span:
        try:
            yield span
        except Exception as exc:
            first = not getattr(exc, "_neuro_recorded", False)
            _record_failure(span, exc, record=first)
            if first:
                try:
                    exc._neuro_recorded = True  # type: ignore[attr-defined]
                except AttributeError:  # exceptions without a __dict__: the parent records again
                    pass
            raise


StageCallback = Callable[[Path, int, str], None]


class _FileRun:
    """State of one file through the pipeline (used by the sync and async entry points)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        output_dir: str | os.PathLike[str],
        config: PipelineConfig,
        telemetry: PipelineTelemetry,
        registry: RunRegistry | None,
        on_stage: StageCallback | None = None,
    ) -> None:
        self.path = Path(path)
        self.on_stage = on_stage
        self.output_dir = Path(output_dir)
        self.config = config
        self.tm = telemetry
        self.registry = registry
        self.parameters = config.parameters()
        self.stage_durations: dict[str, float] = {}
        self.stage_info: dict[str, dict[str, Any]] = {}
        self.checksum: str | None = None
        self.outputs: dict[str, str] = {}
        self.trace_id: str | None = None
        self.size_bytes: int | None = None
        self.started = time.perf_counter()

    # -- root --------------------------------------------------------------------------------

    @contextmanager
    def root_span(self, batch_context: SpanContext | None) -> Iterator[trace.Span]:
        """The ``process_file`` root: a fresh trace, linked to the batch span if there is one."""
        links = [Link(batch_context, {"neuro.link.type": "batch"})] if batch_context and batch_context.is_valid else []
        attributes = {
            "neuro.file.name": self.path.name,
            "neuro.stages": list(self.config.stages),
        }
        with self.tm.active_task(), use_tracer(self.tm.tracer), self.tm.tracer.start_as_current_span(
            "process_file",
            context=otel_context.Context(),  # a new root even inside a batch or a caller's span
            links=links,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as root:
            self.trace_id = _trace_id(root)
            yield root

    def body(self, root: trace.Span) -> FileResult:
        """Run every step inside the current root span; never raises for a failing input."""
        log.debug("process_file: entry", extra={"file_name": self.path.name, "stages": list(self.config.stages)})
        try:
            ensure_output_dir(self.output_dir)
            loaded = self.load(root)
            if self.registry is not None:
                self.registry.start(self.path, loaded.sha256, self.parameters, trace_id=self.trace_id)
            state = self.process_image(loaded)
            self.write_output(loaded, state)
        except Exception as exc:  # noqa: BLE001 - any failure of one input is recorded, never raised
            return self.fail(root, exc)
        return self.succeed(root)

    def fail(self, root: trace.Span, exc: Exception) -> FileResult:
        self._remove_outputs()
        description = describe_error(exc)
        _record_failure(root, exc, record=True)
        root.set_attribute("error.type", type(exc).__name__)
        root.set_attribute("neuro.error.reason", _reason(exc))
        root.set_attribute("neuro.file.status", STATUS_FAILED)
        duration = time.perf_counter() - self.started
        log.error(
            "Processing failed: %s",
            description,
            exc_info=exc,
            extra={**file_facts(self.path), "error_reason": _reason(exc), "error_type": type(exc).__name__},
        )
        if self.registry is not None:
            try:
                self.registry.finish(
                    self.path,
                    STATUS_FAILED,
                    checksum=self.checksum or "",
                    parameters=self.parameters,
                    error=description,
                    stage_durations=self.stage_durations,
                    trace_id=self.trace_id,
                )
            except Exception:  # the registry is a record, not a reason to hide the real error
                log.warning("Could not record the failure in the run registry", exc_info=True)
        self._record_metrics(STATUS_FAILED, duration)
        return FileResult(
            input_path=str(self.path),
            status=STATUS_FAILED,
            error=description,
            error_reason=_reason(exc),
            stage_durations_s=dict(self.stage_durations),
            duration_s=duration,
            checksum=self.checksum,
            trace_id=self.trace_id,
        )

    def succeed(self, root: trace.Span) -> FileResult:
        duration = time.perf_counter() - self.started
        root.set_attribute("neuro.file.status", STATUS_SUCCESS)
        root.set_attribute("neuro.process.duration_s", round(duration, 6))
        log.info(
            "Processed file",
            extra={"file_name": self.path.name, "duration_s": round(duration, 3), "outputs": sorted(self.outputs.values())},
        )
        self._record_metrics(STATUS_SUCCESS, duration)
        return FileResult(
            input_path=str(self.path),
            status=STATUS_SUCCESS,
            outputs=dict(self.outputs),
            stage_durations_s=dict(self.stage_durations),
            duration_s=duration,
            checksum=self.checksum,
            trace_id=self.trace_id,
        )

    def _record_metrics(self, status: str, duration_s: float) -> None:
        # >>> exercise: attribute_hygiene
        metric_attributes = {"status": status}
        # === starter
        # | metric_attributes = {"status": status, "file.path": str(self.path.resolve())}
        # <<< exercise: attribute_hygiene
        if status == STATUS_FAILED:
            # >>> exercise: error_recording
            self.tm.files_processed.add(1, metric_attributes)
            # === starter
            # | pass  # TODO: count the failed file in neuro.files.processed
            # <<< exercise: error_recording
        else:
            self.tm.files_processed.add(1, metric_attributes)
        self.tm.process_duration.record(duration_s, metric_attributes)
        if self.size_bytes is not None:
            self.tm.input_size.record(self.size_bytes)

    def _remove_outputs(self) -> None:
        """A failed input leaves nothing behind: once this run has replaced one output, remove both
        (never an image next to a metadata file of another run). Directories are left alone."""
        if not self.outputs:
            return
        for path in output_paths(self.path, self.output_dir).values():
            if path.is_file():
                try:
                    path.unlink()
                except OSError:
                    log.warning("Could not remove a partial output", extra={"output_name": path.name})
        self.outputs.clear()

    # -- steps -------------------------------------------------------------------------------

    def load(self, root: trace.Span) -> LoadedVolume:
        tracer = self.tm.tracer
        with _child_span(tracer, "load_file", {"neuro.file.name": self.path.name}) as span:
            try:
                self.size_bytes = self.path.stat().st_size if self.path.is_file() else None
            except OSError:
                self.size_bytes = None
            if self.size_bytes is not None:
                span.set_attribute("neuro.file.size_bytes", self.size_bytes)
                root.set_attribute("neuro.file.size_bytes", self.size_bytes)
                threshold = self.config.large_file_threshold_bytes
                if self.size_bytes > threshold:
                    # >>> exercise: span_events
                    span.add_event(
                        "large_file_detected",
                        {"neuro.file.size_bytes": self.size_bytes, "neuro.file.threshold_bytes": threshold},
                    )
                    # <<< exercise: span_events
                    log.warning(
                        "Large input file",
                        extra={"file_name": self.path.name, "file_size_mb": round(self.size_bytes / 1e6, 3),
                               "threshold_mb": round(threshold / 1e6, 3)},
                    )
            loaded = load_volume(self.path)
            # >>> exercise: loader_logs
            log.info("Loading file", extra={**file_facts(self.path), "array_shape": list(loaded.shape)})
            # === starter
            # | log.info("Loading file")  # TODO: structured fields
            # <<< exercise: loader_logs
            self.checksum = loaded.sha256
            image_attributes: dict[str, Any] = {
                "neuro.image.shape": list(loaded.shape),
                "neuro.image.voxel_size_mm": [round(v, 6) for v in loaded.voxel_sizes_mm],
                "neuro.image.dtype": loaded.dtype,
            }
            span.set_attributes(image_attributes)
            root.set_attributes(image_attributes)
            return loaded

    def process_image(self, loaded: LoadedVolume) -> ImageState:
        tracer = self.tm.tracer
        state = ImageState(loaded.data, loaded.affine)
        with _child_span(tracer, "process_image", {"neuro.stages": list(self.config.stages)}):
            for index, name in enumerate(self.config.stages):
                if self.on_stage is not None:
                    self.on_stage(self.path, index, name)
                params = self.config.params_for(name)
                attributes: dict[str, Any] = {"neuro.stage.name": name}
                attributes.update({f"neuro.stage.param.{k}": _attr(v) for k, v in params.items()})
                with _child_span(tracer, name, attributes) as span:
                    # >>> exercise: span_events
                    span.add_event("stage_started", {"neuro.stage.name": name})
                    # <<< exercise: span_events
                    log.debug("Stage started", extra={"stage": name})
                    t0 = time.perf_counter()
                    result = run_stage(name, state, **params)
                    elapsed = time.perf_counter() - t0
                    state = result.state
                    self.stage_durations[name] = round(elapsed, 6)
                    self.stage_info[name] = dict(result.info)
                    span.set_attributes({f"neuro.stage.{k}": _attr(v) for k, v in result.info.items()})
                    for event_name, event_attributes in result.events:
                        span.add_event(event_name, {k: _attr(v) for k, v in event_attributes.items()})
                    # >>> exercise: span_events
                    span.add_event("stage_completed", {"neuro.stage.name": name, "neuro.stage.duration_s": elapsed})
                    # <<< exercise: span_events
                    # >>> exercise: stages_counter
                    if self.tm.stages_executed is not None:
                        self.tm.stages_executed.add(1, {"stage": name})
                    # <<< exercise: stages_counter
                    log.info("Stage completed", extra={"stage": name, "duration_s": round(elapsed, 3)})
        return state

    def write_output(self, loaded: LoadedVolume, state: ImageState) -> None:
        tracer = self.tm.tracer
        paths = output_paths(self.path, self.output_dir)
        with _child_span(tracer, "write_output", {"neuro.output.name": paths["image"].name}) as span:
            size = write_nifti_atomic(state.data, state.affine, paths["image"], header=loaded.header)
            self.outputs["image"] = paths["image"].name
            span.set_attribute("neuro.output.size_bytes", size)
            metadata = self.metadata(loaded, state)
            # >>> exercise: write_metadata_span
            with _child_span(tracer, "write_metadata") as meta_span:
                meta_size = write_json_atomic(metadata, paths["metadata"])
                self.outputs["metadata"] = paths["metadata"].name
                meta_span.set_attribute("metadata.path", paths["metadata"].name)
                meta_span.set_attribute("metadata.size_bytes", meta_size)
            # === starter
            # | write_json_atomic(metadata, paths["metadata"])
            # | self.outputs["metadata"] = paths["metadata"].name
            # <<< exercise: write_metadata_span
            if self.registry is not None:
                self.registry.finish(
                    self.path,
                    STATUS_SUCCESS,
                    checksum=loaded.sha256,
                    parameters=self.parameters,
                    stage_durations=self.stage_durations,
                    outputs=self.outputs,
                    trace_id=self.trace_id,
                )

    def metadata(self, loaded: LoadedVolume, state: ImageState) -> dict[str, Any]:
        return {
            "input": {
                "name": self.path.name,
                "sha256": loaded.sha256,
                "size_bytes": loaded.size_bytes,
                "shape": list(loaded.shape),
                "voxel_sizes_mm": list(loaded.voxel_sizes_mm),
                "dtype": loaded.dtype,
            },
            "output": {
                "image": output_paths(self.path, self.output_dir)["image"].name,
                "shape": list(state.shape),
                "voxel_sizes_mm": [round(v, 6) for v in state.voxel_sizes_mm],
                "affine": [[float(x) for x in row] for row in state.affine],
            },
            "stages": list(self.config.stages),
            "parameters": self.parameters["stage_params"],
            "stage_info": self.stage_info,
            "durations_s": dict(self.stage_durations),
            "software": software_versions(),
            "trace_id": self.trace_id,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }


def _attr(value: Any) -> Any:
    """An OpenTelemetry attribute value (tuples become lists; other values pass through)."""
    return list(value) if isinstance(value, tuple) else value


def process_file(
    path: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    config: PipelineConfig | None = None,
    *,
    telemetry: PipelineTelemetry | None = None,
    registry: RunRegistry | None = None,
    batch_context: SpanContext | None = None,
    on_stage: StageCallback | None = None,
) -> FileResult:
    """Process one input into ``output_dir``; a failing input gives ``status="failed"``, never an exception.

    ``batch_context`` (the ``process_batch`` span's context, possibly from another process) becomes a
    span link on this file's root. ``registry`` records the run (one row per input).
    ``on_stage(path, index, stage)`` is called as each stage starts (e.g. a progress display).
    """
    run = _FileRun(path, output_dir, config or PipelineConfig.create(), telemetry or default_telemetry(), registry,
                   on_stage)
    with run.root_span(batch_context) as root:
        return run.body(root)


async def process_file_async(
    path: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    config: PipelineConfig | None = None,
    *,
    telemetry: PipelineTelemetry | None = None,
    registry: RunRegistry | None = None,
    batch_context: SpanContext | None = None,
) -> FileResult:
    """:func:`process_file` for asyncio: the root span lives in the coroutine, the work runs in a thread.

    ``asyncio.to_thread`` copies the context, so every child span made in the worker thread is a
    child of this coroutine's ``process_file``; concurrent calls each keep their own trace.
    """
    run = _FileRun(path, output_dir, config or PipelineConfig.create(), telemetry or default_telemetry(), registry)
    with run.root_span(batch_context) as root:
        return await asyncio.to_thread(run.body, root)


# ------------------------------------------------------------------------------------------------
# Batches
# ------------------------------------------------------------------------------------------------


def discover_inputs(input_dir: str | os.PathLike[str]) -> list[Path]:
    """BIDS-like ``sub-*/[ses-*/]anat/*_T1w.nii[.gz]`` if present, else every ``*.nii[.gz]`` directly inside."""
    root = Path(input_dir)
    if not root.is_dir():
        raise PipelineError(f"input directory {root} does not exist or is not a directory")
    bids = sorted(
        {p for pattern in ("sub-*/anat/*_T1w.nii*", "sub-*/ses-*/anat/*_T1w.nii*") for p in root.glob(pattern)}
    )
    bids = [p for p in bids if p.name.lower().endswith(NIFTI_SUFFIXES)]
    if bids:
        return bids
    return sorted(p for p in root.iterdir() if p.name.lower().endswith(NIFTI_SUFFIXES) and not p.name.startswith("."))


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes, read inside an ``open_resource`` span."""
    digest = hashlib.sha256()
    with open_resource(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@traced("plan_batch")
def plan_batch(
    paths: Sequence[str | os.PathLike[str]],
    config: PipelineConfig,
    registry: RunRegistry | None,
    resume: bool,
) -> tuple[list[Path], list[Path]]:
    """Split ``paths`` into (to process, already done): done = same checksum and parameters succeeded."""
    todo: list[Path] = []
    done: list[Path] = []
    parameters = config.parameters()
    for raw in paths:
        p = Path(raw)
        if resume and registry is not None and p.is_file():
            try:
                if registry.is_done(p, file_sha256(p), parameters):
                    done.append(p)
                    continue
            except OSError:
                pass  # unreadable now: process_file reports it properly
        todo.append(p)
    trace.get_current_span().set_attributes({"neuro.batch.to_process": len(todo), "neuro.batch.already_done": len(done)})
    return todo, done


FileRunner = Callable[[Sequence[Path], SpanContext], Sequence[FileResult]]


def process_batch(
    paths: Sequence[str | os.PathLike[str]],
    output_dir: str | os.PathLike[str],
    config: PipelineConfig | None = None,
    *,
    telemetry: PipelineTelemetry | None = None,
    registry: RunRegistry | None = None,
    resume: bool = False,
    on_result: Callable[[FileResult], None] | None = None,
    on_plan: Callable[[int, int], None] | None = None,
    runner: FileRunner | None = None,
    on_stage: StageCallback | None = None,
) -> BatchResult:
    """Process ``paths`` (a failing input never stops the others) under a ``process_batch`` span.

    With ``resume`` inputs already done (registry: same checksum and parameters, status success) are
    skipped and counted as ``neuro.files.processed{status=skipped}``. ``runner(paths, batch_context)``
    replaces the in-process loop (e.g. ``pipeline.parallel.run_batch`` in a closure): it must return
    one result per path, in order; ``on_result`` is then called for each of them.
    ``on_plan(to_process, already_done)`` is called once planned, ``on_result`` after each file,
    ``on_stage`` as each stage of an in-process file starts (see :func:`process_file`).
    """
    config = config or PipelineConfig.create()
    tm = telemetry or default_telemetry()
    with use_tracer(tm.tracer), tm.tracer.start_as_current_span(
        "process_batch",
        context=otel_context.Context(),
        attributes={"neuro.batch.size": len(paths), "neuro.stages": list(config.stages)},
        record_exception=False,
        set_status_on_exception=False,
    ) as batch_span:
        todo, done = plan_batch(paths, config, registry, resume)
        log.info(
            "Batch planned: %d to process, %d already done",
            len(todo),
            len(done),
            extra={"to_process": len(todo), "already_done": len(done)},
        )
        if on_plan is not None:
            on_plan(len(todo), len(done))
        batch_context = batch_span.get_span_context()
        by_path: dict[Path, FileResult] = {}
        for p in done:
            skipped = FileResult(input_path=str(p), status=STATUS_SKIPPED)
            tm.files_processed.add(1, {"status": STATUS_SKIPPED})
            by_path[p] = skipped
            if on_result is not None:
                on_result(skipped)
        if runner is not None:
            results = list(runner(todo, batch_context)) if todo else []
            if len(results) != len(todo):
                raise RuntimeError(f"batch runner returned {len(results)} results for {len(todo)} inputs")
            for p, r in zip(todo, results):
                by_path[p] = r
                if on_result is not None:
                    on_result(r)
        else:
            for p in todo:
                r = process_file(p, output_dir, config, telemetry=tm, registry=registry, batch_context=batch_context,
                                 on_stage=on_stage)
                by_path[p] = r
                if on_result is not None:
                    on_result(r)
        ordered = tuple(by_path[Path(p)] for p in paths)
        n_failed = sum(r.status == STATUS_FAILED for r in ordered)
        batch_span.set_attributes(
            {
                "neuro.batch.succeeded": sum(r.status == STATUS_SUCCESS for r in ordered),
                "neuro.batch.failed": n_failed,
                "neuro.batch.skipped": len(done),
            }
        )
        if n_failed:
            batch_span.set_status(Status(StatusCode.ERROR, f"{n_failed} of {len(todo)} inputs failed"))
        return BatchResult(ordered, len(todo), len(done), _trace_id(batch_span))


def inputs_from(items: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Paths as given, de-duplicated in order (the same file twice is processed once)."""
    seen: dict[Path, None] = {}
    for item in items:
        seen.setdefault(Path(item), None)
    return list(seen)


__all__ = [
    "BatchResult",
    "FileResult",
    "FileRunner",
    "describe_error",
    "discover_inputs",
    "file_sha256",
    "inputs_from",
    "output_paths",
    "output_stem",
    "plan_batch",
    "process_batch",
    "process_file",
    "process_file_async",
    "software_versions",
]
