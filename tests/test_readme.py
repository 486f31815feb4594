"""The README's pytest example runs as written (so the documentation stays true)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_plugin_example_passes(telemetry, tmp_path, phantom_path):
    (block,) = [b for b in _python_blocks() if "def test_" in b]
    namespace: dict = {}
    exec(compile(block, str(README), "exec"), namespace)
    tests = [v for k, v in namespace.items() if k.startswith("test_")]
    assert len(tests) == 1
    tests[0](telemetry, tmp_path, phantom_path)
