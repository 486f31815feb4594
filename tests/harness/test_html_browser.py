"""The HTML trace view in a real browser (Debian's headless Chromium via Playwright): the report of
a real pipeline run written by ``telemetry-asserts check --html``, a broken contract's violation
marks, the injection probe, a 10k-span trace, links, events, metrics and lint findings."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml
from html_browser import opened

from telemetry_asserts import model
from telemetry_asserts.capture import Capture
from telemetry_asserts.cli import main
from telemetry_asserts.contracts import load_contract, parse_contract, run_contract
from telemetry_asserts.html_report import write_html
from telemetry_asserts.lint import lint
from telemetry_asserts.otlp import write_otlp_json
from telemetry_asserts.tree import SpanForest, parse_tree

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "pipeline" / "contract.yaml"
PROBE = "<img src=x onerror=alert(1)>"

BROKEN = """\
version: 1
name: broken
traces:
  - id: tree_with_checksum
    root: process_file
    tree: |
      process_file
      └─ write_output
         ├─ write_metadata
         └─ write_checksum
spans:
  - id: metadata_is_huge
    name: write_metadata
    attributes:
      metadata.size_bytes: {type: int, range: [100000000, null]}
"""


@pytest.fixture(scope="module")
def pipeline_run(phantom: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One real process_file run (in-memory SDK capture, the pipeline's resource, logs bridged),
    exported as OTLP JSON lines, and the metadata file it wrote."""
    from pipeline.processor import process_file
    from pipeline.registry import RunRegistry
    from pipeline.telemetry import PipelineTelemetry, resource_from_env

    from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor

    work = tmp_path_factory.mktemp("html-run")
    cap = Capture(resource_from_env({}))
    instrumentor = SQLite3Instrumentor()  # the registry's SQL statements are part of the contract
    instrumentor.instrument(tracer_provider=cap.tracer_provider)
    try:
        with cap.capturing_logs(logging.INFO):
            out = work / "out"
            out.mkdir()
            result = process_file(phantom, out, telemetry=PipelineTelemetry(cap.tracer_provider, cap.meter_provider),
                                  registry=RunRegistry.in_dir(out))
    finally:
        instrumentor.uninstrument()
    assert result.ok, result
    telemetry = cap.snapshot()
    path = write_otlp_json(telemetry, work / "run.otlp.jsonl")
    (metadata,) = out.glob("*_metadata.json")
    return {"work": work, "otlp": path, "metadata": metadata, "telemetry": telemetry}


def _cli_report(run: dict[str, Any], contract: Path, name: str) -> tuple[int, Path]:
    html = run["work"] / name
    status = main(["check", str(contract), "--from", str(run["otlp"]), "--html", str(html), "-q"])
    assert html.is_file()
    return status, html


def test_the_report_of_a_real_run_lists_the_contract_tree_in_order(browser: Any, pipeline_run: dict[str, Any]) -> None:
    status, html = _cli_report(pipeline_run, CONTRACT, "report.html")
    assert status == 0
    tree = yaml.safe_load(CONTRACT.read_text())["traces"][0]["tree"]
    expected = [(node.name, depth) for root in parse_tree(tree) for node, depth in _walk(root)]
    with opened(browser, html) as page:
        assert page.page.inner_text("#verdict") == "PASSED"
        n_checks = len(load_contract(CONTRACT).checks)  # passed checks folded away, the waterfall first
        assert page.page.inner_text("details.passed-checks > summary") == f"{n_checks} check(s) passed"
        names = page.rows()
        depths = page.page.eval_on_selector_all(".span-row", "els => els.map(e => Number(e.dataset.depth))")
        rows = list(zip(names, depths))
        positions = [rows.index(pair) for pair in expected]  # each expected span at its nesting depth
        assert positions == sorted(positions), rows
        assert page.dialogs == [] and page.errors == []


def _walk(node: Any, depth: int = 0) -> Any:
    yield node, depth
    for child in node.children:
        yield from _walk(child, depth + 1)


def test_clicking_write_metadata_shows_its_size(browser: Any, pipeline_run: dict[str, Any]) -> None:
    _, html = _cli_report(pipeline_run, CONTRACT, "report.html")
    with opened(browser, html) as page:
        page.row("write_metadata").click()
        assert page.page.inner_text("#detail .detail-name") == "write_metadata"
        assert page.detail_value("metadata.size_bytes") == str(pipeline_run["metadata"].stat().st_size)
        assert page.page.locator("#detail tr", has_text="parent").inner_text().split() == ["parent", "write_output"]


def test_a_broken_contract_marks_the_spans_it_concerns(browser: Any, pipeline_run: dict[str, Any]) -> None:
    contract = pipeline_run["work"] / "broken.yaml"
    contract.write_text(BROKEN)
    status, html = _cli_report(pipeline_run, contract, "broken.html")
    assert status == 1
    with opened(browser, html) as page:
        p = page.page
        assert p.inner_text("#verdict") == "FAILED"
        mark = page.row("write_metadata").locator(".violation-mark")
        assert mark.count() == 1 and mark.get_attribute("title").startswith("✗ metadata_is_huge:")
        assert page.row("process_file").locator(".violation-mark").get_attribute("title").startswith(
            "✗ tree_with_checksum:")
        assert page.row("load_file").locator(".violation-mark").count() == 0
        # the failed tree check: expected and recorded side by side; a recorded line selects its span
        box = p.locator(".check.failed[data-check='tree_with_checksum']")
        assert box.locator("summary.divergence").inner_text().startswith(
            "span tree does not match (partial, any order): missing span 'write_checksum'")
        missing = box.locator(".side-by-side .expected .tree-line.missing")
        assert missing.count() == 1 and missing.inner_text().startswith("   └─ write_checksum")
        extra = box.locator(".side-by-side .actual .tree-line.extra").all_inner_texts()
        assert any(t.startswith("├─ load_file") for t in extra) and not any("write_metadata" in t for t in extra)
        box.locator(".side-by-side .actual .tree-line", has_text="write_metadata").click()
        assert p.inner_text("#detail .detail-name") == "write_metadata"
        assert "metadata_is_huge" in p.inner_text("#detail .mark-box")


def _probe_telemetry() -> model.Telemetry:
    """Every kind of text a run controls, carrying markup, recorded through the real SDK."""
    cap = Capture()
    tracer = cap.tracer_provider.get_tracer("probe")
    with cap.capturing_logs(logging.INFO):
        with tracer.start_as_current_span("</script><script>alert(2)</script>") as root:
            root.set_attribute("probe", PROBE)
            root.set_attribute("<b onmouseover=alert(3)>key", "<!-- comment \u2028 line")
            root.add_event("<svg onload=alert(5)>", {"e": PROBE})
            try:
                raise ValueError("<iframe src=javascript:alert(6)>")
            except ValueError as exc:
                root.record_exception(exc)
            logging.getLogger("probe").warning("<script>alert(4)</script>")
    return cap.snapshot()


def test_the_injection_probe_stays_text(browser: Any, tmp_path: Path) -> None:
    telemetry = _probe_telemetry()
    html = write_html(tmp_path / "probe.html", telemetry, title=PROBE, lint_report=lint(telemetry))
    with opened(browser, html) as page:
        p = page.page
        page.row("</script><script>alert(2)</script>").click()
        assert page.detail_value("probe") == PROBE
        assert page.detail_value("<b onmouseover=alert(3)>key") == "<!-- comment \u2028 line"
        assert p.locator("#detail .exception .mark-box").inner_text() == "ValueError: <iframe src=javascript:alert(6)>"
        assert p.locator("#detail .log-body").first.inner_text().startswith("<script>alert(4)</script>")
        assert p.title() == PROBE
        injected = p.evaluate("""() => ({
            tags: document.querySelectorAll('#app img, #app b, #app iframe, #app svg:not(.links), #app script').length,
            scripts: document.scripts.length,
        })""")
        assert injected == {"tags": 0, "scripts": 2}
        p.locator(".span-row .tick").first.hover()
        assert page.dialogs == [] and page.errors == []


def _big_trace(n: int) -> model.Telemetry:
    """One trace of ``n`` spans: a root, 100 batch spans, the rest leaves spread under them."""
    spans = [model.Span("root", 1, 1, None, start_time_ns=0, end_time_ns=n * 1000)]
    batches = 100
    for b in range(batches):
        spans.append(model.Span(f"batch-{b}", 1, 2 + b, 1, start_time_ns=b * 10, end_time_ns=n * 1000 - b))
    for i in range(n - 1 - batches):
        sid = 1000 + i
        spans.append(model.Span(f"leaf-{i}", 1, sid, 2 + i % batches, start_time_ns=i * 1000,
                                end_time_ns=i * 1000 + 500, attributes=model.Attributes({"i": i})))
    return model.Telemetry(tuple(spans))


def test_ten_thousand_spans_draw_only_the_rows_in_view(browser: Any, tmp_path: Path) -> None:
    telemetry = _big_trace(10_000)
    html = write_html(tmp_path / "big.html", telemetry)
    with opened(browser, html) as page:
        p = page.page
        assert 0 < p.locator(".span-row").count() < 100  # virtual rows: a window, not 10k nodes
        viewport = p.locator("details.trace .viewport")
        viewport.evaluate("v => { v.scrollTop = v.scrollHeight; v.dispatchEvent(new Event('scroll')); }")
        last = SpanForest(telemetry.spans).ordered()[-1].name
        p.wait_for_function(f"() => [...document.querySelectorAll('.span-name')].some(e => e.textContent == '{last}')")
        assert p.locator(".span-row").count() < 100
        p.locator(".toolbar button", has_text="collapse all").click()
        assert page.rows()[:3] == ["root", "batch-0", "batch-1"]  # every subtree below the root folded
        assert p.locator("details.trace .canvas").evaluate("c => c.style.height") == f"{101 * 22}px"
        page.row("batch-0").locator(".toggle").click()  # unfold one: its 99 leaves follow it
        assert page.rows()[:4] == ["root", "batch-0", "leaf-0", "leaf-100"]
        # selecting a span inside a collapsed subtree opens its ancestors and scrolls to it
        p.evaluate("() => telemetryReport.select('00000000000000000000000000000001:' + (1000 + 5000).toString(16).padStart(16, '0'))")
        assert p.inner_text("#detail .detail-name") == "leaf-5000"
        assert p.locator(".span-row.selected .span-name").inner_text() == "leaf-5000"
        assert page.errors == []


def _linked_telemetry() -> model.Telemetry:
    a = model.Attributes
    spans = (
        model.Span("consume", 7, 1, None, model.SpanKind.CONSUMER, 0, 10_000),
        model.Span("produce", 7, 2, 1, model.SpanKind.PRODUCER, 1_000, 3_000,
                   events=(model.Event("queued", 1_500), model.Event("sent", 2_500, a({"bytes": 12})))),
        model.Span("handle", 7, 3, 1, model.SpanKind.SERVER, 4_000, 9_000, model.StatusCode.ERROR, "boom",
                   links=(model.Link(7, 2, a({"why": "follows"})), model.Link(9, 99))),
        model.Span("tiny", 7, 4, 1, start_time_ns=9_000, end_time_ns=9_500),  # a trivial span for lint
    )
    metrics = (
        model.MetricPoint("latency", model.MetricKind.HISTOGRAM, a({"route": "/x"}), "s", count=6, sum=3.5,
                          min=0.1, max=2.0, bucket_counts=(1, 3, 2), explicit_bounds=(0.25, 1.0)),
        model.MetricPoint("requests", model.MetricKind.COUNTER, a({"route": "/x"}), "{request}", value=6),
    )
    return model.Telemetry(spans, metrics)


def test_links_events_metrics_and_lint_findings(browser: Any, tmp_path: Path) -> None:
    telemetry = _linked_telemetry()
    report = lint(telemetry)
    assert [f.where for f in report.findings if f.rule == "trivial_span"] == ["consume > tiny"]
    html = write_html(tmp_path / "linked.html", telemetry, lint_report=report)
    with opened(browser, html) as page:
        p = page.page
        line = p.locator("svg.links line")
        assert line.count() == 1
        assert (line.get_attribute("data-from"), line.get_attribute("data-to")) == (
            "0000000000000003", "0000000000000002")
        assert page.row("produce").locator(".tick").count() == 2
        assert "s-ERROR" in page.row("handle").locator(".bar").get_attribute("class")
        page.row("handle").click()
        links = p.locator("#detail ul.links li")
        assert links.count() == 2 and "a span not recorded here" in links.nth(1).inner_text()
        links.nth(0).locator("button").click()
        assert p.inner_text("#detail .detail-name") == "produce"
        assert p.locator("#detail table.events .event-name").all_inner_texts() == ["queued", "sent"]
        hist = p.locator("table.points[data-metric='latency'] .hist")
        assert hist.locator(".bucket-count").all_inner_texts() == ["1", "3", "2"]
        assert p.locator("table.points[data-metric='requests'] .point-value").inner_text() == "6"
        finding = p.locator("#lint tr.finding", has=p.locator("button", has_text="consume > tiny")).first
        assert finding.locator("td").nth(1).inner_text() == "trivial_span"
        finding.locator("button").first.click()
        assert p.inner_text("#detail .detail-name") == "tiny"
        assert page.errors == []


def test_many_traces_violations_first_and_links_across_traces(browser: Any, tmp_path: Path) -> None:
    """Eight traces: the one with a violation comes first and open, the rest from the sixth on
    are folded; a link into another trace opens that trace and selects its span."""
    spans = [model.Span(f"job-{t}", t, 1, None, start_time_ns=t, end_time_ns=t + 100) for t in range(1, 9)]
    spans.append(model.Span("follow-up", 8, 2, 1, start_time_ns=20, end_time_ns=50, links=(model.Link(6, 1),)))
    contract = parse_contract("version: 1\nspans:\n  - {id: no_follow_up, name: follow-up, absent: true}\n", "c.yaml")
    telemetry = model.Telemetry(tuple(spans))
    html = write_html(tmp_path / "many.html", telemetry, result=run_contract(contract, telemetry))
    with opened(browser, html) as page:
        p = page.page
        traces = p.locator("details.trace")
        assert traces.count() == 8
        assert traces.first.get_attribute("data-trace-id") == f"{8:032x}"
        opened_ids = traces.evaluate_all("ds => ds.map(d => d.open)")
        assert opened_ids == [True] * 5 + [False] * 3
        assert page.row("follow-up").locator(".link-mark").get_attribute("title") == "link to job-6"
        page.row("follow-up").click()
        p.locator("#detail ul.links button").click()
        assert p.inner_text("#detail .detail-name") == "job-6"
        assert p.locator(f"details.trace[data-trace-id='{6:032x}']").evaluate("d => d.open")  # was folded


def test_the_data_block_survives_a_closing_script_tag(tmp_path: Path) -> None:
    """Without a browser: the embedded JSON parses back to the same values, and no raw ``<`` is in it."""
    telemetry = _probe_telemetry()
    text = write_html(tmp_path / "p.html", telemetry).read_text()
    start = text.index('id="telemetry-data">') + len('id="telemetry-data">')
    block = text[start:text.index("</script>", start)]
    assert "<" not in block and ">" not in block and "\u2028" not in block
    data = json.loads(block)
    assert data["traces"][0]["spans"][0]["n"] == "</script><script>alert(2)</script>"
