"""Course content as data: exercises (statement + checks with points and feedback) and mistakes.

``exercises/*.yaml``: one exercise per file::

    id: write_metadata_span
    title: ...
    statement: |
      ...
    checks:
      - id: present                 # unique within the exercise
        title: a write_metadata span
        kind: span_present          # a judge of grading.checks
        points: 2
        feedback: what to do when this check fails
        expected: |                 # optional: what a correct run shows, printed next to the actual
          write_output
          └─ write_metadata
        with: {span: write_metadata}

``mistakes/*.yaml``: a common-mistake submission as edits applied to a materialised reference (see
:mod:`grading.mistakes`), with the scores and feedback the grader must give it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from grading.checks import KINDS

COURSE_DIR = Path(__file__).parent
EXERCISES_DIR = COURSE_DIR / "exercises"
MISTAKES_DIR = COURSE_DIR / "mistakes"


class CourseError(ValueError):
    """Malformed course content; the message names the file and the problem."""


@dataclass(frozen=True)
class CheckSpec:
    id: str
    title: str
    kind: str
    points: float
    feedback: str
    params: Mapping[str, Any]
    expected: str = ""


@dataclass(frozen=True)
class Exercise:
    id: str
    title: str
    statement: str
    checks: tuple[CheckSpec, ...]
    source: str = ""

    @property
    def max_points(self) -> float:
        return sum(c.points for c in self.checks)


def _require(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise CourseError(f"{where}: missing key {key!r}")
    if not isinstance(data[key], kind):
        raise CourseError(f"{where}: {key!r} must be {getattr(kind, '__name__', kind)}, got {type(data[key]).__name__}")
    return data[key]


def parse_exercise(data: Any, source: str) -> Exercise:
    """Validate one exercise document."""
    if not isinstance(data, Mapping):
        raise CourseError(f"{source}: an exercise must be a mapping")
    ex_id = _require(data, "id", str, source)
    raw_checks = _require(data, "checks", list, source)
    checks: list[CheckSpec] = []
    for i, raw in enumerate(raw_checks):
        where = f"{source}: checks[{i}]"
        if not isinstance(raw, Mapping):
            raise CourseError(f"{where}: a check must be a mapping")
        kind = _require(raw, "kind", str, where)
        if kind not in KINDS:
            raise CourseError(f"{where}: unknown kind {kind!r}; known: {', '.join(sorted(KINDS))}")
        points = _require(raw, "points", (int, float), where)
        if points <= 0:
            raise CourseError(f"{where}: points must be > 0")
        check_id = _require(raw, "id", str, where)
        if any(c.id == check_id for c in checks):
            raise CourseError(f"{where}: duplicate check id {check_id!r}")
        checks.append(
            CheckSpec(
                id=check_id,
                title=str(raw.get("title", check_id)),
                kind=kind,
                points=float(points),
                feedback=str(_require(raw, "feedback", str, where)).strip(),
                params=dict(raw.get("with") or {}),
                expected=str(raw.get("expected", "")).rstrip(),
            )
        )
    if not checks:
        raise CourseError(f"{source}: exercise {ex_id!r} has no checks")
    return Exercise(ex_id, str(data.get("title", ex_id)), str(data.get("statement", "")).strip(), tuple(checks), source)


def load_exercises(directory: Path = EXERCISES_DIR, only: Sequence[str] | None = None) -> tuple[Exercise, ...]:
    """All exercises of a course directory, sorted by their ``order`` then file name."""
    found: list[tuple[int, Exercise]] = []
    for path in sorted(Path(directory).glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise CourseError(f"{path.name}: not valid YAML: {exc}") from exc
        found.append(
            (int(data.get("order", 100)) if isinstance(data, Mapping) else 100, parse_exercise(data, path.name))
        )
    exercises = tuple(e for _, e in sorted(found, key=lambda t: t[0]))
    ids = [e.id for e in exercises]
    if len(set(ids)) != len(ids):
        raise CourseError(f"{directory}: duplicate exercise ids in {ids}")
    if only is not None:
        unknown = sorted(set(only) - set(ids))
        if unknown:
            raise CourseError(f"unknown exercise(s) {unknown}; known: {ids}")
        exercises = tuple(e for e in exercises if e.id in only)
    return exercises


def exercises_markdown(exercises: Sequence[Exercise]) -> str:
    """The students' handout: each exercise's statement and its checks with points."""
    total = sum(e.max_points for e in exercises)
    lines = [
        "# Instrumentation exercises",
        "",
        f"{len(exercises)} exercises, {total:g} points. Check yourself from this directory (the one",
        "holding `pipeline/`) with `neuro-grade grade .`: the grader's own run and scores, one line per",
        "exercise; `neuro-grade grade . -v` adds the feedback of every check (what arrived next to what",
        "was expected).",
        "",
    ]
    for n, e in enumerate(exercises, start=1):
        lines += [f"## {n}. {e.title} (`{e.id}`, {e.max_points:g} points)", "", e.statement, "", "Checks:", ""]
        lines += [f"- {c.title} ({c.points:g})" for c in e.checks]
        lines.append("")
    return "\n".join(lines)


__all__ = [
    "COURSE_DIR",
    "EXERCISES_DIR",
    "MISTAKES_DIR",
    "CheckSpec",
    "CourseError",
    "Exercise",
    "exercises_markdown",
    "load_exercises",
    "parse_exercise",
]
