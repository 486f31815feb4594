"""Fixtures of the integration stage: a real collector between the pipeline and a test-side receiver.

    pipeline (subprocess, OTEL_* env) --OTLP gRPC|HTTP--> rotel collector --OTLP/HTTP--> OtlpReceiver

The collector runs in the mode :func:`integration.collector.resolve_mode` picks from
``NEURO_INTEGRATION_MODE``; a mode that cannot run fails every test here with the reason (never a
skip). The terminal header and summary say which mode ran and the image id, so CI's log shows it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from integration.collector import (
    MODE_ENV,
    CollectorSettings,
    CollectorUnavailable,
    ImageInfo,
    Mode,
    RotelCollector,
    engine_status,
    ensure_image,
    resolve_mode,
)

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

INTEGRATION_DIR = Path(__file__).parent

# What the stage ran with, for the terminal summary (filled by the session fixtures).
_RAN: dict[str, Any] = {}


# --- reporting ----------------------------------------------------------------------------------


def pytest_report_header(config: pytest.Config) -> list[str]:
    requested = os.environ.get(MODE_ENV, "auto") or "auto"
    try:
        mode = resolve_mode()
    except CollectorUnavailable as exc:
        return [f"integration: {MODE_ENV}={requested} -> cannot run: {exc}"]
    engine = engine_status()[1] if mode == "container" else "collector binary as a subprocess"
    return [f"integration: {MODE_ENV}={requested} -> {mode} mode ({engine})"]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _RAN:
        return
    image: ImageInfo | None = _RAN.get("image")
    where = f"image {image.tag} id {image.image_id} ({'built' if image.built else 'reused'})" if image else "no image"
    terminalreporter.write_sep("-", "integration stage")
    if "mode" in _RAN:
        terminalreporter.write_line(f"integration: collector ran in {_RAN['mode']} mode, {where}")
    else:
        terminalreporter.write_line("integration: no test here started a collector")
    for line in _RAN.get("notes", []):
        terminalreporter.write_line(f"integration: {line}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


def report_note(line: str) -> None:
    """Add a line to the stage's terminal summary (measured figures such as shutdown time, loss)."""
    _RAN.setdefault("notes", []).append(line)


# --- collector and receiver ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def collector_mode() -> Mode:
    """The resolved mode; a requested mode that cannot run is an error with the reason."""
    try:
        mode = resolve_mode()
    except CollectorUnavailable as exc:
        reason = str(exc)
    else:
        _RAN["mode"] = mode
        return mode
    pytest.fail(reason, pytrace=False)


@pytest.fixture(scope="session")
def collector_image(collector_mode: Mode) -> ImageInfo | None:
    """The collector image in container mode (built now if missing), else None."""
    if collector_mode != "container":
        return None
    image = ensure_image()
    _RAN["image"] = image
    return image


@dataclass
class Chain:
    """A started receiver and the collector forwarding to it."""

    receiver: Any  # telemetry_asserts.otlp.receiver.OtlpReceiver
    collector: RotelCollector

    def endpoint(self, protocol: str) -> str:
        """The collector endpoint for ``OTEL_EXPORTER_OTLP_PROTOCOL`` ``grpc`` or ``http/protobuf``."""
        return self.collector.grpc_endpoint if protocol == "grpc" else self.collector.http_endpoint


@dataclass
class ChainFactory:
    """Builds chains with custom receiver/collector options; stops everything it built."""

    mode: Mode
    image: ImageInfo | None
    _started: list[Any] = field(default_factory=list)

    def receiver(self, **options: Any) -> Any:
        from telemetry_asserts.otlp.receiver import OtlpReceiver

        receiver = OtlpReceiver("127.0.0.1", **options)
        receiver.start()
        self._started.append(receiver)
        return receiver

    def collector(self, exporter_endpoint: str, start: bool = True, **settings: Any) -> RotelCollector:
        collector = RotelCollector(CollectorSettings(exporter_endpoint, **settings), self.mode, self.image)
        self._started.append(collector)
        return collector.start() if start else collector

    def chain(self, receiver_options: Mapping[str, Any] | None = None, **settings: Any) -> Chain:
        """A receiver (HTTP only, so OTLP/gRPC can reach it only through the collector) and its collector."""
        receiver = self.receiver(**{"grpc_port": None, **dict(receiver_options or {})})
        return Chain(receiver, self.collector(receiver.http_endpoint, **settings))

    def close(self) -> None:
        for item in reversed(self._started):
            if isinstance(item, RotelCollector):
                item.close()
            else:
                item.stop()


@pytest.fixture
def make_chain(collector_mode: Mode, collector_image: ImageInfo | None) -> Iterator[ChainFactory]:
    """A factory for receivers, collectors and chains, all stopped after the test."""
    factory = ChainFactory(collector_mode, collector_image)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="module")
def module_chains(collector_mode: Mode, collector_image: ImageInfo | None) -> Iterator[ChainFactory]:
    """Like :func:`make_chain`, shared by one test module (for runs several tests read)."""
    factory = ChainFactory(collector_mode, collector_image)
    try:
        yield factory
    finally:
        factory.close()


# --- inputs ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def phantoms(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three small synthetic heads (32^3 voxels) as .nii.gz inputs."""
    import nibabel as nib

    from pipeline.phantom import make_head_phantom

    folder = tmp_path_factory.mktemp("phantoms")
    paths = []
    for i in range(3):
        path = folder / f"sub-{i + 1:02d}_T1w.nii.gz"
        nib.save(make_head_phantom(shape=(32, 32, 32), seed=i), path)
        paths.append(path)
    return paths

