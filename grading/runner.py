"""The in-subprocess harness: grader-owned telemetry capture, then the SUBMISSION's pipeline.

Run as ``python -I -m grading.runner`` in an isolated child (:mod:`grading.isolate`); the job
description arrives as JSON on stdin (read before any submission code runs). Order matters:

1. Build SDK providers with grader-owned in-memory exporters/readers (and a Prometheus reader, so the
   series names are the exporter's own), install them globally, bridge the root logger.
2. Snapshot the identity of every function and class member of the loaded OpenTelemetry,
   prometheus_client, protobuf, harness and stdlib output modules (:class:`Integrity`) and of the
   installed providers/processors/handlers.
3. Resolve ``pipeline`` only from the submission directory (an import guard first on ``sys.meta_path``;
   sys.path is left alone), import it, check where every module came from, run the scenarios.
4. Re-check the snapshot, convert what the grader's own sinks hold into the model, write it as an
   OTLP JSON file (``telemetry_asserts.otlp.files``; readable by ``telemetry-asserts check --from``)
   and the outcome, the nonce and that file's sha256 to the result file; then ``os._exit`` (no atexit hooks or threads of the
   submission run after the result is written).

What this defends against, and what not: see ``grading/README.md`` ("Threat model").
"""

from __future__ import annotations

import builtins
import hashlib
import importlib
import importlib.abc
import importlib.machinery
import inspect
import io
import json
import logging
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from opentelemetry import _logs as otel_logs
from opentelemetry import metrics as otel_metrics
from opentelemetry import trace as otel_trace
from opentelemetry.sdk import _logs as sdk_logs
from opentelemetry.sdk import metrics as sdk_metrics
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk._logs import export as sdk_logs_export
from opentelemetry.sdk.metrics import export as sdk_metrics_export
from opentelemetry.sdk.metrics._internal import instrument as sdk_instrument
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import export as sdk_trace_export

from telemetry_asserts import capture as ta_capture
from telemetry_asserts import model
from telemetry_asserts.otlp import encode as otlp_encode
from telemetry_asserts.otlp import files as otlp_files
from telemetry_asserts.otlp import jsonfmt as otlp_jsonfmt

RESULT_SCHEMA = 1
GRADER_SERVICE = "neuro-preprocess"


class _SpanSink(sdk_trace_export.SpanExporter):
    """Keeps finished spans in a private list (the grader's only view of the traces)."""

    def __init__(self) -> None:
        self._spans: list[Any] = []

    def export(self, spans: Sequence[Any]) -> sdk_trace_export.SpanExportResult:
        self._spans.extend(spans)
        return sdk_trace_export.SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


class _LogSink(sdk_logs_export.LogRecordExporter):
    """Keeps emitted log records in a private list."""

    def __init__(self) -> None:
        self._records: list[Any] = []

    def export(self, batch: Sequence[Any]) -> sdk_logs_export.LogRecordExportResult:
        self._records.extend(batch)
        return sdk_logs_export.LogRecordExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    def shutdown(self) -> None:
        return None


class Capture:
    """Grader-owned providers: spans, metrics (in-memory + Prometheus) and logs."""

    def __init__(self, run_id: str) -> None:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from opentelemetry.instrumentation.logging.handler import LoggingHandler
        from prometheus_client import CollectorRegistry

        resource = Resource({"service.name": GRADER_SERVICE, "grading.run_id": run_id})
        self.span_sink = _SpanSink()
        self.span_processor = sdk_trace_export.SimpleSpanProcessor(self.span_sink)
        self.tracer_provider = sdk_trace.TracerProvider(resource=resource)
        self.tracer_provider.add_span_processor(self.span_processor)
        self.metric_reader = sdk_metrics_export.InMemoryMetricReader()
        self.prometheus_registry = CollectorRegistry(auto_describe=False)
        self.prometheus_reader = PrometheusMetricReader(disable_target_info=True)
        # The reader registers itself on the process-wide registry; keep the grader's own copy too.
        self.prometheus_registry.register(self.prometheus_reader._collector)
        self.meter_provider = sdk_metrics.MeterProvider(
            resource=resource, metric_readers=[self.metric_reader, self.prometheus_reader]
        )
        self.log_sink = _LogSink()
        self.log_processor = sdk_logs_export.SimpleLogRecordProcessor(self.log_sink)
        self.logger_provider = sdk_logs.LoggerProvider(resource=resource)
        self.logger_provider.add_log_record_processor(self.log_processor)
        self.log_handler = LoggingHandler(level=logging.DEBUG, logger_provider=self.logger_provider)
        self.log_handler.addFilter(lambda record: not record.name.startswith("opentelemetry"))

    def install(self) -> None:
        """Make these the global providers and bridge the root logger (before submission code)."""
        otel_trace.set_tracer_provider(self.tracer_provider)
        otel_metrics.set_meter_provider(self.meter_provider)
        otel_logs.set_logger_provider(self.logger_provider)
        root = logging.getLogger()
        root.setLevel(logging.DEBUG)
        root.addHandler(self.log_handler)

    def telemetry(self) -> model.Telemetry:
        """What the grader's own sinks hold, as the model (the harness's own SDK converters)."""
        self.tracer_provider.force_flush()
        self.logger_provider.force_flush()
        return model.Telemetry(
            ta_capture.spans_from_sdk(list(self.span_sink._spans)),
            ta_capture.metrics_from_sdk(self.metric_reader.get_metrics_data()),
            ta_capture.logs_from_sdk(list(self.log_sink._records)),
        )

    def prometheus_text(self) -> str:
        """The exposition text the Prometheus exporter serves for this run."""
        from prometheus_client import generate_latest

        return generate_latest(self.prometheus_registry).decode("utf-8")


# ------------------------------------------------------------------------------------ integrity


def _guarded_namespaces(capture: Capture) -> dict[str, Any]:
    """Classes and modules whose functions must be the same objects after the submission ran."""
    from opentelemetry.instrumentation.logging.handler import LoggingHandler

    spaces: dict[str, Any] = {
        "opentelemetry.trace": otel_trace,
        "opentelemetry.metrics": otel_metrics,
        "opentelemetry._logs": otel_logs,
        "opentelemetry.sdk.trace": sdk_trace,
        "opentelemetry.sdk.metrics": sdk_metrics,
        "opentelemetry.sdk.trace.export": sdk_trace_export,
        "opentelemetry.sdk.metrics.export": sdk_metrics_export,
        "json": json,
        "builtins": builtins,
        "os": os,
        "hashlib": hashlib,
        "tempfile": tempfile,
        "telemetry_asserts.capture": ta_capture,
        "telemetry_asserts.otlp.files": otlp_files,
        "telemetry_asserts.otlp.encode": otlp_encode,
        "telemetry_asserts.otlp.jsonfmt": otlp_jsonfmt,
        "grading.runner": sys.modules[__name__],
        "logging": logging,
    }
    classes: list[type] = [
        sdk_trace.TracerProvider,
        sdk_trace.Tracer,
        sdk_trace.Span,
        sdk_trace.ReadableSpan,
        sdk_trace.SynchronousMultiSpanProcessor,
        sdk_trace_export.SimpleSpanProcessor,
        sdk_metrics.MeterProvider,
        sdk_metrics.Meter,
        sdk_instrument._Counter,
        sdk_instrument._UpDownCounter,
        sdk_instrument._Histogram,
        sdk_instrument._Gauge,
        sdk_instrument._ObservableGauge,
        sdk_metrics_export.InMemoryMetricReader,
        sdk_metrics_export.MetricReader,
        sdk_logs.LoggerProvider,
        sdk_logs.Logger,
        sdk_logs_export.SimpleLogRecordProcessor,
        LoggingHandler,
        logging.Logger,
        logging.Handler,
        logging.LogRecord,
        json.JSONEncoder,
        io.TextIOWrapper,
        _SpanSink,
        _LogSink,
        Capture,
        type(capture.prometheus_reader),
        type(capture.prometheus_reader._collector),
    ]
    for cls in classes:
        spaces[f"{cls.__module__}.{cls.__qualname__}"] = cls
    # Every module (and the classes it defines) of the packages the capture runs through, as loaded now.
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(_GUARDED_PACKAGES):
            continue
        spaces.setdefault(name, module)
        for value in list(vars(module).values()):
            if isinstance(value, type) and value.__module__ == name:
                spaces.setdefault(f"{name}.{value.__qualname__}", value)
    return spaces


_GUARDED_PACKAGES = ("opentelemetry", "prometheus_client", "google.protobuf", "telemetry_asserts", "grading")


# opentelemetry-instrumentation-logging's LoggingInstrumentor legitimately swaps the record factory.
_ALLOWED_LOGGING_CHANGES = frozenset({"_logRecordFactory"})


class Integrity:
    """Identity snapshot of the grader's capture machinery; :meth:`violations` lists what changed."""

    def __init__(self, capture: Capture) -> None:
        self._capture = capture
        self._spaces = _guarded_namespaces(capture)
        self._before = {name: self._entries(ns) for name, ns in self._spaces.items()}
        self._wiring = self._wiring_now()

    @staticmethod
    def _entries(namespace: Any) -> dict[str, int]:
        out: dict[str, int] = {}
        for key, value in list(vars(namespace).items()):
            if namespace is logging and key in _ALLOWED_LOGGING_CHANGES:
                continue
            if callable(value) or isinstance(value, (property, staticmethod, classmethod)) or inspect.ismodule(value):
                out[key] = id(value)
        return out

    def _wiring_now(self) -> dict[str, Any]:
        c = self._capture
        return {
            "global tracer provider": id(otel_trace.get_tracer_provider()),
            "global meter provider": id(otel_metrics.get_meter_provider()),
            "global logger provider": id(otel_logs.get_logger_provider()),
            "span processors": tuple(id(p) for p in c.tracer_provider._active_span_processor._span_processors),
            "span exporter": id(c.span_processor.span_exporter),
            "metric readers": tuple(id(r) for r in c.meter_provider._metric_readers),
            "sampler": id(c.tracer_provider.sampler),
            "log processors": tuple(
                id(p) for p in c.logger_provider._multi_log_record_processor._log_record_processors
            ),
            "log exporter": id(c.log_processor._exporter),
            "root log handler": c.log_handler in logging.getLogger().handlers,
            "meter provider shut down": bool(c.meter_provider._shutdown),
        }

    def violations(self) -> list[str]:
        """Human-readable list of replaced functions and rewired capture components."""
        found: list[str] = []
        for name, before in self._before.items():
            now = self._entries(self._spaces[name])
            for key, ident in before.items():
                if key not in now:
                    found.append(f"{name}.{key} was deleted")
                elif now[key] != ident:
                    found.append(f"{name}.{key} was replaced")
        wiring = self._wiring_now()
        for key, value in self._wiring.items():
            if wiring[key] != value:
                found.append(f"the grader's {key} changed")
        return found


# ------------------------------------------------------------------------------- import guard


class SubmissionImportGuard(importlib.abc.MetaPathFinder):
    """Resolve ``pipeline`` and its submodules only inside the submission directory."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != "pipeline" and not fullname.startswith("pipeline."):
            return None
        search = [str(self.root)] if fullname == "pipeline" else list(path or [])
        spec = importlib.machinery.PathFinder.find_spec(fullname, search)
        if spec is None or not _inside(spec, self.root):
            raise ModuleNotFoundError(f"No module named {fullname!r} in the submission", name=fullname)
        return spec


def _inside(spec: Any, root: Path) -> bool:
    places = [spec.origin] if spec.origin not in (None, "namespace") else []
    places += list(spec.submodule_search_locations or [])
    return bool(places) and all(Path(p).resolve().is_relative_to(root) for p in places)


# ---------------------------------------------------------------------------------- scenarios


def _tail(exc: BaseException, limit: int = 12) -> str:
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    text = "".join(lines)
    return "\n".join(text.splitlines()[-limit:])


def _describe(exc: BaseException) -> dict[str, str]:
    return {"type": type(exc).__name__, "message": str(exc)[:500], "traceback": _tail(exc)}


def _call_process_file(processor: Any, config_mod: Any, job: dict[str, Any], input_path: Path, telemetry: Any) -> Any:
    """Call the submission's ``process_file`` with what its signature accepts."""
    fn = processor.process_file
    params = inspect.signature(fn).parameters
    kwargs: dict[str, Any] = {}
    if "config" in params and config_mod is not None:
        kwargs["config"] = config_mod.PipelineConfig.create(
            job["stages"],
            job.get("stage_params") or {},
            large_file_threshold_bytes=int(job["large_file_threshold_bytes"]),
        )
    if "telemetry" in params and telemetry is not None:
        kwargs["telemetry"] = telemetry
    out_dir = Path(job["output_dir"])
    for name in ("output_dir", "out_dir", "output"):
        if name in params:
            kwargs[name] = out_dir
            return fn(input_path, **kwargs)
    return fn(input_path, out_dir, **kwargs)


def run_scenarios(job: dict[str, Any], capture: Capture) -> dict[str, Any]:
    """Import the submission's pipeline and run the success and missing-file scenarios."""
    root = Path(job["submission"]).resolve()
    guard = SubmissionImportGuard(root)
    sys.meta_path.insert(0, guard)  # the only way in: sys.path is left alone
    outcome: dict[str, Any] = {"import": None, "scenarios": {}}
    try:
        pipeline = importlib.import_module("pipeline")
        processor = importlib.import_module("pipeline.processor")
        telemetry_mod = importlib.import_module("pipeline.telemetry")
        try:
            config_mod = importlib.import_module("pipeline.config")
        except ImportError:
            config_mod = None
    except BaseException as exc:  # noqa: BLE001 - SyntaxError, ImportError, SystemExit: anything at import
        outcome["import"] = _describe(exc)
        return outcome
    outcome["pipeline_file"] = str(Path(pipeline.__file__ or "").resolve())
    outcome["modules_outside_submission"] = sorted(
        name
        for name, mod in list(sys.modules.items())
        if (name == "pipeline" or name.startswith("pipeline."))
        and getattr(mod, "__file__", None)
        and not Path(mod.__file__).resolve().is_relative_to(root)
    )
    try:
        telemetry = telemetry_mod.PipelineTelemetry(capture.tracer_provider, capture.meter_provider)
    except BaseException as exc:  # noqa: BLE001 - the submission's constructor may raise anything
        outcome["scenarios"]["telemetry"] = {"ok": False, "error": _describe(exc)}
        telemetry = None
    scenarios = (("success", Path(job["phantom"])), ("missing_file", Path(job["missing_file"])))
    for name, path in scenarios:
        result: dict[str, Any] = {"input": str(path), "start_ns": time.time_ns()}
        try:
            returned = _call_process_file(processor, config_mod, job, path, telemetry)
            result.update(ok=True, status=str(getattr(returned, "status", "")), returned=repr(returned)[:300])
        except BaseException as exc:  # noqa: BLE001 - the submission may raise anything, SystemExit too
            result.update(ok=False, error=_describe(exc))
        result["end_ns"] = time.time_ns()
        outcome["scenarios"][name] = result
    out_dir = Path(job["output_dir"])
    outcome["outputs"] = (
        {str(p.relative_to(out_dir)): p.stat().st_size for p in sorted(out_dir.rglob("*")) if p.is_file()}
        if out_dir.is_dir()
        else {}
    )
    return outcome


def main() -> None:
    """Read the job from stdin, capture, run, write the result file, exit hard."""
    job = json.loads(sys.stdin.read())
    nonce = str(job["nonce"])
    result_path = Path(job["result_path"])
    capture = Capture(run_id=nonce[:8])
    capture.install()
    integrity = Integrity(capture)
    exit_code = 0
    try:
        outcome = run_scenarios(job, capture)
    except BaseException as exc:  # noqa: BLE001  # pragma: no cover - run_scenarios catches per step
        outcome = {"import": None, "scenarios": {}, "harness_error": _describe(exc)}
        exit_code = 3
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, SubmissionImportGuard)]
    violations = integrity.violations()
    telemetry_path = Path(job["telemetry_path"])
    try:
        otlp_files.write_otlp_json(capture.telemetry(), telemetry_path)
        prometheus = capture.prometheus_text()
    except BaseException as exc:  # noqa: BLE001 - a broken capture is reported, not fatal
        telemetry_path.write_text("", encoding="utf-8")
        prometheus = ""
        violations.append(f"collecting the telemetry failed: {type(exc).__name__}: {exc}")
    payload = {
        "schema": RESULT_SCHEMA,
        "nonce": nonce,
        "outcome": outcome,
        "integrity_violations": violations,
        "telemetry_sha256": hashlib.sha256(telemetry_path.read_bytes()).hexdigest(),
        "prometheus": prometheus,
    }
    tmp = result_path.with_name(result_path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(payload, handle)
    os.replace(tmp, result_path)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)


_ENTRY: Callable[[], None] = main

if __name__ == "__main__":
    main()
