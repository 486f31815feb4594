"""The HTML report's data and safety without a browser: the embedded JSON, the order, marks, links
and logs it carries, the bounds on untrusted sizes, the script-free variant, the CLI's --html."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from telemetry_asserts import model
from telemetry_asserts.cli import main
from telemetry_asserts.contracts import parse_contract, run_contract
from telemetry_asserts.html_report import (
    Limits,
    ReportSection,
    contract_lint,
    render_html,
    render_static_html,
    report_data,
    script_json,
    test_report_name,
    write_test_report,
)
from telemetry_asserts.otlp import write_otlp_json

A = model.Attributes


def _spans() -> tuple[model.Span, ...]:
    """A small trace in the SDK's end order (children first), with a link, an event and an error."""
    return (
        model.Span("leaf", 5, 3, 2, start_time_ns=300, end_time_ns=400, attributes=A({"n": 1, "ok": True})),
        model.Span("second", 5, 4, 1, start_time_ns=500, end_time_ns=900, links=(model.Link(5, 3, A({"w": "x"})),)),
        model.Span("first", 5, 2, 1, start_time_ns=200, end_time_ns=450, status_code=model.StatusCode.ERROR,
                   status_description="bad", events=(model.Event("tick", 250),)),
        model.Span("root", 5, 1, None, start_time_ns=100, end_time_ns=1_000),
    )


def test_script_json_cannot_close_its_script_block() -> None:
    value = {"k": "</script><!-- \u2028\u2029 & <b>"}
    text = script_json(value)
    for raw in ("<", ">", "&", "\u2028", "\u2029"):
        assert raw not in text
    assert json.loads(text) == value


def test_spans_are_parent_first_with_depths_offsets_and_their_details() -> None:
    logs = (model.LogRecord("hello", "INFO", trace_id=5, span_id=2), model.LogRecord("alone", "WARN"))
    data = report_data(model.Telemetry(_spans(), (), logs))
    (trace,) = data["traces"]
    rows = trace["spans"]
    assert [(r["n"], r["d"], r["p"]) for r in rows] == [("root", 0, -1), ("first", 1, 0), ("leaf", 2, 1),
                                                         ("second", 1, 0)]
    assert (trace["dur"], rows[1]["s"], rows[1]["e"]) == (900, 100, 250)
    assert rows[1]["st"] == "ERROR" and rows[1]["sd"] == "bad" and rows[1]["ev"] == [["tick", 150, []]]
    assert rows[2]["a"] == [["n", "1", "int"], ["ok", "true", "bool"]]
    assert rows[3]["ln"] == [[f"{5:032x}:{3:016x}", [["w", "x", "string"]]]]
    assert rows[1]["lg"] == [0] and data["logs"][1] == {"b": "alone", "sev": "WARN", "t": 0}


def test_violations_mark_their_spans_and_failed_trees_carry_both_sides() -> None:
    contract = parse_contract("""
version: 1
traces:
  - id: shape
    root: root
    tree: |
      root
      └─ third
spans:
  - id: leaf_count
    name: leaf
    attributes: {n: 2}
""", "c.yaml")
    telemetry = model.Telemetry(_spans())
    data = report_data(telemetry, result=run_contract(contract, telemetry))
    marks = {r["n"]: r.get("m", "") for r in data["traces"][0]["spans"]}
    assert marks["root"].startswith("✗ shape:") and marks["leaf"].startswith("✗ leaf_count:")
    assert marks["first"] == marks["second"] == ""
    shape = next(c for c in data["checks"] if c["id"] == "shape")
    assert shape["status"] == "failed" and shape["expected"] == "root\n└─ third"
    (pair,) = shape["pairs"]
    assert pair["exp"] == [["root", ""], ["└─ third", "no span of this name in the trace"]]
    assert [(line, note) for line, _, note in pair["act"]][:2] == [
        ("root (1 µs)", ""), ("├─ first (0 µs) [ERROR]", "not in the expected tree")]
    assert pair["act"][0][1] == f"{5:032x}:{1:016x}"
    assert data["verdict"] == {"passed": False, "n": 2, "failed": 2, "contract": "c.yaml", "name": ""}


def test_a_data_tree_is_drawn_one_line_per_node() -> None:
    contract = parse_contract("""
version: 1
traces:
  - id: shape
    root: root
    tree: {name: root, children: [{name: first}, {name: ghost, attributes: {a: 1}}]}
""", "d.yaml")
    telemetry = model.Telemetry(_spans())
    (check,) = report_data(telemetry, result=run_contract(contract, telemetry))["checks"]
    assert check["pairs"][0]["exp"] == [["root", ""], ["├─ first", ""],
                                        ["└─ ghost {a: 1}", "no span of this name in the trace"]]
    assert check["expected"] == "root\n├─ first\n└─ ghost {a: 1}"


def test_lint_findings_name_the_spans_at_their_path() -> None:
    from telemetry_asserts.lint import Finding, LintReport

    spans = _spans() + (model.Span("leaf", 5, 8, 4),)  # a second "leaf", under "second"
    report = LintReport([Finding("r", "m", "root > first > leaf"), Finding("r", "m", "root > second > leaf"),
                         Finding("r", "m", "first > leaf"), Finding("r", "m", "some.metric")])
    data = report_data(model.Telemetry(spans), lint_report=report)
    assert [f["spans"] for f in data["lint"]] == [[f"{5:032x}:{3:016x}"], [f"{5:032x}:{8:016x}"], [], []]


def test_histogram_buckets_become_bars_and_exponential_ones_stay_summaries() -> None:
    points = (model.MetricPoint("h", model.MetricKind.HISTOGRAM, count=3, sum=2.5, bucket_counts=(1, 2, 0),
                                explicit_bounds=(1.0, 2.0)),
              model.MetricPoint("e", model.MetricKind.EXPONENTIAL_HISTOGRAM, count=3, sum=2.5, bucket_counts=(1, 2)))
    e, h = report_data(model.Telemetry((), points))["metrics"]
    assert h["points"][0]["buckets"] == [["≤ 1.0", 1], ["≤ 2.0", 2], ["> 2.0", 0]]
    assert "buckets" not in e["points"][0] and e["points"][0]["count"] == 3


def test_untrusted_sizes_are_bounded_and_say_what_was_cut() -> None:
    many = {f"k{i}": "x" * 50 for i in range(10)}
    spans = tuple(model.Span(f"s{i}", 1, i + 1, None, attributes=A(many)) for i in range(20))
    data = report_data(model.Telemetry(spans), limits=Limits(max_spans=5, max_value_chars=10, max_attributes=3))
    rows = [r for t in data["traces"] for r in t["spans"]]
    assert len(rows) == 5 and data["counts"]["spans"] == 20 and data["counts"]["spans_shown"] == 5
    assert rows[0]["a"][0] == ["k0", "xxxxxxxxxx… (40 more characters)", "string"]
    assert rows[0]["a"][-1] == ["…", "7 more attributes not shown", ""]


def test_the_total_size_is_bounded_whatever_the_input() -> None:
    value = "v" * 1000
    spans = tuple(model.Span(f"s{i}", 1, i + 1, None, attributes=A({"k": value})) for i in range(300))
    data = report_data(model.Telemetry(spans), limits=Limits(max_total_chars=10_000))
    shown = [r["a"][0][1] for r in data["traces"][0]["spans"]]
    assert shown[0] == value and shown[9] == value  # within the budget: whole
    assert shown[10].startswith("v" * 64 + "… (936 more") and shown[-1] == "1 attributes not shown (the report's size limit)"
    assert len(script_json(data)) < 100_000  # 300 values of 1000 characters would be 300_000


def test_non_finite_and_huge_numbers_travel_as_text() -> None:
    span = model.Span("s", 1, 1, None, attributes=A({"nan": float("nan"), "big": 2**63 - 1, "xs": (1.5, "a")}))
    page = render_html(model.Telemetry((span,)))
    data = report_data(model.Telemetry((span,)))
    assert data["traces"][0]["spans"][0]["a"] == [["nan", "nan", "double"], ["big", str(2**63 - 1), "int"],
                                                  ["xs", '[1.5, "a"]', "array"]]
    assert "NaN" not in page


def test_the_static_variant_has_no_script_and_escapes_everything() -> None:
    probe = "<img src=x onerror=alert(1)>"
    spans = (model.Span(probe, 1, 1, None, start_time_ns=0, end_time_ns=10),)
    text = render_static_html(model.Telemetry(spans), sections=[
        ReportSection(probe, "failed", text=probe, expected=probe, actual=probe, feedback=probe)])
    assert "<script" not in text and "<img" not in text
    assert text.count("&lt;img src=x onerror=alert(1)&gt;") == 6


def test_report_file_names_are_deterministic_and_safe() -> None:
    name = test_report_name("tests/test_a.py::test_b[x/y-<1>]")
    assert name == test_report_name("tests/test_a.py::test_b[x/y-<1>]")
    assert "/" not in name and "<" not in name and name.endswith(".html")
    assert name != test_report_name("tests/test_a.py::test_b[x/y-<2>]")
    assert test_report_name("t.py::t", "setup").endswith("-setup.html")


def test_an_unwritable_test_report_is_reported_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    line = write_test_report(blocker / "sub", "t.py::t", "call", model.Telemetry(_spans()))
    assert line.startswith(f"HTML trace view not written: {blocker / 'sub'}")


def test_contract_lint_uses_the_contracts_lint_options() -> None:
    tiny = model.Span("tiny", 5, 9, 1, start_time_ns=950, end_time_ns=960)  # trivial for the default lint
    telemetry = model.Telemetry(_spans() + (tiny,))
    plain = parse_contract("version: 1\nspans:\n  - {id: s, name: root}\n", "plain.yaml")
    quiet = parse_contract("version: 1\nlimits:\n  - {id: l, lint: {disable: [trivial_span]}}\n", "quiet.yaml")
    assert "trivial_span" in {f.rule for f in contract_lint(run_contract(plain, telemetry))}
    assert "trivial_span" not in {f.rule for f in contract_lint(run_contract(quiet, telemetry))}


@pytest.fixture
def otlp_file(tmp_path: Path) -> Path:
    return write_otlp_json(model.Telemetry(_spans()), tmp_path / "run.jsonl")


def test_cli_check_writes_the_html_report(tmp_path: Path, otlp_file: Path) -> None:
    contract = tmp_path / "c.yaml"
    contract.write_text("version: 1\nname: tiny\nspans:\n  - {id: has_leaf, name: leaf}\n")
    out, err = io.StringIO(), io.StringIO()
    html = tmp_path / "reports" / "r.html"
    assert main(["check", str(contract), "--from", str(otlp_file), "--html", str(html)], out=out, err=err) == 0
    assert f"wrote the HTML report to {html}" in err.getvalue()
    text = html.read_text()
    data = json.loads(text.split('id="telemetry-data">', 1)[1].split("</script>", 1)[0])
    assert data["title"] == "telemetry-asserts: tiny" and data["subtitle"] == f"source: {otlp_file}"
    assert data["verdict"]["passed"] is True and [c["id"] for c in data["checks"]] == ["has_leaf"]
    assert data["lint"] is not None
    # self-contained: nothing loaded from anywhere (the only URL is the SVG namespace name)
    assert re.search(r"""(src|href)\s*=|<link|@import|fetch\(|XMLHttpRequest""", text) is None


def test_cli_html_to_an_unwritable_place_is_a_usage_error(tmp_path: Path, otlp_file: Path) -> None:
    contract = tmp_path / "c.yaml"
    contract.write_text("version: 1\nspans:\n  - {id: has_leaf, name: leaf}\n")
    blocker = tmp_path / "file"
    blocker.write_text("")
    err = io.StringIO()
    target = blocker / "r.html"
    status = main(["check", str(contract), "--from", str(otlp_file), "--html", str(target)], out=io.StringIO(), err=err)
    assert status == 2
    (line,) = err.getvalue().strip().splitlines()
    assert line.startswith(f"telemetry-asserts: error: {target}: cannot write the HTML report:")
    assert list(tmp_path.glob("**/*.html")) == [] and list(tmp_path.glob("**/.r.html*")) == []
