"""Selecting recorded spans and asserting on them.

:class:`SpanView` is an immutable sequence of :class:`~telemetry_asserts.model.Span` (parent-first)
with selection (``filter``, ``one``, ``all``), structure (``roots``, ``children``, ``assert_tree``)
and view-wide checks (``assert_count``, ``assert_no_errors``). ``one()`` returns a
:class:`SpanAssert`: the span plus chainable assertions on attributes, status, exceptions, events
and links. Every failure raises :class:`~telemetry_asserts.errors.TelemetryAssertionError` naming
the span and listing what was recorded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, overload

from .errors import TelemetryAssertionError, closest
from .matchers import describe_mismatches, describe_value, match_attributes, values_equal
from .model import Event, Span, SpanKind, StatusCode, parse_trace_id
from .tree import SpanForest, TreeMatch, TreeSpec, assert_tree

__all__ = ["SpanAssert", "SpanView"]


def _kind(value: Any) -> SpanKind:
    if isinstance(value, SpanKind):
        return value
    return SpanKind(str(getattr(value, "name", value)).upper())


def _status(value: Any) -> StatusCode:
    if isinstance(value, StatusCode):
        return value
    return StatusCode(str(getattr(value, "name", value)).upper())


def _unwrap(span: Any) -> Span:
    return span.span if isinstance(span, SpanAssert) else span


def _trace_of(value: Any) -> int:
    if isinstance(value, (Span, SpanAssert)):
        return _unwrap(value).trace_id
    return parse_trace_id(value)


def _name_matches(name: str, expected: Any) -> bool:
    return name == expected if isinstance(expected, str) else values_equal(name, expected)


class SpanView(Sequence[Span]):
    """An immutable selection of recorded spans (parent-first), resolving parents and children
    against the whole capture it came from."""

    def __init__(self, spans: Iterable[Span] = (), *, universe: Sequence[Span] | None = None) -> None:
        self._spans: tuple[Span, ...] = tuple(spans)
        self._universe: tuple[Span, ...] = tuple(universe) if universe is not None else self._spans
        self._forest: SpanForest | None = None
        self._ids: dict[tuple[int, int], Span] | None = None

    # -- sequence -----------------------------------------------------------------------------

    @overload
    def __getitem__(self, index: int) -> Span: ...

    @overload
    def __getitem__(self, index: slice) -> SpanView: ...

    def __getitem__(self, index: int | slice) -> Span | SpanView:
        if isinstance(index, slice):
            return self._sub(self._spans[index])
        return self._spans[index]

    def __len__(self) -> int:
        return len(self._spans)

    def __iter__(self) -> Iterator[Span]:
        return iter(self._spans)

    def __repr__(self) -> str:
        return f"SpanView({len(self._spans)} spans: {', '.join(self.names()[:10])}{', ...' if len(self) > 10 else ''})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SpanView):
            return self._spans == other._spans
        if isinstance(other, Sequence) and not isinstance(other, str):
            return list(self._spans) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def _sub(self, spans: Iterable[Span]) -> SpanView:
        return SpanView(spans, universe=self._universe)

    # -- structure ----------------------------------------------------------------------------

    @property
    def forest(self) -> SpanForest:
        """Parent/child index over every span of the capture."""
        if self._forest is None:
            self._forest = SpanForest(self._universe)
        return self._forest

    def _by_id(self) -> dict[tuple[int, int], Span]:
        if self._ids is None:
            self._ids = {(s.trace_id, s.span_id): s for s in self._universe}
        return self._ids

    def parent_of(self, span: Span | SpanAssert) -> Span | None:
        """The recorded parent of ``span`` (``None`` for a root or a parent that was not recorded)."""
        s = _unwrap(span)
        return self._by_id().get((s.trace_id, s.parent_span_id)) if s.parent_span_id else None

    def is_root(self, span: Span | SpanAssert) -> bool:
        """No recorded parent (a true root, or a span whose parent was not captured)."""
        return self.parent_of(span) is None

    def roots(self) -> SpanView:
        """The spans of this view without a recorded parent."""
        return self._sub(s for s in self._spans if self.is_root(s))

    def children(self, span: Span | SpanAssert) -> SpanView:
        """Direct children of ``span`` (from the whole capture), by start time."""
        s = _unwrap(span)
        return self._sub(
            sorted(
                (c for c in self._universe if c.trace_id == s.trace_id and c.parent_span_id == s.span_id),
                key=lambda c: c.start_time_ns,
            )
        )

    def path(self, span: Span | SpanAssert) -> str:
        """``root > ... > span`` by names."""
        names = []
        node: Span | None = _unwrap(span)
        seen = 0
        while node is not None and seen <= len(self._universe):
            names.append(node.name)
            node = self.parent_of(node)
            seen += 1
        return " > ".join(reversed(names))

    def names(self) -> list[str]:
        """Span names in view order."""
        return [s.name for s in self._spans]

    def trace_ids(self) -> tuple[int, ...]:
        """Distinct trace ids, first seen first."""
        return tuple(dict.fromkeys(s.trace_id for s in self._spans))

    # -- selection ----------------------------------------------------------------------------

    def filter(
        self,
        name: Any = None,
        *,
        attributes: Mapping[str, Any] | None = None,
        kind: Any = None,
        status: Any = None,
        parent: Any = None,
        trace: Any = None,
        root: bool | None = None,
        where: Callable[[Span], bool] | None = None,
    ) -> SpanView:
        """Spans matching every given criterion.

        ``name``: a string or matcher; ``attributes``: partial, with matchers; ``kind``/``status``:
        enum or name; ``parent``: a parent name (or matcher) or a span; ``trace``: a trace id (int
        or hex) or a span of that trace; ``root``: only roots (True) or only non-roots (False);
        ``where``: any predicate.
        """
        c = self._criteria(locals())
        return self._sub(s for s in self._spans if not self._rejects(s, c))

    def count(self, value: Any = None, /, **criteria: Any) -> int:  # type: ignore[override]
        """How many spans match: ``count(name="load_file", attributes=...)`` takes :meth:`filter`'s
        criteria, ``count("load_file")`` a name (or matcher); ``count(span)`` counts that span (the
        ``Sequence`` meaning); ``count()`` is ``len()``."""
        if isinstance(value, (Span, SpanAssert)):
            if criteria:
                raise TypeError("count(span) takes no criteria: use count(**criteria) to select")
            target = _unwrap(value)
            return sum(s == target for s in self._spans)
        if value is not None:
            if "name" in criteria:
                raise TypeError("count() got the name twice (positionally and as name=)")
            criteria["name"] = value
        return len(self.filter(**criteria))

    def named(self, name: Any) -> SpanView:
        """Spans called ``name`` (a string or a matcher)."""
        return self.filter(name)

    @staticmethod
    def _criteria(args: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in args.items() if k != "self" and not k.startswith("_") and v is not None}

    def _rejects(self, s: Span, c: Mapping[str, Any]) -> str | None:
        """Why ``s`` fails the criteria ``c`` (``None`` when it passes)."""
        if "name" in c and not _name_matches(s.name, c["name"]):
            return f"name is {s.name!r}"
        if "kind" in c and s.kind is not _kind(c["kind"]):
            return f"kind is {s.kind.value}"
        if "status" in c and s.status_code is not _status(c["status"]):
            return f"status is {s.status_code.value}"
        if "root" in c and self.is_root(s) is not bool(c["root"]):
            return "is a root" if c["root"] is False else f"is not a root (parent {self.parent_of(s).name!r})"  # type: ignore[union-attr]
        if "trace" in c and s.trace_id != _trace_of(c["trace"]):
            return f"is in trace {s.trace_id_hex}"
        if "parent" in c:
            parent = self.parent_of(s)
            want = c["parent"]
            if isinstance(want, (Span, SpanAssert)):
                w = _unwrap(want)
                ok = parent is not None and (parent.trace_id, parent.span_id) == (w.trace_id, w.span_id)
            else:
                ok = parent is not None and _name_matches(parent.name, want)
            if not ok:
                return f"parent is {parent.name!r}" if parent is not None else "has no parent"
        if "attributes" in c:
            mismatches = match_attributes(s.attributes, c["attributes"])
            if mismatches:
                return describe_mismatches(mismatches, actual=s.attributes).replace("\n", "; ")
        if "where" in c and not c["where"](s):
            return f"predicate {getattr(c['where'], '__name__', 'where')} is false"
        return None

    def one(
        self,
        name: Any = None,
        *,
        attributes: Mapping[str, Any] | None = None,
        kind: Any = None,
        status: Any = None,
        parent: Any = None,
        trace: Any = None,
        root: bool | None = None,
        where: Callable[[Span], bool] | None = None,
    ) -> SpanAssert:
        """The only span matching the criteria (see :meth:`filter`), for further assertions.

        Fails when none matches (listing what was recorded and the nearest miss) or several do.
        """
        __tracebackhide__ = True
        c = self._criteria(locals())
        found = [s for s in self._spans if not self._rejects(s, c)]
        if len(found) == 1:
            return SpanAssert(found[0], self)
        if not found:
            raise TelemetryAssertionError(self._none_message(c))
        listing = "\n".join(f"  - {self._describe(s)}" for s in found[:20])
        more = f"\n  ... and {len(found) - 20} more" if len(found) > 20 else ""
        raise TelemetryAssertionError(
            f"expected exactly one span matching {_describe_criteria(c)}, found {len(found)}:\n{listing}{more}\n"
            "narrow the selection (attributes=, parent=, trace=) or use .all()"
        )

    def all(
        self,
        name: Any = None,
        *,
        attributes: Mapping[str, Any] | None = None,
        kind: Any = None,
        status: Any = None,
        parent: Any = None,
        trace: Any = None,
        root: bool | None = None,
        where: Callable[[Span], bool] | None = None,
    ) -> list[SpanAssert]:
        """Every span matching the criteria, wrapped for assertions (may be empty)."""
        c = self._criteria(locals())
        return [SpanAssert(s, self) for s in self._spans if not self._rejects(s, c)]

    def _describe(self, s: Span) -> str:
        attrs = ""
        if s.attributes:
            attrs = " {" + ", ".join(f"{k}={v!r}" for k, v in list(s.attributes.items())[:6])
            attrs += ", ...}" if len(s.attributes) > 6 else "}"
        status = f" [{s.status_code.value}]" if s.status_code is not StatusCode.UNSET else ""
        return f"{self.path(s)}{status}{attrs} (trace {s.trace_id_hex[:8]}…, span {s.span_id_hex})"

    def _none_message(self, c: Mapping[str, Any]) -> str:
        head = f"no span matches {_describe_criteria(c)}"
        if not self._spans:
            return f"{head}: no spans were recorded"
        lines = [head]
        name = c.get("name")
        named = [s for s in self._spans if name is None or _name_matches(s.name, name)]
        if named:
            what = f" named {name!r}" if name is not None else ""
            lines.append(f"{len(named)} span(s){what} were recorded, but:")
            for s in named[:10]:
                lines.append(f"  - {self._describe(s)}: {self._rejects(s, c)}")
            if len(named) > 10:
                lines.append(f"  ... and {len(named) - 10} more")
        else:
            counts = Counter(s.name for s in self._spans)
            recorded = ", ".join(f"{n} (x{k})" if k > 1 else n for n, k in counts.items())
            lines.append(f"recorded span names: {recorded}")
            if isinstance(name, str):
                best = closest(name, counts)
                if best:
                    lines.append(f"did you mean {best[0]!r}?")
        return "\n".join(lines)

    # -- view-wide assertions -----------------------------------------------------------------

    def assert_count(
        self,
        expected: int,
        name: Any = None,
        *,
        attributes: Mapping[str, Any] | None = None,
        kind: Any = None,
        status: Any = None,
        parent: Any = None,
        trace: Any = None,
        root: bool | None = None,
        where: Callable[[Span], bool] | None = None,
    ) -> SpanView:
        """Exactly ``expected`` spans match the criteria; returns them."""
        __tracebackhide__ = True
        c = self._criteria({k: v for k, v in locals().items() if k != "expected"})
        found = [s for s in self._spans if not self._rejects(s, c)]
        if len(found) != expected:
            what = _describe_criteria(c) if c else "(any)"
            listing = "".join(f"\n  - {self._describe(s)}" for s in found[:20])
            counts = Counter(s.name for s in self._spans)
            recorded = ", ".join(f"{n} (x{k})" if k > 1 else n for n, k in counts.items()) or "(none)"
            hint = ""
            if isinstance(c.get("name"), str) and not found:
                best = closest(c["name"], counts)
                hint = f"\ndid you mean {best[0]!r}?" if best else ""
            raise TelemetryAssertionError(
                f"expected {expected} span(s) matching {what}, found {len(found)}{':' if found else ''}{listing}\n"
                f"recorded span names: {recorded}{hint}"
            )
        return self._sub(found)

    def assert_no_errors(self) -> SpanView:
        """No span in the view has status ERROR."""
        __tracebackhide__ = True
        errors = [s for s in self._spans if s.status_code is StatusCode.ERROR]
        if errors:
            lines = []
            for s in errors:
                desc = f": {s.status_description}" if s.status_description else ""
                exc = [f"{e.attributes.get('exception.type')}: {e.attributes.get('exception.message')}" for e in s.exceptions()]
                extra = f" (exception {'; '.join(exc)})" if exc else ""
                lines.append(f"  - {self.path(s)}{desc}{extra}")
            raise TelemetryAssertionError(
                f"{len(errors)} span(s) have status ERROR, expected none:\n" + "\n".join(lines)
            )
        return self

    def assert_tree(self, expected: TreeSpec, *, exact: bool = False, ordered: bool = False) -> TreeMatch:
        """The expected tree embeds in this view's spans (see :func:`telemetry_asserts.tree.assert_tree`)."""
        __tracebackhide__ = True
        return assert_tree(self._spans, expected, exact=exact, ordered=ordered)


def _describe_criteria(c: Mapping[str, Any]) -> str:
    parts = []
    for key, value in c.items():
        if isinstance(value, (Span, SpanAssert)):
            s = _unwrap(value)
            value = f"<span {s.name!r} {s.span_id_hex}>"
            parts.append(f"{key}={value}")
        elif key in ("kind", "status"):
            parts.append(f"{key}={getattr(value, 'name', value)}")
        elif key == "where":
            parts.append(f"where={getattr(value, '__name__', value)!s}")
        else:
            parts.append(f"{key}={value!r}")
    return ", ".join(parts) if parts else "(any)"


class SpanAssert:
    """One recorded span with chainable assertions; reads through to the span's fields."""

    __slots__ = ("_view", "span")

    def __init__(self, span: Span, view: SpanView | None = None) -> None:
        self.span = span
        self._view = view or SpanView((span,))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.span, name)

    def __repr__(self) -> str:
        return f"SpanAssert({self.span.name!r}, span_id={self.span.span_id_hex})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SpanAssert):
            return self.span == other.span
        if isinstance(other, Span):
            return self.span == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def _fail(self, what: str) -> TelemetryAssertionError:
        return TelemetryAssertionError(f"span {self._view.path(self.span)!r} ({self.span.span_id_hex}): {what}")

    # -- structure ----------------------------------------------------------------------------

    @property
    def parent(self) -> SpanAssert | None:
        p = self._view.parent_of(self.span)
        return SpanAssert(p, self._view) if p is not None else None

    @property
    def children(self) -> SpanView:
        return self._view.children(self.span)

    def assert_parent(self, parent: Any) -> SpanAssert:
        """The parent is ``parent`` (a name/matcher or a span)."""
        __tracebackhide__ = True
        if self._view._rejects(self.span, {"parent": parent}):
            actual = self._view.parent_of(self.span)
            got = f"got {actual.name!r} ({actual.span_id_hex})" if actual is not None else "it has no recorded parent"
            raise self._fail(f"expected parent {_describe_criteria({'p': parent})[2:]}, {got}")
        return self

    def assert_root(self) -> SpanAssert:
        __tracebackhide__ = True
        p = self._view.parent_of(self.span)
        if p is not None:
            raise self._fail(f"expected a root span, but its parent is {p.name!r}")
        return self

    def assert_kind(self, kind: Any) -> SpanAssert:
        __tracebackhide__ = True
        want = _kind(kind)
        if self.span.kind is not want:
            raise self._fail(f"expected kind {want.value}, got {self.span.kind.value}")
        return self

    # -- attributes ---------------------------------------------------------------------------

    def assert_attributes(
        self, expected: Mapping[str, Any] | None = None, /, *, exact: bool = False, **kwargs: Any
    ) -> SpanAssert:
        """Attributes match ``expected`` (plus keyword attributes): partial by default, ``exact``
        forbids unexpected keys. Values may be matchers; types compare the OpenTelemetry way."""
        __tracebackhide__ = True
        want = dict(expected or {}, **kwargs)
        mismatches = match_attributes(self.span.attributes, want, exact=exact)
        if mismatches:
            recorded = ", ".join(f"{k}={v!r}" for k, v in self.span.attributes.items()) or "(none)"
            raise self._fail(
                f"attributes do not match{' exactly' if exact else ''}:\n"
                + _indent(describe_mismatches(mismatches, actual=self.span.attributes))
                + f"\nrecorded attributes: {recorded}"
            )
        return self

    def assert_attribute(self, key: str, expected: Any) -> SpanAssert:
        """One attribute matches ``expected``."""
        __tracebackhide__ = True
        return self.assert_attributes({key: expected})

    # -- status and errors --------------------------------------------------------------------

    def assert_status(self, code: Any, description: Any = None) -> SpanAssert:
        """Status is ``code`` (``"ERROR"``/``"OK"``/``"UNSET"`` or an enum); ``description`` (a string
        or matcher) when given."""
        __tracebackhide__ = True
        want = _status(code)
        s = self.span
        if s.status_code is not want:
            desc = f" ({s.status_description!r})" if s.status_description else ""
            raise self._fail(f"expected status {want.value}, got {s.status_code.value}{desc}")
        if description is not None and not values_equal(s.status_description, description):
            raise self._fail(
                f"status {want.value} as expected, but its description is {s.status_description!r}, "
                f"expected {describe_value(description)}"
            )
        return self

    def assert_ok(self) -> SpanAssert:
        __tracebackhide__ = True
        return self.assert_status(StatusCode.OK)

    def assert_unset(self) -> SpanAssert:
        __tracebackhide__ = True
        return self.assert_status(StatusCode.UNSET)

    def assert_error(self, description: Any = None) -> SpanAssert:
        __tracebackhide__ = True
        return self.assert_status(StatusCode.ERROR, description)

    def assert_exception(self, type: Any = None, message: Any = None) -> SpanAssert:
        """An ``exception`` event was recorded, of ``type`` (a class, or a name: ``ValueError`` or
        ``pkg.mod.Error``) and with ``message`` (a string or matcher) when given."""
        __tracebackhide__ = True
        events = self.span.exceptions()
        if not events:
            raise self._fail(f"expected a recorded exception, found none (events: {_event_names(self.span.events)})")
        for e in events:
            if (type is None or _exception_type_matches(e, type)) and (
                message is None or values_equal(e.attributes.get("exception.message"), message)
            ):
                return self
        recorded = "; ".join(
            f"{e.attributes.get('exception.type')}: {e.attributes.get('exception.message')!r}" for e in events
        )
        want = []
        if type is not None:
            want.append(f"type {getattr(type, '__name__', type)}")
        if message is not None:
            want.append(f"message {describe_value(message)}")
        raise self._fail(f"no recorded exception with {' and '.join(want)}; recorded: {recorded}")

    def assert_no_exception(self) -> SpanAssert:
        __tracebackhide__ = True
        events = self.span.exceptions()
        if events:
            first = events[0].attributes
            raise self._fail(
                f"expected no recorded exception, found {len(events)}: "
                f"{first.get('exception.type')}: {first.get('exception.message')!r}"
            )
        return self

    # -- events -------------------------------------------------------------------------------

    def assert_event(self, name: Any, attributes: Mapping[str, Any] | None = None, *, exact: bool = False) -> SpanAssert:
        """An event called ``name`` with ``attributes`` (partial unless ``exact``) was added."""
        __tracebackhide__ = True
        named = [e for e in self.span.events if _name_matches(e.name, name)]
        if not named:
            hint = ""
            if isinstance(name, str):
                best = closest(name, (e.name for e in self.span.events))
                hint = f" (did you mean {best[0]!r}?)" if best else ""
            raise self._fail(f"no event {name!r}{hint}; events: {_event_names(self.span.events)}")
        if attributes is None and not exact:
            return self
        reports = []
        for e in named:
            mismatches = match_attributes(e.attributes, attributes or {}, exact=exact)
            if not mismatches:
                return self
            reports.append(describe_mismatches(mismatches, actual=e.attributes))
        detail = "\n".join(f"  event #{n + 1}:\n{_indent(r, '    ')}" for n, r in enumerate(reports))
        raise self._fail(f"{len(named)} event(s) {name!r}, none with matching attributes:\n{detail}")

    def assert_events(self, *names: Any, exact: bool = False) -> SpanAssert:
        """Events with these names occur in this order (others may come between, unless ``exact``:
        then the span has exactly these events)."""
        __tracebackhide__ = True
        recorded = [e.name for e in self.span.events]
        if exact:
            ok = len(recorded) == len(names) and all(_name_matches(r, n) for r, n in zip(recorded, names))
        else:
            it = iter(recorded)
            ok = all(any(_name_matches(r, n) for r in it) for n in names)
        if not ok:
            raise self._fail(
                f"expected events {'exactly ' if exact else ''}{list(names)!r} in this order, recorded {recorded!r}"
            )
        return self

    # -- links --------------------------------------------------------------------------------

    def assert_link(self, to: Any = None, *, trace: Any = None, attributes: Mapping[str, Any] | None = None) -> SpanAssert:
        """A link to span ``to`` (a span), or to trace ``trace``, with ``attributes`` (partial)."""
        __tracebackhide__ = True
        links = self.span.links
        target = _unwrap(to) if to is not None else None
        trace_id = _trace_of(trace) if trace is not None else None
        for link in links:
            if target is not None and (link.trace_id, link.span_id) != (target.trace_id, target.span_id):
                continue
            if trace_id is not None and link.trace_id != trace_id:
                continue
            if attributes and match_attributes(link.attributes, attributes):
                continue
            return self
        want = []
        if target is not None:
            want.append(f"to span {target.name!r} ({target.span_id_hex})")
        if trace_id is not None:
            want.append(f"to trace {format(trace_id, '032x')}")
        if attributes:
            want.append(f"with attributes {dict(attributes)!r}")
        recorded = ", ".join(
            f"{link.trace_id_hex[:8]}…/{link.span_id_hex}{' ' + repr(link.attributes.to_dict()) if link.attributes else ''}"
            for link in links
        ) or "(none)"
        raise self._fail(f"no link {' '.join(want) or 'at all'}; links: {recorded}")


def _exception_type_matches(event: Event, expected: Any) -> bool:
    recorded = str(event.attributes.get("exception.type", ""))
    if isinstance(expected, type):
        qual = expected.__qualname__
        names = {qual, f"{expected.__module__}.{qual}", expected.__name__}
        return recorded in names
    if isinstance(expected, str):
        return recorded == expected or recorded.rsplit(".", 1)[-1] == expected
    return values_equal(recorded, expected)


def _event_names(events: Sequence[Event]) -> str:
    return ", ".join(repr(e.name) for e in events) or "(none)"


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())
