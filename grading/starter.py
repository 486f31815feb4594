"""Cut the students' starter from the reference pipeline with exercise markers.

A marked block in a reference source file::

    # >>> exercise: <exercise_id>
    <reference code, any number of lines>
    # === starter
    # | <starter code line, same indentation after "# | ">
    # <<< exercise: <exercise_id>

Cutting an exercise keeps everything outside the markers, drops the reference lines and uncomments
the ``# | `` lines (the starter part may be absent: the block then disappears). Keeping an exercise
(the reference) drops only the marker and starter lines. Blocks do not nest.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

_OPEN = re.compile(r"^(?P<indent>[ \t]*)# >>> exercise:\s*(?P<id>[A-Za-z0-9_.-]+)\s*$")
_SPLIT = re.compile(r"^[ \t]*# === starter\s*$")
_STARTER_LINE = re.compile(r"^(?P<indent>[ \t]*)# \|(?: (?P<code>.*))?$")
_CLOSE = re.compile(r"^[ \t]*# <<< exercise:\s*(?P<id>[A-Za-z0-9_.-]+)\s*$")
_ANY_MARKER = re.compile(r"^[ \t]*# (>>> exercise:|=== starter|<<< exercise:)")

IGNORED_NAMES = ("__pycache__", "*.pyc", "*.pyo", ".pytest_cache", "*.egg-info")


class MarkerError(ValueError):
    """A malformed exercise marker; the message names the file, line and problem."""


@dataclass(frozen=True)
class Block:
    """One marked exercise block (1-based, inclusive line numbers of its markers)."""

    exercise: str
    open_line: int
    split_line: int | None
    close_line: int


def parse_blocks(text: str, *, source: str = "<text>") -> list[Block]:
    """Find the exercise blocks of one file, validating the marker structure."""
    blocks: list[Block] = []
    current: tuple[str, int] | None = None
    split: int | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if m := _OPEN.match(line):
            if current is not None:
                raise MarkerError(
                    f"{source}:{number}: exercise {m['id']!r} opens inside exercise {current[0]!r} "
                    f"(opened at line {current[1]}); blocks do not nest"
                )
            current, split = (m["id"], number), None
        elif _SPLIT.match(line):
            if current is None:
                raise MarkerError(f"{source}:{number}: '# === starter' outside an exercise block")
            if split is not None:
                raise MarkerError(f"{source}:{number}: second '# === starter' in exercise {current[0]!r}")
            split = number
        elif m := _CLOSE.match(line):
            if current is None:
                raise MarkerError(f"{source}:{number}: exercise {m['id']!r} closes but was never opened")
            if m["id"] != current[0]:
                raise MarkerError(
                    f"{source}:{number}: closes exercise {m['id']!r} but {current[0]!r} is open "
                    f"(since line {current[1]})"
                )
            blocks.append(Block(current[0], current[1], split, number))
            current, split = None, None
        elif _ANY_MARKER.match(line):
            raise MarkerError(f"{source}:{number}: malformed exercise marker: {line.strip()!r}")
        elif split is not None and current is not None and not _STARTER_LINE.match(line) and line.strip():
            raise MarkerError(f"{source}:{number}: starter lines must start with '# | ' (got {line.strip()!r})")
    if current is not None:
        raise MarkerError(f"{source}:{current[1]}: exercise {current[0]!r} is never closed")
    return blocks


def cut(text: str, cut_exercises: Collection[str] | None = None, *, source: str = "<text>") -> str:
    """Return ``text`` with the given exercises cut to their starter (None: cut every exercise).

    Exercises not cut keep their reference code; all marker lines disappear either way.
    """
    blocks = parse_blocks(text, source=source)
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    by_open = {b.open_line: b for b in blocks}
    number = 0
    while number < len(lines):
        block = by_open.get(number + 1)
        if block is None:
            out.append(lines[number])
            number += 1
            continue
        end_ref = (block.split_line or block.close_line) - 1  # last reference line (1-based)
        if cut_exercises is None or block.exercise in cut_exercises:
            if block.split_line is not None:
                for raw in lines[block.split_line : block.close_line - 1]:
                    out.append(_uncomment(raw))
        else:
            out.extend(lines[block.open_line : end_ref])
        number = block.close_line
    return "".join(out)


def _uncomment(raw: str) -> str:
    newline = "\n" if raw.endswith("\n") else ""
    m = _STARTER_LINE.match(raw.rstrip("\r\n"))
    if m is None:  # a blank line inside the starter part
        return raw
    code = m["code"] or ""
    return f"{m['indent']}{code}{newline}" if code else newline


def exercises_in(text: str, *, source: str = "<text>") -> list[str]:
    """The exercise ids marked in one file, in order (an id may appear in several blocks)."""
    return list(dict.fromkeys(b.exercise for b in parse_blocks(text, source=source)))


def find_exercises(package_dir: Path) -> dict[str, list[str]]:
    """Map each exercise id to the files (relative to ``package_dir``) that mark it."""
    found: dict[str, list[str]] = {}
    for path in sorted(Path(package_dir).rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        rel = str(path.relative_to(package_dir))
        for exercise in exercises_in(path.read_text(encoding="utf-8"), source=rel):
            found.setdefault(exercise, []).append(rel)
    return found


def materialise(
    reference_dir: Path,
    dest_dir: Path,
    cut_exercises: Iterable[str] | None = None,
) -> list[Path]:
    """Copy the package at ``reference_dir`` to ``dest_dir``, cutting ``cut_exercises`` in .py files.

    ``None`` cuts every exercise (the students' starter); an empty collection gives the reference
    without markers. Returns the written .py files. ``dest_dir`` must not exist yet.
    """
    reference_dir, dest_dir = Path(reference_dir), Path(dest_dir)
    chosen = None if cut_exercises is None else frozenset(cut_exercises)
    if chosen is not None:
        unknown = chosen - set(find_exercises(reference_dir))
        if unknown:
            raise MarkerError(f"{reference_dir}: no exercise markers for {sorted(unknown)}")
    shutil.copytree(reference_dir, dest_dir, ignore=shutil.ignore_patterns(*IGNORED_NAMES))
    written: list[Path] = []
    for path in sorted(dest_dir.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        rel = str(path.relative_to(dest_dir))
        new = cut(text, chosen, source=rel)
        if new != text:
            path.write_text(new, encoding="utf-8")
        written.append(path)
    return written


def reference_package() -> Path:
    """The repository's own ``pipeline`` package (the reference solution)."""
    import importlib.util

    spec = importlib.util.find_spec("pipeline")
    if spec is None or spec.origin is None:
        raise RuntimeError("the reference 'pipeline' package is not importable")
    return Path(spec.origin).parent


def write_starter(dest: Path, *, reference_dir: Path | None = None) -> Path:
    """Write the students' starter as ``dest/pipeline`` (every exercise cut); returns that path."""
    target = Path(dest) / "pipeline"
    if target.exists():
        raise FileExistsError(f"{target} already exists; choose an empty directory")
    materialise(reference_dir or reference_package(), target, None)
    return target


__all__ = [
    "Block",
    "MarkerError",
    "cut",
    "exercises_in",
    "find_exercises",
    "materialise",
    "parse_blocks",
    "reference_package",
    "write_starter",
]
