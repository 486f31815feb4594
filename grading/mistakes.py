"""Common-mistake submissions, described as edits of the reference and materialised on demand.

A mistake file (``grading/course/mistakes/*.yaml``)::

    id: counter_without_stage
    description: the stages counter is incremented without the stage attribute
    base: reference              # reference (markers stripped) or starter (every exercise cut)
    cut: []                      # exercises additionally cut to their starter
    edits:
      - file: processor.py       # relative to pipeline/
        replace: 'self.tm.stages_executed.add(1, {"stage": name})'
        with: 'self.tm.stages_executed.add(1)'
        count: 1                 # exact number of occurrences expected (default 1)
      - file: telemetry.py
        append: |
          ...
    expect:
      status: ok                 # the run's status
      scores: {stages_counter: 2}  # exercises not named must score full marks
      feedback:                  # "exercise/check": text that the check's detail must contain
        stages_counter/stage_attribute: "missing stage"

An edit whose ``replace`` text does not occur exactly ``count`` times is an error naming the file
and the text, so a drifting reference is noticed instead of silently producing a correct copy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from grading.course import MISTAKES_DIR, CourseError
from grading.starter import materialise, reference_package


@dataclass(frozen=True)
class Mistake:
    id: str
    description: str
    base: str
    cut: tuple[str, ...]
    edits: tuple[Mapping[str, Any], ...]
    expect_status: str = "ok"
    expect_scores: Mapping[str, float] = field(default_factory=dict)
    expect_feedback: Mapping[str, str] = field(default_factory=dict)


def parse_mistake(data: Any, source: str) -> Mistake:
    if not isinstance(data, Mapping) or not isinstance(data.get("id"), str):
        raise CourseError(f"{source}: a mistake needs a mapping with an 'id'")
    base = data.get("base", "reference")
    if base not in ("reference", "starter"):
        raise CourseError(f"{source}: base must be 'reference' or 'starter', got {base!r}")
    edits = tuple(data.get("edits") or ())
    for i, edit in enumerate(edits):
        ops = {"replace", "append", "prepend", "write"} & set(edit)
        if not isinstance(edit, Mapping) or "file" not in edit or len(ops) != 1:
            raise CourseError(f"{source}: edits[{i}] needs 'file' and exactly one of replace/append/prepend/write")
        if "replace" in edit and "with" not in edit:
            raise CourseError(f"{source}: edits[{i}] 'replace' needs 'with'")
    expect = data.get("expect") or {}
    return Mistake(
        id=data["id"],
        description=str(data.get("description", "")).strip(),
        base=base,
        cut=tuple(data.get("cut") or ()),
        edits=edits,
        expect_status=str(expect.get("status", "ok")),
        expect_scores={str(k): float(v) for k, v in (expect.get("scores") or {}).items()},
        expect_feedback={str(k): str(v) for k, v in (expect.get("feedback") or {}).items()},
    )


def load_mistakes(directory: Path = MISTAKES_DIR) -> tuple[Mistake, ...]:
    """Every mistake of the course, sorted by file name."""
    found = []
    for path in sorted(Path(directory).glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise CourseError(f"{path.name}: not valid YAML: {exc}") from exc
        found.append(parse_mistake(data, path.name))
    ids = [m.id for m in found]
    if len(set(ids)) != len(ids):
        raise CourseError(f"{directory}: duplicate mistake ids in {ids}")
    return tuple(found)


def apply_edits(package: Path, edits: Sequence[Mapping[str, Any]], *, source: str = "") -> None:
    """Apply ``edits`` to the files of the package directory ``package`` in place."""
    for edit in edits:
        path = package / edit["file"]
        if "write" in edit:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(edit["write"], encoding="utf-8")
            continue
        if not path.is_file():
            raise CourseError(f"{source}: {edit['file']} does not exist in the package")
        text = path.read_text(encoding="utf-8")
        if "replace" in edit:
            want = int(edit.get("count", 1))
            found = text.count(edit["replace"])
            if found != want:
                raise CourseError(
                    f"{source}: {edit['file']}: expected {want} occurrence(s) of {edit['replace']!r}, found {found}"
                )
            text = text.replace(edit["replace"], edit["with"])
        elif "append" in edit:
            text = text + ("" if text.endswith("\n") else "\n") + edit["append"]
        else:
            text = edit["prepend"] + text
        path.write_text(text, encoding="utf-8")


def materialise_mistake(mistake: Mistake, dest: Path, *, reference_dir: Path | None = None) -> Path:
    """Write the mistake's submission as ``dest/pipeline``; returns ``dest``."""
    reference = reference_dir or reference_package()
    cut: Sequence[str] | None = None if mistake.base == "starter" else mistake.cut
    package = Path(dest) / "pipeline"
    materialise(reference, package, cut)
    apply_edits(package, mistake.edits, source=mistake.id)
    return Path(dest)


__all__ = ["Mistake", "apply_edits", "load_mistakes", "materialise_mistake", "parse_mistake"]
