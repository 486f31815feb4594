"""``pytest --telemetry-html DIR``: one trace view per failing test that used the fixture, its path
printed in the "Captured telemetry" section, and the page opened in headless Chromium."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from html_browser import opened

from telemetry_asserts.html_report import test_report_name

pytest_plugins = ["pytester"]

SUITE = '''
from opentelemetry import trace

tracer = trace.get_tracer("suite")


def test_fails_with_telemetry(telemetry):
    with tracer.start_as_current_span("process_file") as span:
        span.set_attribute("probe", "<img src=x onerror=alert(1)>")
        with tracer.start_as_current_span("load_file"):
            pass
    telemetry.spans.assert_tree("process_file\\n└─ write_output")


def test_passes_with_telemetry(telemetry):
    with tracer.start_as_current_span("fine"):
        pass


def test_fails_without_the_fixture():
    assert 1 == 2
'''


@pytest.fixture
def run(pytester: pytest.Pytester) -> tuple[pytest.RunResult, Path]:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--telemetry-html", "reports")
    return result, pytester.path / "reports"


def test_one_file_per_failing_test_that_used_the_fixture(run: tuple[pytest.RunResult, Path]) -> None:
    result, reports = run
    result.assert_outcomes(passed=1, failed=2)
    expected = reports / test_report_name("test_suite.py::test_fails_with_telemetry")
    assert sorted(p.name for p in reports.iterdir()) == [expected.name]
    text = result.stdout.str()
    section = text.split("Captured telemetry call", 1)[1]
    assert f"HTML trace view: {expected}" in section
    assert len(re.findall(r"HTML trace view: ", text)) == 1


def test_the_failing_tests_page_shows_its_spans_and_the_failure(browser: Any, run: tuple[pytest.RunResult, Path]) -> None:
    _, reports = run
    (page_file,) = reports.iterdir()
    with opened(browser, page_file) as page:
        assert page.rows() == ["process_file", "load_file"]
        assert "span tree does not match" in page.page.inner_text("#sections .check.failed pre")
        page.row("process_file").click()
        assert page.detail_value("probe") == "<img src=x onerror=alert(1)>"
        assert page.dialogs == [] and page.errors == []


def test_without_the_option_nothing_is_written(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    assert "HTML trace view" not in result.stdout.str()
    assert not (pytester.path / "reports").exists()
