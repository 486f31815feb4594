"""Acceptance: reference full marks, starter zero, the table, Gradescope/JUnit/CSV outputs, the CLI."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

from grading.cli import main
from grading.course import load_exercises
from grading.engine import SubmissionError, materialise_submission
from grading.results import validate_gradescope
from grading.starter import find_exercises, reference_package

GradedCourse = "tests.grading.conftest.GradedCourse"  # the session fixture type (see conftest.py)

EXERCISES = [e.id for e in load_exercises()]


def test_the_reference_carries_every_exercise_marker() -> None:
    assert set(find_exercises(reference_package())) == set(EXERCISES)


def test_reference_scores_full_marks(graded_course: GradedCourse) -> None:
    ref = graded_course.results["reference"]
    assert ref.status == "ok", ref.problem
    failed = [f"{c.name}: {c.detail}" for e in ref.exercises for c in e.checks if not c.passed]
    assert failed == []
    assert ref.score == ref.max_score == 28


@pytest.mark.parametrize("exercise", EXERCISES)
def test_starter_scores_zero_on_each_exercise(graded_course: GradedCourse, exercise: str) -> None:
    starter = graded_course.results["starter"]
    assert starter.status == "ok", starter.problem
    assert starter.exercise(exercise).score == 0


def test_summary_table(graded_course: GradedCourse) -> None:
    lines = graded_course.table.splitlines()
    assert lines[0].split() == ["submission", *EXERCISES, "total", "status"]
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert rows["reference"][1:] == ["5/5", "5/5", "5/5", "5/5", "4/4", "4/4", "28/28", "ok"]
    assert rows["starter"][1:] == ["0/5", "0/5", "0/5", "0/5", "0/4", "0/4", "0/28", "ok"]
    assert rows["infinite_loop"][-1] == "timeout"
    assert graded_course.exit_code == 1  # some submissions could not be run at all


def test_gradescope_results_are_valid(graded_course: GradedCourse) -> None:
    for name, result in graded_course.results.items():
        doc = json.loads((graded_course.out / "gradescope" / name / "results.json").read_text())
        assert validate_gradescope(doc) == [], name
        assert doc["score"] == result.score and doc["max_score"] == result.max_score
        assert len(doc["tests"]) == sum(len(e.checks) for e in result.exercises)
    ref = json.loads((graded_course.out / "results" / "reference" / "results.json").read_text())
    assert all(t["score"] == t["max_score"] and t["status"] == "passed" for t in ref["tests"])
    starter = json.loads((graded_course.out / "results" / "starter" / "results.json").read_text())
    first = starter["tests"][0]
    assert first["name"] == "A span for writing the metadata file - a write_metadata span"
    assert first["score"] == 0 and first["max_score"] == 2 and first["visibility"] == "visible"
    assert first["output"].startswith("failed: expected a span 'write_metadata' in the success run")
    assert "what to do: No `write_metadata` span arrived." in first["output"]
    assert "your span tree (success run):\nprocess_file\n├─ load_file" in first["output"]


def test_junit_and_csv(graded_course: GradedCourse) -> None:
    root = ET.parse(graded_course.out / "junit.xml").getroot()
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == set(graded_course.results)
    assert suites["reference"].get("failures") == "0" and suites["reference"].get("errors") == "0"
    assert int(suites["starter"].get("failures")) == 21
    assert int(suites["syntax_error"].get("errors")) == 21
    rows = list(csv.DictReader((graded_course.out / "gradebook.csv").open()))
    by_name = {r["submission"]: r for r in rows}
    assert by_name["reference"]["total"] == "28" and by_name["reference"]["status"] == "ok"
    assert by_name["counter_without_stage"]["stages_counter"] == "2"
    assert by_name["infinite_loop"]["problem"].startswith("stopped at the time limit")
    feedback = (graded_course.out / "results" / "swallowed_exception" / "feedback.txt").read_text()
    assert "FAIL root_status (0/1) process_file has ERROR status with a description" in feedback


def test_cli_starter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["starter", str(tmp_path)]) == 0
    text = (tmp_path / "pipeline" / "processor.py").read_text()
    assert "# >>> exercise:" not in text
    assert '"write_metadata"' not in text  # the exercise's span is cut
    assert 'metric_attributes = {"status": status, "file.path": str(self.path.resolve())}' in text
    assert f"wrote the starter to {tmp_path / 'pipeline'}" in capsys.readouterr().out
    handout = (tmp_path / "EXERCISES.md").read_text()
    assert handout.startswith("# Instrumentation exercises\n\n6 exercises, 28 points.")
    assert "## 1. A span for writing the metadata file (`write_metadata_span`, 5 points)" in handout
    assert "- under write_output (1)" in handout
    assert main(["starter", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_cli_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["grade", str(tmp_path / "nope")])
    assert info.value.code == 2
    assert "no such submission" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["grade", str(tmp_path), "--exercise", "nope"])
    assert "unknown exercise(s) ['nope']" in capsys.readouterr().err


def test_console_script_is_installed() -> None:
    proc = subprocess.run([sys.executable, "-m", "grading.cli", "--help"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "starter" in proc.stdout and "grade" in proc.stdout


def _package(root: Path) -> Path:
    (root / "pipeline").mkdir(parents=True)
    (root / "pipeline" / "__init__.py").write_text("X = 1\n")
    return root


def test_submission_forms(tmp_path: Path) -> None:
    plain = _package(tmp_path / "plain")
    assert (materialise_submission(plain, tmp_path / "a") / "pipeline" / "__init__.py").read_text() == "X = 1\n"

    archive = tmp_path / "sub.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("student-42/pipeline/__init__.py", "X = 2\n")
    assert (materialise_submission(archive, tmp_path / "b") / "pipeline" / "__init__.py").read_text() == "X = 2\n"

    repo = _package(tmp_path / "repo")
    git = ["git", "-C", str(repo), "-c", "user.email=s@example.org", "-c", "user.name=s"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "pipeline"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "solution"], check=True)
    (repo / "pipeline" / "__init__.py").write_text("X = 'uncommitted'\n")
    assert (materialise_submission(repo, tmp_path / "c") / "pipeline" / "__init__.py").read_text() == "X = 1\n"

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../escape/pipeline/__init__.py", "")
    with pytest.raises(SubmissionError, match="escapes the archive"):
        materialise_submission(evil, tmp_path / "d")
    with pytest.raises(SubmissionError, match=r"no pipeline/ package"):
        materialise_submission(tmp_path / "d.staging" if False else _empty(tmp_path / "empty"), tmp_path / "e")


def _empty(path: Path) -> Path:
    path.mkdir()
    return path
