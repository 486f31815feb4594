"""Span trees: the actual forest of recorded spans, expected trees (text or data), and matching.

The recorded spans form a forest: one tree per root (a span whose parent is not among the spans).
:class:`SpanForest` indexes it once (children by parent, ordered by start time) so every walk is
linear in the number of spans.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import TelemetryAssertionError, closest
from .matchers import describe_mismatches, match_attributes, values_equal
from .model import Span, SpanKind, StatusCode


class SpanForest:
    """Parent/child index over a sequence of spans; nodes are positions in :attr:`spans`.

    A span whose parent is missing (not exported, or from another process) is treated as a root.
    Children and roots are ordered by start time (then by their input position).
    """

    __slots__ = ("children", "parent", "roots", "spans")

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


# ---------------------------------------------------------------------------------------------
# Expected trees
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ExpectedSpan:
    """One node of an expected tree.

    ``name`` is a string or a matcher; ``attributes`` are compared partially (extra recorded keys
    allowed) with :func:`telemetry_asserts.matchers.match_attributes`; ``kind``/``status`` are
    checked when given. ``exact`` (``None`` = the call's setting) forbids recorded children that are
    not expected under this node. ``line`` is the source line in a text tree (0 for data).
    """

    name: Any
    attributes: Mapping[str, Any] | None = None
    children: tuple[ExpectedSpan, ...] = ()
    exact: bool | None = None
    kind: SpanKind | None = None
    status: StatusCode | None = None
    line: int = 0

    def walk(self) -> Iterator[ExpectedSpan]:
        """This node and its descendants, parent-first."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def label(self) -> str:
        text = self.name if isinstance(self.name, str) else repr(self.name)
        if self.attributes:
            text += " {" + ", ".join(f"{k}: {v!r}" for k, v in self.attributes.items()) + "}"
        if self.status is not None:
            text += f" [{self.status.value}]"
        if self.kind is not None:
            text += f" <{self.kind.value}>"
        return text


TreeSpec = str | ExpectedSpan | Mapping[str, Any] | tuple | Sequence[Any]

# Characters that may precede a name on a tree line: box drawing, ASCII trees, list bullets.
_PREFIX = set(" \t│├└─┃┣┗━┠┖╰╭┬┼|`+-*:•·")
_CONNECTORS = set("├└┣┗┠┖╰|`+")
_DURATION = re.compile(r"\s+\((?:\d+(?:\.\d+)?\s*(?:s|ms|µs|us|ns))\)")
_STATUS = re.compile(r"\s*\[(ERROR|OK|UNSET)(?::[^\]]*)?\]\s*$")
_NOTE = re.compile(r"\s+<--.*$")
_TRACE_HEADER = re.compile(r"trace [0-9a-f]{32}")  # render_tree's header between traces


class TreeSyntaxError(ValueError):
    """A text tree could not be parsed; the message names the line."""


def parse_tree(text: str) -> tuple[ExpectedSpan, ...]:
    """Parse the course's tree text into expected roots.

    Accepts box drawing (``├─ ``, ``└── ``, ``│  ``), ASCII (``|-``, ``` `- ```, ``+--``) and plain
    indentation; depth is the column of a line's connector (or of its name without one), siblings
    must share it. After the name
    a space and a YAML flow mapping set attributes (``load_file {file.format: nifti}``; names may hold
    spaces and braces, as in ``GET /users/{id}``) and ``[ERROR]``/``[OK]`` a status; a rendered
    duration (``(12.0 ms)``), a ``<-- note`` or a ``trace <id>`` header is ignored, so a tree printed by
    :func:`telemetry_asserts.report.render_tree` can be pasted back as an expectation.
    """
    roots: list[_Building] = []
    # Stack of (name column, node under construction).
    stack: list[tuple[int, _Building]] = []
    for number, raw in enumerate(text.expandtabs(4).splitlines(), start=1):
        if not raw.strip() or _TRACE_HEADER.fullmatch(raw.strip()):
            continue
        start = 0
        while start < len(raw) and raw[start] in _PREFIX:
            start += 1
        body = raw[start:].rstrip()
        # Depth: one past the last connector (├ └ |- `- +-) if there is one, else the name's column;
        # so "├─ x" and "├── x" are siblings, whatever the dash count.
        connector = max((i for i in range(start) if raw[i] in _CONNECTORS), default=-1)
        col = connector + 1 if connector >= 0 else start
        if not body:
            continue  # a connector-only line such as "│"
        node = _Building(*_parse_label(body, number), number)
        while stack and stack[-1][0] >= col:
            stack.pop()
        if stack:
            parent = stack[-1][1]
            if parent.child_col is None:
                parent.child_col = col
            elif parent.child_col != col:
                raise TreeSyntaxError(
                    f"line {number}: {body!r} is indented to column {col} but its siblings under "
                    f"{parent.name!r} start at column {parent.child_col}"
                )
            parent.children.append(node)
        else:
            if roots and roots[0].col != col:
                raise TreeSyntaxError(
                    f"line {number}: {body!r} is left of its parent's column or not aligned with the "
                    f"first root {roots[0].name!r}"
                )
            node.col = col
            roots.append(node)
        stack.append((col, node))
    if not roots:
        raise TreeSyntaxError("the expected tree is empty")
    return tuple(r.freeze() for r in roots)


class _Building:
    __slots__ = ("attributes", "child_col", "children", "col", "line", "name", "status")

    def __init__(self, name: str, attributes: dict[str, Any] | None, status: StatusCode | None, line: int):
        self.name, self.attributes, self.status, self.line = name, attributes, status, line
        self.children: list[_Building] = []
        self.child_col: int | None = None
        self.col = 0

    def freeze(self) -> ExpectedSpan:
        return ExpectedSpan(
            self.name,
            self.attributes,
            tuple(c.freeze() for c in self.children),
            status=self.status,
            line=self.line,
        )


def _parse_label(body: str, number: int) -> tuple[str, dict[str, Any] | None, StatusCode | None]:
    body = _NOTE.sub("", body)
    status = None
    m = _STATUS.search(body)
    if m:
        status = StatusCode(m.group(1))
        body = body[: m.start()]
    body = _DURATION.sub("", body).strip()
    attributes = None
    brace = body.find(" {") + 1  # attributes follow a space: "GET /users/{id}" is a name
    if brace > 0 and body.endswith("}"):
        import yaml

        try:
            loaded = yaml.safe_load(body[brace:])
        except yaml.YAMLError as exc:
            raise TreeSyntaxError(f"line {number}: cannot read the attributes {body[brace:]!r}: {exc}") from None
        attributes = {str(k): v for k, v in loaded.items()}
        body = body[:brace].strip()
    if not body:
        raise TreeSyntaxError(f"line {number}: a span name is missing")
    return body, attributes, status


def expected_tree(spec: TreeSpec) -> tuple[ExpectedSpan, ...]:
    """Normalise any accepted spelling of an expected tree into expected roots.

    * text (see :func:`parse_tree`);
    * ``ExpectedSpan`` objects;
    * mappings ``{"name": ..., "attributes": {...}, "children": [...], "exact": bool,
      "kind": ..., "status": ...}``, or ``{"parent": {"child": {}, ...}}`` (name -> children);
    * tuples ``("name", [children])`` or ``("name", {attributes}, [children])``;
    * a list of any of these (a forest).
    """
    if isinstance(spec, str):
        return parse_tree(spec)
    if isinstance(spec, (ExpectedSpan, Mapping, tuple)):
        if isinstance(spec, Mapping) and "name" not in spec:
            return tuple(_from_data((name, children)) for name, children in spec.items())
        return (_from_data(spec),)
    if isinstance(spec, Sequence):
        return tuple(node for item in spec for node in expected_tree(item))
    raise TypeError(f"cannot read an expected span tree from {type(spec).__name__}")


def _from_data(spec: Any) -> ExpectedSpan:
    if isinstance(spec, ExpectedSpan):
        return spec
    if isinstance(spec, str):
        return ExpectedSpan(spec)
    if isinstance(spec, Mapping):
        if "name" not in spec:
            raise ValueError(f"an expected span needs a 'name': {dict(spec)!r}")
        unknown = set(spec) - {"name", "attributes", "children", "exact", "kind", "status"}
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)} in expected span {spec['name']!r}")
        kind, status = spec.get("kind"), spec.get("status")
        return ExpectedSpan(
            spec["name"],
            dict(spec["attributes"]) if spec.get("attributes") is not None else None,
            _children(spec.get("children")),
            spec.get("exact"),
            SpanKind(kind.upper() if isinstance(kind, str) else kind) if kind is not None else None,
            StatusCode(status.upper() if isinstance(status, str) else status) if status is not None else None,
        )
    if isinstance(spec, tuple) and spec:
        name, rest = spec[0], spec[1:]
        attributes = None
        if rest and isinstance(rest[0], Mapping) and len(rest) == 2:
            attributes, rest = dict(rest[0]), rest[1:]
        elif rest and isinstance(rest[0], Mapping) and len(rest) == 1 and not _looks_like_children(rest[0]):
            attributes, rest = dict(rest[0]), ()
        if len(rest) > 1:
            raise ValueError(f"expected ('name', [children]) or ('name', {{attributes}}, [children]), got {spec!r}")
        return ExpectedSpan(name, attributes, _children(rest[0] if rest else None))
    raise TypeError(f"cannot read an expected span from {spec!r}")


def _looks_like_children(value: Mapping[str, Any]) -> bool:
    return bool(value) and all(isinstance(v, (Mapping, list, tuple)) for v in value.values())


def _children(spec: Any) -> tuple[ExpectedSpan, ...]:
    if spec is None:
        return ()
    if isinstance(spec, Mapping):
        return tuple(_from_data((name, kids)) for name, kids in spec.items())
    if isinstance(spec, (str, ExpectedSpan)):
        return (_from_data(spec),)
    return tuple(_from_data(c) for c in spec)


def render_expected(roots: Sequence[ExpectedSpan], marks: Mapping[int, str] | None = None) -> str:
    """Box-drawing text of an expected tree; ``marks`` maps ``id(node)`` to a ``<-- note``."""
    marks = marks or {}
    lines: list[str] = []
    stack: list[tuple[ExpectedSpan, str, str]] = [(r, "", "") for r in reversed(roots)]
    while stack:
        node, own, child_prefix = stack.pop()
        note = marks.get(id(node))
        text = own + node.label()
        lines.append(f"{text}  <-- {note}" if note else text)
        kids = node.children
        for n in range(len(kids) - 1, -1, -1):
            last = n == len(kids) - 1
            stack.append((kids[n], child_prefix + ("└─ " if last else "├─ "), child_prefix + ("   " if last else "│  ")))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Matching
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TreeMatch:
    """A successful match: each expected node paired with the recorded span it matched."""

    pairs: tuple[tuple[ExpectedSpan, Span], ...]

    def __getitem__(self, name: str) -> Span:
        """The span matched to the only expected node called ``name``."""
        found = [s for e, s in self.pairs if e.name == name]
        if len(found) != 1:
            raise KeyError(f"{len(found)} expected nodes are named {name!r}; use .pairs")
        return found[0]

    def spans(self) -> tuple[Span, ...]:
        return tuple(s for _, s in self.pairs)

    def __repr__(self) -> str:
        return f"TreeMatch({', '.join(repr(s.name) for _, s in self.pairs)})"


class _Engine:
    """Decides whether expected nodes embed into the forest (child-to-child, bipartite per level).

    ``fits(e, i)``: node ``i`` matches ``e`` and ``e``'s children can be given distinct children of
    ``i`` that fit them (all of ``i``'s children when exact; in order when ordered). Subtrees are
    disjoint, so the per-level matchings compose; results are memoised per (node, span).
    Candidates come from a by-name index, so typical trees cost time linear in the spans.
    """

    def __init__(self, forest: SpanForest, exact: bool, ordered: bool) -> None:
        self.forest = forest
        self.exact = exact
        self.ordered = ordered
        self.memo: dict[tuple[int, int], tuple[int, ...] | None] = {}
        self._by_name: dict[str, list[int]] | None = None
        self._child_names: dict[int, dict[str, list[int]]] = {}
        self._root_names: dict[str, list[int]] = {}

    # -- indexes ------------------------------------------------------------------------------

    @property
    def by_name(self) -> dict[str, list[int]]:
        if self._by_name is None:
            index: dict[str, list[int]] = {}
            for i, s in enumerate(self.forest.spans):
                index.setdefault(s.name, []).append(i)
            self._by_name = index
        return self._by_name

    def children_named(self, i: int, name: str) -> list[int]:
        index = self._child_names.get(i)
        if index is None:
            index = {}
            for c in self.forest.children[i]:
                index.setdefault(self.forest.spans[c].name, []).append(c)
            self._child_names[i] = index
        return index.get(name, [])

    def child_candidates(self, e: ExpectedSpan, i: int) -> list[int]:
        if isinstance(e.name, str):
            return self.children_named(i, e.name)
        return [c for c in self.forest.children[i] if self.name_ok(e, c)]

    def root_candidates(self, e: ExpectedSpan) -> list[int]:
        if isinstance(e.name, str):
            if not self.exact:
                return self.by_name.get(e.name, [])
            # One shared list per name, so the greedy pass's cursor is shared too (linear).
            cached = self._root_names.get(e.name)
            if cached is None:
                cached = [i for i in self.by_name.get(e.name, []) if self.forest.parent[i] is None]
                self._root_names[e.name] = cached
            return cached
        pool = [i for i in range(len(self.forest.spans)) if self.name_ok(e, i)]
        return [i for i in pool if self.forest.parent[i] is None] if self.exact else pool

    # -- node tests ---------------------------------------------------------------------------

    def name_ok(self, e: ExpectedSpan, i: int) -> bool:
        name = self.forest.spans[i].name
        return name == e.name if isinstance(e.name, str) else values_equal(name, e.name)

    def own_problems(self, e: ExpectedSpan, i: int) -> list[str]:
        """What differs on the node itself (attributes, kind, status), ignoring children."""
        span = self.forest.spans[i]
        problems = []
        if e.attributes:
            mismatches = match_attributes(span.attributes, e.attributes)
            if mismatches:
                problems.append(describe_mismatches(mismatches, actual=span.attributes))
        if e.kind is not None and span.kind is not e.kind:
            problems.append(f"kind: expected {e.kind.value}, got {span.kind.value}")
        if e.status is not None and span.status_code is not e.status:
            problems.append(f"status: expected {e.status.value}, got {span.status_code.value}")
        return problems

    def node_ok(self, e: ExpectedSpan, i: int) -> bool:
        span = self.forest.spans[i]
        if e.kind is not None and span.kind is not e.kind:
            return False
        if e.status is not None and span.status_code is not e.status:
            return False
        return not (e.attributes and match_attributes(span.attributes, e.attributes))

    def is_exact(self, e: ExpectedSpan) -> bool:
        return self.exact if e.exact is None else e.exact

    # -- matching -----------------------------------------------------------------------------

    def fits(self, e: ExpectedSpan, i: int) -> bool:
        key = (id(e), i)
        if key in self.memo:
            return self.memo[key] is not None
        assignment = None
        if self.name_ok(e, i) and self.node_ok(e, i):
            assignment = self.assign_children(e, i)
        self.memo[key] = assignment
        return assignment is not None

    def assign_children(self, e: ExpectedSpan, i: int) -> tuple[int, ...] | None:
        kids = e.children
        actual = self.forest.children[i]
        exact = self.is_exact(e)
        if exact and len(actual) != len(kids):
            return None
        if not kids:
            return ()
        if self.ordered:
            return self._ordered(kids, actual, exact)
        return self.bipartite(kids, lambda k: self.child_candidates(k, i), self.fits)

    def _ordered(self, kids: Sequence[ExpectedSpan], actual: Sequence[int], exact: bool) -> tuple[int, ...] | None:
        if exact:
            return tuple(actual) if all(self.fits(k, a) for k, a in zip(kids, actual)) else None
        # Greedy earliest embedding is optimal for a subsequence of independent predicates.
        out: list[int] = []
        pos = 0
        for k in kids:
            while pos < len(actual) and not self.fits(k, actual[pos]):
                pos += 1
            if pos == len(actual):
                return None
            out.append(actual[pos])
            pos += 1
        return tuple(out)

    @staticmethod
    def bipartite(
        kids: Sequence[ExpectedSpan],
        candidates: Any,
        ok: Any,
    ) -> tuple[int, ...] | None:
        """A perfect matching of ``kids`` to distinct candidates (Kuhn's augmenting paths, iterative;
        a greedy first pass over fresh candidates keeps same-named siblings linear)."""
        owner: dict[int, int] = {}  # actual -> index into kids
        chosen: list[int | None] = [None] * len(kids)
        cand_lists = [candidates(k) for k in kids]
        cursors: dict[int, int] = {}
        for n, k in enumerate(kids):
            cands = cand_lists[n]
            start = cursors.get(id(cands), 0)
            while start < len(cands) and cands[start] in owner:
                start += 1
            cursors[id(cands)] = start  # every candidate before the cursor is taken
            for pos in range(start, len(cands)):
                a = cands[pos]
                if a not in owner and ok(k, a):
                    owner[a] = n
                    chosen[n] = a
                    break
        for n in range(len(kids)):
            if chosen[n] is None and not _augment(n, kids, cand_lists, owner, chosen, ok):
                return None
        return tuple(chosen)  # type: ignore[arg-type]

    def match_forest(self, roots: Sequence[ExpectedSpan]) -> tuple[int, ...] | None:
        """Distinct spans for the expected roots. When partial, a root may match any span, but no
        two of them may be nested (one inside the other's subtree), so matches never share spans."""
        chosen = self.bipartite(roots, self.root_candidates, self.fits)
        if chosen is None:
            return None
        if self.exact:
            return chosen if len(chosen) == len(self.forest.roots) else None
        if len(chosen) < 2 or not self._nested(chosen):
            return chosen
        return self._unnested(roots)

    def _ancestors(self, i: int) -> set[int]:
        out = set()
        p = self.forest.parent[i]
        while p is not None:
            out.add(p)
            p = self.forest.parent[p]
        return out

    def _nested(self, chosen: Sequence[int]) -> bool:
        picked = set(chosen)
        return any(self._ancestors(i) & picked for i in chosen)

    def _unnested(self, roots: Sequence[ExpectedSpan], budget: int = 100_000) -> tuple[int, ...] | None:
        """Backtracking over fitting candidates that are pairwise not nested (rarely needed: only
        when the bipartite answer nests; expected forests have few roots)."""
        cands = [[a for a in self.root_candidates(e) if self.fits(e, a)] for e in roots]
        order = sorted(range(len(roots)), key=lambda n: len(cands[n]))
        chosen: dict[int, int] = {}
        ancestors: dict[int, set[int]] = {}
        steps = 0

        def place(k: int) -> bool:
            nonlocal steps
            if k == len(order):
                return True
            n = order[k]
            for a in cands[n]:
                steps += 1
                if steps > budget:
                    return False
                anc = ancestors.get(a)
                if anc is None:
                    anc = ancestors[a] = self._ancestors(a)
                if a in chosen.values() or anc & set(chosen.values()) or any(
                    a in ancestors[b] for b in chosen.values()
                ):
                    continue
                chosen[n] = a
                if place(k + 1):
                    return True
                del chosen[n]
            return False

        return tuple(chosen[n] for n in range(len(roots))) if place(0) else None

    def pairs(self, roots: Sequence[ExpectedSpan], chosen: Sequence[int]) -> tuple[tuple[ExpectedSpan, Span], ...]:
        out: list[tuple[ExpectedSpan, Span]] = []
        stack = list(zip(roots, chosen))
        while stack:
            e, i = stack.pop()
            out.append((e, self.forest.spans[i]))
            stack.extend(zip(e.children, self.memo[(id(e), i)] or ()))
        return tuple(out)


def _augment(
    start: int,
    kids: Sequence[ExpectedSpan],
    cand_lists: Sequence[Sequence[int]],
    owner: dict[int, int],
    chosen: list[int | None],
    ok: Any,
) -> bool:
    """Find an augmenting path from unmatched ``kids[start]`` (iterative DFS); apply it if found."""
    visited: set[int] = set()
    stack: list[tuple[int, Iterator[int]]] = [(start, iter(cand_lists[start]))]
    via: list[int] = []  # via[d]: the actual taken from stack[d] to reach stack[d + 1]
    while stack:
        n, it = stack[-1]
        for a in it:
            if a in visited or not ok(kids[n], a):
                continue
            visited.add(a)
            if a not in owner:
                # Shift every span along the path to the node below it.
                path = via + [a]
                for depth, (m, _) in enumerate(stack):
                    owner[path[depth]] = m
                    chosen[m] = path[depth]
                return True
            via.append(a)
            stack.append((owner[a], iter(cand_lists[owner[a]])))
            break
        else:
            stack.pop()
            if via:
                via.pop()
    return False


# ---------------------------------------------------------------------------------------------
# Explaining a failed match
# ---------------------------------------------------------------------------------------------


@dataclass
class _Divergence:
    message: str
    expected: ExpectedSpan | None = None
    expected_note: str = ""
    actual: int | None = None
    actual_note: str = ""


_ALIGN_ALL = 64  # up to this fan-out, explanations align children of any name


class _Explainer:
    """Finds the first divergence along a best-effort alignment (greedy by how much of each
    expected subtree a span can hold), and a near-miss candidate for anything missing."""

    def __init__(self, engine: _Engine) -> None:
        self.engine = engine
        self.forest = engine.forest
        self._scores: dict[tuple[int, int], int] = {}
        self.focus: list[int] = []

    def score(self, e: ExpectedSpan, i: int) -> int:
        """How much of ``e``'s subtree span ``i`` holds: 3 for the name, 1 more for attributes/kind/
        status, plus the aligned children. A differently named span still scores its children, so a
        renamed span is recognised by what hangs below it."""
        key = (id(e), i)
        if key not in self._scores:
            value = 0
            if self.engine.name_ok(e, i):
                value = 4 if self.engine.node_ok(e, i) else 3
            if e.children:
                assignment = self.align(e.children, lambda k: self.child_pool(k, i))
                value += sum(self.score(k, a) for k, a in zip(e.children, assignment) if a is not None)
            self._scores[key] = value
        return self._scores[key]

    def child_pool(self, k: ExpectedSpan, i: int) -> list[int]:
        """Children of ``i`` worth aligning with ``k``: all of them for ordinary fan-out."""
        kids = self.forest.children[i]
        return kids if len(kids) <= _ALIGN_ALL else self.engine.child_candidates(k, i)

    def root_pool(self, e: ExpectedSpan) -> list[int]:
        same = self.engine.root_candidates(e)
        if len(self.forest.roots) > _ALIGN_ALL:
            return same
        seen = set(same)
        return same + [r for r in self.forest.roots if r not in seen]

    def align(self, kids: Sequence[ExpectedSpan], candidates: Any) -> list[int | None]:
        """Assign expected nodes to distinct spans maximising the total score (a pair that scores
        nothing is no assignment), optimally (scipy's assignment solver)."""
        pools = [list(candidates(k)) for k in kids]
        columns = list(dict.fromkeys(a for pool in pools for a in pool))
        if not columns:
            return [None] * len(kids)
        col = {a: c for c, a in enumerate(columns)}
        scores = [[0] * len(columns) for _ in kids]
        for n, (k, pool) in enumerate(zip(kids, pools)):
            for a in pool:
                value = self.score(k, a)
                # A complete fit wins ties, so what is left over is what is really missing.
                scores[n][col[a]] = 2 * value + (1 if value and self.engine.fits(k, a) else 0)
        out: list[int | None] = [None] * len(kids)
        from scipy.optimize import linear_sum_assignment  # only failures pay for the import

        rows, cols = linear_sum_assignment(scores, maximize=True)
        for n, c in zip(rows, cols):
            if scores[n][c]:
                out[n] = columns[c]
        return out

    def align_roots(self, roots: Sequence[ExpectedSpan]) -> list[int | None]:
        """Root alignment. When partial, two roots may not take nested spans: the weaker of a
        nested pair is barred from that span and the alignment is solved again."""
        barred: dict[int, set[int]] = {}
        index = {id(e): n for n, e in enumerate(roots)}

        def pool(e: ExpectedSpan) -> list[int]:
            bar = barred.get(index[id(e)], set())
            return [a for a in self.root_pool(e) if a not in bar]

        for _ in range(4 * len(roots) + 1):
            out = self.align(roots, pool)
            if self.engine.exact:
                return out
            conflict = self._nested_pair(roots, out)
            if conflict is None:
                return out
            barred.setdefault(conflict, set()).add(out[conflict])  # type: ignore[arg-type]
        return out

    def _nested_pair(self, roots: Sequence[ExpectedSpan], out: Sequence[int | None]) -> int | None:
        """The weaker root of the first pair whose spans nest, or ``None``."""
        placed = [n for n in range(len(roots)) if out[n] is not None]
        for x in placed:
            anc = self.engine._ancestors(out[x])  # type: ignore[arg-type]
            for y in placed:
                if y != x and out[y] in anc:
                    return x if self.score(roots[x], out[x]) <= self.score(roots[y], out[y]) else y  # type: ignore[arg-type]
        return None

    def where(self, i: int) -> str:
        return " > ".join(self.forest.path(i))

    def explain(self, roots: Sequence[ExpectedSpan]) -> _Divergence:
        engine = self.engine
        assignment = self.align_roots(roots)
        self.focus = [a for a in assignment if a is not None]
        for e, a in zip(roots, assignment):
            if a is None:
                return self.missing_root(e)
            if not engine.name_ok(e, a):
                return self.renamed(e, a)
            if not engine.fits(e, a):
                return self.descend(e, a)
        extra = [r for r in self.forest.roots if r not in set(assignment)]
        if engine.exact and extra:
            span = self.forest.spans[extra[0]]
            return _Divergence(
                f"unexpected root span {span.name!r} (exact match: every recorded root must be expected)",
                actual=extra[0],
                actual_note="unexpected",
            )
        names = ", ".join(repr(e.name) for e in roots)  # pragma: no cover - alignment leaves one out first
        return _Divergence(  # pragma: no cover
            f"the expected roots {names} each fit a recorded span, but only spans nested inside one another; "
            "separate expected roots need separate subtrees"
        )

    def descend(self, e: ExpectedSpan, i: int) -> _Divergence:
        engine = self.engine
        span = self.forest.spans[i]
        problems = engine.own_problems(e, i)
        if problems:
            detail = "\n".join("  " + line for p in problems for line in p.splitlines())
            return _Divergence(
                f"span {span.name!r} at {self.where(i)} does not match:\n{detail}",
                e,
                "differs",
                i,
                "differs",
            )
        assignment = self.align(e.children, lambda k: self.child_pool(k, i))
        for k, a in zip(e.children, assignment):
            if a is None:
                return self.missing_child(e, k, i, assignment)
            if not engine.name_ok(k, a):
                return self.renamed(k, a)
            if not engine.fits(k, a):
                return self.descend(k, a)
        taken = {a for a in assignment if a is not None}
        extra = [c for c in self.forest.children[i] if c not in taken]
        if engine.is_exact(e) and extra:
            names = ", ".join(repr(self.forest.spans[c].name) for c in extra)
            return _Divergence(
                f"unexpected child span(s) {names} under {self.where(i)} (exact match: no extra children)",
                e,
                "has unexpected children",
                extra[0],
                "unexpected",
            )
        expected_order = [k.label() for k in e.children]
        recorded = [self.forest.spans[c].name for c in self.forest.children[i] if c in taken]
        return _Divergence(
            f"children of {self.where(i)} are out of order: expected {expected_order}, recorded {recorded}",
            e,
            "order differs",
            i,
            "order differs",
        )

    def missing_child(
        self, parent_e: ExpectedSpan, k: ExpectedSpan, i: int, assignment: Sequence[int | None]
    ) -> _Divergence:
        name = k.label() if not isinstance(k.name, str) else k.name
        where = self.where(i)
        wanted = sum(1 for c in parent_e.children if c.name == k.name)
        have = len(self.engine.child_candidates(k, i))
        if have:  # alignment only leaves a node out when its same-named spans ran out
            return _Divergence(
                f"expected {wanted} spans named {name!r} under {where}, recorded {have}", k, "missing"
            )
        head = f"missing span {name!r} under {where}"
        taken = {a for a in assignment if a is not None}
        free = [c for c in self.forest.children[i] if c not in taken]
        candidate = self._closest(k, free)
        if candidate is not None:
            hint = f"; closest candidate: {self.forest.spans[candidate].name!r} (a child of {where})"
        else:
            candidate = self._closest(k, (n for n in range(len(self.forest.spans)) if n != i and n not in taken))
            hint = ""
            if candidate is not None:
                parent = self.forest.parent[candidate]
                at = f"under {self.where(parent)}" if parent is not None else "as a root"
                hint = f"; closest candidate: {self.forest.spans[candidate].name!r}, recorded {at}"
        return _Divergence(head + hint, k, "missing", candidate, "closest candidate" if candidate is not None else "")

    def renamed(self, e: ExpectedSpan, i: int) -> _Divergence:
        """``e`` is missing, but span ``i`` (another name) sits where it should, with its children."""
        name = e.name if isinstance(e.name, str) else repr(e.name)
        parent = self.forest.parent[i]
        where = f"under {self.where(parent)}" if parent is not None else "as a root"
        return _Divergence(
            f"missing span {name!r} {where}; closest candidate: {self.forest.spans[i].name!r} "
            "(same position, matching children)",
            e,
            "missing",
            i,
            "closest candidate",
        )

    def missing_root(self, e: ExpectedSpan) -> _Divergence:
        name = e.name if isinstance(e.name, str) else repr(e.name)
        candidate = self._closest(e, range(len(self.forest.spans)))
        head = f"missing span {name!r} (expected as a root)"
        if self.engine.exact and isinstance(e.name, str) and self.engine.by_name.get(e.name):
            i = self.engine.by_name[e.name][0]
            return _Divergence(
                f"{head}; {name!r} was recorded under {self.where(self.forest.parent[i])}, not as a root",  # type: ignore[arg-type]
                e,
                "missing",
                i,
                "not a root",
            )
        hint = ""
        if candidate is not None:
            parent = self.forest.parent[candidate]
            at = f"under {self.where(parent)}" if parent is not None else "as a root"
            hint = f"; closest candidate: {self.forest.spans[candidate].name!r}, recorded {at}"
        return _Divergence(head + hint, e, "missing", candidate, "closest candidate" if candidate is not None else "")

    def _closest(self, e: ExpectedSpan, pool: Iterable[int]) -> int | None:
        """The span in ``pool`` with the same name, else the most similar name (first in position)."""
        if not isinstance(e.name, str):
            return None
        pool = list(pool)
        same = [i for i in pool if self.forest.spans[i].name == e.name]
        if same:
            return same[0]
        names = closest(e.name, (self.forest.spans[i].name for i in pool), n=1)
        if not names:
            return None
        return next(i for i in pool if self.forest.spans[i].name == names[0])


def match_tree(
    spans: Sequence[Span], expected: TreeSpec, *, exact: bool = False, ordered: bool = False
) -> TreeMatch | None:
    """The match of ``expected`` in the forest of ``spans``, or ``None``. See :func:`assert_tree`."""
    roots = expected_tree(expected)
    engine = _Engine(SpanForest(spans), exact, ordered)
    chosen = engine.match_forest(roots)
    return None if chosen is None else TreeMatch(engine.pairs(roots, chosen))


def assert_tree(
    spans: Sequence[Span],
    expected: TreeSpec,
    *,
    exact: bool = False,
    ordered: bool = False,
    max_lines: int = 60,
) -> TreeMatch:
    """Assert that the expected tree(s) embed in the recorded forest; return the match.

    Each expected node matches a distinct span with its name (and attributes, kind, status if
    given); its expected children match distinct direct children of that span. Partial by default:
    extra recorded spans are allowed and an expected root may be any span. ``exact=True``: expected
    roots are the recorded roots and no node has unexpected children (per node via
    ``ExpectedSpan.exact`` / ``"exact"``). ``ordered=True``: siblings in start-time order.
    On failure the message names the first divergence and prints both trees, marked.
    """
    __tracebackhide__ = True
    roots = expected_tree(expected)
    forest = SpanForest(spans)
    engine = _Engine(forest, exact, ordered)
    chosen = engine.match_forest(roots)
    if chosen is not None:
        return TreeMatch(engine.pairs(roots, chosen))
    raise TelemetryAssertionError(_failure_message(engine, roots, max_lines))


def _failure_message(engine: _Engine, roots: Sequence[ExpectedSpan], max_lines: int) -> str:
    from .report import render_tree

    forest = engine.forest
    explainer = _Explainer(engine)
    d = explainer.explain(roots)
    mode = ("exact" if engine.exact else "partial") + (", ordered" if engine.ordered else ", any order")
    expected_marks = {id(d.expected): d.expected_note} if d.expected is not None and d.expected_note else {}
    focus = set(explainer.focus) | ({d.actual} if d.actual is not None else set())
    traces = {forest.spans[i].trace_id for i in focus}
    shown = [s for s in forest.spans if s.trace_id in traces] if traces else list(forest.spans)
    marks: dict[Span | tuple[int, int], str] = {}
    if d.actual is not None and d.actual_note:
        marks[forest.spans[d.actual]] = d.actual_note
    n_traces = len({s.trace_id for s in forest.spans})
    scope = "" if len(shown) == len(forest.spans) else f", showing {len(shown)} in the matched trace(s)"
    recorded = render_tree(shown, marks=marks, max_lines=max_lines) if forest.spans else "(no spans recorded)"
    return (
        f"span tree does not match ({mode}): {d.message}\n"
        f"expected:\n{_indent(render_expected(roots, expected_marks))}\n"
        f"recorded ({len(forest.spans)} spans in {n_traces} trace{'s' if n_traces != 1 else ''}{scope}):\n"
        f"{_indent(recorded)}"
    )


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())
