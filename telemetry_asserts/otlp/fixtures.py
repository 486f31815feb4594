"""Pytest fixtures for receiving OTLP in tests (registered by the telemetry_asserts plugin)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from telemetry_asserts.otlp.receiver import OtlpReceiver


@pytest.fixture
def otlp_receiver() -> Iterator[OtlpReceiver]:
    """A started :class:`OtlpReceiver` (HTTP and gRPC on free 127.0.0.1 ports), stopped afterwards."""
    with OtlpReceiver() as receiver:
        yield receiver
