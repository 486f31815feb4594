"""One entry point over a :class:`~telemetry_asserts.model.Telemetry` from any source.

``TelemetryView(telemetry)`` (or ``check(telemetry)``) bundles the judges: ``.spans``
(:class:`~telemetry_asserts.spans.SpanView`), ``.metrics`` (``MetricView``), ``.logs`` (``LogView``)
and ``.lint()``. :class:`LiveTelemetryView` is the same over a :class:`~telemetry_asserts.capture.Capture`
that keeps recording: every access takes a fresh snapshot (this is the pytest ``telemetry`` fixture).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from . import model
from .spans import SpanView
from .waiting import wait_until

if TYPE_CHECKING:  # H4's modules are imported lazily so this one imports on its own
    from .capture import Capture
    from .lint import LintReport
    from .logs import LogView
    from .metrics import MetricView

T = TypeVar("T")

__all__ = ["LiveTelemetryView", "LiveView", "TelemetryView", "check"]


class TelemetryView:
    """Spans, metric points and log records of one :class:`model.Telemetry`, ready for assertions."""

    def __init__(self, telemetry: model.Telemetry) -> None:
        self._telemetry = telemetry

    @property
    def telemetry(self) -> model.Telemetry:
        return self._telemetry

    @property
    def spans(self) -> SpanView:
        return SpanView(self.telemetry.spans)

    @property
    def metrics(self) -> MetricView:
        from .metrics import MetricView

        return MetricView(self.telemetry.metrics)

    @property
    def logs(self) -> LogView:
        t = self.telemetry
        from .logs import LogView

        return LogView(t.logs, t.spans)

    def lint(self, options: Any = None, **kwargs: Any) -> LintReport:
        """Every instrumentation finding; ``options``/``disable=``/thresholds as in
        :func:`telemetry_asserts.lint.lint`."""
        from .lint import lint

        return lint(self.telemetry, options, **kwargs)

    def report(self, *, max_lines: int | None = 80) -> str:
        """The span tree, metric points and log records as text."""
        from .report import render_telemetry

        return render_telemetry(self.telemetry, max_lines=max_lines)

    def __repr__(self) -> str:
        t = self.telemetry
        return f"{type(self).__name__}({len(t.spans)} spans, {len(t.metrics)} metric points, {len(t.logs)} logs)"


def check(telemetry: model.Telemetry) -> TelemetryView:
    """Assertions over telemetry from any source (capture, OTLP receiver, files)."""
    return TelemetryView(telemetry)


class LiveTelemetryView(TelemetryView):
    """A view over a capture that is still recording: each property access re-snapshots it."""

    def __init__(self, capture: Capture) -> None:
        self._capture = capture

    @property
    def capture(self) -> Capture:
        return self._capture

    @property
    def telemetry(self) -> model.Telemetry:
        return self._capture.snapshot()

    def snapshot(self) -> model.Telemetry:
        """Everything recorded so far in this test, frozen."""
        return self._capture.snapshot()

    def clear(self) -> None:
        """Forget what was recorded so far (metrics: start new deltas from now)."""
        self._capture.clear()

    @property
    def tracer_provider(self) -> Any:
        return self._capture.tracer_provider

    @property
    def meter_provider(self) -> Any:
        return self._capture.meter_provider

    @property
    def logger_provider(self) -> Any:
        return self._capture.logger_provider

    def wait_until(self, assertion: Callable[[], T], timeout_s: float = 5.0, interval_s: float = 0.02) -> T:
        """Retry ``assertion`` (which reads this view) until it passes or ``timeout_s`` elapses,
        then fail with its last message."""
        __tracebackhide__ = True
        return wait_until(assertion, timeout_s=timeout_s, interval_s=interval_s, before_each=self._capture.force_flush)


class LiveView:
    """A stand-in for a view that is rebuilt on every use (``spans``/``metrics``/``logs`` fixtures),
    so a fixture requested at setup still sees what the test records later."""

    __slots__ = ("_factory",)

    def __init__(self, factory: Callable[[], Any]) -> None:
        object.__setattr__(self, "_factory", factory)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._factory(), name)

    def __len__(self) -> int:
        return len(self._factory())

    def __iter__(self) -> Iterator[Any]:
        return iter(self._factory())

    def __getitem__(self, index: Any) -> Any:
        return self._factory()[index]

    def __contains__(self, item: Any) -> bool:
        return item in self._factory()

    def __bool__(self) -> bool:
        return bool(self._factory())

    def __eq__(self, other: object) -> bool:
        return bool(self._factory() == other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"live {self._factory()!r}"
