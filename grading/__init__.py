"""Grading of the course's instrumentation exercises: isolated runs, exercise checks as data, CI outputs.

Public API::

    grade_many(sources, *, jobs=1, config=GradeConfig(), exercises=None, on_result=None) -> list[SubmissionResult]
    write_starter(dest) -> Path                       # the students' starter as dest/pipeline
    load_exercises(directory=..., only=None) -> tuple[Exercise, ...]
    summary_table / gradescope_results / write_gradescope / write_junit / write_csv (grading.results)

Command line: ``neuro-grade starter DIR`` and ``neuro-grade grade SUBMISSION... [-j N] ...``; for
students ``pytest --solution PATH tests/exercises``. See grading/README.md.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CheckSpec": "grading.course",
    "Exercise": "grading.course",
    "load_exercises": "grading.course",
    "CheckResult": "grading.engine",
    "ExerciseResult": "grading.engine",
    "GradeConfig": "grading.engine",
    "SubmissionResult": "grading.engine",
    "grade_many": "grading.engine",
    "write_starter": "grading.starter",
}


def __getattr__(name: str) -> Any:
    """Lazy exports: the in-subprocess runner (``grading.runner``) does not load the engine."""
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'grading' has no attribute {name!r}")


__all__ = [
    "CheckResult",
    "CheckSpec",
    "Exercise",
    "ExerciseResult",
    "GradeConfig",
    "SubmissionResult",
    "grade_many",
    "load_exercises",
    "write_starter",
]
