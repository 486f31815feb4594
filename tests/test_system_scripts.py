"""The set-up scripts stop no process they did not start (nothing by name: a user's servers are theirs)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KILL_BY_NAME = re.compile(r"\b(pkill|killall)\b|kill\s+\$\(\s*pgrep")


def _project_files() -> list[Path]:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False)
    names = tracked.stdout.split() if tracked.returncode == 0 else []
    files = [ROOT / n for n in names] or [p for p in ROOT.rglob("*") if ".git" not in p.parts]
    return [p for p in files if p.suffix in {".sh", ".py", ""} and p.is_file() and p.name != "Makefile"
            and p.resolve() != Path(__file__).resolve()] + [ROOT / "Makefile", ROOT / ".ci" / "run"]


def test_no_script_or_module_stops_processes_by_name() -> None:
    offenders = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
                 for p in _project_files() if p.exists()
                 for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
                 if KILL_BY_NAME.search(line) and not line.lstrip().startswith("#")]
    assert not offenders, "processes stopped by name (stop only what you started, by pid):\n" + "\n".join(offenders)


@pytest.mark.skipif(shutil.which("prometheus") is None or shutil.which("dockerd") is None,
                    reason="the system packages are not installed, so the script would install them")
def test_install_system_deps_leaves_a_running_prometheus_alone(tmp_path: Path) -> None:
    fake = tmp_path / "prometheus"  # a process whose name is exactly "prometheus", as pkill -x matches
    shutil.copy(shutil.which("sleep") or "/bin/sleep", fake)
    proc = subprocess.Popen([str(fake), "60"])
    try:
        done = subprocess.run(["bash", str(ROOT / "scripts" / "install_system_deps.sh")],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert proc.poll() is None, "install_system_deps.sh stopped a prometheus it did not start"
    finally:
        proc.kill()
        proc.wait()


def test_start_dockerd_records_the_pid_of_the_engine_it_starts(tmp_path: Path) -> None:
    """``make test`` leaves the engine running; the README tells how to stop it: by this pid."""
    bin_dir, ready = tmp_path / "bin", tmp_path / "ready"
    bin_dir.mkdir()
    fakes = {  # an engine that answers once started; no other dockerd is seen
        "docker": f'#!/bin/sh\n[ -e "{ready}" ] || exit 1\n[ "$1" = info ] && [ -n "$2" ] && echo 99.0\nexit 0\n',
        "dockerd": f'#!/bin/sh\ntouch "{ready}"\nexec sleep 60\n',
        "pgrep": "#!/bin/sh\nexit 1\n",
    }
    for name, text in fakes.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    pid_file = tmp_path / "dockerd.pid"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "DOCKERD_LOG": str(tmp_path / "dockerd.log"),
           "DOCKERD_PID_FILE": str(pid_file), "DOCKERD_WAIT_S": "20"}
    done = subprocess.run(["bash", str(ROOT / "scripts" / "start_dockerd.sh")], capture_output=True, text=True,
                          timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    pid = int(pid_file.read_text())
    try:
        assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:2] == [b"sleep", b"60"]  # the fake engine
        assert f"dockerd pid {pid} (in {pid_file})" in done.stdout
    finally:
        import os
        import signal

        os.kill(pid, signal.SIGTERM)
