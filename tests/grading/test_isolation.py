"""Isolation: time/memory/output limits, the submission's own pipeline, nonce-checked results, the wire."""

from __future__ import annotations

import math
import os
import sys
import textwrap
import time
from pathlib import Path

from grading import wire
from grading.engine import GradeConfig, GradingSession, _read_payload, grade_submission
from grading.isolate import Limits, run_isolated
from grading.starter import materialise, reference_package
from telemetry_asserts import model


def _py(tmp_path: Path, code: str, limits: Limits, **kw: object):
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return run_isolated([sys.executable, "-c", textwrap.dedent(code)], cwd=work, limits=limits, output_dir=tmp_path, **kw)


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    code = f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        open({str(pidfile)!r}, "w").write(str(child.pid))
        while True:
            time.sleep(0.05)
    """
    start = time.monotonic()
    result = _py(tmp_path, code, Limits(timeout_s=1.5))
    assert result.timed_out and result.signal_name == "SIGKILL"
    assert time.monotonic() - start < 15
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


def test_result_needs_the_runs_nonce(tmp_path: Path) -> None:
    good = tmp_path / "r.json"
    good.write_text('{"nonce": "abc", "outcome": {}}')
    assert _read_payload(good, "abc") == {"nonce": "abc", "outcome": {}}
    assert _read_payload(good, "other") is None
    good.write_text("not json")
    assert _read_payload(good, "abc") is None
    assert _read_payload(tmp_path / "missing.json", "abc") is None


def test_wire_round_trip_keeps_types() -> None:
    res = model.Resource(model.Attributes({"service.name": "neuro-preprocess"}))
    span = model.Span(
        "load_file", 2**127 + 5, 2**63 + 7, parent_span_id=None, start_time_ns=1, end_time_ns=9,
        status_code=model.StatusCode.ERROR, status_description="boom",
        attributes=model.Attributes({"b": True, "i": 1, "f": 1.0, "s": "x", "t": (1, 2), "bt": (True, False)}),
        events=(model.Event("exception", 5, model.Attributes({"exception.type": "E"})),),
        links=(model.Link(3, 4, model.Attributes({"k": "v"})),), resource=res, scope=model.Scope("neuro_preprocess", "0.1"),
    )
    point = model.MetricPoint("h", model.MetricKind.HISTOGRAM, model.Attributes({"status": "ok"}), unit="s",
                              count=2, sum=math.inf, min=0.5, max=math.nan, bucket_counts=(1, 1), explicit_bounds=(1.0,),
                              temporality=model.Temporality.CUMULATIVE)
    log = model.LogRecord("Loading file", "INFO", 9, trace_id=2**127 + 5, span_id=2**63 + 7,
                          attributes=model.Attributes({"array_shape": (32, 32, 32), "file_exists": True}))
    original = model.Telemetry((span,), (point,), (log,))
    back = wire.from_json(__import__("json").loads(__import__("json").dumps(wire.to_json(original))))
    assert back.spans == original.spans and back.logs == original.logs
    assert back.spans[0].attributes["b"] is True and type(back.spans[0].attributes["f"]) is float
    got = back.metrics[0]
    assert got.sum == math.inf and math.isnan(got.max) and got.bucket_counts == (1, 1) and got.explicit_bounds == (1.0,)
