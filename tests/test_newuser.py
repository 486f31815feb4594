"""What a new user trips over (issue 13 item 8): each message a first run shows, run as a user would."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import main

CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _grade(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "grading.cli", *argv], capture_output=True, text=True,
                          timeout=120, check=False, env=CLEAN_ENV)


def test_no_dask_scheduler_is_one_line_and_exit_2_in_neuro_preprocess(phantom: Path, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "sub-01_T1w.nii.gz").write_bytes(phantom.read_bytes())
    address = f"tcp://127.0.0.1:{_free_port()}"
    out, err = io.StringIO(), io.StringIO()
    code = main(["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--dask-scheduler", address],
                env=CLEAN_ENV, stdout=out, stderr=err)
    assert (code, out.getvalue()) == (2, "")
    assert err.getvalue() == (f"neuro-preprocess: error: no Dask scheduler at {address} (connection refused); "
                              f"start one with `dask scheduler`, then `dask worker {address}` (see the README)\n")
    assert not (tmp_path / "out").exists()  # checked before any work


def test_malformed_dask_address_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    err = io.StringIO()
    code = main(["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--dask-scheduler", "nonsense"],
                env=CLEAN_ENV, stdout=io.StringIO(), stderr=err)
    assert code == 2
    assert err.getvalue() == ("neuro-preprocess: error: --dask-scheduler 'nonsense': missing port number in address "
                              "'nonsense' (expected e.g. tcp://127.0.0.1:8786)\n")


def test_no_dask_scheduler_is_one_line_and_exit_2_in_neuro_grade(tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{_free_port()}"
    proc = _grade("grade", str(tmp_path), "--dask-scheduler", address)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"neuro-grade: error: no Dask scheduler at {address} (connection refused); "
        f"start one with `dask scheduler`, then `dask worker {address}` (see the README)"]
    assert proc.stdout == ""


def test_grading_an_empty_dir_says_why_it_is_invalid(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = _grade("grade", str(empty))
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"graded empty: 0/28 (invalid: {empty}: no pipeline/ package (a directory 'pipeline' with __init__.py) "
        "found, 0.0 s)"]


@pytest.mark.parametrize(("argv", "message"), [
    (["--fwhm-mm", "-3"], "stage 'smooth': fwhm_mm must be a finite number >= 0 (got -3.0)"),
    (["--voxel-size-mm", "0"], "stage 'resample': voxel_size_mm must be a finite number > 0 (got 0.0)"),
    (["--erosion-mm", "nan"], "stage 'skull_strip': erosion_mm must be a finite number >= 0 (got nan)"),
    (["--n4-shrink-factor", "0"], "stage 'bias_correction': shrink_factor must be an integer >= 1 (got 0)"),
    (["--n4-iterations", "50,0"], "stage 'bias_correction': iterations must be integers >= 1 per level (got (50, 0))"),
    (["--param", "bias_correction.convergence_threshold=-1"],
     "stage 'bias_correction': convergence_threshold must be finite and >= 0 (got -1.0)"),
    (["--param", "skull_strip.threshold_scale=0"],
     "stage 'skull_strip': threshold_scale must be a finite number > 0 (got 0.0)"),
    (["--param", "resample.order=7"], "stage 'resample': order must be 0..5 (got 7)"),
    (["--param", "normalize.high_pct=120", "--normalize-method", "percentile"],
     "stage 'normalize': need 0 <= low_pct < high_pct <= 100 (got 1.0, 120.0)"),
], ids=["fwhm", "voxel_size", "erosion_nan", "n4_shrink", "n4_iterations", "n4_convergence", "threshold_scale",
        "resample_order", "percentiles"])
def test_every_stage_parameter_is_checked_before_any_work(argv: list[str], message: str, phantom: Path,
                                                          tmp_path: Path) -> None:
    """The default stages run N4 and the skull strip first: a bad smoothing width must not wait for them."""
    out, err = io.StringIO(), io.StringIO()
    code = main(["process", str(phantom), "-o", str(tmp_path / "out"), *argv], env=CLEAN_ENV, stdout=out, stderr=err)
    assert (code, out.getvalue()) == (2, "")
    assert err.getvalue() == f"neuro-preprocess: error: {message}\n"
    assert not (tmp_path / "out").exists()


def test_a_stage_parameter_without_a_check_is_refused_at_registration() -> None:
    from pipeline.stages import _spec
    from pipeline.stages.smooth import smooth

    def check_nothing() -> None:
        return None

    with pytest.raises(TypeError, match=r"smooth: check_params takes \[\], the stage \['fwhm_mm'\]"):
        _spec("smooth", smooth, check_nothing)


def test_the_command_in_the_starters_exercises_md_works_from_the_starter(tmp_path: Path) -> None:
    import re

    starter = tmp_path / "starter"
    made = _grade("starter", str(starter))
    assert made.returncode == 0, made.stderr
    handout = (starter / "EXERCISES.md").read_text(encoding="utf-8")
    commands = re.findall(r"`(neuro-grade [^`]+|pytest [^`]+)`", handout)
    assert commands == ["neuro-grade grade .", "neuro-grade grade . -v"]
    for command in commands:
        argv = command.split()[1:]  # run as the student would, from the starter directory
        # -P: the starter's own pipeline/ must not shadow the grader's imports (as with the console script)
        proc = subprocess.run([sys.executable, "-P", "-m", "grading.cli", *argv], cwd=starter, capture_output=True,
                              text=True, timeout=300, check=False, env=CLEAN_ENV)
        assert proc.returncode == 0, proc.stderr  # graded: the starter runs, its TODOs score nothing yet
        assert proc.stderr.startswith("graded starter: 0/28 (ok, "), proc.stderr
        assert any(line.startswith("starter ") and line.endswith(" ok") for line in proc.stdout.splitlines())
    assert "expected" in proc.stdout  # -v: the feedback of each check
