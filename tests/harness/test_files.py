"""Atomic text writes shared by the JSON/JUnit reports, snapshots, OTLP dumps and the grader."""

import pytest

from telemetry_asserts._files import write_text_atomic


def test_writes_whole_file_and_creates_parents(tmp_path):
    target = tmp_path / "a" / "b" / "report.json"
    assert write_text_atomic(target, "{}\n") == target
    assert target.read_text() == "{}\n"
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old\n")
    with pytest.raises(UnicodeEncodeError):
        write_text_atomic(target, "half \ud800 written")  # a lone surrogate cannot be encoded
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_newline_argument_keeps_crlf_for_csv(tmp_path):
    target = tmp_path / "grades.csv"
    write_text_atomic(target, "a,b\r\n1,2\r\n", newline="")
    assert target.read_bytes() == b"a,b\r\n1,2\r\n"
