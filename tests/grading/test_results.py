"""Outputs from synthetic verdicts: the table, Gradescope documents and their validation, JUnit, CSV."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET

import pytest

from grading.engine import CheckResult, ExerciseResult, SubmissionResult
from grading.results import (
    check_output,
    feedback_text,
    gradebook_csv,
    gradescope_results,
    junit_suites,
    summary_table,
    validate_gradescope,
)
from telemetry_asserts.junit import junit_xml


def _check(ex: str, cid: str, passed: bool, points: float = 1.0, detail: str = "", evidence: str = "") -> CheckResult:
    return CheckResult(
        ex, cid, f"title {cid}", points if passed else 0.0, points, passed, f"do {cid}", detail, evidence
    )


def _result(name: str, status: str = "ok", problem: str = "", passed: bool = True) -> SubmissionResult:
    a = ExerciseResult(
        "ex_a",
        "Exercise A",
        (
            _check("ex_a", "one", True, 2),
            _check("ex_a", "two", passed, 1, "two is wrong", "expected:\nX\n\nyour span tree:\nY"),
        ),
    )
    b = ExerciseResult("ex_b", "Exercise B", (_check("ex_b", "three", passed, 1.5, "three is wrong"),))
    return SubmissionResult(name, f"/subs/{name}", status, problem, (a, b), duration_s=1.25)


def test_summary_table_text() -> None:
    table = summary_table([_result("alice"), _result("bob-long-name", "timeout", "stopped", passed=False)])
    assert table.splitlines() == [
        "submission     ex_a     ex_b    total  status",
        "-------------  ----  -------  -------  -------",
        "alice           3/3  1.5/1.5  4.5/4.5  ok",
        "bob-long-name   2/3    0/1.5    2/4.5  timeout",
    ]
    assert summary_table([]) == "(no submissions)"


def test_check_output_texts() -> None:
    passed = _check("e", "c", True, detail="3 span(s)")
    assert check_output(passed) == "passed: 3 span(s)"
    failed = _check("e", "c", False, detail="no span", evidence="expected:\nA")
    assert check_output(failed) == "failed: no span\n\nwhat to do: do c\n\nexpected:\nA"


def test_gradescope_document() -> None:
    doc = gradescope_results(_result("carol", passed=False))
    assert validate_gradescope(doc) == []
    assert doc["score"] == 2 and doc["max_score"] == 4.5 and doc["execution_time"] == 1.25
    assert [t["name"] for t in doc["tests"]] == [
        "Exercise A - title one",
        "Exercise A - title two",
        "Exercise B - title three",
    ]
    assert doc["tests"][1] == {
        "name": "Exercise A - title two",
        "score": 0.0,
        "max_score": 1,
        "output": "failed: two is wrong\n\nwhat to do: do two\n\nexpected:\nX\n\nyour span tree:\nY",
        "visibility": "visible",
        "status": "failed",
    }
    crashed = gradescope_results(
        _result("dave", "crashed", "the run ended without a valid result (exit code 1)", passed=False)
    )
    assert (
        crashed["tests"][1]["output"]
        == "failed: the run ended without a valid result (exit code 1)\n\nwhat to do: do two"
    )
    assert crashed["output"].startswith("2/4.5 points (crashed)\nthe run ended without a valid result")


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        ([], "results.json must be a JSON object"),
        ({}, "needs 'score' or 'tests'"),
        ({"score": "3"}, "'score' must be a number"),
        ({"score": True}, "'score' must be a number"),
        ({"score": 1, "visibility": "public"}, "'visibility' has an invalid value 'public'"),
        ({"tests": [{"name": "a", "score": 2, "max_score": 1}]}, "tests[0] scores more than its max_score"),
        ({"tests": [{"name": "a", "grade": 1}]}, "tests[0] has unknown keys ['grade']"),
        ({"tests": [{"name": "a", "status": "ok"}]}, "tests[0].status must be passed or failed"),
        (
            {"score": 5, "tests": [{"name": "a", "score": 1, "max_score": 1}]},
            "'score' 5 is not the sum of the tests' scores 1",
        ),
    ],
)
def test_gradescope_validation_messages(doc: object, problem: str) -> None:
    assert problem in validate_gradescope(doc)


def test_junit_and_csv() -> None:
    results = [
        _result("alice"),
        _result("erin", "import_error", "importing your pipeline failed: SyntaxError", passed=False),
    ]
    root = ET.fromstring(junit_xml(junit_suites(results), name="neuro-grade"))
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert suites["alice"].get("tests") == "3" and suites["alice"].get("failures") == "0"
    assert suites["erin"].get("errors") == "2"
    error = suites["erin"].find("testcase[@name='ex_a.two']/error")
    assert error is not None and error.get("message") == "two is wrong"
    rows = list(csv.reader(io.StringIO(gradebook_csv(results))))
    assert rows == [
        ["submission", "ex_a", "ex_b", "total", "max_score", "status", "problem"],
        ["alice", "3", "1.5", "4.5", "4.5", "ok", ""],
        ["erin", "2", "0", "2", "4.5", "import_error", "importing your pipeline failed: SyntaxError"],
    ]


def test_feedback_text() -> None:
    text = feedback_text(_result("frank", passed=False))
    assert text.splitlines()[:6] == [
        "frank: 2/4.5 (ok)",
        "",
        "[ex_a] Exercise A: 2/3",
        "  PASS one (2/2) title one",
        "  FAIL two (0/1) title two",
        "       two is wrong",
    ]
    assert "       what to do: do two\n       expected:\n       X" in text
