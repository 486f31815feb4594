"""The course's queries answered by real backends: a Prometheus server, and Loki's query on received logs.

:class:`PrometheusServer` runs Debian's ``prometheus`` binary as a plain process on a free
127.0.0.1 port with a generated config (``scrape_interval`` 1 s) scraping given targets, and answers
PromQL through its HTTP API (:meth:`PrometheusServer.query`, :meth:`PrometheusServer.wait_for`).

No Loki server is available here, so :func:`logql_filter` evaluates the subset of LogQL the course
uses - a stream selector over labels plus line filters, e.g. ``{service_name="neuro-preprocess"} |=
"Loading file"`` - on :class:`~telemetry_asserts.model.LogRecord` objects, with the labels Loki's
OTLP ingestion gives them (resource attributes with ``.`` replaced by ``_``).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TextIO

from integration.collector import free_port
from telemetry_asserts.model import LogRecord

PROMETHEUS_BINARY = "prometheus"

Sample = dict[str, Any]  # one element of a PromQL instant vector: {"metric": {...}, "value": [t, "v"]}


class PrometheusError(RuntimeError):
    """Prometheus could not start, or its API answered with an error (the message carries why)."""


def prometheus_config(targets: Sequence[str], scrape_interval: str = "1s", job: str = "neuro-preprocess") -> str:
    """The YAML config: one job scraping ``targets`` (``host:port``) every ``scrape_interval``."""
    quoted = ", ".join(json.dumps(t) for t in targets)
    return (
        "global:\n"
        f"  scrape_interval: {scrape_interval}\n"
        f"  scrape_timeout: {scrape_interval}\n"
        "  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        f"  - job_name: {json.dumps(job)}\n"
        "    static_configs:\n"
        f"      - targets: [{quoted}]\n"
    )


class PrometheusServer:
    """A real Prometheus on 127.0.0.1 scraping ``targets``; a context manager.

    Storage lives in a temporary directory removed by :meth:`stop`.
    """

    def __init__(
        self,
        targets: Sequence[str],
        scrape_interval: str = "1s",
        port: int = 0,
        binary: str | None = None,
    ) -> None:
        found = shutil.which(binary or PROMETHEUS_BINARY)
        if found is None:
            raise PrometheusError(f"no `{binary or PROMETHEUS_BINARY}` binary on PATH (apt-get install prometheus)")
        self.binary = found
        self.targets = tuple(targets)
        self.scrape_interval = scrape_interval
        self.port = port or free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="prometheus-"))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0, wait_for_targets: bool = False) -> Self:
        """Start and wait until Prometheus answers (and, if asked, knows every target).

        Its discovery manager hands targets to the scrape manager only every 5 s, so the first scrape
        can come up to ~5 s after start; start the scraped process meanwhile rather than waiting.
        """
        config = self._dir / "prometheus.yml"
        config.write_text(prometheus_config(self.targets, self.scrape_interval))
        log = (self._dir / "prometheus.log").open("ab")
        try:
            self._process = subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self._dir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--storage.tsdb.retention.time=1h",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise PrometheusError(f"prometheus exited with {self._process.returncode}:\n{self.log()}")
            if self._ready() and (not wait_for_targets or len(self.active_targets()) >= len(self.targets)):
                return self
            time.sleep(0.2)
        self.stop()
        raise PrometheusError(f"prometheus not ready within {timeout_s:.0f} s:\n{self.log()}")

    def stop(self) -> None:
        """Terminate Prometheus and remove its storage; idempotent."""
        if self._process is not None:
            if self._process.poll() is None:
                self._process.send_signal(signal.SIGTERM)
                try:
                    self._process.wait(10)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
            self._process = None
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log(self) -> str:
        path = self._dir / "prometheus.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # --- HTTP API ----------------------------------------------------------------------------

    def _get(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        url = f"{self.url}{path}" + (f"?{query}" if query else "")
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:  # the API answers 400/422 with a JSON error
            body = exc.read()
        payload = json.loads(body)
        if payload.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {payload.get('errorType')}: {payload.get('error')}")
        return payload["data"]

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def active_targets(self) -> list[dict[str, Any]]:
        """``/api/v1/targets``' active targets (each with ``health`` and ``lastError``)."""
        return list(self._get("/api/v1/targets")["activeTargets"])

    def query(self, promql: str) -> list[Sample]:
        """Evaluate ``promql`` now; the instant vector (a scalar comes back as one unlabelled sample)."""
        data = self._get("/api/v1/query", query=promql)
        if data["resultType"] == "vector":
            return list(data["result"])
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        raise PrometheusError(f"{promql!r} gave a {data['resultType']}, not an instant vector")

    def wait_for(
        self, promql: str, predicate: Callable[[list[Sample]], bool] = bool, timeout_s: float = 20.0
    ) -> list[Sample]:
        """Re-query until ``predicate(result)`` holds; raise with the last result after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        result: list[Sample] = []
        while True:
            result = self.query(promql)
            if predicate(result):
                return result
            if time.monotonic() >= deadline:
                targets = [(t["scrapeUrl"], t["health"], t["lastError"]) for t in self.active_targets()]
                raise PrometheusError(
                    f"after {timeout_s:.0f} s, {promql!r} still gives {result!r}; targets: {targets}"
                )
            time.sleep(0.25)


def sample_value(sample: Sample) -> float:
    """The float value of one PromQL sample (``NaN`` stays ``NaN``)."""
    return float(sample["value"][1])


def by_label(samples: Iterable[Sample], label: str) -> dict[str, float]:
    """``{label value: sample value}`` for a vector grouped by ``label``."""
    return {s["metric"].get(label, ""): sample_value(s) for s in samples}


def finite(samples: Sequence[Sample]) -> bool:
    """True when the vector is non-empty and every value is a finite number (not NaN/Inf)."""
    return bool(samples) and all(math.isfinite(sample_value(s)) for s in samples)


# --- Loki's query on the logs that arrived ------------------------------------------------------

_SELECTOR = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*')
_FILTER = re.compile(r'\s*(\|=|!=|\|~|!~)\s*"((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class LogQuery:
    """A parsed LogQL log query: label matchers ``(label, op, value)`` and line filters ``(op, text)``."""

    matchers: tuple[tuple[str, str, str], ...]
    filters: tuple[tuple[str, str], ...]


def parse_logql(query: str) -> LogQuery:
    """Parse ``{label="v", ...} |= "text" != "x" |~ "re"`` (the part of LogQL the course uses)."""
    text = query.strip()
    if not text.startswith("{") or "}" not in text:
        raise ValueError(f"LogQL {query!r}: expected a stream selector in braces first")
    selector, rest = text[1 : text.index("}")], text[text.index("}") + 1 :]
    matchers = []
    for part in filter(str.strip, _split_selector(selector)):
        m = _SELECTOR.fullmatch(part)
        if not m:
            raise ValueError(f"LogQL {query!r}: cannot parse label matcher {part.strip()!r}")
        matchers.append((m.group(1), m.group(2), _unescape(m.group(3))))
    if not matchers:
        raise ValueError(f"LogQL {query!r}: the stream selector needs at least one label matcher")
    filters = []
    pos = 0
    while rest[pos:].strip():
        m = _FILTER.match(rest, pos)
        if not m:
            raise ValueError(f"LogQL {query!r}: unsupported pipeline stage at {rest[pos:].strip()!r}")
        filters.append((m.group(1), _unescape(m.group(2))))
        pos = m.end()
    return LogQuery(tuple(matchers), tuple(filters))


def _split_selector(selector: str) -> list[str]:
    parts, current, quoted, escaped = [], "", False, False
    for ch in selector:
        if ch == "," and not quoted:
            parts.append(current)
            current = ""
            continue
        current += ch
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
    parts.append(current)
    return parts


def _unescape(value: str) -> str:
    return json.loads(f'"{value}"')


def loki_labels(record: LogRecord) -> dict[str, str]:
    """The stream labels Loki's OTLP ingestion derives: resource attributes, ``.`` -> ``_``."""
    return {key.replace(".", "_"): str(value) for key, value in record.resource.attributes.items()}


def logql_filter(query: str, records: Iterable[LogRecord]) -> list[LogRecord]:
    """The records a Loki holding ``records`` would return for the LogQL ``query`` (in input order)."""
    parsed = parse_logql(query)
    return [r for r in records if _selected(parsed, loki_labels(r)) and _passes(parsed, str(r.body))]


def _selected(query: LogQuery, labels: dict[str, str]) -> bool:
    for label, op, value in query.matchers:
        actual = labels.get(label, "")
        ok = {
            "=": actual == value,
            "!=": actual != value,
            "=~": re.fullmatch(value, actual) is not None,
            "!~": re.fullmatch(value, actual) is None,
        }[op]
        if not ok:
            return False
    return True


def _passes(query: LogQuery, line: str) -> bool:
    for op, text in query.filters:
        ok = {
            "|=": text in line,
            "!=": text not in line,
            "|~": re.search(text, line) is not None,
            "!~": re.search(text, line) is None,
        }[op]
        if not ok:
            return False
    return True


# --- the pipeline as a scrape target ------------------------------------------------------------


def serve_pipeline_metrics(output_dir: str, commands: Iterable[str] = sys.stdin, out: TextIO = sys.stdout) -> int:
    """Run the real pipeline as a scrape target, one file per command, metrics exported per ``OTEL_*``.

    Commands (one per line): ``process PATH`` processes one file and answers ``processed NAME STATUS``;
    ``quit`` (or end of input) shuts telemetry down and returns the number of failed inputs. Between
    commands the metrics endpoint keeps being served, so the caller can let Prometheus scrape each
    step (``rate()`` and ``histogram_quantile`` need a series to *increase* between scrapes). The
    first line written is ``serving HOST:PORT`` when the Prometheus exporter is configured, else ``ready``.

    Why not the CLI: ``neuro-preprocess`` shuts down (and stops serving) as soon as it is done, which
    is too early for a scraper; this runs the same ``configure_from_env`` + ``process_file``.
    """
    from pipeline.processor import process_file
    from pipeline.telemetry import configure_from_env

    setup = configure_from_env()
    address = setup.prometheus_address
    print(f"serving {address[0]}:{address[1]}" if address else "ready", file=out, flush=True)
    telemetry = setup.telemetry()
    failed = 0
    try:
        for line in commands:
            command, _, argument = line.strip().partition(" ")
            if command == "quit":
                break
            if command != "process" or not argument:
                print(f"error unknown command {line.strip()!r}", file=out, flush=True)
                continue
            result = process_file(argument, output_dir, telemetry=telemetry)
            failed += result.status == "failed"
            print(f"processed {Path(argument).name} {result.status}", file=out, flush=True)
    finally:
        setup.shutdown()
    return failed


class PipelineTarget:
    """:func:`serve_pipeline_metrics` in a subprocess exporting to Prometheus on a free port."""

    def __init__(self, output_dir: str | os.PathLike[str], port: int = 0, env: dict[str, str] | None = None) -> None:
        self.port = port or free_port()
        base = {k: v for k, v in (env if env is not None else os.environ).items() if not k.startswith("OTEL_")}
        base.update(
            OTEL_METRICS_EXPORTER="prometheus",
            OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
            OTEL_EXPORTER_PROMETHEUS_PORT=str(self.port),
            OTEL_TRACES_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
            PYTHONUNBUFFERED="1",
        )
        self._process = subprocess.Popen(
            [sys.executable, "-m", "integration.prometheus", "serve-pipeline", "-o", str(output_dir)],
            env=base,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        first = self._readline()
        if first != f"serving 127.0.0.1:{self.port}":
            self.close()
            raise PrometheusError(f"pipeline target did not start serving on :{self.port}: {first!r}")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _readline(self) -> str:
        assert self._process.stdout is not None
        while True:
            line = self._process.stdout.readline()
            if not line:
                raise PrometheusError(f"pipeline target exited with {self._process.wait()}")
            if line.startswith(("serving ", "ready", "processed ", "error ")):
                return line.strip()

    def process(self, path: str | os.PathLike[str]) -> str:
        """Process one file in the target; its status (``success`` / ``failed``)."""
        assert self._process.stdin is not None
        self._process.stdin.write(f"process {path}\n")
        self._process.stdin.flush()
        answer = self._readline()
        if not answer.startswith("processed "):
            raise PrometheusError(f"pipeline target answered {answer!r}")
        return answer.rsplit(" ", 1)[1]

    def close(self, timeout_s: float = 15.0) -> int:
        """Ask the target to quit (telemetry shut down); its exit code."""
        if self._process.poll() is None:
            try:
                assert self._process.stdin is not None
                self._process.stdin.write("quit\n")
                self._process.stdin.close()
                return self._process.wait(timeout_s)
            except (OSError, subprocess.TimeoutExpired):
                self._process.kill()
        return self._process.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m integration.prometheus")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve-pipeline", help="process files named on stdin, serving their metrics")
    serve.add_argument("-o", "--output-dir", required=True)
    args = parser.parse_args(argv)
    return 1 if serve_pipeline_metrics(args.output_dir) else 0


if __name__ == "__main__":
    raise SystemExit(_main())
