"""Isolation: time/memory/output limits, the submission's own pipeline, nonce-checked results, the wire."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import textwrap
import time
from pathlib import Path

from grading.engine import GradeConfig, GradingSession, _read_payload, grade_submission
from grading.isolate import Limits, run_isolated
from grading.starter import materialise, reference_package
from telemetry_asserts import model
from telemetry_asserts.otlp.files import write_otlp_json


def _py(tmp_path: Path, code: str, limits: Limits, **kw: object):
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return run_isolated(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=work, limits=limits, output_dir=tmp_path, **kw
    )


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    code = f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        open({str(pidfile)!r}, "w").write(str(child.pid))
        while True:
            time.sleep(0.05)
    """
    result = _py(tmp_path, code, Limits(timeout_s=1.5))
    assert result.timed_out and result.signal_name == "SIGKILL"
    grandchild = int(pidfile.read_text())
    for _ in range(50):  # reaped by init shortly after the kill
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the grandchild survived the time limit")


def test_memory_limit(tmp_path: Path) -> None:
    code = "import sys\nsys.stdin.read()\nx = bytearray(2 * 1024**3)\nprint('allocated')"
    result = _py(tmp_path, code, Limits(timeout_s=20, memory_mb=256), stdin_data=b"go")
    assert result.returncode != 0 and not result.timed_out
    assert "MemoryError" in result.stderr and "allocated" not in result.stdout


def test_output_is_bounded(tmp_path: Path) -> None:
    code = "import sys\nsys.stdout.write('a' * 300000)\nsys.stderr.write('b' * 10)\n"
    result = _py(tmp_path, code, Limits(timeout_s=20, max_output_bytes=1000))
    assert result.returncode == 0
    assert result.stdout == "a" * 1000 and result.stdout_truncated
    assert result.stderr == "b" * 10 and not result.stderr_truncated


def test_environment_and_working_directory(tmp_path: Path) -> None:
    os.environ["H7_SECRET_FOR_TEST"] = "leak"
    try:
        code = "import os; print(os.getcwd()); print(os.environ.get('H7_SECRET_FOR_TEST'))"
        result = _py(tmp_path, code, Limits(timeout_s=20))
    finally:
        del os.environ["H7_SECRET_FOR_TEST"]
    assert result.stdout.splitlines() == [str(tmp_path / "work"), "None"]


def test_the_submissions_own_pipeline_is_imported(tmp_path: Path) -> None:
    """A submission missing a module fails on it: nothing falls back to the installed reference."""
    sub = tmp_path / "no_processor"
    materialise(reference_package(), sub / "pipeline", ())
    (sub / "pipeline" / "processor.py").unlink()
    with GradingSession(GradeConfig(timeout_s=20), root=tmp_path) as session:
        result = grade_submission(sub, session)
    assert result.status == "import_error"
    assert result.problem.startswith(
        "importing your pipeline failed: ModuleNotFoundError: No module named 'pipeline.processor' in the submission"
    )
    assert result.score == 0


def test_result_needs_the_runs_nonce_and_telemetry_digest(tmp_path: Path) -> None:
    telemetry = model.Telemetry(
        (model.Span("process_file", 7, 9, attributes=model.Attributes({"neuro.stages": ("smooth",), "ok": True})),),
        (
            model.MetricPoint(
                "neuro.stages.executed",
                model.MetricKind.COUNTER,
                model.Attributes({"stage": "smooth"}),
                value=1,
                is_monotonic=True,
                temporality=model.Temporality.CUMULATIVE,
            ),
        ),
    )
    otlp = write_otlp_json(telemetry, tmp_path / "telemetry.jsonl")
    digest = hashlib.sha256(otlp.read_bytes()).hexdigest()
    result = tmp_path / "r.json"
    result.write_text(json.dumps({"nonce": "abc", "outcome": {}, "telemetry_sha256": digest}))
    payload = _read_payload(result, "abc", otlp)
    assert payload is not None and payload["telemetry"].spans[0].attributes["neuro.stages"] == ("smooth",)
    assert payload["telemetry"].metrics[0].value == 1
    assert _read_payload(result, "other", otlp) is None  # forged or stale result
    otlp.write_text(otlp.read_text().replace("smooth", "forged"))
    assert _read_payload(result, "abc", otlp) is None  # telemetry swapped after the run
    result.write_text("not json")
    assert _read_payload(result, "abc") is None
    assert _read_payload(tmp_path / "missing.json", "abc") is None
