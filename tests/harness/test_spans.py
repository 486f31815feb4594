"""SpanView selection and SpanAssert assertions, with their failure messages pinned."""

from __future__ import annotations

import pytest
from opentelemetry import trace as trace_api
from opentelemetry.trace import Link as SdkLink
from opentelemetry.trace import Status
from opentelemetry.trace import StatusCode as SdkStatusCode

from telemetry_asserts.capture import Capture
from telemetry_asserts.errors import TelemetryAssertionError
from telemetry_asserts.matchers import InRange, Regex
from telemetry_asserts.model import Event, Link, Span, SpanKind, StatusCode, attributes
from telemetry_asserts.spans import SpanAssert, SpanView

T1 = 0x0AF7651916CD43DD8448EB211C80319C


def span(name: str, span_id: int, parent: int | None = None, start: int = 0, **kw: object) -> Span:
    attrs = kw.pop("attrs", {})
    return Span(name, kw.pop("trace_id", T1), span_id, parent, start_time_ns=start, end_time_ns=start + 10,
                attributes=attributes(attrs), **kw)  # type: ignore[arg-type]


VIEW = SpanView(
    [
        span("process_file", 1, kind=SpanKind.SERVER, attrs={"file.name": "sub-001_T1w.nii.gz"}),
        span("load_file", 2, 1, 1, attrs={"file.format": "nifti", "size_mb": 10.4}),
        span("stage", 3, 1, 2, attrs={"stage.name": "bias", "iterations": 4},
             events=(Event("started"), Event("converged", attributes=attributes({"iterations": 4})), Event("done"))),
        span("stage", 4, 1, 3, attrs={"stage.name": "strip", "ok": True}, status_code=StatusCode.ERROR,
             status_description="mask leaked",
             events=(Event("exception", attributes=attributes({"exception.type": "pipeline.errors.StageError",
                                                              "exception.message": "mask leaked"})),)),
        span("other_root", 5, trace_id=2, links=(Link(T1, 1, attributes({"reason": "batch"})),)),
    ]
)


def fails(fn: object) -> str:
    with pytest.raises(TelemetryAssertionError) as info:
        fn()  # type: ignore[operator]
    return str(info.value)


# ---------------------------------------------------------------------------------------------
# Selection
# ---------------------------------------------------------------------------------------------


def test_view_is_a_sequence_of_spans() -> None:
    assert len(VIEW) == 5 and VIEW[0].name == "process_file"
    assert isinstance(VIEW[1:], SpanView) and VIEW[1:].names()[0] == "load_file"
    assert VIEW == list(VIEW) and VIEW.trace_ids() == (T1, 2)


def test_filter_by_each_criterion() -> None:
    assert VIEW.named("stage").names() == ["stage", "stage"]
    assert VIEW.filter(Regex("stage|load_file")).names() == ["load_file", "stage", "stage"]
    assert VIEW.filter(attributes={"iterations": InRange(3, 5)}).one().span.span_id == 3
    assert VIEW.filter(kind="server").names() == ["process_file"]
    assert VIEW.filter(kind=trace_api.SpanKind.SERVER).names() == ["process_file"]
    assert VIEW.filter(status="error").names() == ["stage"]
    assert VIEW.filter(status=SdkStatusCode.ERROR).names() == ["stage"]
    assert VIEW.filter(parent="process_file").names() == ["load_file", "stage", "stage"]
    assert VIEW.filter(parent=VIEW[0]).names() == ["load_file", "stage", "stage"]
    assert VIEW.filter(trace=2).names() == ["other_root"]
    assert VIEW.filter(trace=format(T1, "032x")).names()[:1] == ["process_file"]
    assert VIEW.filter(root=True).names() == ["process_file", "other_root"]
    assert VIEW.filter(where=lambda s: s.span_id > 3).names() == ["stage", "other_root"]


def test_structure_helpers() -> None:
    strip = VIEW.one("stage", attributes={"stage.name": "strip"})
    assert strip.parent is not None and strip.parent.name == "process_file"
    assert VIEW.one("process_file").children.names() == ["load_file", "stage", "stage"]
    assert VIEW.roots().names() == ["process_file", "other_root"]
    assert VIEW.path(strip) == "process_file > stage"
    # A filtered view still resolves parents against everything recorded.
    assert VIEW.named("stage").filter(parent="process_file").names() == ["stage", "stage"]


def test_one_returns_a_span_assert_that_reads_through() -> None:
    one = VIEW.one("load_file")
    assert isinstance(one, SpanAssert)
    assert one.attributes["file.format"] == "nifti" and one.span_id == 2 and one == VIEW[1]


def test_all_wraps_every_match() -> None:
    assert [s.attributes["stage.name"] for s in VIEW.all("stage")] == ["bias", "strip"]
    assert VIEW.all("nothing") == []


def test_one_none_found_lists_names_and_suggests() -> None:
    assert fails(lambda: VIEW.one("lod_file")) == (
        "no span matches name='lod_file'\n"
        "recorded span names: process_file, load_file, stage (x2), other_root\n"
        "did you mean 'load_file'?"
    )


def test_one_none_found_explains_each_near_miss() -> None:
    assert fails(lambda: VIEW.one("stage", attributes={"stage.name": "normalize"})) == (
        "no span matches name='stage', attributes={'stage.name': 'normalize'}\n"
        "2 span(s) named 'stage' were recorded, but:\n"
        "  - process_file > stage {stage.name='bias', iterations=4} (trace 0af76519…, span 0000000000000003): "
        "attribute 'stage.name': expected 'normalize' (str), got 'bias' (str)\n"
        "  - process_file > stage [ERROR] {stage.name='strip', ok=True} (trace 0af76519…, span 0000000000000004): "
        "attribute 'stage.name': expected 'normalize' (str), got 'strip' (str)"
    )


def test_one_none_found_by_other_criteria() -> None:
    message = fails(lambda: VIEW.one("load_file", parent="stage", kind="client"))
    assert message.splitlines() == [
        "no span matches name='load_file', kind=client, parent='stage'",
        "1 span(s) named 'load_file' were recorded, but:",
        "  - process_file > load_file {file.format='nifti', size_mb=10.4} (trace 0af76519…, span 0000000000000002): "
        "kind is INTERNAL",
    ]
    assert fails(lambda: VIEW.one(root=True, status="ok")).splitlines()[1] == "5 span(s) were recorded, but:"


def test_one_in_an_empty_view() -> None:
    assert fails(lambda: SpanView().one("x")) == "no span matches name='x': no spans were recorded"


def test_one_several_found_lists_them() -> None:
    assert fails(lambda: VIEW.one("stage")) == (
        "expected exactly one span matching name='stage', found 2:\n"
        "  - process_file > stage {stage.name='bias', iterations=4} (trace 0af76519…, span 0000000000000003)\n"
        "  - process_file > stage [ERROR] {stage.name='strip', ok=True} (trace 0af76519…, span 0000000000000004)\n"
        "narrow the selection (attributes=, parent=, trace=) or use .all()"
    )


def test_assert_count() -> None:
    assert VIEW.assert_count(2, "stage").names() == ["stage", "stage"]
    VIEW.assert_count(0, "nothing")
    assert fails(lambda: VIEW.assert_count(1, "stag")) == (
        "expected 1 span(s) matching name='stag', found 0\n"
        "recorded span names: process_file, load_file, stage (x2), other_root\n"
        "did you mean 'stage'?"
    )
    assert fails(lambda: VIEW.assert_count(1, status="ERROR", parent="nowhere")).startswith(
        "expected 1 span(s) matching status=ERROR, parent='nowhere', found 0"
    )


def test_assert_no_errors() -> None:
    VIEW.named("load_file").assert_no_errors()
    assert fails(VIEW.assert_no_errors) == (
        "1 span(s) have status ERROR, expected none:\n"
        "  - process_file > stage: mask leaked (exception pipeline.errors.StageError: mask leaked)"
    )


def test_assert_tree_on_the_view() -> None:
    m = VIEW.assert_tree("process_file\n├─ load_file\n├─ stage\n└─ stage")
    assert m["load_file"].span_id == 2


# ---------------------------------------------------------------------------------------------
# Per-span assertions
# ---------------------------------------------------------------------------------------------


def test_attributes_partial_exact_and_with_matchers() -> None:
    one = VIEW.one("load_file")
    one.assert_attributes({"file.format": "nifti"}).assert_attributes(size_mb=InRange(10, 11))
    one.assert_attributes({"file.format": "nifti", "size_mb": 10.4}, exact=True)
    one.assert_attribute("file.format", Regex("nif.*"))


def test_attributes_compare_with_opentelemetry_types() -> None:
    message = fails(lambda: VIEW.one("stage", attributes={"stage.name": "strip"}).assert_attributes(ok=1))
    assert message == (
        "span 'process_file > stage' (0000000000000004): attributes do not match:\n"
        "  attribute 'ok': expected 1 (int), got True (bool)\n"
        "recorded attributes: stage.name='strip', ok=True"
    )


def test_attributes_failure_suggests_the_nearest_key_and_exact_reports_extras() -> None:
    one = VIEW.one("load_file")
    assert fails(lambda: one.assert_attributes({"file.fromat": "nifti"})).splitlines()[1] == (
        "  missing attribute 'file.fromat' (did you mean 'file.format'?), expected 'nifti' (str)"
    )
    assert fails(lambda: one.assert_attributes({"file.format": "nifti"}, exact=True)).splitlines()[:2] == [
        "span 'process_file > load_file' (0000000000000002): attributes do not match exactly:",
        "  unexpected attribute 'size_mb' = 10.4 (float) (not expected)",
    ]


def test_status_assertions() -> None:
    strip = VIEW.one("stage", status="ERROR")
    strip.assert_error().assert_error("mask leaked").assert_error(Regex("mask.*")).assert_status("ERROR")
    VIEW.one("load_file").assert_unset()
    assert fails(lambda: strip.assert_ok()) == (
        "span 'process_file > stage' (0000000000000004): expected status OK, got ERROR ('mask leaked')"
    )
    assert fails(lambda: strip.assert_error("timeout")) == (
        "span 'process_file > stage' (0000000000000004): status ERROR as expected, but its description is "
        "'mask leaked', expected 'timeout' (str)"
    )
    assert fails(lambda: VIEW.one("load_file").assert_error()) == (
        "span 'process_file > load_file' (0000000000000002): expected status ERROR, got UNSET"
    )


def test_exception_assertions() -> None:
    strip = VIEW.one("stage", status="ERROR")
    strip.assert_exception().assert_exception("StageError").assert_exception("pipeline.errors.StageError", "mask leaked")
    VIEW.one("load_file").assert_no_exception()
    assert fails(lambda: strip.assert_exception(ValueError)) == (
        "span 'process_file > stage' (0000000000000004): no recorded exception with type ValueError; "
        "recorded: pipeline.errors.StageError: 'mask leaked'"
    )
    assert fails(lambda: strip.assert_exception(message=Regex("timeout.*"))).endswith(
        "no recorded exception with message Regex('timeout.*'); recorded: pipeline.errors.StageError: 'mask leaked'"
    )
    assert fails(lambda: VIEW.one("load_file").assert_exception()) == (
        "span 'process_file > load_file' (0000000000000002): expected a recorded exception, found none (events: (none))"
    )
    assert fails(strip.assert_no_exception) == (
        "span 'process_file > stage' (0000000000000004): expected no recorded exception, found 1: "
        "pipeline.errors.StageError: 'mask leaked'"
    )


def test_exceptions_recorded_by_the_sdk_match_their_class() -> None:
    class StageError(Exception):
        pass

    capture = Capture()
    with pytest.raises(StageError):
        with capture.tracer_provider.get_tracer("t").start_as_current_span("stage"):
            raise StageError("bad mask")
    one = SpanView(capture.snapshot().spans).one("stage")
    one.assert_error("StageError: bad mask").assert_exception(StageError, "bad mask").assert_exception("StageError")
    with pytest.raises(TelemetryAssertionError):
        one.assert_exception(ValueError)


def test_event_assertions() -> None:
    bias = VIEW.one("stage", attributes={"stage.name": "bias"})
    bias.assert_event("converged").assert_event("converged", {"iterations": 4}).assert_event(Regex("conv.*"))
    bias.assert_events("started", "done").assert_events("started", "converged", "done", exact=True)
    assert fails(lambda: bias.assert_event("converge")) == (
        "span 'process_file > stage' (0000000000000003): no event 'converge' (did you mean 'converged'?); "
        "events: 'started', 'converged', 'done'"
    )
    assert fails(lambda: bias.assert_event("converged", {"iterations": 5})) == (
        "span 'process_file > stage' (0000000000000003): 1 event(s) 'converged', none with matching attributes:\n"
        "  event #1:\n"
        "    attribute 'iterations': expected 5 (int), got 4 (int)"
    )
    assert fails(lambda: bias.assert_events("done", "started")) == (
        "span 'process_file > stage' (0000000000000003): expected events ['done', 'started'] in this order, "
        "recorded ['started', 'converged', 'done']"
    )
    assert fails(lambda: bias.assert_events("started", "done", exact=True)).endswith(
        "expected events exactly ['started', 'done'] in this order, recorded ['started', 'converged', 'done']"
    )


def test_link_assertions() -> None:
    other = VIEW.one("other_root")
    other.assert_link().assert_link(VIEW[0]).assert_link(trace=T1).assert_link(VIEW.one("process_file"),
                                                                              attributes={"reason": "batch"})
    assert fails(lambda: other.assert_link(VIEW.one("load_file"))) == (
        "span 'other_root' (0000000000000005): no link to span 'load_file' (0000000000000002); "
        "links: 0af76519…/0000000000000001 {'reason': 'batch'}"
    )
    assert fails(lambda: VIEW.one("load_file").assert_link(trace=2)) == (
        "span 'process_file > load_file' (0000000000000002): no link to trace 00000000000000000000000000000002; "
        "links: (none)"
    )


def test_links_recorded_by_the_sdk() -> None:
    capture = Capture()
    tracer = capture.tracer_provider.get_tracer("t")
    with tracer.start_as_current_span("producer") as producer:
        pass
    with tracer.start_as_current_span("consumer", links=[SdkLink(producer.get_span_context(), {"n": 1})]):
        pass
    view = SpanView(capture.snapshot().spans)
    view.one("consumer").assert_link(view.one("producer"), attributes={"n": 1})


def test_kind_parent_and_root_assertions() -> None:
    VIEW.one("process_file").assert_kind("SERVER").assert_kind(SpanKind.SERVER).assert_root()
    load = VIEW.one("load_file").assert_parent("process_file").assert_parent(VIEW[0])
    assert fails(lambda: load.assert_kind("client")) == (
        "span 'process_file > load_file' (0000000000000002): expected kind CLIENT, got INTERNAL"
    )
    assert fails(load.assert_root) == (
        "span 'process_file > load_file' (0000000000000002): expected a root span, but its parent is 'process_file'"
    )
    assert fails(lambda: load.assert_parent("stage")) == (
        "span 'process_file > load_file' (0000000000000002): expected parent 'stage', got 'process_file' "
        "(0000000000000001)"
    )
    assert fails(lambda: VIEW.one("other_root").assert_parent(VIEW[0])) == (
        "span 'other_root' (0000000000000005): expected parent <span 'process_file' 0000000000000001>, "
        "it has no recorded parent"
    )


def test_sdk_status_set_explicitly() -> None:
    capture = Capture()
    with capture.tracer_provider.get_tracer("t").start_as_current_span("ok") as s:
        s.set_status(Status(SdkStatusCode.OK))
    SpanView(capture.snapshot().spans).one("ok").assert_ok()
