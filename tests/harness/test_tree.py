"""Expected-tree parsing, the tree matcher and its failure messages."""

from __future__ import annotations

from typing import Any

import pytest

from telemetry_asserts.errors import TelemetryAssertionError
from telemetry_asserts.matchers import InRange, Regex
from telemetry_asserts.model import Span, SpanKind, StatusCode, attributes
from telemetry_asserts.tree import (
    ExpectedSpan,
    SpanForest,
    TreeSyntaxError,
    assert_tree,
    expected_tree,
    match_tree,
    order_parent_first,
    parse_tree,
    render_expected,
)

MS = 1_000_000


def build(*roots: Any, trace_id: int = 1) -> list[Span]:
    """Spans from ``(name, [children])`` / ``(name, {attrs}, [children])`` tuples, 1 ms apart.

    Returned in end order (children before parents), as the SDK exporter gives them.
    """
    out: list[Span] = []
    counter = iter(range(1, 1_000_000))

    def add(node: Any, parent: int | None, start: int) -> int:
        name, rest = node[0], node[1:]
        attrs = rest[0] if rest and isinstance(rest[0], dict) else {}
        kids = rest[-1] if rest and isinstance(rest[-1], list) else []
        span_id = next(counter)
        t = start + MS
        for kid in kids:
            t = add(kid, span_id, t)
        end = t + MS
        out.append(Span(name, trace_id, span_id, parent, start_time_ns=start, end_time_ns=end,
                        attributes=attributes(attrs)))
        return end

    t = 0
    for root in roots:
        t = add(root, None, t)
    return out


PIPELINE = build(
    ("process_file", {"file.name": "sub-001_T1w.nii.gz"}, [
        ("load_file", {"file.format": "nifti", "size_mb": 10.4}, []),
        ("process_image", [
            ("bias_correct", []),
            ("skull_strip", {"iterations": 3}, []),
            ("normalize", []),
        ]),
        ("save_file", []),
    ])
)

COURSE_TEXT = """
process_file
├─ load_file
├─ process_image
│  ├─ bias_correct
│  ├─ skull_strip
│  └─ normalize
└─ save_file
"""


# ---------------------------------------------------------------------------------------------
# The forest
# ---------------------------------------------------------------------------------------------


def test_forest_orders_parent_first_with_siblings_by_start_time() -> None:
    ordered = order_parent_first(PIPELINE)
    assert [s.name for s in ordered] == [
        "process_file", "load_file", "process_image", "bias_correct", "skull_strip", "normalize", "save_file",
    ]


def test_forest_treats_a_span_with_an_unrecorded_parent_as_a_root() -> None:
    orphan = Span("orphan", 1, 99, parent_span_id=12345)
    forest = SpanForest([*PIPELINE, orphan])
    assert [forest.spans[i].name for i in forest.roots] == ["process_file", "orphan"]
    assert forest.path(len(PIPELINE)) == ["orphan"]


def test_forest_survives_a_parent_cycle_and_walks_every_span_once() -> None:
    a = Span("a", 1, 1, parent_span_id=2)
    b = Span("b", 1, 2, parent_span_id=1)
    forest = SpanForest([a, b])
    assert sorted(s.name for s in forest.ordered()) == ["a", "b"]


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------


def names(roots: tuple[ExpectedSpan, ...]) -> list[Any]:
    def one(e: ExpectedSpan) -> Any:
        return (e.name, [one(c) for c in e.children]) if e.children else e.name

    return [one(r) for r in roots]


COURSE_SHAPE = [("process_file", ["load_file", ("process_image", ["bias_correct", "skull_strip", "normalize"]),
                                  "save_file"])]


@pytest.mark.parametrize(
    "text",
    [
        COURSE_TEXT,
        # `tree` command style with long connectors
        "process_file\n├── load_file\n├── process_image\n│   ├── bias_correct\n│   ├── skull_strip\n"
        "│   └── normalize\n└── save_file",
        # ASCII
        "process_file\n|- load_file\n|- process_image\n|  |- bias_correct\n|  |- skull_strip\n"
        "|  `- normalize\n`- save_file",
        "process_file\n+-- load_file\n+-- process_image\n|   +-- bias_correct\n|   +-- skull_strip\n"
        "|   +-- normalize\n+-- save_file",
        # plain indentation, with tabs, and bullets
        "process_file\n    load_file\n    process_image\n        bias_correct\n        skull_strip\n"
        "        normalize\n    save_file",
        "process_file\n\tload_file\n\tprocess_image\n\t\tbias_correct\n\t\tskull_strip\n\t\tnormalize\n\tsave_file",
        "- process_file\n  - load_file\n  - process_image\n    - bias_correct\n    - skull_strip\n"
        "    - normalize\n  - save_file",
    ],
    ids=["box", "tree-cmd", "ascii-backtick", "ascii-plus", "indent", "tabs", "bullets"],
)
def test_every_text_style_parses_to_the_same_tree(text: str) -> None:
    assert names(parse_tree(text)) == COURSE_SHAPE


def test_mixed_connector_lengths_are_siblings() -> None:
    assert names(parse_tree("a\n├─ b\n└── c")) == [("a", ["b", "c"])]


def test_text_carries_attributes_status_and_ignores_durations_and_notes() -> None:
    (root,) = parse_tree(
        "process_file (12.0 ms)\n├─ load_file {file.format: nifti, size_mb: 10.4}  <-- missing\n"
        "└─ skull_strip [ERROR: bad mask]"
    )
    load, strip = root.children
    assert root.name == "process_file"
    assert load.attributes == {"file.format": "nifti", "size_mb": 10.4}
    assert strip.status is StatusCode.ERROR and strip.attributes is None
    assert [root.line, load.line, strip.line] == [1, 2, 3]


def test_names_may_hold_spaces_and_braces() -> None:
    (root,) = parse_tree("GET /users/{id}\n└─ SELECT users {db.system: sqlite}")
    assert (root.name, root.attributes) == ("GET /users/{id}", None)
    assert (root.children[0].name, root.children[0].attributes) == ("SELECT users", {"db.system": "sqlite"})


def test_a_rendered_tree_parses_back() -> None:
    from telemetry_asserts.report import render_tree

    text = render_tree(PIPELINE)
    assert names(parse_tree(text)) == COURSE_SHAPE
    assert_tree(PIPELINE, text, exact=True, ordered=True)


@pytest.mark.parametrize(
    "text, message",
    [
        ("a\n    b\n  c", "line 3: 'c' is indented to column 2 but its siblings under 'a' start at column 4"),
        ("  a\nb", "line 2: 'b' is left of its parent's column or not aligned with the first root 'a'"),
        ("a\n├─ [ERROR]", "line 2: a span name is missing"),
        ("a {x: [1}", "line 1: cannot read the attributes '{x: [1}'"),
        ("\n  \n", "the expected tree is empty"),
    ],
)
def test_syntax_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(TreeSyntaxError) as info:
        parse_tree(text)
    assert str(info.value).startswith(message)


def test_data_spellings_are_equivalent_to_text() -> None:
    as_dicts = {
        "name": "process_file",
        "children": [
            {"name": "load_file"},
            {"name": "process_image", "children": ["bias_correct", "skull_strip", "normalize"]},
            "save_file",
        ],
    }
    as_tuples = ("process_file", ["load_file", ("process_image", ["bias_correct", "skull_strip", "normalize"]),
                                  "save_file"])
    as_mapping = {"process_file": {"load_file": {}, "process_image": ["bias_correct", "skull_strip", "normalize"],
                                   "save_file": []}}
    for spec in (as_dicts, as_tuples, as_mapping, [as_tuples]):
        assert names(expected_tree(spec)) == COURSE_SHAPE


def test_data_nodes_carry_attributes_kind_status_and_exact() -> None:
    (node,) = expected_tree({"name": "x", "attributes": {"a": 1}, "kind": "server", "status": "error", "exact": True})
    assert (node.attributes, node.kind, node.status, node.exact) == ({"a": 1}, SpanKind.SERVER, StatusCode.ERROR, True)
    (t,) = expected_tree(("x", {"a": 1}, ["y"]))
    assert t.attributes == {"a": 1} and names((t,)) == [("x", ["y"])]


def test_bad_data_is_rejected_with_the_reason() -> None:
    with pytest.raises(ValueError, match=r"unknown keys \['childs'\] in expected span 'x'"):
        expected_tree({"name": "x", "childs": []})
    with pytest.raises(TypeError, match="cannot read an expected span tree from int"):
        expected_tree(3)  # type: ignore[arg-type]


def test_render_expected_draws_boxes_and_marks() -> None:
    roots = parse_tree(COURSE_TEXT)
    strip = roots[0].children[1].children[1]
    assert render_expected(roots, {id(strip): "missing"}) == (
        "process_file\n├─ load_file\n├─ process_image\n│  ├─ bias_correct\n│  ├─ skull_strip  <-- missing\n"
        "│  └─ normalize\n└─ save_file"
    )


# ---------------------------------------------------------------------------------------------
# Matching
# ---------------------------------------------------------------------------------------------


def test_course_tree_matches_in_any_order_partial_and_exact() -> None:
    shuffled = "process_file\n├─ save_file\n├─ process_image\n│  ├─ normalize\n│  ├─ skull_strip\n" \
               "│  └─ bias_correct\n└─ load_file"
    assert_tree(PIPELINE, COURSE_TEXT)
    assert_tree(PIPELINE, shuffled)
    assert_tree(PIPELINE, shuffled, exact=True)
    assert_tree(PIPELINE, COURSE_TEXT, ordered=True, exact=True)
    assert match_tree(PIPELINE, shuffled, ordered=True) is None


def test_partial_match_allows_extra_spans_and_a_subtree_anywhere() -> None:
    assert_tree(PIPELINE, "process_file\n└─ process_image\n   └─ skull_strip")
    assert_tree(PIPELINE, "process_image\n└─ normalize")  # not a root: fine when partial
    assert match_tree(PIPELINE, "process_image\n└─ normalize", exact=True) is None


def test_children_must_be_direct_children() -> None:
    assert match_tree(PIPELINE, "process_file\n└─ skull_strip") is None


def test_returned_match_pairs_expected_nodes_with_spans() -> None:
    m = assert_tree(PIPELINE, COURSE_TEXT)
    assert m["skull_strip"].attributes["iterations"] == 3
    assert len(m.pairs) == 7 and {s.name for s in m.spans()} == {s.name for s in PIPELINE}
    with pytest.raises(KeyError):
        m["nothing"]


def test_matching_is_bipartite_not_first_name_wins() -> None:
    # Two 'stage' children; the first recorded one only fits the second expected node. A
    # first-name-wins matcher would give the first expected 'stage' the first span and fail.
    spans = build(("run", [("stage", [("b", [])]), ("stage", [("a", []), ("b", [])])]))
    expected = ("run", [("stage", ["a", "b"]), ("stage", ["b"])])
    assert_tree(spans, expected)
    assert_tree(spans, expected, exact=True)


def test_bipartite_augmenting_paths_at_the_root_level() -> None:
    spans = build(("x", [("p", [])]), ("x", [("p", []), ("q", [])]))
    assert_tree(spans, [("x", ["p"]), ("x", ["q", "p"])], exact=True)


def test_counts_matter_same_named_siblings_each_need_a_span() -> None:
    spans = build(("run", [("stage", []), ("stage", [])]))
    assert_tree(spans, ("run", ["stage", "stage"]))
    assert match_tree(spans, ("run", ["stage", "stage", "stage"])) is None


def test_attributes_kind_and_status_take_part_in_the_match() -> None:
    assert_tree(PIPELINE, "process_file\n└─ load_file {file.format: nifti}")
    assert_tree(PIPELINE, {"name": "load_file", "attributes": {"size_mb": InRange(5, 20)}})
    assert match_tree(PIPELINE, {"name": "load_file", "attributes": {"size_mb": InRange(50)}}) is None
    assert match_tree(PIPELINE, {"name": "load_file", "kind": "server"}) is None
    assert match_tree(PIPELINE, "load_file [ERROR]") is None
    assert_tree(PIPELINE, "load_file [UNSET]")


def test_names_can_be_matchers() -> None:
    assert_tree(PIPELINE, ExpectedSpan("process_file", children=(ExpectedSpan(Regex(r"process_.*")),)))
    assert_tree(PIPELINE, {"name": Regex("process_image"), "children": [{"name": Regex(".*strip")}]})


def test_exact_per_node_overrides_the_call() -> None:
    strict_image = {"name": "process_image", "exact": True, "children": ["skull_strip"]}
    assert match_tree(PIPELINE, {"name": "process_file", "children": [strict_image]}) is None
    loose_image = {"name": "process_image", "exact": False, "children": ["skull_strip"]}
    whole = {"name": "process_file", "children": ["load_file", loose_image, "save_file"]}
    assert_tree(PIPELINE, whole, exact=True)


def test_exact_requires_every_recorded_root() -> None:
    two = PIPELINE + build(("other", []), trace_id=2)
    assert match_tree(two, COURSE_TEXT, exact=True) is None
    assert_tree(two, [COURSE_TEXT, "other"], exact=True)


def test_ordered_partial_allows_gaps_but_not_reordering() -> None:
    assert_tree(PIPELINE, "process_image\n├─ bias_correct\n└─ normalize", ordered=True)
    assert match_tree(PIPELINE, "process_image\n├─ normalize\n└─ bias_correct", ordered=True) is None


def test_a_forest_of_many_traces_matches_each_expected_root_to_its_own_trace() -> None:
    spans = [s for t in range(1, 4) for s in build(("process_file", [("load_file", [])]), trace_id=t)]
    assert_tree(spans, ["process_file\n└─ load_file"] * 3)
    assert match_tree(spans, ["process_file\n└─ load_file"] * 4) is None


# ---------------------------------------------------------------------------------------------
# Failure messages (pinned)
# ---------------------------------------------------------------------------------------------


def failure(spans: list[Span], expected: Any, **kw: Any) -> str:
    with pytest.raises(TelemetryAssertionError) as info:
        assert_tree(spans, expected, **kw)
    return str(info.value)


def test_missing_span_names_it_and_its_closest_candidate_with_both_trees() -> None:
    spans = build(("process_file", [("load_file", []), ("process_image", [("skul_strip", [])])]))
    message = failure(spans, "process_file\n├─ load_file\n└─ process_image\n   └─ skull_strip")
    assert message == (
        "span tree does not match (partial, any order): missing span 'skull_strip' under "
        "process_file > process_image; closest candidate: 'skul_strip' (a child of process_file > process_image)\n"
        "expected:\n"
        "  process_file\n"
        "  ├─ load_file\n"
        "  └─ process_image\n"
        "     └─ skull_strip  <-- missing\n"
        "recorded (4 spans in 1 trace):\n"
        "  process_file (8.0 ms)\n"
        "  ├─ load_file (2.0 ms)\n"
        "  └─ process_image (4.0 ms)\n"
        "     └─ skul_strip (2.0 ms)  <-- closest candidate"
    )


def test_missing_span_recorded_elsewhere_is_pointed_at() -> None:
    message = failure(PIPELINE, "process_file\n└─ skull_strip")
    assert message.splitlines()[0] == (
        "span tree does not match (partial, any order): missing span 'skull_strip' under process_file; "
        "closest candidate: 'skull_strip', recorded under process_file > process_image"
    )
    assert "  │  ├─ skull_strip (2.0 ms)  <-- closest candidate" in message


def test_a_renamed_root_is_recognised_by_its_children() -> None:
    message = failure(PIPELINE, "proces_file\n└─ load_file")
    assert message.splitlines()[:4] == [
        "span tree does not match (partial, any order): missing span 'proces_file' as a root; "
        "closest candidate: 'process_file' (same position, matching children)",
        "expected:",
        "  proces_file  <-- missing",
        "  └─ load_file",
    ]
    assert "  process_file (14.0 ms)  <-- closest candidate" in message


def test_a_missing_leaf_root_suggests_the_nearest_name() -> None:
    assert failure(PIPELINE, "save_fil").splitlines()[0] == (
        "span tree does not match (partial, any order): missing span 'save_fil' (expected as a root); "
        "closest candidate: 'save_file', recorded under process_file"
    )


def test_a_renamed_inner_span_is_recognised_by_its_children() -> None:
    message = failure(PIPELINE, "process_file\n└─ process_img\n   ├─ bias_correct\n   └─ normalize")
    assert message.splitlines()[0] == (
        "span tree does not match (partial, any order): missing span 'process_img' under process_file; "
        "closest candidate: 'process_image' (same position, matching children)"
    )


def test_nothing_similar_says_so_and_lists_what_was_recorded() -> None:
    message = failure(PIPELINE, "zzz")
    assert message.splitlines()[0] == "span tree does not match (partial, any order): missing span 'zzz' (expected as a root)"
    assert "recorded (7 spans in 1 trace):" in message and "  └─ save_file (2.0 ms)" in message


def test_no_spans_at_all() -> None:
    assert failure([], "process_file").endswith("recorded (0 spans in 0 traces):\n  (no spans recorded)")


def test_attribute_divergence_is_marked_on_both_sides() -> None:
    message = failure(PIPELINE, "process_file\n└─ load_file {file.format: dicom}")
    assert message.splitlines()[:6] == [
        "span tree does not match (partial, any order): span 'load_file' at process_file > load_file does not match:",
        "  attribute 'file.format': expected 'dicom' (str), got 'nifti' (str)",
        "expected:",
        "  process_file",
        "  └─ load_file {file.format: 'dicom'}  <-- differs",
        "recorded (7 spans in 1 trace):",
    ]
    assert "  ├─ load_file (2.0 ms)  <-- differs" in message


def test_too_few_same_named_siblings_are_counted() -> None:
    spans = build(("run", [("stage", []), ("stage", [])]))
    assert failure(spans, ("run", ["stage"] * 3)).splitlines()[0] == (
        "span tree does not match (partial, any order): expected 3 spans named 'stage' under run, recorded 2"
    )


def test_exact_reports_the_unexpected_child() -> None:
    message = failure(PIPELINE, "process_file\n├─ load_file\n├─ process_image\n└─ save_file", exact=True)
    assert message.splitlines()[0] == (
        "span tree does not match (exact, any order): unexpected child span(s) 'bias_correct', 'skull_strip', "
        "'normalize' under process_file > process_image (exact match: no extra children)"
    )
    assert "  │  ├─ bias_correct (2.0 ms)  <-- unexpected" in message


def test_exact_reports_an_unexpected_root_and_a_root_that_is_not_one() -> None:
    two = PIPELINE + build(("other", []), trace_id=2)
    assert failure(two, COURSE_TEXT, exact=True).splitlines()[0] == (
        "span tree does not match (exact, any order): unexpected root span 'other' "
        "(exact match: every recorded root must be expected)"
    )
    assert failure(PIPELINE, "process_image", exact=True).splitlines()[0] == (
        "span tree does not match (exact, any order): missing span 'process_image' (expected as a root); "
        "'process_image' was recorded under process_file, not as a root"
    )


def test_order_divergence_lists_both_orders() -> None:
    assert failure(PIPELINE, "process_image\n├─ normalize\n└─ bias_correct", ordered=True).splitlines()[0] == (
        "span tree does not match (partial, ordered): children of process_file > process_image are out of order: "
        "expected ['normalize', 'bias_correct'], recorded ['bias_correct', 'normalize']"
    )


def test_deep_divergence_is_found_below_matching_levels() -> None:
    message = failure(PIPELINE, "process_file\n└─ process_image\n   └─ skull_strip {iterations: 4}")
    assert message.splitlines()[:2] == [
        "span tree does not match (partial, any order): span 'skull_strip' at process_file > process_image > "
        "skull_strip does not match:",
        "  attribute 'iterations': expected 4 (int), got 3 (int)",
    ]


def test_failure_shows_only_the_trace_that_matched_best() -> None:
    spans = PIPELINE + build(("unrelated", [("noise", [])]), trace_id=2)
    message = failure(spans, "process_file\n└─ xyzzy")
    assert "recorded (9 spans in 2 traces, showing 7 in the matched trace(s)):" in message
    assert "unrelated" not in message


def test_long_recordings_are_truncated() -> None:
    spans = build(("root", [(f"child{i}", []) for i in range(100)]))
    message = failure(spans, "root\n└─ missing", max_lines=10)
    assert message.endswith("... 91 more lines")


def test_partial_roots_never_share_spans_through_nesting() -> None:
    spans = build(("a", [("b", [])]))
    assert match_tree(spans, ["a\n└─ b", "b"]) is None
    assert match_tree(spans, ["a", "b"]) is None
    assert failure(spans, ["a", "b"]).splitlines()[0] == (
        "span tree does not match (partial, any order): missing span 'b' (expected as a root); "
        "closest candidate: 'b', recorded under a"
    )
    two = spans + build(("b", []), trace_id=2)
    m = assert_tree(two, ["a\n└─ b", "b"])
    assert len({(s.trace_id, s.span_id) for s in m.spans()}) == 3


def test_nesting_is_resolved_by_backtracking_when_the_first_choice_nests() -> None:
    # 'b' first fits the nested b (inside a), the only other b is a separate root.
    spans = build(("a", [("b", [])]), ("b", []))
    m = assert_tree(spans, ["b", "a"])
    b = next(s for e, s in m.pairs if e.name == "b")
    assert b.parent_span_id is None
