"""Run one command in an isolated child: own session, time and memory limits, bounded output.

The child gets a fresh process group (killed as a whole at the deadline), ``RLIMIT_AS`` (memory),
``RLIMIT_CPU`` (a backstop for the wall-clock deadline), ``RLIMIT_FSIZE`` (no file larger than the
bound), ``RLIMIT_CORE`` 0, a working directory of its own and a minimal environment. stdout and
stderr go to files and only their first ``max_output_bytes`` are read back, so a printing submission
cannot exhaust the grader's memory.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX_OUTPUT_BYTES = 64 * 1024
_MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Resource limits for one isolated run."""

    timeout_s: float = 30.0
    memory_mb: int = 1536
    max_file_mb: int = 256
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES


@dataclass(frozen=True)
class IsolatedResult:
    """What an isolated run did: exit status, limits hit, the head of its output."""

    returncode: int
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool
    stdout_truncated: bool = False
    stderr_truncated: bool = False

    @property
    def signal_name(self) -> str | None:
        """The signal that ended the child (e.g. ``SIGKILL``), if any."""
        if self.returncode >= 0:
            return None
        try:
            return signal.Signals(-self.returncode).name
        except ValueError:
            return f"signal {-self.returncode}"


def _apply_limits(pid: int, limits: Limits) -> None:
    """Set the child's rlimits with prlimit(2) (no ``preexec_fn``: that is unsafe with threads, and
    the grader starts children from a thread pool)."""
    memory = limits.memory_mb * _MIB
    cpu = int(limits.timeout_s) + 2
    size = limits.max_file_mb * _MIB
    for which, value in (
        (resource.RLIMIT_AS, (memory, memory)),
        (resource.RLIMIT_CPU, (cpu, cpu + 1)),
        (resource.RLIMIT_FSIZE, (size, size)),
        (resource.RLIMIT_CORE, (0, 0)),
    ):
        resource.prlimit(pid, which, value)


def _read_head(path: Path, limit: int) -> tuple[str, bool]:
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    truncated = len(data) > limit
    return data[:limit].decode("utf-8", errors="replace"), truncated


def minimal_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A small environment for the child: PATH, locale, single-threaded numerics, no user paths."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS": "1",
    }
    if "HOME" in os.environ:
        env["HOME"] = os.environ["HOME"]
    env.update(extra or {})
    return env


def run_isolated(
    argv: Sequence[str],
    *,
    cwd: Path,
    limits: Limits = Limits(),
    env: Mapping[str, str] | None = None,
    stdin_data: bytes = b"",
    output_dir: Path | None = None,
) -> IsolatedResult:
    """Run ``argv`` in ``cwd`` under ``limits``; never raises for what the child does.

    The limits are set right after the child starts and before ``stdin_data`` is written: a child
    that reads its stdin first (the grading runner does) runs nothing of its own before that.
    At the deadline the child's whole process group gets SIGKILL. ``stdin_data`` is written to the
    child's stdin (then closed). Output files go to ``output_dir`` (default: ``cwd``'s parent).
    """
    cwd = Path(cwd)
    out_dir = Path(output_dir) if output_dir is not None else cwd.parent
    stdout_path, stderr_path = out_dir / "stdout.txt", out_dir / "stderr.txt"
    start = time.monotonic()
    timed_out = False
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else minimal_env(),
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=err,
            start_new_session=True,
            close_fds=True,
        )
        try:
            try:
                _apply_limits(proc.pid, limits)
            except ProcessLookupError:  # already gone: nothing left to limit
                pass
            assert proc.stdin is not None
            try:
                proc.stdin.write(stdin_data)
                proc.stdin.close()
            except BrokenPipeError:
                pass
            proc.wait(timeout=limits.timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            _kill_group(proc)
    duration = time.monotonic() - start
    stdout, out_cut = _read_head(stdout_path, limits.max_output_bytes)
    stderr, err_cut = _read_head(stderr_path, limits.max_output_bytes)
    return IsolatedResult(
        returncode=proc.returncode if proc.returncode is not None else -signal.SIGKILL,
        stdout=stdout,
        stderr=stderr,
        duration_s=duration,
        timed_out=timed_out,
        stdout_truncated=out_cut,
        stderr_truncated=err_cut,
    )


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child's process group (it may have left grandchildren) and reap the child."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - a SIGKILLed child always dies
        pass


__all__ = ["IsolatedResult", "Limits", "minimal_env", "run_isolated"]
