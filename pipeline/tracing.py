"""Small tracing helpers: the ``@traced`` decorator and the ``open_resource`` span for file handles.

Both use the tracer made current by :func:`use_tracer` (the processor sets its injected
:class:`~pipeline.telemetry.PipelineTelemetry` tracer for the duration of a file), falling back to the
global API tracer of scope ``neuro_preprocess``. The current tracer is a context variable, so it
follows ``await`` and ``asyncio.to_thread`` exactly like the span context does.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import IO, Any, TypeVar, cast

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from pipeline import __version__

F = TypeVar("F", bound=Callable[..., Any])

_SCOPE_NAME = "neuro_preprocess"  # same scope as pipeline.telemetry.SCOPE_NAME (kept import-light)
_current_tracer: ContextVar[trace.Tracer | None] = ContextVar("neuro_preprocess_tracer", default=None)


def current_tracer() -> trace.Tracer:
    """The tracer set by :func:`use_tracer`, else the global one of scope ``neuro_preprocess``."""
    return _current_tracer.get() or trace.get_tracer(_SCOPE_NAME, __version__)


@contextmanager
def use_tracer(tracer: trace.Tracer) -> Iterator[trace.Tracer]:
    """Make ``tracer`` the one ``@traced`` and ``open_resource`` use inside the block."""
    token = _current_tracer.set(tracer)
    try:
        yield tracer
    finally:
        _current_tracer.reset(token)


def record_error(span: trace.Span, exc: BaseException, description: str | None = None) -> None:
    """ERROR status with a one-line description plus the recorded exception, on ``span``."""
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, description or f"{type(exc).__name__}: {exc}"))


def traced(
    name: str | None = None, *, attributes: Mapping[str, Any] | None = None
) -> Callable[[F], F]:
    """Run the decorated function (sync or ``async``) inside a span named ``name`` (default: qualname).

    An exception escaping the function marks the span ERROR and is recorded once, then re-raised.
    """

    def decorate(fn: F) -> F:
        span_name = name or fn.__qualname__
        attrs = dict(attributes or {})

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with current_tracer().start_as_current_span(
                    span_name, attributes=attrs, record_exception=False, set_status_on_exception=False
                ) as span:
                    try:
                        return await fn(*args, **kwargs)
                    except Exception as exc:
                        record_error(span, exc)
                        raise

            return cast(F, async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with current_tracer().start_as_current_span(
                span_name, attributes=attrs, record_exception=False, set_status_on_exception=False
            ) as span:
                try:
                    return fn(*args, **kwargs)
                except Exception as exc:
                    record_error(span, exc)
                    raise

        return cast(F, wrapper)

    return decorate


@contextmanager
def open_resource(path: str | os.PathLike[str], mode: str = "rb") -> Iterator[IO[Any]]:
    """Open a file inside an ``open_resource`` span that records what happened to the handle.

    Attributes: ``neuro.file.name`` (basename only), ``neuro.file.mode``; on close
    ``neuro.file.size_bytes`` (size on disk after closing) and a ``file_closed`` event. A failure to
    open or an exception in the block marks the span ERROR; the handle is always closed.
    """
    p = Path(path)
    with current_tracer().start_as_current_span(
        "open_resource",
        attributes={"neuro.file.name": p.name, "neuro.file.mode": mode},
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            handle = open(p, mode)  # noqa: SIM115 - closed below, inside the span
        except OSError as exc:
            record_error(span, exc, f"cannot open {p.name}: {exc.strerror or exc}")
            raise
        try:
            yield handle
        except Exception as exc:
            record_error(span, exc)
            raise
        finally:
            handle.close()
            size: int | None
            try:
                size = p.stat().st_size
            except OSError:
                size = None
            if size is not None:
                span.set_attribute("neuro.file.size_bytes", size)
            span.add_event("file_closed", {"neuro.file.size_bytes": size} if size is not None else None)


__all__ = ["current_tracer", "open_resource", "record_error", "traced", "use_tracer"]
