"""The README's pytest example runs as written, where a user would run it: a plain ``pytest`` in a
directory of their own, outside this repository (no conftest of ours, so no fixture of ours)."""

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def _run_pytest_in(directory: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTEST_"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(directory), str(directory)],
        cwd=directory, capture_output=True, text=True, timeout=600, check=False, env=env,
    )


def test_readme_plugin_example_passes_outside_the_repository(tmp_path: Path) -> None:
    (block,) = [b for b in _python_blocks() if "def test_" in b]
    user_dir = tmp_path / "my_project"
    user_dir.mkdir()
    (user_dir / "test_readme_example.py").write_text(block, encoding="utf-8")
    assert not any((d / "conftest.py").exists() for d in [user_dir, *user_dir.parents])  # none of ours above

    proc = _run_pytest_in(user_dir)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout


def test_the_check_would_catch_a_fixture_only_the_repository_has(tmp_path: Path) -> None:
    """The old example's failure: a fixture from this repository's conftest is not there for users."""
    user_dir = tmp_path / "my_project"
    user_dir.mkdir()
    (user_dir / "test_x.py").write_text("def test_x(telemetry, phantom_path):\n    pass\n", encoding="utf-8")
    proc = _run_pytest_in(user_dir)
    assert proc.returncode == 1
    assert "fixture 'phantom_path' not found" in proc.stdout
