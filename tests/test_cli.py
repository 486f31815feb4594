"""The neuro-preprocess command line: exit codes, one line per failed input, resume, discovery,
the telemetry summary. A few runs go through the installed console script in a subprocess."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import pytest

from pipeline import __version__
from pipeline.cli import main
from pipeline.phantom import make_head_phantom
from pipeline.registry import RunRegistry

FAST = "skull_strip,normalize,smooth"
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}


def bids(root: Path, phantom: Path, subjects: int = 2) -> Path:
    for i in range(1, subjects + 1):
        anat = root / f"sub-{i:02d}" / "anat"
        anat.mkdir(parents=True)
        shutil.copy(phantom, anat / f"sub-{i:02d}_T1w.nii.gz")
        (anat / f"sub-{i:02d}_T2w.nii.gz").write_bytes(b"not picked: only *_T1w")
    return root


def run(*argv: str | Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([str(a) for a in argv], env=CLEAN_ENV if env is None else env, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def script(*argv: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("neuro-preprocess")
    command = [exe] if exe else [sys.executable, "-m", "pipeline"]
    return subprocess.run([*command, *map(str, argv)], capture_output=True, text=True, timeout=120, check=False,
                          env={**CLEAN_ENV, **(env or {})})


def test_console_script_success_prints_the_summary_tree(phantom: Path, tmp_path: Path) -> None:
    proc = script("process", phantom, "-o", tmp_path / "out", "--stages", FAST, "--telemetry-summary")

    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert lines[0] == f"1 input: 1 succeeded, 0 failed, 0 already done (output: {tmp_path / 'out'})"
    tree = [line.split(" (")[0] for line in lines[2:11]]
    assert tree == [
        "process_file",
        "├─ load_file",
        "├─ INSERT",
        "├─ process_image",
        "│  ├─ skull_strip",
        "│  ├─ normalize",
        "│  └─ smooth",
        "└─ write_output",
        "   ├─ write_metadata",
    ]
    assert "neuro.stages.executed (counter, unit '{execution}')" in lines
    assert "  {stage='smooth'} value=1" in lines
    assert "  {status='success'} value=1" in lines
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "runs.sqlite", "sub-01_T1w_metadata.json", "sub-01_T1w_preproc.nii.gz"]


def test_console_script_one_line_per_failed_input_and_exit_1(phantom: Path, tmp_path: Path) -> None:
    empty = tmp_path / "sub-02_T1w.nii.gz"
    empty.write_bytes(b"")

    proc = script("process", phantom, tmp_path / "sub-03_T1w.nii", empty, "-o", tmp_path / "out", "--stages", FAST)

    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "neuro-preprocess: failed: sub-03_T1w.nii: file not found",
        "neuro-preprocess: failed: sub-02_T1w.nii.gz: file is empty (0 bytes)",
    ]
    assert proc.stdout.splitlines()[-1].startswith("3 inputs: 1 succeeded, 2 failed, 0 already done")


def test_console_script_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    proc = script("process", tmp_path / "x.nii", "-o", tmp_path / "out", "--stages", "smooth,blur")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "neuro-preprocess: error: unknown stage 'blur'; valid stages: "
        "bias_correction, skull_strip, normalize, smooth, resample"
    )
    assert not (tmp_path / "out").exists()
    assert main(["process", str(tmp_path / "x.nii")]) == 2  # argparse's own usage error
    assert "the following arguments are required: -o/--output-dir" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--param", "smooth.sigma=3"], "unknown parameter 'sigma' for stage 'smooth'; valid parameters: fwhm_mm"),
        (["--param", "smooth"], "--param 'smooth': expected STAGE.NAME=VALUE, e.g. smooth.fwhm_mm=4"),
        (["--stages", "smooth", "--voxel-size-mm", "3"], "parameters given for stage 'resample', which is not selected"),
        (["--stages", "smooth,smooth"], "a stage is listed twice: smooth, smooth"),
    ],
)
def test_bad_stage_options_are_usage_errors(argv: list[str], message: str, tmp_path: Path) -> None:
    code, out, err = run("process", tmp_path / "x.nii", "-o", tmp_path / "out", *argv)
    assert (code, out) == (2, "")
    assert err == f"neuro-preprocess: error: {message}\n"


def test_bad_otel_variable_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = run("process", tmp_path / "x.nii", "-o", tmp_path / "out",
                       env={**CLEAN_ENV, "OTEL_TRACES_EXPORTER": "jaeger"})
    assert code == 2
    assert err == "neuro-preprocess: error: OTEL_TRACES_EXPORTER='jaeger': unsupported 'jaeger' (use otlp|console|none)\n"


def test_batch_then_resume_processes_nothing_and_says_so(phantom: Path, tmp_path: Path) -> None:
    inputs, out = bids(tmp_path / "in", phantom), tmp_path / "out"

    code, stdout, err = run("batch", inputs, "-o", out, "--stages", FAST, "--no-progress")
    assert (code, err) == (0, "")
    assert stdout.splitlines() == ["2 to process, 0 already done",
                                   f"2 inputs: 2 succeeded, 0 failed, 0 already done (output: {out})"]
    outputs = sorted(out.glob("sub-*"))
    assert [p.name for p in outputs] == ["sub-01_T1w_metadata.json", "sub-01_T1w_preproc.nii.gz",
                                         "sub-02_T1w_metadata.json", "sub-02_T1w_preproc.nii.gz"]
    stamps = [p.stat().st_mtime_ns for p in outputs]

    code, stdout, _ = run("batch", inputs, "-o", out, "--stages", FAST, "--resume", "--no-progress")
    assert code == 0
    assert stdout.splitlines() == ["0 to process, 2 already done",
                                   f"2 inputs: 0 succeeded, 0 failed, 2 already done (output: {out})"]
    assert [p.stat().st_mtime_ns for p in outputs] == stamps

    # Different parameters or a changed input are not "done".
    code, stdout, _ = run("batch", inputs, "-o", out, "--stages", FAST, "--fwhm-mm", "4", "--resume", "--no-progress")
    assert stdout.splitlines()[0] == "2 to process, 0 already done"
    nib.save(make_head_phantom(shape=(32, 32, 32), voxel_size_mm=(6.0, 6.0, 6.0), seed=7),
             inputs / "sub-02" / "anat" / "sub-02_T1w.nii.gz")
    code, stdout, _ = run("batch", inputs, "-o", out, "--stages", FAST, "--fwhm-mm", "4", "--resume", "--no-progress")
    assert stdout.splitlines()[0] == "1 to process, 1 already done"
    rows = RunRegistry.in_dir(out).records()
    assert [r.status for r in rows] == ["success", "success"]
    assert all(r.parameters["stage_params"]["smooth"]["fwhm_mm"] == 4.0 for r in rows)


def test_batch_without_resume_reprocesses(phantom: Path, tmp_path: Path) -> None:
    inputs, out = bids(tmp_path / "in", phantom, subjects=1), tmp_path / "out"
    run("batch", inputs, "-o", out, "--stages", "smooth", "--no-progress")
    code, stdout, _ = run("batch", inputs, "-o", out, "--stages", "smooth", "--no-progress")
    assert code == 0 and stdout.splitlines()[0] == "1 to process, 0 already done"


def test_batch_flat_folder_and_failures(phantom: Path, tmp_path: Path) -> None:
    inputs, out = tmp_path / "flat", tmp_path / "out"
    inputs.mkdir()
    shutil.copy(phantom, inputs / "a.nii.gz")
    (inputs / "b.nii").write_bytes(b"garbage" * 100)
    (inputs / "notes.txt").write_text("ignored")

    code, stdout, err = run("batch", inputs, "-o", out, "--stages", "smooth", "--no-progress")

    assert code == 1
    assert err.splitlines() == [
        "neuro-preprocess: failed: b.nii: not a NIfTI file (header size field is 1651663207, expected 348 or 540)"]
    assert stdout.splitlines()[-1].startswith("2 inputs: 1 succeeded, 1 failed")
    assert {p.name for p in out.iterdir()} - {"runs.sqlite", "runs.sqlite-wal", "runs.sqlite-shm"} == {
        "a_preproc.nii.gz", "a_metadata.json"}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "nope", "input directory {d}/nope does not exist or is not a directory"),
        (lambda d: d, "no NIfTI inputs found in {d} (sub-*/anat/*_T1w.nii[.gz] or *.nii[.gz])"),
    ],
)
def test_batch_input_dir_problems_are_usage_errors(make, message: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run("batch", make(tmp_path), "-o", tmp_path / "out")
    assert code == 2
    assert err == f"neuro-preprocess: error: {message.format(d=tmp_path)}\n"


def test_unwritable_output_dir_is_one_clear_line(phantom: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")

    code, stdout, err = run("process", phantom, phantom, "-o", blocker / "out", "--stages", "smooth")

    assert code == 1
    assert err.splitlines() == [f"neuro-preprocess: error: cannot create output directory {blocker / 'out'}: not a directory"]
    assert stdout.splitlines()[-1].startswith("1 input: 0 succeeded, 1 failed")  # the same file twice counts once


def test_verbose_console_logs_carry_trace_ids(phantom: Path, tmp_path: Path) -> None:
    code, _, err = run("process", phantom, "-o", tmp_path / "out", "--stages", "smooth", "-v")
    assert code == 0
    loading = [line for line in err.splitlines() if ": Loading file " in line]
    assert len(loading) == 1
    assert loading[0].startswith("INFO pipeline.processor [trace_id=")
    assert loading[0].endswith(f": Loading file file_path={phantom} file_exists=True file_size_mb="
                               f"{round(phantom.stat().st_size / 1e6, 3)} array_shape=[32, 32, 32]")


def test_batch_with_workers_counts_every_file_once_in_the_parent(phantom: Path, tmp_path: Path) -> None:
    pytest.importorskip("pipeline.parallel")
    inputs, out = bids(tmp_path / "in", phantom), tmp_path / "out"

    code, stdout, err = run("batch", inputs, "-o", out, "--stages", "smooth", "--workers", "2", "--no-progress",
                            "--telemetry-summary")

    assert (code, err) == (0, "")
    lines = stdout.splitlines()
    assert lines[:2] == ["2 to process, 0 already done",
                         f"2 inputs: 2 succeeded, 0 failed, 0 already done (output: {out})"]
    assert "  {status='success'} value=2" in lines and "  {stage='smooth'} value=2" in lines  # replayed once
    assert [r.status for r in RunRegistry.in_dir(out).records()] == ["success", "success"]  # workers wrote rows
    code, stdout, _ = run("batch", inputs, "-o", out, "--stages", "smooth", "--workers", "2", "--resume", "--no-progress")
    assert (code, stdout.splitlines()[0]) == (0, "0 to process, 2 already done")


@pytest.fixture(params=["pool", "dask"])
def parallel_option(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    if request.param == "pool":
        yield ["--workers", "2"]
        return
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      host="127.0.0.1") as cluster:
        yield ["--dask-scheduler", cluster.scheduler_address]


@pytest.mark.slow
def test_batch_summary_shows_every_file_trace_from_the_workers(phantom: Path, tmp_path: Path,
                                                               parallel_option: list[str]) -> None:
    inputs, out = bids(tmp_path / "in", phantom), tmp_path / "out"

    code, stdout, err = run("batch", inputs, "-o", out, "--stages", "smooth", *parallel_option, "--no-progress",
                            "--telemetry-summary")

    assert (code, err) == (0, "")
    lines = [line.split(" (")[0] for line in stdout.splitlines()]
    # the batch's trace (process_batch, plan_batch) and one trace of 8 spans per file
    assert "== Telemetry summary: 18 spans in 3 traces ==" in lines
    assert lines.count("process_file") == 2 and lines.count("process_batch") == 1
    assert lines.count("│  └─ smooth") == 2


def test_console_exporter_prints_each_worker_span_once(phantom: Path, tmp_path: Path) -> None:
    """Workers have no console exporter of their own: the parent prints what they send back, once."""
    inputs, out = bids(tmp_path / "in", phantom), tmp_path / "out"
    proc = script("batch", inputs, "-o", out, "--stages", "smooth", "--workers", "2", "--no-progress",
                  env={"OTEL_TRACES_EXPORTER": "console"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count('"name": "process_file"') == 2
    assert proc.stdout.count('"name": "process_batch"') == 1


@pytest.mark.slow
def test_acceptance_sample_head_with_telemetry_summary(sample_t1w: Path, tmp_path: Path) -> None:
    """The issue's acceptance command on the real 176x256x256 head, default stages."""
    out = tmp_path / "out"
    code, stdout, err = run("process", sample_t1w, "-o", out, "--telemetry-summary")

    assert (code, err) == (0, "")
    tree = [line.split(" (")[0] for line in stdout.splitlines()[2:14]]
    assert tree == [
        "process_file", "├─ load_file", "├─ INSERT", "├─ process_image", "│  ├─ bias_correction",
        "│  ├─ skull_strip", "│  ├─ normalize", "│  ├─ smooth", "│  └─ resample", "└─ write_output",
        "   ├─ write_metadata", "   └─ INSERT",
    ]
    image = nib.load(out / "sub-001_T1w_preproc.nii.gz")
    assert image.header.get_zooms()[:3] == pytest.approx((2.0, 2.0, 2.0))
    assert (out / "sub-001_T1w_metadata.json").stat().st_size > 0


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"neuro-preprocess {__version__}"


def test_serve_metrics_without_the_prometheus_exporter_says_so_and_does_not_wait(phantom: Path, tmp_path: Path) -> None:
    code, _, err = run("process", phantom, "-o", tmp_path / "out", "--stages", "smooth", "--serve-metrics-s", "600")
    assert code == 0  # returns at once: a 600 s wait would hit the test run's limits
    assert "--serve-metrics-s ignored: OTEL_METRICS_EXPORTER does not include prometheus" in err
