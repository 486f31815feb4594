"""Each judge on synthetic telemetry: passes on the right shape, and its failure messages (pinned)."""

from __future__ import annotations

import pytest

from grading.checks import Evidence, run_check
from grading.course import CourseError, parse_exercise
from telemetry_asserts import model
from telemetry_asserts.model import Attributes as A

T1, T2 = 0xA1, 0xB2


def span(name: str, sid: int, parent: int | None = None, trace: int = T1, **kw: object) -> model.Span:
    return model.Span(name, trace, sid, parent_span_id=parent, **kw)  # type: ignore[arg-type]


def counter(name: str, value: int, **attrs: object) -> model.MetricPoint:
    return model.MetricPoint(
        name, model.MetricKind.COUNTER, A(attrs), unit="{execution}", value=value, is_monotonic=True
    )


GOOD_SPANS = (
    span("process_file", 1),
    span("load_file", 2, 1, events=(model.Event("large_file_detected", 1, A({"neuro.file.size_bytes": 5})),)),
    span("process_image", 3, 1),
    span("smooth", 4, 3, events=(model.Event("stage_started"), model.Event("stage_completed"))),
    span("write_output", 5, 1),
    span("write_metadata", 6, 5, attributes=A({"metadata.path": "x_metadata.json", "metadata.size_bytes": 10})),
)
FAIL_SPANS = (
    span(
        "process_file",
        11,
        trace=T2,
        status_code=model.StatusCode.ERROR,
        status_description="x: file not found",
        events=(model.Event("exception", 1, A({"exception.type": "InputNotFoundError"})),),
    ),
    span("load_file", 12, 11, trace=T2),
)
LOGS = (
    model.LogRecord(
        "Loading file", trace_id=T1, span_id=2, attributes=A({"file_path": "/d/x.nii.gz", "array_shape": (3, 3, 3)})
    ),
    model.LogRecord("Processed file"),
)
METRICS = (counter("neuro.stages.executed", 1, stage="smooth"), counter("neuro.files.processed", 1, status="failed"))


def evidence(spans=GOOD_SPANS + FAIL_SPANS, metrics=METRICS, logs=LOGS, prometheus=None, outputs=None) -> Evidence:
    everything = model.Telemetry(tuple(spans), tuple(metrics), tuple(logs))
    return Evidence(
        everything,
        {  # as the engine splits them: by trace, uncorrelated logs by time (here: all in the success run)
            "success": everything.trace(T1).with_(logs=tuple(r for r in logs if r.trace_id in (0, T1))),
            "missing_file": everything.trace(T2),
        },
        {"outputs": outputs if outputs is not None else {"x_metadata.json": 10}},
        prometheus if prometheus is not None else {"neuro_stages_executed": ("neuro_stages_executed_total",)},
    )


PASSING = [
    ("span_present", {"span": "write_metadata", "count": 1}),
    ("span_parent", {"span": "write_metadata", "parent": "write_output"}),
    ("span_attributes", {"span": "write_metadata", "attributes": {"metadata.size_bytes": {"type": "int"}}}),
    (
        "span_size_matches_output",
        {"span": "write_metadata", "path_attribute": "metadata.path", "size_attribute": "metadata.size_bytes"},
    ),
    ("span_error", {"span": "process_file", "scenario": "missing_file"}),
    ("span_exception", {"span": "process_file", "scenario": "missing_file", "type": "NotFound"}),
    (
        "span_event",
        {"span": "load_file", "event": "large_file_detected", "attributes": {"neuro.file.size_bytes": {"type": "int"}}},
    ),
    ("metric_present", {"metric": "neuro.stages.executed", "kind": "counter", "unit": "{execution}"}),
    ("metric_attribute_keys", {"metric": "neuro.stages.executed", "keys": ["stage"]}),
    ("metric_value", {"metric": "neuro.files.processed", "attributes": {"status": "failed"}, "value": 1}),
    ("metric_counts_spans", {"metric": "neuro.stages.executed", "key": "stage", "under": "process_image"}),
    ("prometheus_series", {"series": "neuro_stages_executed_total"}),
    ("log_present", {"body": "^Loading file", "attributes": {"file_path": {"type": "str"}}}),
    ("log_inside_span", {"body": "^Loading file", "span": "load_file"}),
    ("no_path_in_metric_attributes", {}),
    ("metric_series_limit", {"max_series": 3, "allowed_keys": ["stage", "status"]}),
]


@pytest.mark.parametrize(("kind", "params"), PASSING, ids=[k for k, _ in PASSING])
def test_judges_pass_on_the_right_shape(kind: str, params: dict) -> None:
    verdict = run_check(kind, evidence(), params)
    assert verdict.passed, verdict.detail


def _spans_without(name: str) -> tuple[model.Span, ...]:
    return tuple(s for s in GOOD_SPANS + FAIL_SPANS if s.name != name)


FAILING = [
    (
        "span_present",
        {"span": "write_metadat"},
        evidence(),
        "expected a span 'write_metadat' in the success run (did you mean 'write_metadata'?); spans that arrived: "
        "load_file, process_file, process_image, smooth, write_metadata, write_output",
    ),
    ("span_present", {"span": "smooth", "count": 2}, evidence(), "expected 2 span(s) 'smooth' per trace, found 1"),
    (
        "span_parent",
        {"span": "write_metadata", "parent": "process_file"},
        evidence(),
        "expected span 'write_metadata' directly under 'process_file', found it under 'write_output'",
    ),
    (
        "span_attributes",
        {"span": "write_metadata", "attributes": {"metadata.bytes": {"type": "int"}}},
        evidence(),
        "span 'write_metadata': missing attribute 'metadata.bytes' (did you mean 'metadata.size_bytes'?), expected IsType(int)",
    ),
    (
        "span_size_matches_output",
        {"span": "write_metadata", "path_attribute": "metadata.path", "size_attribute": "metadata.size_bytes"},
        evidence(outputs={"x_metadata.json": 11}),
        "metadata.size_bytes=10 but x_metadata.json has 11 bytes on disk",
    ),
    (
        "span_size_matches_output",
        {"span": "write_metadata", "path_attribute": "metadata.path", "size_attribute": "metadata.size_bytes"},
        evidence(outputs={}),
        "metadata.path='x_metadata.json' names no file the run wrote (wrote: nothing)",
    ),
    (
        "span_error",
        {"span": "load_file", "scenario": "missing_file"},
        evidence(),
        "span 'load_file' has status UNSET, expected ERROR with a description",
    ),
    (
        "span_exception",
        {"span": "load_file", "scenario": "missing_file"},
        evidence(),
        "span 'load_file' has no recorded exception (events: none); call span.record_exception(exc)",
    ),
    (
        "span_exception",
        {"span": "process_file", "scenario": "missing_file", "type": "Corrupt"},
        evidence(),
        "span 'process_file' recorded InputNotFoundError, expected an exception matching 'Corrupt'",
    ),
    (
        "span_event",
        {"event": "stage_complete"},
        evidence(),
        "expected at least 1 event(s) 'stage_complete' on any span in the success run, found 0 (did you mean "
        "'stage_completed'?); events seen: large_file_detected, stage_completed, stage_started",
    ),
    (
        "span_event",
        {
            "span": "load_file",
            "event": "large_file_detected",
            "attributes": {"neuro.file.threshold_bytes": {"type": "int"}},
        },
        evidence(),
        "event 'large_file_detected' on span 'load_file': missing attribute 'neuro.file.threshold_bytes' "
        "(did you mean 'neuro.file.size_bytes'?), expected IsType(int)",
    ),
    (
        "metric_present",
        {"metric": "neuro.stages.executed", "unit": "executions"},
        evidence(),
        "metric 'neuro.stages.executed' has unit '{execution}', expected 'executions'",
    ),
    (
        "metric_present",
        {"metric": "neuro.stage.executed"},
        evidence(),
        "no metric 'neuro.stage.executed' arrived (did you mean 'neuro.stages.executed'?); metrics seen: "
        "neuro.files.processed, neuro.stages.executed",
    ),
    (
        "metric_value",
        {"metric": "neuro.files.processed", "attributes": {"status": "failed"}, "value": 2},
        evidence(),
        "expected neuro.files.processed{'status': 'failed'} = 2, got 1 (points: {'status': 'failed'} = 1)",
    ),
    (
        "metric_counts_spans",
        {"metric": "neuro.stages.executed", "key": "stage", "under": "process_image"},
        evidence(metrics=(counter("neuro.stages.executed", 4),)),
        "expected neuro.stages.executed by stage to count each executed stage once: expected {smooth: 1}, got {(no stage): 4}",
    ),
    (
        "prometheus_series",
        {"series": "neuro_stages_executed_total", "related": "neuro_stages_executed"},
        evidence(prometheus={"x": ("neuro_stages_executed_executions_total",)}),
        "the lesson's query needs the Prometheus series 'neuro_stages_executed_total', but the exporter serves "
        "neuro_stages_executed_executions_total (check the instrument's name and unit: a unit such as 'executions' "
        "is appended to the series name; use a braced unit like '{execution}')",
    ),
    (
        "log_present",
        {"body": "^Loading"},
        evidence(logs=()),
        "expected a log record matching '^Loading' in the success run; logs seen: none",
    ),
    (
        "log_inside_span",
        {"body": "^Loading file", "span": "load_file"},
        evidence(logs=(model.LogRecord("Loading file", attributes=A({"file_path": "p"})),)),
        "log 'Loading file' has no trace/span id: it was emitted outside any span, expected inside 'load_file'",
    ),
    (
        "log_inside_span",
        {"body": "^Loading file", "span": "load_file", "attributes": {"array_shape": {"any": True}}},
        evidence(logs=(model.LogRecord("Loading file", trace_id=T1, span_id=2),)),
        "no log 'Loading file' with the fields array_shape arrived, so none can be inside 'load_file'",
    ),
    (
        "no_path_in_metric_attributes",
        {},
        evidence(metrics=(counter("m", 1, file="sub-01_T1w.nii.gz"),)),
        "metric 'm' has attribute file='sub-01_T1w.nii.gz': a path in a metric attribute makes one series per file "
        "(and leaks user paths); remove it",
    ),
    (
        "metric_series_limit",
        {"max_series": 1},
        evidence(metrics=(counter("m", 1, stage="a"), counter("m", 1, stage="b"))),
        "metric 'm' has 2 series (limit 1)",
    ),
]


@pytest.mark.parametrize(
    ("kind", "params", "ev", "message"), FAILING, ids=[f"{k}-{i}" for i, (k, *_) in enumerate(FAILING)]
)
def test_judge_failure_messages(kind: str, params: dict, ev: Evidence, message: str) -> None:
    verdict = run_check(kind, ev, params)
    assert not verdict.passed
    assert verdict.detail == message


def test_unknown_kind_is_named() -> None:
    with pytest.raises(KeyError, match="unknown check kind 'span_presnt' \\(did you mean 'span_present'\\?\\)"):
        run_check("span_presnt", evidence(), {})


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"checks": []}, "ex.yaml: missing key 'id'"),
        ({"id": "a", "checks": []}, "ex.yaml: exercise 'a' has no checks"),
        (
            {"id": "a", "checks": [{"id": "c", "kind": "nope", "points": 1, "feedback": "f"}]},
            "ex.yaml: checks[0]: unknown kind 'nope'",
        ),
        (
            {"id": "a", "checks": [{"id": "c", "kind": "span_present", "points": 0, "feedback": "f"}]},
            "ex.yaml: checks[0]: points must be > 0",
        ),
        (
            {"id": "a", "checks": [{"id": "c", "kind": "span_present", "points": 1}]},
            "ex.yaml: checks[0]: missing key 'feedback'",
        ),
    ],
)
def test_malformed_exercises_are_named(doc: dict, message: str) -> None:
    with pytest.raises(CourseError) as info:
        parse_exercise(doc, "ex.yaml")
    assert str(info.value).startswith(message)


def test_full_paths_on_spans() -> None:
    spans = (
        span("process_file", 1, attributes=A({"neuro.file.name": "x.nii.gz"})),
        span("write_metadata", 2, 1, attributes=A({"metadata.path": "/runs/7/out/x_metadata.json"})),
    )
    telemetry = model.Telemetry(spans)
    ev = Evidence(telemetry, {"success": telemetry}, work_dir="/runs/7")
    assert run_check("no_work_dir_in_span_attributes", ev, {"allow": ["metadata.path"]}).passed
    verdict = run_check("no_work_dir_in_span_attributes", ev, {})
    assert verdict.detail == (
        "span 'write_metadata' has metadata.path='/runs/7/out/x_metadata.json' (str): a full user path; record the file name only"
    )


def test_root_span_selection() -> None:
    verdict = run_check(
        "span_attributes", evidence(), {"root": True, "attributes": {"neuro.file.name": {"type": "str"}}}
    )
    assert verdict.detail == "the root span: missing attribute 'neuro.file.name', expected IsType(str)"
    assert run_check("span_error", evidence(), {"root": True, "scenario": "missing_file"}).passed
