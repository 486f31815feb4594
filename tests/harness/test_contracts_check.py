"""run_contract: every kind of check, judged on telemetry recorded by the real SDK (no mocks)."""

from __future__ import annotations

import logging
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import Link, Status, StatusCode

from telemetry_asserts import model
from telemetry_asserts.capture import Capture
from telemetry_asserts.contracts import parse_contract
from telemetry_asserts.contracts.check import ContractResult, prometheus_names, run_contract
from telemetry_asserts.junit import junit_xml, results_json

STAGES = ("skull_strip", "smooth")
log = logging.getLogger("pipeline.test_contracts_check")


def record(
    *,
    files: tuple[str, ...] = ("a.nii.gz", "b.nii.gz"),
    stage_unit: str = "{execution}",
    log_outside: bool = False,
    extra: Callable[[Capture], None] | None = None,
) -> model.Telemetry:
    """A small pipeline-like run through real SDK providers: one trace per file, a batch with links."""
    cap = Capture(Resource.create({"service.name": "demo", "service.version": "1.2.3"}))
    tracer = cap.tracer_provider.get_tracer("demo_scope", "1.0")
    meter = cap.meter_provider.get_meter("demo_scope", "1.0")
    files_processed = meter.create_counter("neuro.files.processed", unit="{file}")
    stages = meter.create_counter("neuro.stages.executed", unit=stage_unit)
    duration = meter.create_histogram("neuro.process.duration", unit="s")
    with cap.capturing_logs(logging.INFO, logger="pipeline"):
        with tracer.start_as_current_span("process_batch") as batch:
            batch_ctx = batch.get_span_context()
        for name in files:
            with tracer.start_as_current_span("process_file", context=None, links=[Link(batch_ctx)],
                                              attributes={"neuro.file.name": name, "neuro.file.size_bytes": 1000}):
                with tracer.start_as_current_span("load_file", attributes={"neuro.image.shape": [4, 4, 4]}):
                    if not log_outside:
                        log.info("Loading file", extra={"file_path": f"/data/{name}", "file_exists": True})
                if log_outside:
                    log.info("Loading file", extra={"file_path": f"/data/{name}", "file_exists": True})
                with tracer.start_as_current_span("process_image"):
                    for stage in STAGES:
                        with tracer.start_as_current_span(stage, attributes={"neuro.stage.name": stage}) as span:
                            span.add_event("stage_started")
                            span.add_event("stage_completed", {"neuro.stage.duration_s": 0.01})
                            stages.add(1, {"stage": stage})
                with tracer.start_as_current_span("write_output"):
                    with tracer.start_as_current_span("write_metadata",
                                                      attributes={"metadata.path": name.replace(".nii.gz", ".json"),
                                                                  "metadata.size_bytes": 321}):
                        pass
                files_processed.add(1, {"status": "success"})
                duration.record(0.25, {"status": "success"})
        if extra is not None:
            extra(cap)
    return cap.snapshot()


@pytest.fixture(scope="module")
def good() -> model.Telemetry:
    return record()


def judge(text: str, telemetry: model.Telemetry) -> ContractResult:
    return run_contract(parse_contract("version: 1\n" + textwrap.dedent(text), source="t.yaml"), telemetry)


def only_message(result: ContractResult) -> str:
    assert len(result.results) == 1
    return result.results[0].message


TREE = """\
traces:
  - id: shape
    root: process_file
    tree: |
      process_file
      ├─ load_file
      ├─ process_image
      │  ├─ skull_strip
      │  └─ smooth
      └─ write_output
         └─ write_metadata
"""


# --- traces -----------------------------------------------------------------------------------------


def test_tree_holds_in_every_trace(good: model.Telemetry) -> None:
    result = judge(TREE, good)
    assert result.passed and result.results[0].message == ""


def test_missing_span_fails_each_trace_naming_the_span_and_marking_the_root(good: model.Telemetry) -> None:
    result = judge(TREE.replace("└─ smooth", "├─ smooth\n      │  └─ resample"), good)
    assert not result.passed
    msg = only_message(result)
    assert msg.count("trace ") == 2  # both files' traces are reported
    assert "resample" in msg.splitlines()[1]
    roots = [s for s in good.spans if s.name == "process_file"]
    marks = result.marks
    assert set(marks) == {(s.trace_id, s.span_id) for s in roots}
    assert all(note.startswith("✗ shape: ") and "resample" in note for note in marks.values())


def test_only_the_broken_trace_is_reported() -> None:
    def broken(cap: Capture) -> None:
        tracer = cap.tracer_provider.get_tracer("demo_scope")
        with tracer.start_as_current_span("process_file", context=None):
            with tracer.start_as_current_span("load_file"):
                pass
    t = record(files=("a.nii.gz",), extra=broken)
    msg = only_message(judge(TREE, t))
    bad_trace = next(s.trace_id_hex for s in t.spans if s.name == "process_file" and not s.attributes)
    assert msg.startswith(f"trace {bad_trace}:")
    assert msg.count("\ntrace ") == 0


def test_trace_count_and_unknown_root(good: model.Telemetry) -> None:
    msg = only_message(judge(TREE.replace("root: process_file", "root: process_file\n    traces: 3"), good))
    assert msg.startswith("expected exactly 3 trace(s) with root span 'process_file', found 2; root spans recorded: "
                          "process_batch, process_file")
    msg = only_message(judge(TREE.replace("root: process_file", "root: proces_file"), good))
    assert msg == ("expected at least 1 trace(s) with root span 'proces_file', found 0 (did you mean 'process_file'?); "
                   "root spans recorded: process_batch, process_file")


def test_trace_whose_real_root_was_not_exported_is_judged_from_its_top(good: model.Telemetry) -> None:
    """Spans of a worker whose parent lives in another process: process_file is the top of its trace."""
    from dataclasses import replace

    orphaned = good.with_(spans=tuple(replace(s, parent_span_id=0xDEAD) if s.name == "process_file" else s
                                      for s in good.spans))
    assert judge(TREE, orphaned).passed


def test_text_tree_attributes_take_matchers(good: model.Telemetry) -> None:
    text = TREE.replace("└─ write_metadata", "└─ write_metadata {metadata.size_bytes: {type: int, range: [1, null]}}")
    assert judge(text, good).passed
    msg = only_message(judge(text.replace("type: int", "type: str"), good))
    assert "write_metadata" in msg and "metadata.size_bytes" in msg


def test_tree_as_nested_data_with_attribute_matchers(good: model.Telemetry) -> None:
    text = """\
    traces:
      - id: data_tree
        root: process_file
        tree:
          name: process_file
          attributes: {neuro.file.size_bytes: {type: int, range: [1, null]}}
          children:
            - name: write_output
              children: [{name: write_metadata, attributes: {metadata.size_bytes: {type: int}}}]
    """
    assert judge(text, good).passed
    result = judge(text.replace("metadata.size_bytes: {type: int}", "metadata.size_bytes: {type: str}"), good)
    assert not result.passed and "metadata.size_bytes" in only_message(result)


# --- spans ------------------------------------------------------------------------------------------


def test_span_attributes_parent_events_per_trace(good: model.Telemetry) -> None:
    text = """\
    spans:
      - id: meta
        name: write_metadata
        scope: {each_trace: process_file}
        count: 1
        parent: write_output
        kind: INTERNAL
        attributes: {metadata.path: {regex: '[^/]+\\.json'}, metadata.size_bytes: {type: int}}
        status: UNSET
        exception: false
      - id: stage_events
        name: smooth
        events: [{name: stage_started}, {name: stage_completed, attributes: {neuro.stage.duration_s: {type: float}}}]
        events_ordered: true
      - id: linked
        name: process_file
        links: 1
        linked_to: process_batch
    """
    result = judge(text, good)
    assert result.passed, "\n".join(r.message for r in result.results)


def test_span_attribute_mismatch_message_and_mark(good: model.Telemetry) -> None:
    result = judge("""\
    spans:
      - id: meta
        name: write_metadata
        attributes: {metadata.size_bytes: {type: str}, metadata.sizebytes: 1}
    """, good)
    msg = only_message(result)
    metas = [s for s in good.spans if s.name == "write_metadata"]
    for span in metas:  # one report per span, in each trace
        assert (f"span 'process_file > write_output > write_metadata' ({span.span_id_hex}): "
                "attributes do not match:") in msg
        assert result.marks[(span.trace_id, span.span_id)] == "✗ meta: attributes do not match:"
    assert "attribute 'metadata.size_bytes': expected IsType(str), got 321 (int)" in msg
    assert "missing attribute 'metadata.sizebytes' (did you mean 'metadata.size_bytes'?)" in msg


def test_span_missing_name_uses_the_views_suggestion(good: model.Telemetry) -> None:
    msg = only_message(judge("spans:\n  - id: s\n    name: write_metadat\n", good))
    assert msg.startswith("no span matches name='write_metadat'")
    assert "did you mean 'write_metadata'?" in msg


def test_span_count_absent_where_parent_status_exception(good: model.Telemetry) -> None:
    msg = only_message(judge("spans:\n  - id: s\n    name: smooth\n    count: {max: 1}\n", good))
    assert msg == "expected at most 1 span(s) 'smooth', found 2"
    msg = only_message(judge("spans:\n  - id: s\n    name: load_file\n    absent: true\n", good))
    assert msg.startswith("expected no span 'load_file', found 2:\n  - process_file > load_file (")
    where = "spans:\n  - id: s\n    name: process_file\n    where: {attributes: {neuro.file.name: b.nii.gz}}\n"
    assert judge(where + "    count: 1\n", good).passed
    assert only_message(judge(where + "    count: 2\n", good)) == (
        "expected exactly 2 span(s) 'process_file' matching attributes={'neuro.file.name': 'b.nii.gz'}, found 1 "
        "(2 named so in all)")
    msg = only_message(judge("spans:\n  - id: s\n    name: smooth\n    parent: process_file\n    status: ERROR\n"
                             "    exception: {type: ValueError}\n", good))
    lines = msg.splitlines()
    assert len(lines) == 6  # three problems, on each of the two smooth spans
    assert lines[0].startswith("span 'process_file > process_image > smooth' (")
    assert "): expected parent 'process_file'" in lines[0]
    assert lines[1].endswith("): expected status ERROR, got UNSET")
    assert lines[2].endswith("): expected a recorded exception, found none (events: 'stage_started', 'stage_completed')")


def test_span_links(good: model.Telemetry) -> None:
    msg = only_message(judge("spans:\n  - id: s\n    name: process_file\n    links: 2\n    linked_to: load_file\n", good))
    lines = msg.splitlines()
    assert len(lines) == 4
    assert lines[0].endswith("): expected exactly 2 link(s), got 1")
    assert lines[1].endswith("): expected a link to a span 'load_file', links to: 'process_batch'")


def test_span_scope_each_trace_counts_per_trace(good: model.Telemetry) -> None:
    assert judge("spans:\n  - id: s\n    name: load_file\n    scope: {each_trace: process_file}\n    count: 1\n",
                 good).passed
    msg = only_message(judge("spans:\n  - id: s\n    name: smooth\n    scope: {each_trace: process_file}\n"
                             "    count: 2\n", good))
    assert msg.count("(root 'process_file'):") == 2
    assert "expected exactly 2 span(s) 'smooth', found 1" in msg
    msg = only_message(judge("spans:\n  - id: s\n    name: x\n    scope: {each_trace: proces_file}\n", good))
    assert msg == ("no trace has a root span named 'proces_file' (did you mean 'process_file'?); "
                   "root spans recorded: process_batch, process_file")


def test_error_span_status_and_exception_checks() -> None:
    def failing(cap: Capture) -> None:
        tracer = cap.tracer_provider.get_tracer("demo_scope")
        with tracer.start_as_current_span("process_file", context=None) as root:
            try:
                raise FileNotFoundError("missing.nii.gz")
            except FileNotFoundError as exc:
                root.record_exception(exc)
                root.set_status(Status(StatusCode.ERROR, "input not found"))
    t = record(files=(), extra=failing)
    result = judge("""\
    spans:
      - id: err
        name: process_file
        status: {code: ERROR, description: {regex: 'input .*'}}
        exception: {type: FileNotFoundError, message: {contains: missing}}
    limits:
      - id: no_errors
        no_errors: true
    """, t)
    assert result.result("err").passed, result.result("err").message
    no_errors = result.result("no_errors")
    assert not no_errors.passed
    assert no_errors.message.startswith("1 span(s) have status ERROR, expected none:\n  - process_file: input not found")
    assert list(no_errors.marks.values()) == ["✗ no_errors: ERROR status"]


# --- metrics ----------------------------------------------------------------------------------------


def test_metric_type_unit_prometheus_name_and_points(good: model.Telemetry) -> None:
    text = """\
    metrics:
      - id: stages
        name: neuro.stages.executed
        type: counter
        unit: '{execution}'
        prometheus_name: neuro_stages_executed_total
        data_points:
          - {attributes: {stage: skull_strip}, value: 2}
          - {attributes: {stage: smooth}, value: 2}
        exact_points: true
      - id: duration
        name: neuro.process.duration
        type: histogram
        prometheus_name: neuro_process_duration_seconds_bucket
        data_points: [{attributes: {status: success}, count: 2, sum: {range: [0.4, 0.6]}}]
    """
    result = judge(text, good)
    assert result.passed, "\n".join(r.message for r in result.results)


def test_lesson_unit_renames_the_prometheus_series() -> None:
    t = record(stage_unit="executions")
    msg = only_message(judge("""\
    metrics:
      - id: stages
        name: neuro.stages.executed
        prometheus_name: neuro_stages_executed_total
    """, t))
    assert msg == ("metric 'neuro.stages.executed' (unit 'executions') is exported to Prometheus as "
                   "neuro_stages_executed_executions_total, not neuro_stages_executed_total: a query for "
                   "neuro_stages_executed_total finds nothing")


def test_prometheus_names_come_from_the_exporter(good: model.Telemetry) -> None:
    by = {n: [p for p in good.metrics if p.name == n] for n in {p.name for p in good.metrics}}
    assert prometheus_names(by["neuro.stages.executed"]) == ("neuro_stages_executed_total",)
    assert prometheus_names(by["neuro.files.processed"]) == ("neuro_files_processed_total",)
    assert set(prometheus_names(by["neuro.process.duration"])) == {
        "neuro_process_duration_seconds", "neuro_process_duration_seconds_bucket",
        "neuro_process_duration_seconds_count", "neuro_process_duration_seconds_sum"}


def test_metric_failures_use_the_metric_views_messages(good: model.Telemetry) -> None:
    msg = only_message(judge("""\
    metrics:
      - id: stages
        name: neuro.stages.executed
        unit: executions
        data_points: [{attributes: {stage: resample}, value: 1}]
    """, good))
    assert msg.splitlines()[:2] == ["metric 'neuro.stages.executed':", "  unit: expected 'executions', got '{execution}'"]
    assert "missing expected points:\n  {stage='resample'}: value=1" in msg
    msg = only_message(judge("metrics:\n  - id: m\n    name: neuro.stage.executed\n", good))
    assert msg.startswith("no metric 'neuro.stage.executed' was recorded (did you mean 'neuro.stages.executed'?)")
    assert judge("metrics:\n  - id: m\n    name: neuro.voxels\n    absent: true\n", good).passed
    assert only_message(judge("metrics:\n  - id: m\n    name: neuro.stages.executed\n    absent: true\n", good)) == (
        "expected no metric 'neuro.stages.executed', found 2 series")


# --- logs -------------------------------------------------------------------------------------------


def test_log_fields_and_correlation(good: model.Telemetry) -> None:
    text = """\
    logs:
      - id: loading
        body: Loading file
        severity: INFO
        attributes: {file_path: {type: str}, file_exists: true}
        count: 2
        inside: load_file
      - id: no_errors
        severity: {at_least: ERROR}
        absent: true
    """
    result = judge(text, good)
    assert result.passed, "\n".join(r.message for r in result.results)


def test_log_outside_its_span_names_the_span_it_came_from() -> None:
    t = record(files=("a.nii.gz",), log_outside=True)
    result = judge("logs:\n  - id: loading\n    body: Loading file\n    inside: load_file\n", t)
    msg = only_message(result)
    assert msg.startswith("1 of 1 log record(s) not correlated with span 'load_file':")
    assert "(span 'process_file')" in msg


def test_log_missing_lists_what_was_recorded(good: model.Telemetry) -> None:
    msg = only_message(judge("logs:\n  - id: l\n    body: Loading fil\n", good))
    assert msg.startswith("expected a log record with body='Loading fil', found 0\nclosest: ")
    assert "recorded logs (2):" in msg


# --- resource and limits ----------------------------------------------------------------------------


def test_resource_attributes(good: model.Telemetry) -> None:
    assert judge("resource:\n  id: r\n  attributes: {service.name: demo, service.version: {regex: '1\\..*'}}\n",
                 good).passed
    msg = only_message(judge("resource:\n  id: r\n  attributes: {service.name: neuro-preprocess}\n", good))
    assert msg == ("resource of a span (demo):\n"
                   "  attribute 'service.name': expected 'neuro-preprocess' (str), got 'demo' (str)")


def test_limits_pass_on_a_clean_run(good: model.Telemetry) -> None:
    result = judge("""\
    limits:
      - {id: card, cardinality: {signal: metrics, key: stage, max: 2}}
      - {id: series, series: {metric: neuro.stages.executed, max: 2}}
      - {id: forbidden, forbidden_attributes: {keys: [file_path], patterns: ['.*\\.path'], signals: [metrics]}}
      - {id: sensitive, sensitive: true}
      - {id: lint, lint: {disable: [trivial_span]}}
      - {id: errors, no_errors: true}
    """, good)
    assert result.passed, "\n".join(f"{r.id}: {r.message}" for r in result.results)


def test_limits_fail_with_the_judges_messages(good: model.Telemetry) -> None:
    result = judge("""\
    limits:
      - {id: card, cardinality: {signal: spans, key: neuro.file.name, max: 1, name: process_file}}
      - {id: series, series: {metric: neuro.stages.executed, max: 1}}
      - {id: forbidden, forbidden_attributes: {keys: [file_path], signals: [logs, metrics]}}
      - {id: sensitive, sensitive: {keys: [neuro file name]}}
    """, good)
    msgs = {r.id: r.message for r in result.results}
    assert msgs["card"] == ("attribute cardinality above 1 across spans named 'process_file':\n"
                            "  'neuro.file.name': 2 distinct values ('a.nii.gz', 'b.nii.gz')")
    assert msgs["series"] == "metrics with more than 1 series:\n  'neuro.stages.executed': 2 series"
    assert msgs["forbidden"] == "forbidden attribute 'file_path' on 2 logs 'Loading file'"
    assert msgs["sensitive"].startswith("sensitive data in telemetry (1):\n  span 'process_file': attribute "
                                        "'neuro.file.name': key matches deny term 'neuro file name'")


def test_lint_limit_reports_loop_spans(monkeypatch: pytest.MonkeyPatch) -> None:
    import telemetry_asserts
    from telemetry_asserts.lint import lint

    # The package exports the *function* lint under the module's name; the judge must not care.
    monkeypatch.setattr(telemetry_asserts, "lint", lint)

    def loop(cap: Capture) -> None:
        tracer = cap.tracer_provider.get_tracer("demo_scope")
        with tracer.start_as_current_span("process_file", context=None):
            for i in range(30):
                with tracer.start_as_current_span("voxel"):
                    sum(range(2000))
    t = record(files=(), extra=loop)
    msg = only_message(judge("limits:\n  - id: lint\n    lint: {disable: [trivial_span]}\n", t))
    assert msg.startswith("instrumentation lint: 1 finding")
    assert "voxel" in msg
    assert judge("limits:\n  - id: lint\n    lint: {disable: [trivial_span, tight_loop]}\n", t).passed


# --- results ----------------------------------------------------------------------------------------


def test_points_feedback_score_only_and_junit(good: model.Telemetry) -> None:
    contract = parse_contract(textwrap.dedent("""\
        version: 1
        name: exercise
        spans:
          - id: meta
            name: write_metadata
            points: 2
            feedback: add the write_metadata span
          - id: ghost
            name: ghost_span
            points: 3
            feedback: there must be a ghost span
        """), source="ex.yaml")
    result = run_contract(contract, good)
    assert (result.score, result.max_score, result.passed) == (2.0, 5.0, False)
    ghost = result.result("ghost")
    assert (ghost.points, ghost.max_points, ghost.feedback) == (0.0, 3.0, "there must be a ghost span")
    assert result.result("meta").feedback == ""
    assert run_contract(contract, good, only=["meta"]).passed

    suite = result.to_suite()
    root = ET.fromstring(junit_xml([suite]))
    assert root.get("tests") == "2" and root.get("failures") == "1"
    case = root.find("./testsuite/testcase[@name='ghost']")
    assert case is not None and case.get("classname") == "exercise.spans"
    failure = case.find("failure")
    assert failure is not None and failure.get("message").startswith("no span matches name='ghost_span'")
    assert failure.text.endswith("feedback: there must be a ghost span")
    assert {p.get("name"): p.get("value") for p in case.iter("property")}["max_score"] == "3"
    data = results_json([suite])
    assert data["totals"] == {"passed": 1, "failed": 1, "error": 0, "skipped": 0, "tests": 2}
    assert data["suites"][0]["properties"]["score"] == "2"


def test_a_check_that_crashes_is_an_error_and_the_rest_still_run(good: model.Telemetry) -> None:
    result = judge("""\
    limits:
      - {id: broken, lint: {options: {loop_threshold: many}}}
    spans:
      - {id: fine, name: load_file}
    """, good)
    broken = result.result("broken")
    assert broken.error and not broken.passed
    assert broken.message.startswith("the check could not be evaluated:\nTraceback")
    assert result.result("fine").passed
    assert result.to_suite().cases[-1].outcome == "error"


@pytest.fixture(autouse=True)
def _quiet_pipeline_logger() -> Iterator[None]:
    logger = logging.getLogger("pipeline")
    before = logger.propagate
    logger.propagate = False  # keep these records out of pytest's own log capture noise
    yield
    logger.propagate = before


# --- the JUnit/JSON writers shared with the grader --------------------------------------------------


def test_junit_counts_outcomes_and_survives_control_characters(tmp_path) -> None:
    from telemetry_asserts.junit import CaseResult, SuiteResult, write_json, write_junit_xml

    cases = (
        CaseResult("ok", "s.spans", "passed", score=1, max_score=1),
        CaseResult("bad", "s.spans", "failed", "first line\nsecond", "out\x00put \x1b[31mred\x1b[0m & <tags>"),
        CaseResult("boom", "s.limits", "error", "Traceback", "details"),
        CaseResult("later", "s.logs", "skipped", "not run"),
    )
    suite = SuiteResult("s", cases, 1.5, {"submission": "alice"}, system_out="printed\x07")
    write_junit_xml([suite, SuiteResult("empty", ())], tmp_path / "j.xml")
    root = ET.parse(tmp_path / "j.xml").getroot()  # parses: illegal XML characters were escaped
    assert {k: root.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "4", "failures": "1", "errors": "1", "skipped": "1"}
    bad = root.find("./testsuite/testcase[@name='bad']/failure")
    assert bad.get("message") == "first line" and bad.get("type") == "TelemetryContractViolation"
    assert bad.text == "out\\x00put \\x1b[31mred\\x1b[0m & <tags>"
    assert root.find("./testsuite/testcase[@name='boom']/error") is not None
    assert root.find("./testsuite/testcase[@name='later']/skipped").get("message") == "not run"
    assert root.find("./testsuite/system-out").text == "printed\\x07"
    assert {p.get("name"): p.get("value") for p in root.find("./testsuite/properties")} == {"submission": "alice"}
    write_json(results_json([suite]), tmp_path / "r.json")
    import json

    data = json.loads((tmp_path / "r.json").read_text())
    assert data["passed"] is False and data["totals"]["tests"] == 4
    assert not suite.passed and SuiteResult("x", cases[:1]).passed
    with pytest.raises(ValueError, match="outcome must be one of"):
        CaseResult("x", "y", "fail")  # type: ignore[arg-type]
