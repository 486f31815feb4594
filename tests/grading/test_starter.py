"""The starter cutter: markers in, valid starter and reference code out; bad markers named."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from grading.starter import MarkerError, cut, exercises_in, find_exercises, materialise, reference_package

SOURCE = textwrap.dedent(
    """\
    def write_output(tracer, path, data):
        with tracer.start_as_current_span("write_output"):
            size = len(data)
            # >>> exercise: write_metadata_span
            with tracer.start_as_current_span("write_metadata") as span:
                span.set_attribute("metadata.path", path)
                span.set_attribute("metadata.size_bytes", size)
            # === starter
            # | pass  # TODO: a write_metadata span
            # <<< exercise: write_metadata_span
            return size


    def count(counter, name):
        # >>> exercise: stages_counter
        counter.add(1, {"stage": name})
        # <<< exercise: stages_counter
        return name
    """
)


def test_cut_all_gives_the_starter_and_valid_code() -> None:
    starter = cut(SOURCE)
    ast.parse(starter)
    assert 'start_as_current_span("write_metadata")' not in starter
    assert "        pass  # TODO: a write_metadata span\n" in starter
    assert "counter.add" not in starter
    assert "# >>>" not in starter and "# |" not in starter and "# ===" not in starter
    assert "    return name\n" in starter


def test_cut_none_gives_the_reference_without_markers() -> None:
    reference = cut(SOURCE, cut_exercises=())
    ast.parse(reference)
    assert 'span.set_attribute("metadata.size_bytes", size)' in reference
    assert 'counter.add(1, {"stage": name})' in reference
    assert "TODO" not in reference
    assert "exercise:" not in reference


def test_cut_one_exercise_keeps_the_others() -> None:
    partial = cut(SOURCE, cut_exercises={"stages_counter"})
    assert "write_metadata" in partial
    assert "counter.add" not in partial
    ast.parse(partial)


def test_exercises_in_lists_ids_in_order() -> None:
    assert exercises_in(SOURCE) == ["write_metadata_span", "stages_counter"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# >>> exercise: a\nx = 1\n", "f.py:1: exercise 'a' is never closed"),
        ("x = 1\n# <<< exercise: a\n", "f.py:2: exercise 'a' closes but was never opened"),
        ("# >>> exercise: a\n# <<< exercise: b\n", "f.py:2: closes exercise 'b' but 'a' is open (since line 1)"),
        (
            "# >>> exercise: a\n# >>> exercise: b\n",
            "f.py:2: exercise 'b' opens inside exercise 'a' (opened at line 1); blocks do not nest",
        ),
        ("# === starter\n", "f.py:1: '# === starter' outside an exercise block"),
        (
            "# >>> exercise: a\n# === starter\nx = 1\n# <<< exercise: a\n",
            "f.py:3: starter lines must start with '# | ' (got 'x = 1')",
        ),
        (
            "# >>> exercise: a\n# === starter\n# === starter\n# <<< exercise: a\n",
            "f.py:3: second '# === starter' in exercise 'a'",
        ),
        ("# >>> exercise:\n", "f.py:1: malformed exercise marker: '# >>> exercise:'"),
    ],
)
def test_malformed_markers_are_named(text: str, message: str) -> None:
    with pytest.raises(MarkerError) as info:
        cut(text, source="f.py")
    assert str(info.value) == message


def test_materialise_copies_a_package_and_cuts(tmp_path: Path) -> None:
    ref = tmp_path / "ref" / "pipeline"
    (ref / "stages").mkdir(parents=True)
    (ref / "__init__.py").write_text("")
    (ref / "writer.py").write_text(SOURCE)
    (ref / "stages" / "__init__.py").write_text("X = 1\n")
    (ref / "contract.yaml").write_text("a: 1\n")
    (ref / "__pycache__").mkdir()
    (ref / "__pycache__" / "writer.cpython-311.pyc").write_bytes(b"x")
    assert find_exercises(ref) == {"write_metadata_span": ["writer.py"], "stages_counter": ["writer.py"]}

    out = tmp_path / "out" / "pipeline"
    materialise(ref, out, ["stages_counter"])
    assert (out / "contract.yaml").read_text() == "a: 1\n"
    assert not (out / "__pycache__").exists()
    assert "counter.add" not in (out / "writer.py").read_text()
    assert "write_metadata" in (out / "writer.py").read_text()

    with pytest.raises(MarkerError, match=r"no exercise markers for \['nope'\]"):
        materialise(ref, tmp_path / "other", ["nope"])


def test_reference_pipeline_cuts_to_valid_python(tmp_path: Path) -> None:
    """Both the starter and the reference materialised from the real pipeline parse."""
    ref = reference_package()
    exercises = find_exercises(ref)
    if not exercises:
        pytest.skip("the reference pipeline carries no exercise markers yet")
    for cut_set in (None, ()):
        dest = tmp_path / ("starter" if cut_set is None else "reference") / "pipeline"
        for path in materialise(ref, dest, cut_set):
            ast.parse(path.read_text(), filename=str(path))
