"""``telemetry-asserts``: check telemetry contracts from files, from OTLP, or around a command.

    telemetry-asserts check CONTRACT --from run.otlp.jsonl
    telemetry-asserts check CONTRACT --from otlp://127.0.0.1:4318 --duration 30
    telemetry-asserts run CONTRACT -- neuro-preprocess process sub-01_T1w.nii.gz -o out
    telemetry-asserts snapshot shape.yaml -- neuro-preprocess process ...   [--update]
    telemetry-asserts schema

Exit status: 0 the contract holds, 1 it is violated (or the snapshot differs), 2 usage error,
malformed contract, unreadable source, or a command that could not be started.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

from . import model
from .contracts.check import ContractResult, run_contract
from .contracts.load import ContractError, load_contract, schema
from .junit import SuiteResult, results_json, write_json, write_junit_xml

__all__ = ["main", "render_report"]

EXIT_OK, EXIT_VIOLATED, EXIT_USAGE = 0, 1, 2

#: Variables of the command's environment replaced so that every signal reaches our receiver.
_SIGNAL_ENDPOINTS = (
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
    "OTEL_SDK_DISABLED",
)


class UsageError(Exception):
    """Bad arguments or an unusable source: exit status 2 with this message."""


@dataclass
class Collected:
    telemetry: model.Telemetry
    source: str
    command: Sequence[str] = ()
    command_status: int | None = None


# --- sources ----------------------------------------------------------------------------------------


def _parse_otlp_url(url: str) -> tuple[str, str, int]:
    """``otlp://127.0.0.1:PORT`` (OTLP/HTTP) or ``otlp+grpc://127.0.0.1:PORT`` -> (protocol, host, port)."""
    parts = urlsplit(url)
    protocol = {"otlp": "http", "otlp+http": "http", "otlp+grpc": "grpc"}.get(parts.scheme)
    if protocol is None:
        raise UsageError(f"unknown source scheme {parts.scheme!r}: use a file, otlp://127.0.0.1:PORT "
                         f"(OTLP/HTTP) or otlp+grpc://127.0.0.1:PORT")
    host = parts.hostname or ""
    if host not in ("127.0.0.1", "localhost"):
        raise UsageError(f"the receiver only binds 127.0.0.1, not {host!r}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        raise UsageError(f"{url}: give a port, e.g. otlp://127.0.0.1:4318")
    return protocol, "127.0.0.1", port


def _settle(receiver: object, *, idle_s: float, timeout_s: float, require_data: bool) -> model.Telemetry:
    """Wait until no new item arrived for ``idle_s`` (after the first item when ``require_data``),
    at most ``timeout_s``; return what was received."""
    deadline = time.monotonic() + timeout_s
    last_count, last_change = -1, time.monotonic()
    while True:
        t = receiver.telemetry()  # type: ignore[attr-defined]
        count = len(t.spans) + len(t.metrics) + len(t.logs)
        now = time.monotonic()
        if count != last_count:
            last_count, last_change = count, now
        elif (count or not require_data) and now - last_change >= idle_s:
            return t
        if now >= deadline:
            return t
        time.sleep(min(0.05, idle_s / 4))


def _receive(url: str, *, duration_s: float | None, idle_s: float, timeout_s: float, err: TextIO) -> Collected:
    from .otlp import OtlpReceiver

    protocol, host, port = _parse_otlp_url(url)
    receiver = OtlpReceiver(host, http_port=port if protocol == "http" else None,
                            grpc_port=port if protocol == "grpc" else None)
    try:
        receiver.start()
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        endpoint = receiver.http_endpoint if protocol == "http" else receiver.grpc_endpoint
        if duration_s is not None:
            print(f"receiving OTLP/{protocol.upper()} on {endpoint} for {duration_s:g} s", file=err)
            time.sleep(duration_s)
            telemetry = receiver.telemetry()
        else:
            print(f"receiving OTLP/{protocol.upper()} on {endpoint} until {idle_s:g} s without new data "
                  f"(at most {timeout_s:g} s)", file=err)
            telemetry = _settle(receiver, idle_s=idle_s, timeout_s=timeout_s, require_data=True)
    except KeyboardInterrupt:
        telemetry = receiver.telemetry()
    finally:
        receiver.stop()
    return Collected(telemetry, url)


def _read_file(path: str) -> Collected:
    from .otlp import DecodeError, read_otlp_json

    try:
        return Collected(read_otlp_json(path), path)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except DecodeError as exc:
        raise UsageError(f"{path}: not OTLP JSON: {exc}") from None


def _command_env(receiver: object, protocol: str, export_interval_ms: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SIGNAL_ENDPOINTS}
    env.update(receiver.exporter_env(protocol))  # type: ignore[attr-defined]
    env.update({
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_METRIC_EXPORT_INTERVAL": str(export_interval_ms),
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "OTEL_BLRP_SCHEDULE_DELAY": "200",
    })
    return env


def _run_command(command: Sequence[str], *, protocol: str, settle_s: float, timeout_s: float,
                 export_interval_ms: int, err: TextIO) -> Collected:
    from .otlp import OtlpReceiver

    if not command:
        raise UsageError("no command given: telemetry-asserts run CONTRACT -- COMMAND [ARGS...]")
    wire = "grpc" if protocol == "grpc" else "http/protobuf"
    receiver = OtlpReceiver("127.0.0.1", http_port=0 if wire != "grpc" else None,
                            grpc_port=0 if wire == "grpc" else None)
    receiver.start()
    try:
        env = _command_env(receiver, wire, export_interval_ms)
        endpoint = env["OTEL_EXPORTER_OTLP_ENDPOINT"]
        print(f"running {' '.join(command)} (telemetry: OTLP {wire} to {endpoint})", file=err)
        try:
            proc = subprocess.Popen(list(command), env=env)
        except OSError as exc:
            raise UsageError(f"cannot start {command[0]!r}: {exc.strerror or exc}") from None
        try:
            status = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise UsageError(f"{command[0]!r} did not finish within {timeout_s:g} s and was killed") from None
        except KeyboardInterrupt:
            proc.terminate()
            proc.wait()
            raise
        telemetry = _settle(receiver, idle_s=settle_s, timeout_s=max(settle_s * 4, 5.0), require_data=False)
    finally:
        receiver.stop()
    return Collected(telemetry, f"command {command[0]}", tuple(command), status)


def _collect(args: argparse.Namespace, err: TextIO) -> Collected:
    if args.command:
        if args.source:
            raise UsageError("give either --from SOURCE or -- COMMAND, not both")
        return _run_command(args.command, protocol=args.protocol, settle_s=args.settle, timeout_s=args.timeout,
                            export_interval_ms=args.export_interval_ms, err=err)
    if not args.source:
        raise UsageError("where is the telemetry? give --from FILE, --from otlp://127.0.0.1:PORT or -- COMMAND")
    if "://" in args.source:
        return _receive(args.source, duration_s=args.duration, idle_s=args.settle, timeout_s=args.timeout, err=err)
    return _read_file(args.source)


# --- report ---------------------------------------------------------------------------------------


def _trace_block(result: ContractResult, trace_id: int, marks: dict[tuple[int, int], str]) -> list[str]:
    from .report import MarkKey, format_duration, render_tree, render_waterfall
    from .tree import SpanForest

    spans = result.telemetry.trace(trace_id).spans
    forest = SpanForest(spans)
    root = forest.spans[forest.roots[0]]
    lines = [f"trace {format(trace_id, '032x')}  {root.name}  {format_duration(root.duration_ns)}  "
             f"({len(spans)} spans)"]
    notes: dict[MarkKey, str] = {key: note for key, note in marks.items()}
    lines += ["  " + ln for ln in render_tree(spans, marks=notes).splitlines()]
    lines.append("  waterfall:")
    lines += ["    " + ln for ln in render_waterfall(spans).splitlines()]
    return lines


def render_report(result: ContractResult, collected: Collected | None = None, *, max_traces: int = 3,
                  verbose: bool = False) -> str:
    """The human report: each trace as a tree with durations and a waterfall (violations marked on
    the spans they concern), then every check with its verdict, message and feedback, then a summary."""
    from .report import render_logs, render_metrics

    t = result.telemetry
    marks = result.marks
    lines: list[str] = []
    if collected is not None:
        lines.append(f"source: {collected.source}")
        if collected.command:
            lines.append(f"command: {' '.join(collected.command)} -> exit status {collected.command_status}")
    traces = t.trace_ids
    lines.append(f"received: {len(t.spans)} spans in {len(traces)} trace{'s' if len(traces) != 1 else ''}, "
                 f"{len(t.metrics)} metric points, {len(t.logs)} log records")
    marked = {tid for tid, _ in marks}
    shown = [tid for tid in traces if tid in marked][:max_traces]
    shown += [tid for tid in traces if tid not in shown][: max(0, max_traces - len(shown))]
    for tid in traces:
        if tid in shown:
            lines.append("")
            lines += _trace_block(result, tid, marks)
    if len(traces) > len(shown):
        lines.append(f"... {len(traces) - len(shown)} more trace(s) not shown (--max-traces)")
    failed_sections = {r.check.section for r in result.failures}
    if verbose or "metrics" in failed_sections:
        lines += ["", "metric points:"] + ["  " + ln for ln in render_metrics(t.metrics).splitlines()]
    if verbose or "logs" in failed_sections:
        lines += ["", "log records:"] + ["  " + ln for ln in render_logs(t.logs, max_lines=40).splitlines()]
    lines += ["", f"contract {result.contract.source}" + (f" ({result.contract.name})" if result.contract.name else "")]
    for r in result.results:
        sign = "✓" if r.passed else ("!" if r.error else "✗")
        score = f"  [{r.points:g}/{r.max_points:g}]" if r.max_points else ""
        lines.append(f"  {sign} {r.id}{score}  {r.check.describe()}")
        if not r.passed:
            lines += ["      " + ln for ln in r.message.splitlines()]
            if r.feedback:
                lines.append(f"      feedback: {r.feedback}")
    n, bad = len(result.results), len(result.failures)
    verdict = "PASSED" if result.passed else "FAILED"
    score = f", score {result.score:g}/{result.max_score:g}" if result.max_score else ""
    lines += ["", f"{verdict}: {n - bad} of {n} checks passed{score}"]
    return "\n".join(lines)


# --- commands ---------------------------------------------------------------------------------------


def _add_source_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="source", metavar="SOURCE",
                   help="OTLP JSON file, or otlp://127.0.0.1:PORT (OTLP/HTTP) / otlp+grpc://127.0.0.1:PORT to receive")
    p.add_argument("--duration", type=float, metavar="S", help="receive for exactly S seconds (otlp:// sources)")
    p.add_argument("--settle", type=float, default=1.0, metavar="S",
                   help="stop receiving after S seconds without new data (default 1)")
    p.add_argument("--timeout", type=float, default=600.0, metavar="S",
                   help="give up receiving / kill the command after S seconds (default 600)")
    p.add_argument("--protocol", choices=("http", "grpc"), default="http",
                   help="OTLP protocol the command exports with (run; default http/protobuf)")
    p.add_argument("--export-interval-ms", type=int, default=500, metavar="MS",
                   help="OTEL_METRIC_EXPORT_INTERVAL for the command (default 500)")
    p.add_argument("--dump", metavar="FILE", help="also write what was received as OTLP JSON lines")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="telemetry-asserts", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Check telemetry contracts (docs/contracts.md) against telemetry from an OTLP JSON file, "
                    "received over OTLP, or exported by a command.",
        epilog="examples:\n" + "\n".join(__doc__.split("\n\n")[1].splitlines()) + "\n\n"
               + __doc__.split("\n\n")[2])
    sub = parser.add_subparsers(dest="action", required=True, metavar="{check,run,snapshot,schema}")
    for action, help_ in (("check", "check a contract against telemetry from a file or OTLP"),
                          ("run", "run a command exporting to a private OTLP receiver, then check")):
        usage = ("%(prog)s [options] CONTRACT -- COMMAND [ARGS...]" if action == "run"
                 else "%(prog)s [options] CONTRACT --from SOURCE")
        p = sub.add_parser(action, help=help_, description=help_, usage=usage)
        p.add_argument("contract", help="contract YAML file")
        _add_source_options(p)
        p.add_argument("--junit-xml", metavar="PATH", help="write JUnit XML results")
        p.add_argument("--json", metavar="PATH", help="write JSON results")
        p.add_argument("--html", metavar="PATH",
                       help="write a self-contained HTML trace view (waterfalls, violations, lint, metrics, logs)")
        p.add_argument("--only", action="append", metavar="ID", help="run only this check (repeatable)")
        p.add_argument("--expect-exit", type=int, default=0, metavar="N",
                       help="the command's expected exit status (run; default 0, otherwise a violation)")
        p.add_argument("--max-traces", type=int, default=3, metavar="N", help="traces drawn in the report (default 3)")
        p.add_argument("-v", "--verbose", action="store_true", help="also list metric points and log records")
        p.add_argument("-q", "--quiet", action="store_true", help="print only the verdict line")
    p = sub.add_parser("snapshot", help="record a run's telemetry shape to a contract file, or compare with it",
                       usage="%(prog)s [--update] [options] FILE (--from SOURCE | -- COMMAND [ARGS...])",
                       description="Record the shape (names, hierarchy, attribute keys and types) of a run; "
                                   "an existing different snapshot is an error showing the diff unless --update.")
    p.add_argument("contract", help="snapshot contract file (created if missing)")
    _add_source_options(p)
    p.add_argument("--update", action="store_true", help="rewrite an existing snapshot that differs")
    sub.add_parser("schema", help="print the contracts' JSON schema")
    return parser


def _split_command(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    args = list(argv)
    if "--" in args:
        i = args.index("--")
        return args[:i], args[i + 1:]
    return args, []


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    own, command = _split_command(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    try:
        args = parser.parse_args(own)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    if args.action == "schema":
        import json

        print(json.dumps(schema(), indent=2), file=out)
        return EXIT_OK
    args.command = command
    if args.action == "run" and not command:
        print("telemetry-asserts: error: run needs a command: telemetry-asserts run CONTRACT -- COMMAND [ARGS...]",
              file=err)
        return EXIT_USAGE
    if args.action == "check" and command:
        print("telemetry-asserts: error: check reads --from SOURCE; use `run` to run a command", file=err)
        return EXIT_USAGE
    try:
        if args.action == "snapshot":
            return _snapshot(args, out, err)
        return _check(args, out, err)
    except ContractError as exc:
        print(str(exc), file=err)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"telemetry-asserts: error: {exc}", file=err)
        return EXIT_USAGE


def _dump(collected: Collected, path: str | None, err: TextIO) -> None:
    if path:
        from .otlp import write_otlp_json

        write_otlp_json(collected.telemetry, path)
        print(f"wrote the received telemetry to {path}", file=err)


def _check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    contract = load_contract(args.contract)  # before running anything: a typo fails fast
    if args.only:
        try:
            contract = contract.select(args.only)
        except KeyError as exc:
            raise UsageError(exc.args[0]) from None
    collected = _collect(args, err)
    _dump(collected, args.dump, err)
    result = run_contract(contract, collected.telemetry)
    command_ok = collected.command_status is None or collected.command_status == args.expect_exit
    suite = result.to_suite()
    if not command_ok:
        from .junit import CaseResult

        msg = f"the command exited with status {collected.command_status}, expected {args.expect_exit}"
        suite = SuiteResult(suite.name, (CaseResult("command_exit_status", f"{suite.name}.command", "failed", msg, msg),
                                         *suite.cases), suite.time_s, suite.properties)
    if args.junit_xml:
        write_junit_xml([suite], args.junit_xml)
    if args.json:
        data = results_json([suite])
        data["source"] = collected.source
        if collected.command:
            data["command"] = {"argv": list(collected.command), "exit_status": collected.command_status}
        data["score"], data["max_score"] = result.score, result.max_score
        write_json(data, args.json)
    if args.html:
        _write_html(result, collected, args.html, err)
    text = render_report(result, collected, max_traces=args.max_traces, verbose=args.verbose)
    if not command_ok:
        text += f"\nFAILED: the command exited with status {collected.command_status}, expected {args.expect_exit}"
    print(text.splitlines()[-1] if args.quiet else text, file=out)
    return EXIT_OK if result.passed and command_ok else EXIT_VIOLATED


def _write_html(result: ContractResult, collected: Collected, path: str, err: TextIO) -> None:
    from .html_report import contract_lint, write_html

    subtitle = f"source: {collected.source}"
    if collected.command:
        subtitle = f"command: {' '.join(collected.command)} -> exit status {collected.command_status}"
    try:
        write_html(path, result.telemetry, result=result, lint_report=contract_lint(result),
                   title=f"telemetry-asserts: {result.contract.name or Path(result.contract.source).name}",
                   subtitle=subtitle)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write the HTML report: {exc.strerror or exc}") from None
    print(f"wrote the HTML report to {path}", file=err)


def _snapshot(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .contracts.snapshot import snapshot_file

    collected = _collect(args, err)
    _dump(collected, args.dump, err)
    if collected.command_status:
        print(f"warning: the command exited with status {collected.command_status}", file=err)
    if not collected.telemetry.spans and not collected.telemetry.metrics:
        raise UsageError(f"nothing received from {collected.source}: no snapshot written")
    outcome = snapshot_file(args.contract, collected.telemetry, update=args.update)
    if outcome.status == "differs":
        print(outcome.diff, file=out, end="" if outcome.diff.endswith("\n") else "\n")
        print(f"FAILED: the telemetry shape differs from the snapshot {outcome.path} (see the diff above); "
              f"re-run with --update to accept it", file=out)
        return EXIT_VIOLATED
    if outcome.status == "updated":
        print(outcome.diff, file=out, end="" if outcome.diff.endswith("\n") else "\n")
    print(f"snapshot {outcome.status}: {outcome.path}", file=out)
    return EXIT_OK
