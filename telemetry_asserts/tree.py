"""Span trees: the actual forest of recorded spans, expected trees (text or data), and matching.

The recorded spans form a forest: one tree per root (a span whose parent is not among the spans).
:class:`SpanForest` indexes it once (children by parent, ordered by start time) so every walk is
linear in the number of spans.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from .model import Span


class SpanForest:
    """Parent/child index over a sequence of spans; nodes are positions in :attr:`spans`.

    A span whose parent is missing (not exported, or from another process) is treated as a root.
    Children and roots are ordered by start time (then by their input position).
    """

    __slots__ = ("spans", "parent", "children", "roots")

    def __init__(self, spans: Sequence[Span]) -> None:
        self.spans: tuple[Span, ...] = tuple(spans)
        position = {(s.trace_id, s.span_id): i for i, s in enumerate(self.spans)}
        self.parent: list[int | None] = [None] * len(self.spans)
        self.children: list[list[int]] = [[] for _ in self.spans]
        roots: list[int] = []
        for i, s in enumerate(self.spans):
            p = position.get((s.trace_id, s.parent_span_id)) if s.parent_span_id else None
            if p is None or p == i:
                roots.append(i)
            else:
                self.parent[i] = p
                self.children[p].append(i)
        key = self._start_key
        for kids in self.children:
            if len(kids) > 1:
                kids.sort(key=key)
        # Roots grouped by trace (traces in order of their first start), then by start time.
        trace_start: dict[int, int] = {}
        for i in roots:
            s = self.spans[i]
            trace_start[s.trace_id] = min(trace_start.get(s.trace_id, s.start_time_ns), s.start_time_ns)
        roots.sort(key=lambda i: (trace_start[self.spans[i].trace_id], self.spans[i].trace_id) + key(i))
        # Spans caught in a parent cycle (malformed input) are unreachable from any root: make the
        # earliest of each cycle a root so every span is walked exactly once.
        seen = [False] * len(self.spans)
        for i, _ in self._walk(roots, seen):
            pass
        for i in range(len(self.spans)):
            if not seen[i]:
                roots.append(i)
                self.parent[i] = None
                for _ in self._walk([i], seen):
                    pass
        self.roots: list[int] = roots

    def _start_key(self, i: int) -> tuple[int, int]:
        return (self.spans[i].start_time_ns, i)

    def _walk(self, starts: Sequence[int], seen: list[bool]) -> Iterator[tuple[int, int]]:
        stack = [(i, 0) for i in reversed(starts)]
        while stack:
            i, depth = stack.pop()
            if seen[i]:
                continue
            seen[i] = True
            yield i, depth
            stack.extend((c, depth + 1) for c in reversed(self.children[i]))

    def walk(self, starts: Sequence[int] | None = None) -> Iterator[tuple[int, int]]:
        """Depth-first, parent-first ``(node, depth)`` pairs from ``starts`` (default: all roots)."""
        return self._walk(self.roots if starts is None else starts, [False] * len(self.spans))

    def ordered(self) -> tuple[Span, ...]:
        """All spans parent-first (each tree depth-first, siblings by start time)."""
        return tuple(self.spans[i] for i, _ in self.walk())

    def path(self, i: int) -> list[str]:
        """Names from the root down to node ``i``."""
        names = []
        node: int | None = i
        while node is not None:
            names.append(self.spans[node].name)
            node = self.parent[node]
        return names[::-1]

    def subtree_size(self, i: int) -> int:
        return sum(1 for _ in self.walk([i]))


def order_parent_first(spans: Sequence[Span]) -> tuple[Span, ...]:
    """Spans re-ordered parent-first (the SDK exports them in end order, children first)."""
    return SpanForest(spans).ordered()
