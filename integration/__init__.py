"""The integration stage: the pipeline's telemetry through a real collector, and real backends.

``integration.collector`` runs the rotel collector (locally built image or process),
``integration.prometheus`` a Prometheus server and the course's log query; the tests in this folder
check the same contracts on what arrives. The helpers below run the pipeline the way a user does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from telemetry_asserts.model import Telemetry

PIPELINE_TIMEOUT_S = 120.0
# Fewer N4 iterations: the same stages and telemetry, a fraction of the CPU on small phantoms.
FAST_ARGS: tuple[str, ...] = ("--n4-iterations", "10,10")


def pipeline_env(endpoint: str | None, protocol: str = "grpc", **extra: str) -> dict[str, str]:
    """``os.environ`` without ``OTEL_*``, plus variables pointing traces, metrics and logs at ``endpoint``.

    ``protocol`` is ``grpc`` or ``http/protobuf`` (``OTEL_EXPORTER_OTLP_PROTOCOL``); ``extra``
    overrides anything (e.g. ``OTEL_METRICS_EXPORTER="prometheus"``).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_LOGS_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_METRIC_EXPORT_INTERVAL="500",
        PYTHONUNBUFFERED="1",
    )
    if endpoint is not None:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    env.update(extra)
    return env


def console_script(name: str = "neuro-preprocess") -> str:
    """The installed console script next to this interpreter (not a pyenv shim), else from PATH."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"console script {name!r} is not installed (pip install -e .)")
    return found


def run_pipeline(
    args: Sequence[str], env: Mapping[str, str], timeout_s: float = PIPELINE_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """Run ``neuro-preprocess ARGS`` as a subprocess with ``env``; output captured as text."""
    return subprocess.run(
        [console_script(), *args], env=dict(env), capture_output=True, text=True, timeout=timeout_s, check=False
    )


def settle(
    receiver: Any, predicate: Callable[[Telemetry], bool], timeout_s: float = 20.0, idle_s: float = 0.4
) -> Telemetry:
    """Wait until ``predicate`` holds on what ``receiver`` got, then until nothing new arrives for ``idle_s``."""
    receiver.wait_for(predicate, timeout_s=timeout_s)
    last = receiver.telemetry()
    while True:
        time.sleep(idle_s)
        now = receiver.telemetry()
        if (len(now.spans), len(now.metrics), len(now.logs)) == (len(last.spans), len(last.metrics), len(last.logs)):
            return now
        last = now


__all__ = ["FAST_ARGS", "PIPELINE_TIMEOUT_S", "console_script", "pipeline_env", "run_pipeline", "settle"]
