"""Every common-mistake submission gets its expected partial score and feedback naming the problem."""

from __future__ import annotations

import pytest

from grading.mistakes import load_mistakes

GradedCourse = "tests.grading.conftest.GradedCourse"  # the session fixture type (see conftest.py)

MISTAKES = [m.id for m in load_mistakes()]


def test_the_course_has_at_least_ten_mistakes() -> None:
    assert len(MISTAKES) >= 10


@pytest.mark.parametrize("mistake_id", MISTAKES)
def test_mistake_scores_and_feedback(graded_course: GradedCourse, mistake_id: str) -> None:
    mistake = graded_course.mistakes[mistake_id]
    result = graded_course.results[mistake_id]
    assert result.status == mistake.expect_status, result.problem
    scores = {e.id: e.score for e in result.exercises}
    expected = {e.id: mistake.expect_scores.get(e.id, e.max_score) for e in result.exercises}
    assert scores == expected
    for target, text in mistake.expect_feedback.items():
        exercise, check_id = target.split("/")
        check = next(c for c in result.exercise(exercise).checks if c.id == check_id)
        assert not check.passed
        assert text in check.detail, f"{target}: {check.detail!r}"
        assert check.feedback  # the instructor's advice travels with every failed check


def test_infinite_loop_is_stopped_and_the_rest_are_graded(graded_course: GradedCourse) -> None:
    loop = graded_course.results["infinite_loop"]
    assert loop.status == "timeout"
    assert loop.problem.startswith("stopped at the time limit of 15 s")
    others = [r for name, r in graded_course.results.items() if name != "infinite_loop"]
    assert len(others) == len(graded_course.results) - 1
    assert all(r.exercises and r.status != "timeout" for r in others)


def test_printing_submission_output_is_bounded(graded_course: GradedCourse) -> None:
    flood = graded_course.results["print_flood"]
    assert flood.status == "ok" and flood.score == flood.max_score
    assert len(flood.stdout) == 64 * 1024 and set(flood.stdout.replace("\n", "")) == {"x"}


def test_failed_check_shows_actual_next_to_expected(graded_course: GradedCourse) -> None:
    check = next(
        c for c in graded_course.results["span_wrong_level"].exercise("write_metadata_span").checks if c.id == "parent"
    )
    assert check.evidence.startswith("expected:\nprocess_file\n└─ write_output\n   └─ write_metadata")
    assert "your span tree (success run):" in check.evidence
    # the detached span shows up as a root of its own
    assert "\nwrite_metadata\n" in check.evidence + "\n"
