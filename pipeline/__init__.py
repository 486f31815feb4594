"""neuro-preprocess: an OpenTelemetry-instrumented T1w preprocessing pipeline.

Import-light on purpose: nothing here imports OpenTelemetry, numpy or nibabel, and nothing
configures telemetry at import. Entry points live in :mod:`pipeline.processor` and :mod:`pipeline.cli`.
"""

from __future__ import annotations

from importlib import metadata as _metadata

try:
    __version__: str = _metadata.version("neuro-otel-harness")
except _metadata.PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.1.0"

__all__ = ["__version__"]
