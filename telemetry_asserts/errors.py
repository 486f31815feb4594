"""The one exception every assertion of the harness raises."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class TelemetryAssertionError(AssertionError):
    """An expectation about telemetry did not hold; the message is meant for a person."""


def closest(name: str, candidates: Iterable[str], n: int = 1, cutoff: float = 0.6) -> list[str]:
    """Near-miss suggestions for ``name`` among ``candidates`` (best first)."""
    return difflib.get_close_matches(name, list(dict.fromkeys(candidates)), n=n, cutoff=cutoff)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` or an empty string."""
    best = closest(name, candidates)
    return f" (did you mean {best[0]!r}?)" if best else ""
