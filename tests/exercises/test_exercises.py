"""One test per exercise check, judged on ``--solution PATH`` (skipped without it)."""

from __future__ import annotations

import pytest

from grading.course import load_exercises
from grading.engine import SubmissionResult
from grading.pytest_solution import find_check
from grading.results import check_output

CHECKS = [pytest.param(e.id, c.id, id=f"{e.id}/{c.id}") for e in load_exercises() for c in e.checks]


@pytest.mark.parametrize(("exercise", "check"), CHECKS)
def test_exercise_check(graded_solution: SubmissionResult, exercise: str, check: str) -> None:
    result = find_check(graded_solution, exercise, check)
    if not result.passed:
        problem = f"{graded_solution.problem}\n\n" if graded_solution.problem else ""
        pytest.fail(f"{problem}{check_output(result)}", pytrace=False)
