"""pytest plugin for students: ``pytest --solution PATH tests/exercises`` grades a solution locally.

PATH is what ``neuro-grade grade`` takes (a directory holding ``pipeline/``, a git repo or a zip).
The solution is run once per session, isolated exactly as the grader runs it; each exercise check is
one test whose failure text is the grader's feedback (what arrived next to what was expected).
Without ``--solution`` the exercise tests are skipped.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from grading.engine import CheckResult, GradeConfig, SubmissionResult, grade_many


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("neuro-grade", "grading the course exercises")
    group.addoption(
        "--solution", metavar="PATH", default=None, help="grade this solution (dir with pipeline/, git repo or zip)"
    )
    group.addoption(
        "--solution-timeout-s", type=float, default=GradeConfig.timeout_s, help="time limit for the solution's run"
    )


def solution_path(config: pytest.Config) -> Path | None:
    """The ``--solution`` path, or None when the option is absent or not registered."""
    try:
        value = config.getoption("--solution", default=None)
    except ValueError:
        return None
    return Path(value) if value else None


@pytest.fixture(scope="session")
def graded_solution(request: pytest.FixtureRequest) -> SubmissionResult:
    """The grader's verdict on ``--solution`` (skips the test when no solution is given)."""
    path = solution_path(request.config)
    if path is None:
        pytest.skip("no --solution PATH given")
    if not path.exists():
        raise pytest.UsageError(f"--solution {path}: no such file or directory")
    timeout = float(request.config.getoption("--solution-timeout-s", default=GradeConfig.timeout_s))
    return grade_many([path], config=GradeConfig(timeout_s=timeout))[0]


def find_check(result: SubmissionResult, exercise: str, check: str) -> CheckResult:
    """One check's result from a graded solution."""
    for c in result.exercise(exercise).checks:
        if c.id == check:
            return c
    raise KeyError(f"{exercise}/{check}")
