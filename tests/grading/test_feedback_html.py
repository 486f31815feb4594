"""feedback.html beside feedback.txt, and Gradescope's HTML output: the submission's run next to what
was expected, escaped (a student's span names are untrusted), opened in headless Chromium."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from html_browser import opened

from grading.engine import CheckResult, ExerciseResult, SubmissionResult
from grading.results import feedback_html, gradescope_results, validate_gradescope, write_results_dir
from telemetry_asserts import model
from telemetry_asserts.otlp import write_otlp_json

GradedCourse = "tests.grading.conftest.GradedCourse"
PROBE = "<img src=x onerror=alert(1)>"


def _run_json(tmp_path: Path) -> str:
    spans = (
        model.Span("process_file", 3, 1, None, start_time_ns=0, end_time_ns=1_000_000),
        model.Span("write_output", 3, 2, 1, start_time_ns=500_000, end_time_ns=900_000),
        model.Span(PROBE, 3, 3, 2, start_time_ns=600_000, end_time_ns=700_000,
                   attributes=model.Attributes({"metadata.path": "/abs/sub-01_metadata.json"})),
    )
    return write_otlp_json(model.Telemetry(spans), tmp_path / "t.jsonl").read_text()


def _result(tmp_path: Path, otlp_json: str | None = None) -> SubmissionResult:
    evidence = "expected:\nprocess_file\n└─ write_output\n   └─ write_metadata\n\n\nyour span tree (success run):\n" \
               f"process_file\n└─ write_output\n   └─ {PROBE}"
    checks = (
        CheckResult("ex1", "present", "a write_metadata span", 0.0, 2, False, "open a write_metadata span",
                    "expected a span 'write_metadata'", evidence),
        CheckResult("ex1", "ok", "a root span", 1.0, 1, True, "", "1 span(s)"),
    )
    return SubmissionResult("alice", "/subs/alice", "ok", "", (ExerciseResult("ex1", "Metadata", checks),),
                            duration_s=2.0, telemetry_otlp_json=_run_json(tmp_path) if otlp_json is None else otlp_json)


def test_results_dir_has_feedback_html_and_gradescope_carries_html(tmp_path: Path) -> None:
    write_results_dir([_result(tmp_path)], tmp_path / "out")
    sub = tmp_path / "out" / "alice"
    assert sorted(p.name for p in sub.iterdir()) == ["feedback.html", "feedback.txt", "results.json", "telemetry.jsonl"]
    doc = json.loads((sub / "results.json").read_text())
    assert validate_gradescope(doc) == []
    assert doc["output_format"] == "html" and doc["test_output_format"] == "text"
    out = doc["output"]
    assert "<script" not in out and "<img" not in out and "&lt;img src=x onerror=alert(1)&gt;" in out
    assert "<th align=\"left\">expected</th>" in out and "write_metadata" in out
    assert doc["tests"][0]["output"].startswith("failed: expected a span 'write_metadata'")  # tests stay text


def test_gradescope_output_formats_are_validated() -> None:
    assert "'output_format' has an invalid value 'pdf'; use one of text, html, simple_format, md, ansi" in \
        validate_gradescope({"score": 0, "output_format": "pdf"})
    assert "tests[0].output_format has an invalid value 'doc'" in \
        validate_gradescope({"tests": [{"name": "a", "output_format": "doc"}]})
    assert "output_format" not in gradescope_results(_result(Path("/nonexistent"), otlp_json=""))


def test_unreadable_run_telemetry_is_said_not_raised(tmp_path: Path) -> None:
    text = feedback_html(_result(tmp_path, otlp_json="{not json"))
    data = json.loads(text.split('id="telemetry-data">', 1)[1].split("</script>", 1)[0])
    assert data["subtitle"].startswith("1/3 points (ok) · the run's telemetry could not be read: ")
    assert data["traces"] == [] and len(data["sections"]) == 2


def test_feedback_page_shows_expected_beside_the_run(browser: Any, tmp_path: Path) -> None:
    page_file = tmp_path / "feedback.html"
    page_file.write_text(feedback_html(_result(tmp_path)))
    with opened(browser, page_file) as page:
        p = page.page
        failed = p.locator("#sections .check.failed")
        assert failed.count() == 1 and "a write_metadata span" in failed.inner_text()
        assert failed.locator(".side-by-side .expected pre").inner_text() == \
            "process_file\n└─ write_output\n   └─ write_metadata"
        assert failed.locator(".side-by-side .actual pre").inner_text().endswith(f"└─ {PROBE}")
        assert page.rows() == ["process_file", "write_output", PROBE]
        page.row(PROBE).click()
        assert page.detail_value("metadata.path") == "/abs/sub-01_metadata.json"
        assert p.evaluate("() => document.querySelectorAll('#app img').length") == 0
        assert page.dialogs == [] and page.errors == []


def test_gradescopes_html_output_renders_as_text(browser: Any, tmp_path: Path) -> None:
    doc = gradescope_results(_result(tmp_path), html=True)
    page_file = tmp_path / "gradescope.html"
    page_file.write_text(f"<!DOCTYPE html><meta charset=utf-8><div id=app>{doc['output']}</div>"
                         "<script>document.body.dataset.ready = '1'</script>")
    with opened(browser, page_file) as page:
        p = page.page
        cells = p.locator("#app table").first.locator("td pre").all_inner_texts()
        assert cells[0] == "process_file\n└─ write_output\n   └─ write_metadata"
        assert cells[1].endswith(f"└─ {PROBE}")
        assert PROBE in p.locator("#app table").nth(1).inner_text()  # the waterfall's span names, as text
        assert p.evaluate("() => document.querySelectorAll('#app img, #app script').length") == 0
        assert page.dialogs == []


def test_the_starters_feedback_html_shows_its_real_run(browser: Any, graded_course: GradedCourse) -> None:
    page_file = graded_course.out / "results" / "starter" / "feedback.html"
    with opened(browser, page_file) as page:
        p = page.page
        assert p.locator("#sections .check.failed").count() == 21
        first = p.locator("#sections .check.failed").first
        assert "write_metadata" in first.locator(".side-by-side .expected pre").inner_text()
        assert first.locator(".side-by-side .actual pre").inner_text().startswith(
            "your span tree (success run):\nprocess_file\n├─ load_file")
        names = page.rows()
        assert names[:2] == ["process_file", "load_file"] and "write_metadata" not in names
        assert page.errors == []
