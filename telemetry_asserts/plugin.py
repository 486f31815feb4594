"""The pytest plugin: per-test telemetry capture, the ``telemetry`` fixture and failure reports.

Registered through the ``pytest11`` entry point (``-p no:telemetry_asserts`` turns it off). Nothing
happens for tests that do not use ``telemetry``/``spans``/``metrics``/``logs``. On first use the
plugin creates one :class:`~telemetry_asserts.capture.Capture` per process (so per xdist worker),
installs its providers as the global OpenTelemetry providers (possible once per process), and
before each test that uses it clears spans/logs and baselines metrics, so each test sees only its
own telemetry, whether the code under test takes injected providers or uses the global API.
Like ``caplog``, a logging handler bridges the root logger into the capture during each phase of
those tests, and a failing test gets a "Captured telemetry" report section.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Generator, Iterator
from contextlib import nullcontext
from typing import Any

import pytest

from .capture import Capture, GlobalInstall, install_global
from .view import LiveTelemetryView, LiveView

FIXTURE_NAMES = ("telemetry", "spans", "metrics", "logs")


class TelemetryPluginState:
    """Options and the lazily created, process-wide capture."""

    def __init__(self, config: pytest.Config) -> None:
        self.report = not config.getoption("telemetry_no_report")
        self.report_lines: int = config.getoption("telemetry_report_lines")
        self.global_install = not config.getoption("telemetry_no_global")
        level = config.getoption("telemetry_log_level") or config.getini("telemetry_log_level") or "INFO"
        self.log_level = _parse_level(str(level))
        self._capture: Capture | None = None
        self.installed: GlobalInstall | None = None

    def capture(self) -> Capture:
        if self._capture is None:
            self._capture = Capture()
            if self.global_install:
                self.installed = install_global(self._capture)
                for problem in self.installed.problems:
                    warnings.warn(pytest.PytestWarning(f"telemetry_asserts: {problem}"), stacklevel=2)
        return self._capture

    @property
    def started(self) -> bool:
        return self._capture is not None


def _parse_level(text: str) -> int | None:
    if text.strip().lower() in ("off", "none", "no"):
        return None
    if text.strip().isdigit():
        return int(text)
    level = logging.getLevelName(text.strip().upper())
    if not isinstance(level, int):
        raise pytest.UsageError(f"--telemetry-log-level: unknown level {text!r} (use DEBUG, INFO, ..., or off)")
    return level


_STATE = pytest.StashKey[TelemetryPluginState]()
_USES = pytest.StashKey[bool]()
_CLEARED = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("telemetry", "telemetry assertions (telemetry_asserts)")
    group.addoption(
        "--telemetry-no-report",
        action="store_true",
        default=False,
        help="do not add the 'Captured telemetry' section to failing tests that used the telemetry fixture",
    )
    group.addoption(
        "--telemetry-report-lines",
        type=int,
        default=80,
        metavar="N",
        help="at most N lines per part (spans, metrics, logs) of the 'Captured telemetry' section (default 80)",
    )
    group.addoption(
        "--telemetry-log-level",
        default=None,
        metavar="LEVEL",
        help="lowest stdlib logging level bridged into captured logs (default INFO; 'off' disables the bridge)",
    )
    group.addoption(
        "--telemetry-no-global",
        action="store_true",
        default=False,
        help="do not install the capture's providers as the global OpenTelemetry providers",
    )
    group.addoption(
        "--telemetry-html",
        default=None,
        metavar="DIR",
        help="write an HTML trace view per failing test that used the telemetry fixture into DIR",
    )
    parser.addini("telemetry_log_level", "default for --telemetry-log-level", default="INFO")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_STATE] = TelemetryPluginState(config)


def _state(config: pytest.Config) -> TelemetryPluginState:
    return config.stash[_STATE]


def _uses(item: pytest.Item) -> bool:
    uses = item.stash.get(_USES, None)
    if uses is None:
        names = getattr(item, "fixturenames", ())
        uses = any(n in names for n in FIXTURE_NAMES)
        item.stash[_USES] = uses
    return uses


def _begin(item: pytest.Item) -> None:
    """Start the test's window once (at setup, or when the fixture is requested dynamically)."""
    if not item.stash.get(_CLEARED, False):
        _state(item.config).capture().clear()
        item.stash[_CLEARED] = True


def _bridge(item: pytest.Item) -> Any:
    state = _state(item.config)
    if not item.stash.get(_USES, False) or state.log_level is None:
        return nullcontext()
    return state.capture().capturing_logs(level=state.log_level)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    if _uses(item):
        _begin(item)
    with _bridge(item):
        return (yield)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    with _bridge(item):
        return (yield)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    with _bridge(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    state = _state(item.config)
    if report.failed and state.report and state.started and item.stash.get(_CLEARED, False):
        from .report import render_telemetry

        text = render_telemetry(state.capture().snapshot(), max_lines=state.report_lines)
        html_dir = item.config.getoption("telemetry_html", None)
        if html_dir:
            from .html_report import write_test_report

            text += "\n" + write_test_report(item.config.invocation_params.dir / html_dir, item.nodeid,
                                              report.when, state.capture().snapshot(), report.longreprtext)
        report.sections.append((f"Captured telemetry {report.when}", text))
    return report


def pytest_assertrepr_compare(config: pytest.Config, op: str, left: Any, right: Any) -> list[str] | None:
    """Attribute-by-attribute explanation for ``==`` between recorded attributes and a mapping."""
    if op != "==":
        return None
    from collections.abc import Mapping

    from .matchers import describe_mismatches, match_attributes
    from .model import Attributes

    if isinstance(left, Attributes) and isinstance(right, Mapping):
        actual, expected = left, right
    elif isinstance(right, Attributes) and isinstance(left, Mapping):
        actual, expected = right, left
    else:
        return None
    mismatches = match_attributes(actual, expected, exact=True)
    if not mismatches:
        return None
    summary = f"{_short(left)} == {_short(right)}"
    return [summary, "recorded attributes differ from the expected mapping:"] + describe_mismatches(
        mismatches, actual=actual
    ).splitlines()


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@pytest.fixture
def telemetry(request: pytest.FixtureRequest) -> LiveTelemetryView:
    """Everything this test records with OpenTelemetry (spans, metric deltas, logs), live.

    ``telemetry.spans`` / ``.metrics`` / ``.logs`` / ``.lint()`` re-read the capture on each access;
    ``.tracer_provider`` / ``.meter_provider`` / ``.logger_provider`` are the providers to inject
    (also installed globally); ``.clear()``, ``.snapshot()``, ``.wait_until(assertion)``.
    """
    item = request.node
    item.stash[_USES] = True
    _begin(item)
    return LiveTelemetryView(_state(request.config).capture())


@pytest.fixture
def spans(telemetry: LiveTelemetryView) -> Any:
    """The test's spans (a live :class:`~telemetry_asserts.spans.SpanView`)."""
    return LiveView(lambda: telemetry.spans)


@pytest.fixture
def metrics(telemetry: LiveTelemetryView) -> Any:
    """The test's metric points as per-test deltas (a live ``MetricView``)."""
    return LiveView(lambda: telemetry.metrics)


@pytest.fixture
def logs(telemetry: LiveTelemetryView) -> Any:
    """The test's log records (a live ``LogView``)."""
    return LiveView(lambda: telemetry.logs)


@pytest.fixture
def otlp_receiver() -> Iterator[Any]:
    """A started :class:`~telemetry_asserts.otlp.OtlpReceiver` (OTLP/HTTP and gRPC on free 127.0.0.1
    ports), stopped afterwards. ``.exporter_env()`` gives the ``OTEL_EXPORTER_OTLP_*`` variables."""
    from .otlp.receiver import OtlpReceiver  # grpc is imported only by tests that use it

    with OtlpReceiver() as receiver:
        yield receiver
