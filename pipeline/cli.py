"""``neuro-preprocess``: process T1w NIfTI files or a BIDS-like folder, with OpenTelemetry from ``OTEL_*``.

Exit codes: 0 every input succeeded (or was already done), 1 some input failed, 2 usage error
(bad option, unknown stage or parameter, unsupported ``OTEL_*`` value, missing input directory).
Each failed input prints exactly one line on stderr. Telemetry is configured from the environment
(default: no exporters), the root logger is bridged to OpenTelemetry logs, the run registry's
sqlite3 cursors are traced, and everything is flushed within a bounded time at exit.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, TextIO

from pipeline import __version__

PROG = "neuro-preprocess"
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class UsageError(Exception):
    """A problem with the command line (exit code 2)."""


def _stage_list(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected a comma-separated list of stage names")
    return names


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (subcommands ``process`` and ``batch``)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-o", "--output-dir", required=True, type=Path, help="output directory (created if missing)")
    stages = common.add_argument_group("stages and parameters")
    stages.add_argument(
        "--stages", type=_stage_list, default=None,
        help="comma-separated stages in order (default: bias_correction,skull_strip,normalize,smooth,resample)",
    )
    stages.add_argument("--fwhm-mm", type=float, help="smooth: gaussian FWHM in mm (default 6)")
    stages.add_argument("--voxel-size-mm", type=float, help="resample: isotropic voxel size in mm (default 2)")
    stages.add_argument("--normalize-method", choices=("zscore", "percentile"), help="normalize: method")
    stages.add_argument("--erosion-mm", type=float, help="skull_strip: erosion radius in mm")
    stages.add_argument("--dilation-mm", type=float, help="skull_strip: dilation radius in mm")
    stages.add_argument("--n4-shrink-factor", type=int, help="bias_correction: N4 shrink factor")
    stages.add_argument("--n4-iterations", help="bias_correction: iterations per level, e.g. 50,50,30")
    stages.add_argument(
        "--param", action="append", default=[], metavar="STAGE.NAME=VALUE",
        help="any stage parameter, e.g. --param skull_strip.threshold_scale=0.9 (repeatable)",
    )
    stages.add_argument("--large-file-mb", type=float, default=None, help="inputs above this size log a warning")
    out = common.add_argument_group("output and telemetry")
    out.add_argument("--telemetry-summary", action="store_true", help="print the span tree and metric totals at the end")
    out.add_argument(
        "--serve-metrics-s", type=float, default=0.0, metavar="SECONDS",
        help="with OTEL_METRICS_EXPORTER=prometheus: keep the /metrics endpoint up this long after the run, "
        "so a scraper sees the final values (Ctrl-C ends it early)",
    )
    out.add_argument("--no-progress", action="store_true", help="no progress display (shown only on a terminal)")
    out.add_argument("-v", "--verbose", action="count", default=0, help="more console logging (-v info, -vv debug)")
    out.add_argument("--log-level", choices=_LEVELS, type=str.upper, help="console log level (default WARNING)")

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Preprocess T1w MRI volumes (N4, skull strip, normalise, smooth, resample) with OpenTelemetry.",
        epilog="Telemetry: OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER / OTEL_LOGS_EXPORTER = otlp|console|none "
        "(metrics also prometheus), OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL, OTEL_TRACES_SAMPLER.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{process,batch}")
    p = sub.add_parser("process", parents=[common], help="process one or more NIfTI files")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE", help=".nii or .nii.gz T1w volume")
    b = sub.add_parser("batch", parents=[common], help="process a BIDS-like folder (sub-*/anat/*_T1w.nii[.gz]) or a flat one")
    b.add_argument("input_dir", type=Path, metavar="INPUT_DIR")
    b.add_argument("--resume", action="store_true", help="skip inputs already done with the same checksum and parameters")
    b.add_argument("--workers", type=_positive_int, default=1, help="worker processes (a spawned pool; 1 = in this process)")
    b.add_argument("--dask-scheduler", metavar="ADDRESS", help="run the files on this Dask scheduler")
    return parser


def config_from_args(args: argparse.Namespace) -> Any:
    """A validated :class:`~pipeline.config.PipelineConfig` from the parsed options (UsageError if invalid)."""
    from pipeline.config import CLI_STAGE_OPTIONS, LARGE_FILE_THRESHOLD_BYTES, PipelineConfig, parse_param_assignments
    from pipeline.errors import StageError

    try:
        params = parse_param_assignments(args.param)
        for dest, (stage, key) in CLI_STAGE_OPTIONS.items():
            value = getattr(args, dest, None)
            if value is not None:
                params.setdefault(stage, {})[key] = value
        threshold = LARGE_FILE_THRESHOLD_BYTES if args.large_file_mb is None else int(args.large_file_mb * 1e6)
        return PipelineConfig.create(args.stages, params, large_file_threshold_bytes=threshold)
    except StageError as exc:
        raise UsageError(str(exc)) from None


_STANDARD_RECORD_KEYS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class _ConsoleFormatter(logging.Formatter):
    """``LEVEL logger [trace_id=.. span_id=..]: message key=value...`` (the record's ``extra=`` fields);
    no tracebacks unless at DEBUG (the CLI already prints one line per failed input)."""

    def __init__(self, show_tracebacks: bool) -> None:
        super().__init__()
        self.show_tracebacks = show_tracebacks

    def format(self, record: logging.LogRecord) -> str:
        from opentelemetry import trace

        ctx = trace.get_current_span().get_span_context()
        ids = f" [trace_id={ctx.trace_id:032x} span_id={ctx.span_id:016x}]" if ctx.is_valid else ""
        fields = "".join(f" {k}={v}" for k, v in vars(record).items() if k not in _STANDARD_RECORD_KEYS)
        text = f"{record.levelname} {record.name}{ids}: {record.getMessage()}{fields}"
        if self.show_tracebacks and record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def _not_a_reported_failure(record: logging.LogRecord) -> bool:
    # Per-file failure logs carry error_reason; the CLI prints its own single line for those.
    return not hasattr(record, "error_reason")


def _console_level(args: argparse.Namespace) -> int:
    if args.log_level:
        return int(getattr(logging, args.log_level))
    return {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)


def _batch_runner(args: argparse.Namespace) -> Any:
    """``pipeline.parallel.run_batch`` when the files run in other processes, else None; a Dask
    scheduler that is not there is a usage error now, before any work."""
    dask_scheduler = getattr(args, "dask_scheduler", None)
    if getattr(args, "workers", 1) <= 1 and not dask_scheduler:
        return None
    try:
        from pipeline.parallel import SchedulerUnreachableError, check_scheduler, run_batch
    except ImportError:
        raise UsageError("--workers > 1 and --dask-scheduler are not available (pipeline.parallel is missing)") from None
    if dask_scheduler:
        try:
            check_scheduler(dask_scheduler)
        except SchedulerUnreachableError as exc:
            raise UsageError(str(exc)) from None
    return run_batch


def _inputs(args: argparse.Namespace) -> list[Path]:
    """The files to process: discovered in the batch folder, or as given."""
    from pipeline.errors import PipelineError
    from pipeline.processor import discover_inputs, inputs_from

    if args.command != "batch":
        return inputs_from(args.files)
    try:
        inputs = discover_inputs(args.input_dir)
    except PipelineError as exc:
        raise UsageError(str(exc)) from None
    if not inputs:
        raise UsageError(f"no NIfTI inputs found in {args.input_dir} (sub-*/anat/*_T1w.nii[.gz] or *.nii[.gz])")
    return inputs


def _telemetry_setup(env: Mapping[str, str], summary: Any) -> Any:
    from pipeline.telemetry import TelemetryConfigError, configure_from_env

    try:
        return configure_from_env(env, **(summary.extras() if summary else {}))
    except TelemetryConfigError as exc:
        raise UsageError(str(exc)) from None


@contextmanager
def _console_logging(args: argparse.Namespace, stderr: TextIO, setup: Any) -> Iterator[None]:
    """One-line console logs on stderr and the root logger bridged to OpenTelemetry; restored after."""
    root = logging.getLogger()
    console_level = _console_level(args)
    console = logging.StreamHandler(stderr)
    console.setLevel(console_level)
    console.setFormatter(_ConsoleFormatter(show_tracebacks=console_level <= logging.DEBUG))
    console.addFilter(_not_a_reported_failure)
    bridge_level = min(console_level, logging.INFO)
    previous_root_level = root.level
    root.setLevel(bridge_level)
    root.addHandler(console)
    setup.instrument_logging(level=bridge_level)
    try:
        yield
    finally:
        root.removeHandler(console)
        root.setLevel(previous_root_level)


@contextmanager
def _sqlite_traced(tracer_provider: Any) -> Iterator[None]:
    """The run registry's sqlite3 cursors traced; instrumentors are process-wide singletons, so
    only undo what this run did."""
    from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor

    instrumentor = SQLite3Instrumentor()
    we_instrumented = not instrumentor.is_instrumented_by_opentelemetry
    if we_instrumented:
        instrumentor.instrument(tracer_provider=tracer_provider)
    try:
        yield
    finally:
        if we_instrumented:
            instrumentor.uninstrument()


def _open_output(output_dir: Path, stderr: TextIO) -> tuple[Any, str | None]:
    """The run registry in ``output_dir``, or (None, the problem) after printing it once: each file
    then fails with the writer's error, which is not repeated per file."""
    from pipeline.errors import OutputError
    from pipeline.registry import RegistryError, RunRegistry
    from pipeline.writer import ensure_output_dir

    try:
        ensure_output_dir(output_dir)
        return RunRegistry.in_dir(output_dir), None
    except (OutputError, RegistryError) as exc:
        print(f"{PROG}: error: {exc}", file=stderr)
        return None, str(exc)


class _Progress:
    """Progress on stderr when it is a terminal (tqdm's own TTY test; never in a pipe or file).

    ``batch``: a bar over files; ``process``: a bar over every (file, stage) step, its description
    naming the file and the stage that is running. Lines written through :meth:`write` do not tear
    the bar.
    """

    def __init__(self, stream: TextIO, *, files: int, stages: int, per_stage: bool, enabled: bool = True) -> None:
        from tqdm import tqdm

        self.stages = stages
        self.per_stage = per_stage
        self.files_done = 0
        self.bar = tqdm(total=files * stages if per_stage else files, unit="stage" if per_stage else "file",
                        file=stream, disable=None if enabled else True, desc="preprocessing", leave=False,
                        dynamic_ncols=True)

    @property
    def active(self) -> bool:
        return not self.bar.disable

    def on_stage(self, path: Path, index: int, stage: str) -> None:
        """A stage of ``path`` starts (``process_file``'s ``on_stage``)."""
        if self.per_stage:
            self.bar.n = self.files_done * self.stages + index
            self.bar.set_description(f"{path.name}: {stage} ({index + 1}/{self.stages})")
        else:
            self.bar.set_postfix_str(f"{path.name}: {stage}")

    def file_done(self) -> None:
        self.files_done += 1
        if self.per_stage:
            self.bar.n = self.files_done * self.stages
            self.bar.refresh()
        else:
            self.bar.update(1)

    def write(self, text: str, stream: TextIO) -> None:
        if self.active:
            self.bar.write(text, file=stream)
        else:
            print(text, file=stream)

    def close(self) -> None:
        self.bar.close()


class _Reporter:
    """Collects the results and prints one line per failed input (unless the output dir already
    failed: that was said once)."""

    def __init__(self, stderr: TextIO, progress: _Progress, quiet: bool) -> None:
        self.stderr, self.progress, self.quiet = stderr, progress, quiet
        self.failures: list[Any] = []

    def __call__(self, result: Any) -> None:
        if result.status == "failed":
            self.failures.append(result)
            if not self.quiet:
                self.progress.write(f"{PROG}: failed: {result.error}", self.stderr)


def _process_files(args: argparse.Namespace, inputs: Sequence[Path], config: Any, telemetry: Any, registry: Any,
                   progress: _Progress, report: _Reporter) -> list[Any]:
    from pipeline.processor import process_file

    results = []
    for path in inputs:
        result = process_file(path, args.output_dir, config, telemetry=telemetry, registry=registry,
                              on_stage=progress.on_stage)
        progress.file_done()
        report(result)
        results.append(result)
    return results


def _process_batch(args: argparse.Namespace, inputs: Sequence[Path], config: Any, setup: Any, registry: Any,
                   run_batch: Any, env: Mapping[str, str], progress: _Progress, report: _Reporter,
                   stdout: TextIO) -> list[Any]:
    from pipeline.processor import process_batch

    telemetry = setup.telemetry()
    in_workers = run_batch is not None

    def on_result(result: Any) -> None:
        report(result)
        if not in_workers or result.status == "skipped":  # workers advance it as files finish
            progress.file_done()

    batch = process_batch(
        inputs, args.output_dir, config, telemetry=telemetry, registry=registry, resume=args.resume,
        on_result=on_result, on_plan=lambda todo, done: progress.write(f"{todo} to process, {done} already done", stdout),
        runner=_worker_runner(args, config, setup, run_batch, env, progress) if in_workers else None,
        on_stage=progress.on_stage,
    )
    return list(batch.results)


def _worker_runner(args: argparse.Namespace, config: Any, setup: Any, run_batch: Any, env: Mapping[str, str],
                   progress: _Progress) -> Any:
    """``process_batch``'s runner: the files on the pool or Dask; their spans and logs come back to
    this process's in-process outputs (``setup.adopt``), the progress advances as each file ends."""
    from pipeline.parallel import SchedulerUnreachableError

    def runner(paths: Sequence[Path], batch_context: Any) -> Sequence[Any]:
        try:
            return run_batch(
                paths, args.output_dir, config, batch_context=batch_context, workers=args.workers,
                dask_scheduler=args.dask_scheduler, env=dict(env), telemetry=setup.telemetry(),
                on_result=lambda _result: progress.file_done(), adopt=setup.adopt,
            )
        except SchedulerUnreachableError as exc:  # it went away since the check
            raise UsageError(str(exc)) from None

    return runner


def _print_totals(results: Sequence[Any], failures: Sequence[Any], output_dir: Path, stdout: TextIO) -> None:
    ok = sum(r.status == "success" for r in results)
    skipped = sum(r.status == "skipped" for r in results)
    print(
        f"{len(results)} input{'s' if len(results) != 1 else ''}: {ok} succeeded, {len(failures)} failed, "
        f"{skipped} already done (output: {output_dir})",
        file=stdout,
    )


def _print_summary(summary: Any, env: Mapping[str, str], stdout: TextIO) -> None:
    sampler = env.get("OTEL_TRACES_SAMPLER")
    print(summary.render(sampler_note=f"OTEL_TRACES_SAMPLER={sampler}" if sampler else None), file=stdout)


def _run(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO, stderr: TextIO) -> int:
    """Validate everything (options, stage parameters, inputs, ``OTEL_*``, the Dask scheduler), then
    set up telemetry, process, print the totals and the summary, and shut telemetry down."""
    from pipeline.summary import TelemetrySummary
    from pipeline.telemetry import DEFAULT_SHUTDOWN_TIMEOUT_S

    config = config_from_args(args)
    run_batch = _batch_runner(args)
    inputs = _inputs(args)
    summary = TelemetrySummary() if args.telemetry_summary else None
    setup = _telemetry_setup(env, summary)
    with ExitStack() as stack:
        stack.enter_context(_console_logging(args, stderr, setup))
        stack.callback(setup.shutdown, DEFAULT_SHUTDOWN_TIMEOUT_S)
        stack.enter_context(_sqlite_traced(setup.tracer_provider))
        registry, output_problem = _open_output(args.output_dir, stderr)
        batch = args.command == "batch"
        progress = _Progress(stderr, files=len(inputs), stages=len(config.stages), per_stage=not batch,
                             enabled=not args.no_progress)
        stack.callback(progress.close)
        report = _Reporter(stderr, progress, quiet=output_problem is not None)
        if batch:
            results = _process_batch(args, inputs, config, setup, registry, run_batch, env, progress, report, stdout)
        else:
            results = _process_files(args, inputs, config, setup.telemetry(), registry, progress, report)
        progress.close()
        _print_totals(results, report.failures, args.output_dir, stdout)
        if summary is not None:
            _print_summary(summary, env, stdout)
        _serve_metrics(setup.prometheus_address, args.serve_metrics_s, stderr)
    return 1 if report.failures else 0


def _serve_metrics(address: tuple[str, int] | None, seconds: float, stderr: TextIO) -> None:
    """Keep the Prometheus endpoint (served by its own thread) up for ``seconds``; Ctrl-C ends it."""
    if seconds <= 0:
        return
    if address is None:
        print(f"{PROG}: --serve-metrics-s ignored: OTEL_METRICS_EXPORTER does not include prometheus", file=stderr)
        return
    host, port = address
    print(f"{PROG}: serving metrics at http://{host}:{port}/metrics for {seconds:g} s (Ctrl-C to stop)",
          file=stderr, flush=True)
    try:
        time.sleep(seconds)
    except KeyboardInterrupt:
        pass


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None,
         stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 some input failed, 2 usage error)."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the usage line
        return int(exc.code) if isinstance(exc.code, int) else 2
    try:
        return _run(args, os.environ if env is None else env, stdout, stderr)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=stderr)
        return 130


__all__ = ["build_parser", "config_from_args", "main"]
