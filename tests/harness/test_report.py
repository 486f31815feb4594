"""Text reports: span tree, waterfall, metric points, log records (pinned renderings)."""

from __future__ import annotations

from telemetry_asserts.model import (
    LogRecord,
    MetricKind,
    MetricPoint,
    Span,
    StatusCode,
    Telemetry,
    attributes,
)
from telemetry_asserts.report import (
    format_duration,
    render_logs,
    render_metrics,
    render_telemetry,
    render_tree,
    render_waterfall,
)

MS = 1_000_000


def s(name: str, span_id: int, parent: int | None, start_ms: float, end_ms: float, trace: int = 1, **kw: object) -> Span:
    return Span(name, trace, span_id, parent, start_time_ns=int(start_ms * MS), end_time_ns=int(end_ms * MS), **kw)  # type: ignore[arg-type]


# End order, as exported: children first.
SPANS = [
    s("load_file", 2, 1, 0, 230),
    s("bias_correct", 4, 3, 240, 4100),
    s("skull_strip", 5, 3, 4100, 4400, status_code=StatusCode.ERROR, status_description="mask leaked",
      attributes=attributes({"iterations": 3})),
    s("process_image", 3, 1, 235, 4400),
    s("save_file", 6, 1, 4400, 5630),
    s("process_file", 1, None, 0, 5630),
]


def test_format_duration_picks_a_readable_unit() -> None:
    assert [format_duration(n) for n in (0, 999, 45_000, 1_500_000, 12_340_000, 2_345_000_000)] == [
        "0 µs", "1 µs", "45 µs", "1.5 ms", "12.3 ms", "2.35 s",
    ]


def test_render_tree_parent_first_with_durations_and_errors() -> None:
    assert render_tree(SPANS) == (
        "process_file (5.63 s)\n"
        "├─ load_file (230.0 ms)\n"
        "├─ process_image (4.17 s)\n"
        "│  ├─ bias_correct (3.86 s)\n"
        "│  └─ skull_strip (300.0 ms) [ERROR: mask leaked]\n"
        "└─ save_file (1.23 s)"
    )


def test_render_tree_options_marks_attributes_and_truncation() -> None:
    strip = SPANS[2]
    text = render_tree(SPANS, durations=False, attributes=True, marks={strip: "look here", (1, 6): "and here"})
    assert text.splitlines()[4:] == [
        "│  └─ skull_strip [ERROR: mask leaked] {iterations: 3}  <-- look here",
        "└─ save_file  <-- and here",
    ]
    assert render_tree(SPANS, max_lines=2).splitlines() == [
        "process_file (5.63 s)", "├─ load_file (230.0 ms)", "... 4 more lines",
    ]
    assert render_tree([]) == "(no spans recorded)"


def test_rendered_attributes_paste_back_as_an_expectation() -> None:
    from telemetry_asserts.tree import assert_tree

    spans = [s("load", 1, None, 0, 1, attributes=attributes({"file.format": "nifti", "dims": [2, 3], "ok": True,
                                                              "size_mb": 1.5}))]
    text = render_tree(spans, durations=False, attributes=True)
    assert text == "load {file.format: 'nifti', dims: [2, 3], ok: true, size_mb: 1.5}"
    assert_tree(spans, text, exact=True)


def test_render_tree_heads_each_trace_and_keeps_orphans() -> None:
    other = [s("batch", 1, None, 10, 20, trace=2), s("orphan", 9, 77, 1, 2, trace=3)]
    lines = render_tree(SPANS + other, durations=False).splitlines()
    assert lines[0] == "trace 00000000000000000000000000000001"
    assert lines[7:] == [
        "trace 00000000000000000000000000000003",
        "orphan",
        "trace 00000000000000000000000000000002",
        "batch",
    ]


def test_render_waterfall_draws_bars_on_the_trace_time_axis() -> None:
    assert render_waterfall(SPANS, width=20) == (
        "process_file       |████████████████████| 5.63 s\n"
        "├─ load_file       |█                   | 230.0 ms\n"
        "├─ process_image   | ███████████████    | 4.17 s\n"
        "│  ├─ bias_correct | ██████████████     | 3.86 s\n"
        "│  └─ skull_strip  |               █    | 300.0 ms\n"
        "└─ save_file       |                ████| 1.23 s"
    )
    assert render_waterfall([]) == "(no spans recorded)"


POINTS = [
    MetricPoint("neuro.files.processed", MetricKind.COUNTER, attributes({"status": "ok"}), unit="{file}", value=3),
    MetricPoint("neuro.stage.duration", MetricKind.HISTOGRAM, attributes({"stage": "strip"}), unit="s", count=2,
                sum=7.5, min=2.5, max=5.0, bucket_counts=(0, 1, 1, 0), explicit_bounds=(0.0, 2.5, 5.0)),
    MetricPoint("neuro.files.processed", MetricKind.COUNTER, attributes({"status": "error"}), unit="{file}", value=1),
    MetricPoint("neuro.threshold", MetricKind.GAUGE, value=0.123456789),
]


def test_render_metrics_groups_points_by_metric() -> None:
    assert render_metrics(POINTS) == (
        "neuro.files.processed (counter, unit '{file}')\n"
        "  {status='error'} value=1\n"
        "  {status='ok'} value=3\n"
        "neuro.stage.duration (histogram, unit 's')\n"
        "  {stage='strip'} count=2 sum=7.5 min=2.5 max=5 buckets={≤2.5:1 ≤5:1}\n"
        "neuro.threshold (gauge)\n"
        "  {} value=0.123457"
    )
    assert render_metrics([]) == "(no metric points recorded)"


def test_render_logs_shows_severity_body_own_attributes_and_span() -> None:
    records = [
        LogRecord("loaded", "INFO", 9, trace_id=1, span_id=0xAB, attributes=attributes({"file": "a.nii", "code.line.number": 3})),
        LogRecord("no context", "WARN", 13),
    ]
    assert render_logs(records) == (
        "INFO  loaded {file='a.nii'} span=00000000000000ab\n"
        "WARN  no context (no span)"
    )
    assert render_logs([]) == "(no log records)"


def test_render_telemetry_has_the_three_parts() -> None:
    text = render_telemetry(Telemetry(tuple(SPANS), tuple(POINTS[:1]), ()), max_lines=3)
    assert text == (
        "spans (6):\n"
        "  process_file (5.63 s)\n"
        "  ├─ load_file (230.0 ms)\n"
        "  ├─ process_image (4.17 s)\n"
        "  ... 3 more lines\n"
        "metric points (1):\n"
        "  neuro.files.processed (counter, unit '{file}')\n"
        "    {status='ok'} value=3\n"
        "log records (0):\n"
        "  (no log records)"
    )
