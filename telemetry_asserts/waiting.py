"""Waiting for asynchronously exported telemetry: retry a whole assertion until a deadline.

Telemetry often arrives after the code under test returns (batch processors, worker threads, a
collector in between). Rather than sleeping, retry the complete assertion - selection and checks
together - and on timeout fail with the assertion's own last message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from .errors import TelemetryAssertionError

T = TypeVar("T")

__all__ = ["wait_until"]


def wait_until(
    assertion: Callable[[], T],
    *,
    timeout_s: float = 5.0,
    interval_s: float = 0.02,
    before_each: Callable[[], object] | None = None,
) -> T:
    """Call ``assertion`` until it stops raising ``AssertionError``; return its result.

    ``before_each`` runs before every attempt (e.g. a provider's ``force_flush``). The interval
    grows gently (x1.5, at most 0.25 s). At the deadline, raise :class:`TelemetryAssertionError`
    with the number of attempts and the last failure's message (chained to it). Exceptions other
    than ``AssertionError`` propagate at once: they are bugs, not "not yet".
    """
    __tracebackhide__ = True
    if timeout_s < 0:
        raise ValueError(f"timeout_s must be >= 0, got {timeout_s}")
    deadline = time.monotonic() + timeout_s
    attempts = 0
    delay = interval_s
    while True:
        if before_each is not None:
            before_each()
        attempts += 1
        try:
            return assertion()
        except AssertionError as exc:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TelemetryAssertionError(
                    f"still failing after {timeout_s:g} s ({attempts} attempt{'s' if attempts != 1 else ''}): {exc}"
                ) from exc
        time.sleep(min(delay, max(remaining, 0.0)))
        delay = min(delay * 1.5, 0.25)
