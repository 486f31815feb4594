"""Loading contracts: the published schema, valid files, and errors naming file, line and key."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import jsonschema
import pytest
import yaml

from telemetry_asserts import matchers as m
from telemetry_asserts.contracts import ContractError, load_contract, parse_contract, schema
from telemetry_asserts.contracts.load import expected_attributes, expected_value

ROOT = Path(__file__).resolve().parents[2]


def _issues(text: str, source: str = "c.yaml") -> list[str]:
    with pytest.raises(ContractError) as info:
        parse_contract(textwrap.dedent(text), source=source)
    return [str(i) for i in info.value.issues]


def test_published_schema_is_valid_draft_2020_12() -> None:
    s = schema()
    assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(s)
    on_disk = json.loads((ROOT / "telemetry_asserts/contracts/schema.json").read_text())
    assert on_disk == s


def test_pipeline_contract_is_valid_against_the_published_schema_alone() -> None:
    data = yaml.safe_load((ROOT / "pipeline/contract.yaml").read_text())
    jsonschema.Draft202012Validator(schema()).validate(data)
    contract = load_contract(ROOT / "pipeline/contract.yaml")
    assert contract.name == "neuro-preprocess"
    assert {"file_trace_shape", "write_metadata_span", "stages_executed", "loading_file_log"} <= set(contract.ids)


def test_valid_contract_keeps_sections_ids_points_feedback_and_lines() -> None:
    contract = parse_contract(textwrap.dedent("""\
        version: 1
        name: demo
        traces:
          - id: shape
            root: a
            tree: |
              a
              └─ b
            points: 2
            feedback: make b a child of a
        metrics:
          - id: m
            name: x.count
            type: counter
        limits:
          - id: lint
            lint: {disable: [trivial_span]}
        """), source="demo.yaml")
    assert contract.ids == ("shape", "m", "lint")
    shape = contract.check("shape")
    assert (shape.section, shape.kind, shape.points, shape.feedback) == ("traces", "trace", 2.0, "make b a child of a")
    assert shape.line == 4 and shape.key == "traces[0]"
    assert contract.check("lint").kind == "lint"
    assert contract.check("m").describe() == "metric 'x.count'"
    assert contract.max_points == 2.0
    assert contract.select(["m"]).ids == ("m",)
    with pytest.raises(KeyError, match="did you mean 'shape'"):
        contract.check("shap")


def test_unknown_key_names_file_line_key_and_suggests() -> None:
    issues = _issues("""\
        version: 1
        spans:
          - id: s
            name: load_file
            atributes: {a: 1}
        """)
    assert issues == [
        "c.yaml:5:5: spans[0].atributes: unknown key (did you mean 'attributes'?); allowed: id, title, points, "
        "feedback, name, scope, where, absent, count, parent, kind, attributes, exact_attributes, status, events, "
        "events_ordered, exception, links, linked_to"
    ]


def test_enum_typo_and_wrong_type_and_missing_key() -> None:
    issues = _issues("""\
        version: 1
        metrics:
          - id: m
            name: neuro.stages.executed
            type: countr
          - id: m2
            unit: 3
        """)
    assert issues == [
        "c.yaml:5:5: metrics[0].type: 'countr' is not one of: counter, updowncounter, gauge, histogram, "
        "exponential_histogram (did you mean 'counter'?)",
        "c.yaml:6:5: metrics[1]: missing required key 'name'",
        "c.yaml:7:5: metrics[1].unit: expected a string, got a number (3)",
    ]


def test_matcher_errors_quote_dotted_attribute_keys() -> None:
    issues = _issues("""\
        version: 1
        spans:
          - id: s
            name: write_metadata
            attributes:
              metadata.size_bytes: {type: integer}
              n: {range: [5, 1]}
              p: {regex: "(unclosed"}
        """)
    assert issues == [
        "c.yaml:6:29: spans[0].attributes['metadata.size_bytes'].type: 'integer' is not one of: str, int, float, "
        "number, bool, array (did you mean 'int'?)",
        "c.yaml:7:11: spans[0].attributes.n.range: range [5, 1] is empty: low bound above high bound",
        "c.yaml:8:11: spans[0].attributes.p.regex: invalid regular expression '(unclosed': missing ), "
        "unterminated subpattern at position 0",
    ]


def test_duplicate_ids_and_duplicate_yaml_keys() -> None:
    issues = _issues("""\
        version: 1
        spans:
          - id: same
            name: a
            name: b
        logs:
          - id: same
            body: x
        """)
    assert issues == [
        "c.yaml:5:5: spans[0].name: duplicate key (first given on line 4)",
        "c.yaml:7:5: logs[0].id: duplicate check id 'same' (first used on line 3)",
    ]


def test_limits_need_exactly_one_kind_and_logs_need_content() -> None:
    issues = _issues("""\
        version: 1
        logs:
          - id: l
            inside: load_file
        limits:
          - id: both
            no_errors: true
            lint: true
          - id: none
            title: nothing to check
        """)
    assert issues == [
        "c.yaml:3:5: logs[0]: needs at least one of: body, attributes, severity",
        "c.yaml:8:5: limits[0].lint: give only one of cardinality, series, forbidden_attributes, sensitive, "
        "no_errors, lint per check (found no_errors, lint)",
        "c.yaml:9:5: limits[1]: needs one of: cardinality, series, forbidden_attributes, sensitive, no_errors, lint",
    ]


def test_unknown_lint_rule_and_option() -> None:
    issues = _issues("""\
        version: 1
        limits:
          - id: lint
            lint:
              disable: [trivial_spans]
              options: {loop_treshold: 3}
        """)
    assert len(issues) == 2
    assert issues[0].startswith("c.yaml:5:17: limits[0].lint.disable[0]: unknown lint rule 'trivial_spans' "
                                "(did you mean 'trivial_span'?)")
    assert issues[1].startswith("c.yaml:6:17: limits[0].lint.options.loop_treshold: unknown lint option "
                                "(did you mean 'loop_threshold'?)")


def test_unparsable_tree_points_at_the_tree() -> None:
    issues = _issues("""\
        version: 1
        traces:
          - id: t
            root: a
            tree: |
              a
                 b
                c
        """)
    assert len(issues) == 1 and issues[0].startswith("c.yaml:5:5: traces[0].tree: cannot parse the tree: ")


def test_matchers_inside_text_trees_are_validated() -> None:
    issues = _issues("""\
        version: 1
        traces:
          - id: t
            root: a
            tree: |
              a
              └─ b {n: {type: integer}}
        """)
    assert issues == ["c.yaml:5:5: traces[0].tree: in the tree, line 2 (b): attributes n.type: 'integer' is not one "
                      "of: str, int, float, number, bool, array (did you mean 'int'?)"]


def test_yaml_syntax_error_empty_and_non_mapping_documents() -> None:
    assert _issues("version: 1\nspans: [\n  - id: x\n") == [
        "c.yaml:3:3: invalid YAML: while parsing a flow node: expected the node content, but found '-'"
    ]
    assert _issues("") == ["c.yaml:1:1: empty contract: expected a mapping with 'version: 1'"]
    assert _issues("- a\n- b\n") == [
        "c.yaml:1:1: a contract is a mapping (version, traces, spans, metrics, logs, limits), got a list"
    ]
    assert _issues("version: 2\n") == ["c.yaml:1:1: version: must be 1, got 2"]


def test_error_message_lists_every_problem_with_a_count(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("version: 1\nspans:\n  - name: x\n  - id: y\n")
    with pytest.raises(ContractError) as info:
        load_contract(path)
    assert str(info.value) == (
        "malformed contract (2 problems):\n"
        f"  {path}:3:5: spans[0]: missing required key 'id'\n"
        f"  {path}:4:5: spans[1]: missing required key 'name'"
    )
    assert isinstance(info.value, ValueError)


def test_missing_file_is_a_contract_error(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match=r"nope\.yaml: cannot read contract: No such file or directory"):
        load_contract(tmp_path / "nope.yaml")


def test_yaml_1_1_booleans_in_keys_do_not_slip_through() -> None:
    # `on:` is the boolean true in YAML 1.1; the loader reports it under its string form.
    issues = _issues("""\
        version: 1
        limits:
          - id: c
            cardinality: {on: metrics, key: stage, max: 3}
        """)
    assert issues == [
        "c.yaml:4:18: limits[0].cardinality: missing required key 'signal'",
        "c.yaml:4:19: limits[0].cardinality.True: unknown key; allowed: key, max, name, signal",
    ]


# --- values as data -> matchers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "good", "bad"),
    [
        ({"type": "int"}, [3, -1], [True, 3.0, "3"]),
        ({"type": "float"}, [3.0], [3, False]),
        ({"type": "number"}, [3, 3.5], [True, "3"]),
        ({"type": "bool"}, [True], [1]),
        ({"type": "array"}, [(1, 2), [1]], ["12"]),
        ({"type": "str"}, ["x"], [1]),
        ({"regex": "sub-[0-9]+"}, ["sub-01"], ["xsub-01", "sub-01x", 1]),
        ({"range": [0, 10]}, [0, 10, 5.5], [-1, 11, True]),
        ({"range": [1, None]}, [1, 10**9], [0]),
        ({"one_of": ["a", 1]}, ["a", 1], ["b", True, 1.0]),
        ({"contains": "skull"}, ["skull_strip"], ["smooth"]),
        ({"contains": ["a", "b"]}, [("a", "b", "c")], [("a",)]),
        ({"not": "x"}, ["y", 1], ["x"]),
        ({"type": "int", "range": [0, 3]}, [2], [5, 2.0]),
        ({"any": True}, [0, "", False], []),
    ],
)
def test_expected_value_builds_the_harness_matchers(spec: dict, good: list, bad: list) -> None:
    expected = expected_value(spec)
    assert isinstance(expected, m.Matcher)
    for v in good:
        assert m.values_equal(v, expected), (spec, v)
    for v in bad:
        assert not m.values_equal(v, expected), (spec, v)


def test_expected_attributes_literals_lists_and_absent() -> None:
    want = expected_attributes({"n": 1, "shape": [40, 40, 40], "password": {"absent": True}})
    assert m.match_attributes({"n": 1, "shape": (40, 40, 40)}, want) == []
    mism = m.match_attributes({"n": True, "shape": (40, 40), "password": "x"}, want)
    assert [(x.key, x.kind) for x in mism] == [("n", "different"), ("shape", "different"), ("password", "unexpected")]


# --- property: any misspelt key is reported at the line and column it was written ---------------------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_PIPELINE_TEXT = (ROOT / "pipeline/contract.yaml").read_text()


def _key_sites(text: str) -> list[tuple[int, int, str, str]]:
    """(line, column, key, path) of every schema-defined mapping key (not user attribute names)."""
    sites: list[tuple[int, int, str, str]] = []

    def walk(node: yaml.Node, path: str, free: bool) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = k.value
                child = f"{path}.{key}" if path else key
                if not free:
                    sites.append((k.start_mark.line + 1, k.start_mark.column + 1, key, child))
                # attribute maps and matcher-free option maps take any key
                walk(v, child, free=key in ("attributes", "options"))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, f"{path}[{i}]", free=False)

    walk(yaml.compose(text), "", free=False)
    return sites


_SITES = _key_sites(_PIPELINE_TEXT)


@given(st.sampled_from(_SITES))
def test_any_misspelt_key_is_reported_where_it_was_written(site: tuple[int, int, str, str]) -> None:
    line, col, key, path = site
    lines = _PIPELINE_TEXT.splitlines(keepends=True)
    row = lines[line - 1]
    lines[line - 1] = row[: col - 1] + row[col - 1:].replace(key, key + "zz", 1)
    with pytest.raises(ContractError) as info:
        parse_contract("".join(lines), source="p.yaml")
    issue = next(i for i in info.value.issues if i.line == line and i.column == col)
    assert issue.key.endswith(f"{key}zz") or issue.key.endswith(f"[{key + 'zz'!r}]")
    assert issue.message.startswith("unknown key") or "missing required key" in str(info.value)
    assert f"did you mean {key!r}?" in issue.message or issue.message.startswith("unknown key; ")
