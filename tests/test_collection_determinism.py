"""The suite collects the same test ids in every process: pytest-xdist refuses to run otherwise.

xdist compares the ids each worker collected; an id built from a value that carries the time (a gzip
header's mtime), a random value or a set's iteration order (which follows ``PYTHONHASHSEED``) differs
between workers, and the whole run fails at collection. This collects the suite twice, in two
processes started more than a second apart with different hash seeds, and compares the ids.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _collect(hash_seed: str) -> list[str]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_ADDOPTS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    ids = [line for line in proc.stdout.splitlines() if "::" in line]
    assert proc.returncode == 0 and ids, f"collection failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return ids


def _first_difference(first: list[str], second: list[str]) -> str:
    only_first = sorted(set(first) - set(second))
    only_second = sorted(set(second) - set(first))
    if only_first or only_second:
        return "only in the first collection:\n  " + "\n  ".join(only_first[:10]) + \
            "\nonly in the second collection:\n  " + "\n  ".join(only_second[:10])
    index = next(i for i, (a, b) in enumerate(zip(first, second)) if a != b)
    return f"same ids in another order, first at position {index}: {first[index]!r} vs {second[index]!r}"


def test_two_collections_a_second_apart_with_other_hash_seeds_give_the_same_ids() -> None:
    first = _collect("1")
    time.sleep(1.1)  # a timestamp with one-second resolution (gzip mtime, file names) now differs
    second = _collect("2")
    assert first == second, "test ids differ between two collections:\n" + _first_difference(first, second)


def test_no_test_id_holds_raw_bytes() -> None:
    """Ids made of bytes (escaped as ``\\x..``) are a parametrize value with no ``ids=``: name them."""
    raw = [i for i in _collect("0") if re.search(r"\\x[0-9a-f]{2}", i)]
    assert not raw, "parametrize ids built from bytes (give them ids=):\n  " + "\n  ".join(raw[:10])
