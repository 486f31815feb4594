"""Progress on a terminal (issue 13 items 7 and 8): ``process`` shows each file's stages, ``batch`` its
files; failure lines go through the progress display without tearing it; nothing when stderr is not
a terminal. One run through a real pseudo-terminal."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import select
import shutil
import struct
import subprocess
import sys
import termios
from pathlib import Path

from pipeline.cli import main

STAGES = "skull_strip,normalize,smooth"
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}


def bids(root: Path, phantom: Path, subjects: int = 2) -> Path:
    for i in range(1, subjects + 1):
        anat = root / f"sub-{i:02d}" / "anat"
        anat.mkdir(parents=True)
        shutil.copy(phantom, anat / f"sub-{i:02d}_T1w.nii.gz")
    return root


class FakeTerminal(io.StringIO):
    """A stderr that says it is a terminal (tqdm then draws)."""

    def isatty(self) -> bool:
        return True


def run_on_terminal(*argv: str | Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), FakeTerminal()
    code = main([str(a) for a in argv], env=CLEAN_ENV, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_process_shows_each_stage_of_each_file_on_a_terminal(phantom: Path, tmp_path: Path) -> None:
    bad = tmp_path / "sub-09_T1w.nii.gz"
    bad.write_bytes(b"garbage")
    code, stdout, err = run_on_terminal("process", phantom, bad, "-o", tmp_path / "out", "--stages", STAGES)

    assert code == 1
    for i, stage in enumerate(STAGES.split(","), start=1):
        assert f"sub-01_T1w.nii.gz: {stage} ({i}/3)" in err
    assert "/6 [" in err  # 2 files x 3 stages
    # the failure line is written through the bar, once, on its own line
    failed = [line for line in err.replace("\r", "\n").splitlines() if "failed:" in line]
    assert len(failed) == 1 and failed[0].strip().startswith("neuro-preprocess: failed: sub-09_T1w.nii.gz: ")
    assert stdout.splitlines()[-1].startswith("2 inputs: 1 succeeded, 1 failed")


def test_batch_failure_line_goes_through_the_bar_in_process_and_in_workers(phantom: Path, tmp_path: Path) -> None:
    inputs = bids(tmp_path / "in", phantom)
    (inputs / "sub-03" / "anat").mkdir(parents=True)
    (inputs / "sub-03" / "anat" / "sub-03_T1w.nii.gz").write_bytes(b"garbage")
    for extra in ([], ["--workers", "2"]):
        code, stdout, err = run_on_terminal("batch", inputs, "-o", tmp_path / f"out{len(extra)}", "--stages", "smooth",
                                            *extra)
        assert code == 1
        assert "preprocessing:" in err and "/3 [" in err and "file/s" in err  # a bar over the 3 files
        failed = [line.strip() for line in err.replace("\r", "\n").splitlines() if "failed:" in line]
        assert len(failed) == 1 and failed[0].startswith("neuro-preprocess: failed: sub-03_T1w.nii.gz: "), err
        assert stdout.splitlines()[0] == "3 to process, 0 already done"


def test_no_progress_when_stderr_is_not_a_terminal_or_when_asked(phantom: Path, tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["process", str(phantom), "-o", str(tmp_path / "a"), "--stages", "smooth"], env=CLEAN_ENV,
                stdout=out, stderr=err) == 0
    assert err.getvalue() == ""
    code, _, tty_err = run_on_terminal("process", phantom, "-o", tmp_path / "b", "--stages", "smooth", "--no-progress")
    assert (code, tty_err) == (0, "")


def test_progress_through_a_real_pseudo_terminal(phantom: Path, tmp_path: Path) -> None:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a terminal has a size
    env = {**CLEAN_ENV, "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "process", str(phantom), "-o", str(tmp_path / "out"),
                             "--stages", STAGES], stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    stdout, _ = proc.communicate(timeout=60)
    os.close(master)
    assert proc.returncode == 0
    text = seen.decode(errors="replace")
    assert "sub-01_T1w.nii.gz: smooth (3/3)" in text
    assert b"1 input: 1 succeeded" in stdout
