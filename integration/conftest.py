"""Fixtures of the integration stage: a real collector between the pipeline and a test-side receiver.

    pipeline (subprocess, OTEL_* env) --OTLP gRPC|HTTP--> rotel collector --OTLP/HTTP--> OtlpReceiver

The collector runs in the mode :func:`integration.collector.resolve_mode` picks from
``NEURO_INTEGRATION_MODE``; a mode that cannot run fails every test here with the reason (never a
skip). The terminal header and summary say which mode ran and the image id, so CI's log shows it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
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

PROPERTY_COLLECTOR = "integration_collector"
PROPERTY_NOTE = "integration_note"

# Controller-side state for the terminal (with pytest-xdist the tests run in workers; what they
# used and measured comes back as user_properties on their reports).
_PREPARED: dict[str, Any] = {}
_USED: dict[str, int] = {}
_NOTES: list[str] = []


# --- reporting ----------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    """Resolve the mode and build the image once, in the controlling process (not in xdist workers)."""
    if hasattr(config, "workerinput"):
        return
    _PREPARED["requested"] = os.environ.get(MODE_ENV, "auto") or "auto"
    try:
        mode = resolve_mode()
        _PREPARED["mode"] = mode
        _PREPARED["engine"] = engine_status()[1] if mode == "container" else "collector binary as a subprocess"
        if mode == "container":
            _PREPARED["image"] = ensure_image()
    except Exception as exc:  # noqa: BLE001 - reported in the header; the tests fail with the same reason
        _PREPARED["error"] = f"{type(exc).__name__}: {exc}" if not isinstance(exc, CollectorUnavailable) else str(exc)


def _describe_image(image: ImageInfo | None) -> str:
    return f"image {image.tag} id {image.image_id}" if image else "no image"


def pytest_report_header(config: pytest.Config) -> list[str]:
    if not _PREPARED:
        return []
    head = f"integration: {MODE_ENV}={_PREPARED['requested']}"
    if "error" in _PREPARED:
        return [f"{head} -> cannot run: {_PREPARED['error']}"]
    image = _PREPARED.get("image")
    built = f" ({'built now' if image.built else 'reused'})" if image else ""
    return [f"{head} -> {_PREPARED['mode']} mode ({_PREPARED['engine']}), {_describe_image(image)}{built}"]


@pytest.fixture(autouse=True)
def _record_collector_use(request: pytest.FixtureRequest) -> None:
    """Tag the report of every test that used the collector with the mode and image it ran."""
    if "collector_mode" in request.fixturenames:
        mode = request.getfixturevalue("collector_mode")
        image = request.getfixturevalue("collector_image")
        request.node.user_properties.append((PROPERTY_COLLECTOR, f"{mode} mode, {_describe_image(image)}"))


@pytest.fixture
def note(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """``note(line)`` adds a measured figure (shutdown time, loss, memory) to the terminal summary."""
    return lambda line: request.node.user_properties.append((PROPERTY_NOTE, line))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call":
        return
    for key, value in report.user_properties:
        if key == PROPERTY_COLLECTOR:
            _USED[str(value)] = _USED.get(str(value), 0) + 1
        elif key == PROPERTY_NOTE:
            _NOTES.append(str(value))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not (_PREPARED or _USED or _NOTES):
        return
    terminalreporter.write_sep("-", "integration stage")
    if not _USED:
        terminalreporter.write_line("integration: no test ran through a collector")
    for what, n in sorted(_USED.items()):
        terminalreporter.write_line(f"integration: collector ran in {what} ({n} tests)")
    for line in _NOTES:
        terminalreporter.write_line(f"integration: {line}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


# --- collector and receiver ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def collector_mode() -> Mode:
    """The resolved mode; a requested mode that cannot run is an error with the reason."""
    try:
        mode = resolve_mode()
    except CollectorUnavailable as exc:
        reason = str(exc)
    else:
        return mode
    pytest.fail(reason, pytrace=False)


@pytest.fixture(scope="session")
def collector_image(collector_mode: Mode) -> ImageInfo | None:
    """The collector image in container mode (built now if missing), else None."""
    if collector_mode != "container":
        return None
    return ensure_image()


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

