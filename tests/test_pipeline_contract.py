"""pipeline/contract.yaml holds for a real pipeline run, whatever the telemetry's route:
in-memory SDK capture, OTLP/HTTP, OTLP/gRPC (into the harness's receiver) and an OTLP JSON file."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import pytest

from telemetry_asserts import model
from telemetry_asserts.capture import Capture
from telemetry_asserts.contracts import load_contract
from telemetry_asserts.contracts.check import ContractResult, run_contract
from telemetry_asserts.contracts.snapshot import render_snapshot
from telemetry_asserts.otlp import OtlpReceiver, read_otlp_json, write_otlp_json

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT / "pipeline" / "contract.yaml"
SOURCES = ("memory", "otlp-http", "otlp-grpc", "json-file")


@pytest.fixture(scope="module")
def phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pipeline.phantom import make_head_phantom

    path = tmp_path_factory.mktemp("in") / "sub-02_T1w.nii.gz"
    nib.save(make_head_phantom((32, 32, 32), (5.0, 5.0, 5.0), seed=2), path)
    return path


def run_in_memory(phantom: Path, out: Path) -> model.Telemetry:
    """process_file on SDK providers that record in memory (the pytest plugin's capture), with the
    pipeline's own resource, the registry traced by the sqlite3 instrumentation and logs bridged."""
    from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor

    from pipeline.processor import process_file
    from pipeline.registry import RunRegistry
    from pipeline.telemetry import PipelineTelemetry, resource_from_env

    cap = Capture(resource_from_env({}))
    instrumentor = SQLite3Instrumentor()
    instrumentor.instrument(tracer_provider=cap.tracer_provider)
    try:
        with cap.capturing_logs(logging.INFO):
            out.mkdir(parents=True, exist_ok=True)
            result = process_file(phantom, out, telemetry=PipelineTelemetry(cap.tracer_provider, cap.meter_provider),
                                  registry=RunRegistry.in_dir(out))
    finally:
        instrumentor.uninstrument()
    assert result.ok, result
    return cap.snapshot()


def run_over_otlp(protocol: str, phantom: Path, out: Path) -> model.Telemetry:
    """The pipeline's own CLI (in this process) exporting with its configured OTLP exporters."""
    from pipeline.cli import main

    with OtlpReceiver(http_port=0 if protocol != "grpc" else None, grpc_port=0 if protocol == "grpc" else None) as rx:
        env = {**rx.exporter_env(protocol), "OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "otlp",
               "OTEL_LOGS_EXPORTER": "otlp", "OTEL_METRIC_EXPORT_INTERVAL": "60000"}
        stdout, stderr = io.StringIO(), io.StringIO()
        code = main(["process", str(phantom), "-o", str(out)], env=env, stdout=stdout, stderr=stderr)
        assert code == 0, stdout.getvalue() + stderr.getvalue()
        # The CLI shuts its providers down (flushing every signal) before it returns.
        return rx.wait_for(lambda t: bool(t.spans and t.metrics and t.logs), timeout_s=10,
                           description="spans, metrics and logs")


class _Runs(dict):  # type: ignore[type-arg]
    """source -> telemetry of one pipeline run, made on first use and shared by this module's tests."""

    def __init__(self, makers: dict[str, Callable[[], model.Telemetry]]) -> None:
        super().__init__()
        self.makers = makers

    def __missing__(self, source: str) -> model.Telemetry:
        self[source] = self.makers[source]()
        return self[source]


@pytest.fixture(scope="module")
def runs(phantom: Path, tmp_path_factory: pytest.TempPathFactory) -> _Runs:
    def tmp(name: str) -> Path:
        return tmp_path_factory.mktemp(name)

    runs = _Runs({
        "memory": lambda: run_in_memory(phantom, tmp("mem")),
        "otlp-http": lambda: run_over_otlp("http/protobuf", phantom, tmp("http")),
        "otlp-grpc": lambda: run_over_otlp("grpc", phantom, tmp("grpc")),
        # The collector file exporter's line format, written from the HTTP run and read back.
        "json-file": lambda: read_otlp_json(write_otlp_json(runs["otlp-http"], tmp("file") / "run.jsonl")),
    })
    return runs


def _report(result: ContractResult) -> str:
    return "\n".join(f"{r.id}:\n{r.message}" for r in result.failures)


@pytest.mark.parametrize("source", SOURCES)
def test_contract_holds_for_every_source(source: str, runs: dict[str, model.Telemetry]) -> None:
    result = run_contract(load_contract(CONTRACT), runs[source])
    assert result.passed, _report(result)
    assert len(result.results) == len(load_contract(CONTRACT).checks)


def test_every_source_decodes_to_the_same_shape(runs: dict[str, model.Telemetry]) -> None:
    shapes = {source: render_snapshot(runs[source]) for source in SOURCES}
    assert shapes["memory"] == shapes["otlp-http"] == shapes["otlp-grpc"] == shapes["json-file"]
    assert "write_metadata" in shapes["memory"] and "neuro.stages.executed" in shapes["memory"]


def test_contract_catches_a_broken_run(runs: dict[str, model.Telemetry]) -> None:
    """The contract is not vacuous: dropping the write_metadata span and the stage counter fails it."""
    t = runs["memory"]
    broken = t.with_(
        spans=tuple(s for s in t.spans if s.name != "write_metadata"),
        metrics=tuple(p for p in t.metrics if p.name != "neuro.stages.executed"),
    )
    result = run_contract(load_contract(CONTRACT), broken)
    failed = {r.id for r in result.failures}
    assert failed == {"file_trace_shape", "write_metadata_span", "stages_executed"}
    assert "write_metadata" in result.result("write_metadata_span").message
    assert result.result("stages_executed").message.startswith("no metric 'neuro.stages.executed' was recorded")


def test_contract_holds_in_a_pytest_test_through_the_telemetry_fixture(telemetry, phantom: Path,
                                                                       tmp_path: Path) -> None:
    """The plugin route: the pipeline uses the global API (the fixture's providers) and the contract is
    judged on the fixture's snapshot. Only the resource check is left out: the plugin's providers
    carry their own resource, not the pipeline's service.name."""
    from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor

    from pipeline.processor import process_file
    from pipeline.registry import RunRegistry

    instrumentor = SQLite3Instrumentor()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider)
    try:
        assert process_file(phantom, tmp_path, registry=RunRegistry.in_dir(tmp_path)).ok
    finally:
        instrumentor.uninstrument()
    contract = load_contract(CONTRACT)
    checks = [c for c in contract.ids if c != "service_identity"]
    result = run_contract(contract, telemetry.snapshot(), only=checks)
    assert result.passed, _report(result)
    assert len(result.results) == len(contract.checks) - 1


@pytest.mark.slow
def test_sample_head_passes_the_contract_through_the_cli(tmp_path: Path) -> None:
    """Acceptance on the real 176x256x256 head (N4 kept short: the contract checks shapes and types)."""
    from pipeline.sample_data import SampleDataError, sample_t1w_path

    try:
        sample = sample_t1w_path(ROOT / "data")
    except SampleDataError as exc:
        pytest.skip(str(exc))
    exe = Path(sys.executable).with_name("telemetry-asserts")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "telemetry_asserts"]
    neuro = Path(sys.executable).with_name("neuro-preprocess")
    proc = subprocess.run(
        [*cmd, "run", str(CONTRACT), "--settle", "0.5", "--", str(neuro), "process", str(sample), "-o",
         str(tmp_path / "out"), "--n4-iterations", "10,10", "--n4-shrink-factor", "4"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.rstrip().endswith("PASSED: 26 of 26 checks passed")
