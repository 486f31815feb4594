"""Property tests of the tree matcher on random forests (bounded examples, no deadline)."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry_asserts.errors import TelemetryAssertionError
from telemetry_asserts.model import Span
from telemetry_asserts.tree import assert_tree, match_tree

# A node is (name, [children]). Few names, so same-named siblings and cousins are common: that is
# where a first-name-wins matcher goes wrong.
NAMES = st.sampled_from(["load", "stage", "save", "step", "io"])
trees = st.recursive(
    st.builds(lambda n: (n, []), NAMES),
    lambda kids: st.builds(lambda n, k: (n, k), NAMES, st.lists(kids, max_size=4)),
    max_leaves=12,
)
forests = st.lists(trees, min_size=1, max_size=3)

PROPERTY = settings(max_examples=60, deadline=None)


def to_spans(forest: list[Any]) -> list[Span]:
    """Spans for a forest, one trace per root, siblings started in list order; end order."""
    out: list[Span] = []
    ids = iter(range(1, 10_000))
    clock = iter(range(0, 10_000_000, 10))

    def add(node: Any, trace: int, parent: int | None) -> None:
        span_id = next(ids)
        start = next(clock)
        for kid in node[1]:
            add(kid, trace, span_id)
        out.append(Span(node[0], trace, span_id, parent, start_time_ns=start, end_time_ns=next(clock)))

    for t, root in enumerate(forest, start=1):
        add(root, t, None)
    return out


def count(forest: list[Any]) -> int:
    return sum(1 + count(node[1]) for node in forest)


def paths(forest: list[Any], prefix: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    """Every node's position as a path of child indexes."""
    out = []
    for i, node in enumerate(forest):
        out.append(prefix + (i,))
        out.extend(paths(node[1], prefix + (i,)))
    return out


def edit(forest: list[Any], path: tuple[int, ...], new: Any) -> list[Any]:
    """A copy with the node at ``path`` replaced by ``new(node)`` (``None`` deletes it)."""
    head, rest = path[0], path[1:]
    out = list(forest)
    if not rest:
        replacement = new(out[head])
        if replacement is None:
            del out[head]
        else:
            out[head] = replacement
    else:
        name, kids = out[head]
        out[head] = (name, edit(kids, rest, new))
    return out


def at(forest: list[Any], path: tuple[int, ...]) -> Any:
    node = forest[path[0]]
    for i in path[1:]:
        node = node[1][i]
    return node


def shuffled(forest: list[Any], rng: random.Random) -> list[Any]:
    out = [(name, shuffled(kids, rng)) for name, kids in forest]
    rng.shuffle(out)
    return out


@PROPERTY
@given(forests)
def test_a_random_forest_matches_itself_in_every_mode(forest: list[Any]) -> None:
    spans = to_spans(forest)
    assert_tree(spans, forest)
    assert_tree(spans, forest, exact=True)
    assert_tree(spans, forest, exact=True, ordered=True)
    m = assert_tree(spans, forest, ordered=True)
    assert len(m.pairs) == count(forest) == len({(s.trace_id, s.span_id) for s in m.spans()})


@PROPERTY
@given(forests, st.randoms(use_true_random=False))
def test_sibling_order_never_matters_unordered(forest: list[Any], rng: random.Random) -> None:
    spans = to_spans(forest)
    expected = shuffled(forest, rng)
    assert_tree(spans, expected, exact=True)
    assert_tree(to_spans(expected), forest, exact=True)


@PROPERTY
@given(forests, st.data())
def test_removing_any_node_fails_and_names_it(forest: list[Any], data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(paths(forest)))
    removed = at(forest, path)[0]
    smaller = edit(forest, path, lambda node: None)
    for exact in (False, True):
        try:
            assert_tree(to_spans(smaller), forest, exact=exact)
        except TelemetryAssertionError as exc:
            assert repr(removed) in str(exc).splitlines()[0]
        else:
            raise AssertionError(f"matched although {removed!r} at {path} was removed")


@PROPERTY
@given(forests, st.data())
def test_renaming_any_node_fails_and_names_it(forest: list[Any], data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(paths(forest)))
    original = at(forest, path)[0]
    renamed = edit(forest, path, lambda node: ("renamed_" + node[0], node[1]))
    assert match_tree(to_spans(renamed), forest) is None
    try:
        assert_tree(to_spans(renamed), forest)
    except TelemetryAssertionError as exc:
        assert repr(original) in str(exc).splitlines()[0]


@PROPERTY
@given(forests, st.data())
def test_an_extra_span_only_fails_exact_matching(forest: list[Any], data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(paths(forest)))
    bigger = edit(forest, path, lambda node: (node[0], node[1] + [("extra", [])]))
    spans = to_spans(bigger)
    assert_tree(spans, forest)
    assert match_tree(spans, forest, exact=True) is None


@PROPERTY
@given(forests)
def test_a_rendered_forest_parses_back_to_itself(forest: list[Any]) -> None:
    from telemetry_asserts.report import render_tree
    from telemetry_asserts.tree import parse_tree

    spans = to_spans(forest)
    text = render_tree(spans)
    roots = parse_tree(text)

    def shape(e: Any) -> Any:
        return (e.name, [shape(c) for c in e.children])

    assert [shape(r) for r in roots] == forest
    assert_tree(spans, text, exact=True, ordered=True)
