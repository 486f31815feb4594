"""One grading session for the whole tests/grading package: the reference, the starter and every
common-mistake submission graded once with ``neuro-grade grade -j 2`` (all outputs written)."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import pytest

from grading.cli import grade_command
from grading.engine import SubmissionResult
from grading.mistakes import Mistake, load_mistakes, materialise_mistake
from grading.starter import materialise, reference_package, write_starter

MISTAKE_TIMEOUT_S = 15.0  # generous: a normal run takes 1-5 s on a loaded 2-core machine


@dataclass
class GradedCourse:
    out: Path
    exit_code: int
    table: str
    results: dict[str, SubmissionResult]
    mistakes: dict[str, Mistake]


@pytest.fixture(scope="session")
def graded_course(tmp_path_factory: pytest.TempPathFactory) -> GradedCourse:
    root = tmp_path_factory.mktemp("course")
    subs = root / "submissions"
    materialise(reference_package(), subs / "reference" / "pipeline", ())
    write_starter(subs / "starter")
    mistakes = {m.id: m for m in load_mistakes()}
    for m in mistakes.values():
        materialise_mistake(m, subs / m.id)
    out = root / "out"
    argv = [
        str(subs / "reference"),
        str(subs / "starter"),
        *(str(subs / m) for m in mistakes),
        "-j",
        "2",
        "--timeout-s",
        str(MISTAKE_TIMEOUT_S),
        "--results",
        str(out / "results"),
        "--gradescope",
        str(out / "gradescope"),
        "--junit-xml",
        str(out / "junit.xml"),
        "--csv",
        str(out / "gradebook.csv"),
    ]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
        code, results = grade_command(argv)
    return GradedCourse(out, code, buf.getvalue(), {r.name: r for r in results}, mistakes)
