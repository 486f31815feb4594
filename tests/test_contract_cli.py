"""The ``telemetry-asserts`` command line: check, run, snapshot, schema; reports and exit codes."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import nibabel as nib
import pytest
from opentelemetry.sdk.resources import Resource

from telemetry_asserts import model
from telemetry_asserts.capture import Capture
from telemetry_asserts.cli import main
from telemetry_asserts.contracts import schema
from telemetry_asserts.otlp import read_otlp_json, write_otlp_json

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT / "pipeline" / "contract.yaml"

# A program instrumented with the SDK whose OTLP exporters read OTEL_EXPORTER_OTLP_* from the
# environment, as any instrumented program does: two spans and a counter.
EMITTER = textwrap.dedent("""\
    import os, sys
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    if os.environ["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    resource = Resource.create({"service.name": "emitter"})
    tp = TracerProvider(resource=resource)
    tp.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    mp = MeterProvider(resource=resource, metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter())])
    with tp.get_tracer("emitter").start_as_current_span("work", attributes={"items": 3}):
        with tp.get_tracer("emitter").start_as_current_span("step"):
            mp.get_meter("emitter").create_counter("items.done", unit="{item}").add(3, {"kind": "a"})
    tp.shutdown()
    mp.shutdown()
    sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
""")

EMITTER_CONTRACT = """\
version: 1
name: emitter
traces:
  - id: work_tree
    root: work
    tree: |
      work
      └─ step
spans:
  - id: work_attrs
    name: work
    attributes: {items: 3}
metrics:
  - id: items
    name: items.done
    type: counter
    data_points: [{attributes: {kind: a}, value: 3}]
"""


def cli(*argv: str | Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([str(a) for a in argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def recorded_run() -> model.Telemetry:
    cap = Capture(Resource.create({"service.name": "emitter"}))
    tracer = cap.tracer_provider.get_tracer("emitter")
    with tracer.start_as_current_span("work", attributes={"items": 3}):
        with tracer.start_as_current_span("step"):
            cap.meter_provider.get_meter("emitter").create_counter("items.done", unit="{item}").add(3, {"kind": "a"})
    return cap.snapshot()


@pytest.fixture()
def contract(tmp_path: Path) -> Path:
    path = tmp_path / "emitter.yaml"
    path.write_text(EMITTER_CONTRACT)
    return path


@pytest.fixture()
def dump(tmp_path: Path) -> Path:
    return write_otlp_json(recorded_run(), tmp_path / "run.jsonl")


@pytest.fixture()
def emitter(tmp_path: Path) -> Path:
    path = tmp_path / "emitter.py"
    path.write_text(EMITTER)
    return path


# --- check --from FILE --------------------------------------------------------------------------------


def test_check_file_passes_with_tree_waterfall_and_verdict(contract: Path, dump: Path) -> None:
    code, out, err = cli("check", contract, "--from", dump)
    assert code == 0, out + err
    assert f"source: {dump}" in out
    assert "received: 2 spans in 1 trace, 1 metric points, 0 log records" in out
    assert "\n  work (" in out and "\n  └─ step (" in out
    assert "  waterfall:\n    work    |" in out
    assert "  ✓ work_tree  each trace rooted at 'work' has the expected span tree" in out
    assert out.rstrip().endswith("PASSED: 3 of 3 checks passed")


def test_check_violation_exits_1_with_marks_on_the_tree(contract: Path, dump: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(EMITTER_CONTRACT.replace("items: 3}", "items: 4}").replace("└─ step", "└─ stepp"))
    code, out, _ = cli("check", bad, "--from", dump)
    assert code == 1
    assert "  work (" in out and "<-- ✗ work_tree: " in out  # the root of the failing trace is marked
    assert "  ✗ work_attrs  span 'work'" in out
    assert "expected 4 (int), got 3 (int)" in out
    assert "stepp" in out
    assert out.rstrip().endswith("FAILED: 1 of 3 checks passed")


def test_check_writes_junit_and_json(contract: Path, dump: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(EMITTER_CONTRACT.replace("value: 3", "value: 5"))
    code, _, _ = cli("check", bad, "--from", dump, "--junit-xml", tmp_path / "r" / "junit.xml",
                     "--json", tmp_path / "r" / "result.json", "-q")
    assert code == 1
    root = ET.parse(tmp_path / "r" / "junit.xml").getroot()
    assert (root.get("tests"), root.get("failures")) == ("3", "1")
    failure = root.find("./testsuite/testcase[@name='items']/failure")
    assert failure is not None and "value=5" in failure.text
    data = json.loads((tmp_path / "r" / "result.json").read_text())
    assert data["passed"] is False and data["source"] == str(dump)
    assert [c["outcome"] for c in data["suites"][0]["cases"]] == ["passed", "passed", "failed"]


def test_only_runs_selected_checks(contract: Path, dump: Path) -> None:
    code, out, _ = cli("check", contract, "--from", dump, "--only", "items", "-q")
    assert (code, out.strip()) == (0, "PASSED: 1 of 1 checks passed")
    code, _, err = cli("check", contract, "--from", dump, "--only", "itemz")
    assert code == 2 and "no check 'itemz'" in err and "did you mean 'items'?" in err


def test_usage_errors_exit_2(contract: Path, dump: Path, tmp_path: Path) -> None:
    code, _, err = cli("check", contract, "--from", tmp_path / "missing.jsonl")
    assert code == 2 and err.strip() == f"telemetry-asserts: error: {tmp_path / 'missing.jsonl'}: no such file"
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text("{not json\n")
    code, _, err = cli("check", contract, "--from", garbage)
    assert code == 2 and err.startswith(f"telemetry-asserts: error: {garbage}: not OTLP JSON: ")
    code, _, err = cli("check", contract)
    assert code == 2 and "where is the telemetry? give --from FILE" in err
    code, _, err = cli("check", contract, "--from", "otlp://10.0.0.1:4318")
    assert code == 2 and "the receiver only binds 127.0.0.1, not '10.0.0.1'" in err
    code, _, err = cli("run", contract)
    assert code == 2 and "run needs a command" in err
    code, _, _ = cli("frobnicate")
    assert code == 2


def test_malformed_contract_exits_2_naming_file_line_and_key(dump: Path, tmp_path: Path) -> None:
    bad = tmp_path / "typo.yaml"
    bad.write_text("version: 1\nmetrics:\n  - id: m\n    name: x\n    tpye: counter\n")
    code, out, err = cli("check", bad, "--from", dump)
    assert code == 2 and out == ""
    assert err.splitlines() == [
        "malformed contract (1 problem):",
        f"  {bad}:5:5: metrics[0].tpye: unknown key (did you mean 'type'?); allowed: id, title, points, feedback, "
        "name, absent, type, unit, description, prometheus_name, data_points, exact_points",
    ]


def test_schema_prints_the_published_schema() -> None:
    code, out, _ = cli("schema")
    assert code == 0 and json.loads(out) == schema()


# --- check --from otlp:// -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("scheme", ["otlp", "otlp+grpc"])
def test_check_receives_over_otlp_until_idle(scheme: str, contract: Path, emitter: Path, tmp_path: Path) -> None:
    port = _free_port()
    dumped = tmp_path / "received.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "telemetry_asserts", "check", str(contract), "--from", f"{scheme}://127.0.0.1:{port}",
         "--settle", "0.5", "--timeout", "60", "--dump", str(dumped)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # wait until the CLI listens
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        protocol = "grpc" if scheme == "otlp+grpc" else "http/protobuf"
        env = {"PATH": "", "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
               "OTEL_EXPORTER_OTLP_PROTOCOL": protocol, "OTEL_EXPORTER_OTLP_INSECURE": "true"}
        subprocess.run([sys.executable, str(emitter)], env=env, check=True, timeout=60)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, out + err
    assert "receiving OTLP/" in err
    assert out.rstrip().endswith("PASSED: 3 of 3 checks passed")
    assert {s.name for s in read_otlp_json(dumped).spans} == {"work", "step"}


# --- run -- COMMAND ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_run_points_the_command_at_its_receiver(protocol: str, contract: Path, emitter: Path, tmp_path: Path) -> None:
    code, out, err = cli("run", contract, "--protocol", protocol, "--settle", "0.3", "--dump", tmp_path / "d.jsonl",
                         "--", sys.executable, emitter)
    assert code == 0, out + err
    assert f"command: {sys.executable} {emitter} -> exit status 0" in out
    assert ("grpc to http://127.0.0.1:" if protocol == "grpc" else "http/protobuf to http://127.0.0.1:") in err
    assert len(read_otlp_json(tmp_path / "d.jsonl").spans) == 2


def test_run_command_exit_status_is_part_of_the_verdict(contract: Path, emitter: Path) -> None:
    code, out, _ = cli("run", contract, "--settle", "0.3", "--", sys.executable, emitter, "3")
    assert code == 1
    assert out.rstrip().endswith("FAILED: the command exited with status 3, expected 0")
    code, _, _ = cli("run", contract, "--settle", "0.3", "--expect-exit", "3", "--", sys.executable, emitter, "3")
    assert code == 0


def test_run_command_that_cannot_start_exits_2(contract: Path) -> None:
    code, _, err = cli("run", contract, "--", "/nonexistent/neuro-tool", "x")
    assert code == 2
    assert "telemetry-asserts: error: cannot start '/nonexistent/neuro-tool': No such file or directory" in err


# --- snapshot ---------------------------------------------------------------------------------------------


def test_snapshot_cli_create_compare_differs_update(dump: Path, tmp_path: Path) -> None:
    snap = tmp_path / "shape.yaml"
    assert cli("snapshot", snap, "--from", dump)[:2] == (0, f"snapshot created: {snap}\n")
    assert cli("snapshot", snap, "--from", dump)[:2] == (0, f"snapshot unchanged: {snap}\n")
    assert cli("check", snap, "--from", dump)[0] == 0  # a snapshot is a contract

    cap = Capture(Resource.create({"service.name": "emitter"}))
    with cap.tracer_provider.get_tracer("emitter").start_as_current_span("work", attributes={"items": "3"}):
        pass
    other = write_otlp_json(cap.snapshot(), tmp_path / "other.jsonl")
    before = snap.read_text()
    code, out, _ = cli("snapshot", snap, "--from", other)
    assert code == 1 and snap.read_text() == before
    assert "-        type: int\n" in out and "-    - name: step\n" in out
    assert out.rstrip().endswith(f"FAILED: the telemetry shape differs from the snapshot {snap} (see the diff above); "
                                 "re-run with --update to accept it")
    code, out, _ = cli("snapshot", snap, "--from", other, "--update")
    assert code == 0 and out.rstrip().endswith(f"snapshot updated: {snap}")
    assert snap.read_text() != before


# --- acceptance: the pipeline under its contract ----------------------------------------------------------


@pytest.fixture(scope="module")
def phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pipeline.phantom import make_head_phantom

    path = tmp_path_factory.mktemp("phantom") / "sub-01_T1w.nii.gz"
    nib.save(make_head_phantom((32, 32, 32), (5.0, 5.0, 5.0)), path)
    return path


def _console(*args: str | Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("telemetry-asserts")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "telemetry_asserts"]
    return subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, timeout=300)


def test_acceptance_pipeline_run_passes_its_contract(phantom: Path, tmp_path: Path) -> None:
    neuro = Path(sys.executable).with_name("neuro-preprocess")
    proc = _console("run", CONTRACT, "--settle", "0.5", "--junit-xml", tmp_path / "junit.xml", "--",
                    neuro, "process", phantom, "-o", tmp_path / "out")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "trace " in proc.stdout and "├─ process_image (" in proc.stdout and "waterfall:" in proc.stdout
    assert proc.stdout.rstrip().endswith("PASSED: 26 of 26 checks passed")
    assert ET.parse(tmp_path / "junit.xml").getroot().get("failures") == "0"
    assert (tmp_path / "out" / "sub-01_T1w_preproc.nii.gz").is_file()


def test_acceptance_absent_span_fails_with_a_readable_report(phantom: Path, tmp_path: Path) -> None:
    text = CONTRACT.read_text().replace("      │  └─ resample\n", "      │  ├─ resample\n      │  └─ coregister\n")
    assert "coregister" in text
    contract = tmp_path / "expects_coregister.yaml"
    contract.write_text(text)
    neuro = Path(sys.executable).with_name("neuro-preprocess")
    proc = _console("run", contract, "--settle", "0.5", "--", neuro, "process", phantom, "-o", tmp_path / "out")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    assert "<-- ✗ file_trace_shape: " in out  # marked on the file's trace
    assert "  ✗ file_trace_shape  one trace per file" in out
    failing = out[out.index("  ✗ file_trace_shape"):]
    assert "missing span 'coregister' under process_file > process_image" in failing
    assert "│  └─ coregister  <-- missing" in failing  # the expected tree, marked, next to the recorded one
    assert out.rstrip().endswith("FAILED: 25 of 26 checks passed")


def test_snapshot_of_a_command(emitter: Path, tmp_path: Path) -> None:
    snap = tmp_path / "emitter_shape.yaml"
    code, out, err = cli("snapshot", snap, "--settle", "0.3", "--", sys.executable, emitter)
    assert (code, out) == (0, f"snapshot created: {snap}\n"), err
    data = snap.read_text()
    assert "root: work" in data and "- name: step" in data and "items:\n        type: int" in data
    assert cli("snapshot", snap, "--settle", "0.3", "--", sys.executable, emitter)[:2] == (
        0, f"snapshot unchanged: {snap}\n")


def test_run_writes_the_html_report_of_the_commands_telemetry(contract: Path, emitter: Path, tmp_path: Path) -> None:
    html = tmp_path / "run.html"
    code, _, err = cli("run", contract, "--settle", "0.3", "--html", html, "--", sys.executable, emitter)
    assert code == 0 and f"wrote the HTML report to {html}" in err
    data = json.loads(html.read_text().split('id="telemetry-data">', 1)[1].split("</script>", 1)[0])
    assert data["subtitle"] == f"command: {sys.executable} {emitter} -> exit status 0"
    assert [s["n"] for s in data["traces"][0]["spans"]] == ["work", "step"]
    assert [m["name"] for m in data["metrics"]] == ["items.done"] and data["verdict"]["passed"] is True
