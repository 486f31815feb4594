"""Grading outputs: terminal table, Gradescope ``results.json``, JUnit XML, CSV gradebook, feedback.

Gradescope's autograder schema (https://gradescope-autograders.readthedocs.io/en/latest/specs/):
top-level ``score``, ``max_score``, ``output``, ``visibility``, ``stdout_visibility`` and ``tests``, each
test with ``name``, ``score``, ``max_score``, ``output``, ``visibility`` (and ``status``, ``name_format``).
JUnit XML goes through :mod:`telemetry_asserts.junit` (one suite per submission, one case per check).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grading.engine import CheckResult, SubmissionResult
from telemetry_asserts._files import write_text_atomic
from telemetry_asserts.junit import CaseResult, SuiteResult, junit_xml

GRADESCOPE_TEST_KEYS = ("name", "score", "max_score", "output", "visibility", "status")


def _num(value: float) -> str:
    return f"{value:g}"


def check_output(check: CheckResult) -> str:
    """The student-facing text of one check: verdict, what to do, what arrived vs expected."""
    if check.passed:
        return f"passed: {check.detail}" if check.detail else "passed"
    parts = [f"failed: {check.detail}" if check.detail else "failed", "", f"what to do: {check.feedback}"]
    if check.evidence:
        parts += ["", check.evidence]
    return "\n".join(parts)


def summary_table(results: Sequence[SubmissionResult]) -> str:
    """One row per submission, one column per exercise (score/max), then the total and status."""
    if not results:
        return "(no submissions)"
    ex_ids = [e.id for e in results[0].exercises]
    header = ["submission", *ex_ids, "total", "status"]
    rows = [header]
    for r in results:
        cells = [r.name]
        for ex_id in ex_ids:
            try:
                e = r.exercise(ex_id)
                cells.append(f"{_num(e.score)}/{_num(e.max_score)}")
            except KeyError:
                cells.append("-")
        cells += [f"{_num(r.score)}/{_num(r.max_score)}", r.status]
        rows.append(cells)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for n, row in enumerate(rows):
        lines.append(
            "  ".join(
                cell.ljust(w) if i in (0, len(row) - 1) else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths))
            ).rstrip()
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def feedback_text(result: SubmissionResult, *, verbose: bool = True) -> str:
    """The full feedback for one submission: problem, per-check verdicts, the telemetry that arrived."""
    lines = [f"{result.name}: {_num(result.score)}/{_num(result.max_score)} ({result.status})"]
    if result.problem:
        lines += ["", result.problem]
    for note in result.notes:
        lines.append(f"note: {note}")
    for e in result.exercises:
        lines += ["", f"[{e.id}] {e.title}: {_num(e.score)}/{_num(e.max_score)}"]
        for c in e.checks:
            mark = "PASS" if c.passed else "FAIL"
            lines.append(f"  {mark} {c.id} ({_num(c.points)}/{_num(c.max_points)}) {c.title}")
            if not c.passed:
                if c.detail and c.detail != result.problem:
                    lines.append(f"       {c.detail}")
                lines.append(f"       what to do: {c.feedback}")
                if verbose and c.evidence:
                    lines += ["       " + line for line in c.evidence.splitlines()]
    if verbose and result.telemetry_report:
        lines += ["", "What your run produced:", result.telemetry_report]
    return "\n".join(lines)


def gradescope_results(result: SubmissionResult, *, html: bool = False) -> dict[str, Any]:
    """The Gradescope ``results.json`` document for one submission. ``html``: the top-level output
    is :func:`gradescope_html` (``output_format: html``); the tests' outputs stay text."""
    tests = []
    for e in result.exercises:
        for c in e.checks:
            output = check_output(c)
            if result.status != "ok" and not c.passed:
                output = f"failed: {result.problem}\n\nwhat to do: {c.feedback}"
            tests.append(
                {
                    "name": f"{e.title} - {c.title}",
                    "score": c.points,
                    "max_score": c.max_points,
                    "output": output,
                    "visibility": "visible",
                    "status": "passed" if c.passed else "failed",
                }
            )
    summary = f"{_num(result.score)}/{_num(result.max_score)} points ({result.status})"
    if result.problem:
        summary += "\n" + result.problem
    if result.telemetry_report:
        summary += "\n\nWhat your run produced:\n" + result.telemetry_report
    doc = {
        "score": result.score,
        "max_score": result.max_score,
        "output": summary,
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "execution_time": round(result.duration_s, 3),
        "tests": tests,
    }
    if html:
        doc |= {"output": gradescope_html(result), "output_format": "html", "test_output_format": "text"}
    return doc


def _expected_and_actual(evidence: str) -> tuple[str, str]:
    """Split a check's evidence (``expected:\n<what the exercise states>\n\n<what the run produced>``,
    as the engine writes it) into its two halves; evidence without an expected part is all actual."""
    if not evidence.startswith("expected:\n"):
        return "", evidence
    expected, _, actual = evidence[len("expected:\n"):].partition("\n\n")
    return expected.rstrip("\n"), actual.strip("\n")


def _report_sections(result: SubmissionResult) -> list[Any]:
    from telemetry_asserts import ReportSection

    sections = []
    if result.problem or result.notes:
        text = "\n".join([result.problem, *(f"note: {n}" for n in result.notes)]).strip()
        sections.append(ReportSection(f"the run: {result.status}", "failed" if result.problem else "info", text=text))
    for e in result.exercises:
        for c in e.checks:
            expected, actual = _expected_and_actual(c.evidence) if not c.passed else ("", "")
            sections.append(ReportSection(
                f"[{e.id}] {e.title} - {c.title}", "passed" if c.passed else "failed",
                text=c.detail, expected=expected, actual=actual,
                feedback="" if c.passed else c.feedback, points=f"{_num(c.points)}/{_num(c.max_points)}"))
    return sections


def _run_telemetry(result: SubmissionResult) -> tuple[Any, str]:
    """The submission's run as the model (from the OTLP JSON it exported), and a note if unreadable."""
    from telemetry_asserts import Telemetry
    from telemetry_asserts.otlp import DecodeError, loads_otlp_json

    if not result.telemetry_otlp_json:
        return Telemetry(), ""
    try:
        return loads_otlp_json(result.telemetry_otlp_json, f"{result.name}/telemetry.jsonl"), ""
    except DecodeError as exc:
        return Telemetry(), f"the run's telemetry could not be read: {str(exc).splitlines()[0]}"


def feedback_html(result: SubmissionResult) -> str:
    """``feedback.html``: every check (expected beside what the run produced) above the trace view
    of the submission's run (waterfall, attributes, events, logs, metrics). Self-contained."""
    from telemetry_asserts import render_html

    telemetry, note = _run_telemetry(result)
    subtitle = f"{_num(result.score)}/{_num(result.max_score)} points ({result.status})" + (f" · {note}" if note else "")
    return render_html(telemetry, title=f"feedback: {result.name}", subtitle=subtitle, sections=_report_sections(result))


def gradescope_html(result: SubmissionResult) -> str:
    """The top-level Gradescope ``output`` as script-free HTML (Gradescope sanitises scripts away):
    the score, each failed check with expected and produced side by side, the run's waterfall."""
    import html

    from telemetry_asserts import render_static_html

    telemetry, note = _run_telemetry(result)
    failed = [s for s in _report_sections(result) if s.status != "passed"]
    head = f"<p><strong>{_num(result.score)}/{_num(result.max_score)} points</strong> ({html.escape(result.status)})"
    head += f" · {html.escape(note)}</p>" if note else "</p>"
    return head + "\n" + render_static_html(telemetry, sections=failed)


GRADESCOPE_FORMATS = ("text", "html", "simple_format", "md", "ansi")


def validate_gradescope(doc: Any) -> list[str]:
    """Problems with a ``results.json`` document against the Gradescope schema (empty: valid)."""
    problems: list[str] = []
    if not isinstance(doc, dict):
        return ["results.json must be a JSON object"]
    if "score" not in doc and not doc.get("tests"):
        problems.append("needs 'score' or 'tests'")
    for key in ("score", "max_score", "execution_time"):
        if key in doc and (isinstance(doc[key], bool) or not isinstance(doc[key], (int, float))):
            problems.append(f"{key!r} must be a number")
    for key in ("output_format", "test_output_format"):
        if key in doc and doc[key] not in GRADESCOPE_FORMATS:
            problems.append(f"{key!r} has an invalid value {doc[key]!r}; use one of {', '.join(GRADESCOPE_FORMATS)}")
    for key in ("visibility", "stdout_visibility"):
        if key in doc and doc[key] not in ("hidden", "after_due_date", "after_published", "visible"):
            problems.append(f"{key!r} has an invalid value {doc[key]!r}")
    for i, test in enumerate(doc.get("tests", [])):
        if not isinstance(test, dict):
            problems.append(f"tests[{i}] must be an object")
            continue
        unknown = (
            set(test) - set(GRADESCOPE_TEST_KEYS) - {"number", "tags", "extra_data", "name_format", "output_format"}
        )
        if unknown:
            problems.append(f"tests[{i}] has unknown keys {sorted(unknown)}")
        for key in ("score", "max_score"):
            if key in test and (isinstance(test[key], bool) or not isinstance(test[key], (int, float))):
                problems.append(f"tests[{i}].{key} must be a number")
        if "score" in test and "max_score" in test and test["score"] > test["max_score"]:
            problems.append(f"tests[{i}] scores more than its max_score")
        if "output_format" in test and test["output_format"] not in GRADESCOPE_FORMATS:
            problems.append(f"tests[{i}].output_format has an invalid value {test['output_format']!r}")
        if "status" in test and test["status"] not in ("passed", "failed"):
            problems.append(f"tests[{i}].status must be passed or failed")
        if not isinstance(test.get("name", ""), str) or not isinstance(test.get("output", ""), str):
            problems.append(f"tests[{i}] name and output must be strings")
    if "score" in doc and doc.get("tests"):
        total = sum(t.get("score", 0) for t in doc["tests"] if isinstance(t, dict))
        if abs(total - doc["score"]) > 1e-9:
            problems.append(f"'score' {doc['score']} is not the sum of the tests' scores {total}")
    return problems


def junit_suites(results: Sequence[SubmissionResult]) -> list[SuiteResult]:
    """One JUnit suite per submission, one case per check (a failed run: error cases)."""
    suites = []
    for r in results:
        cases = []
        for e in r.exercises:
            for c in e.checks:
                outcome = "passed" if c.passed else ("error" if r.status != "ok" else "failed")
                cases.append(
                    CaseResult(
                        name=f"{e.id}.{c.id}",
                        classname=f"{r.name}.{e.id}",
                        outcome=outcome,  # type: ignore[arg-type]
                        message=(c.detail or r.problem).splitlines()[0][:300]
                        if not c.passed and (c.detail or r.problem)
                        else "",
                        details="" if c.passed else check_output(c),
                        score=c.points,
                        max_score=c.max_points,
                    )
                )
        suites.append(
            SuiteResult(
                name=r.name,
                cases=tuple(cases),
                time_s=r.duration_s,
                properties={"score": _num(r.score), "max_score": _num(r.max_score), "status": r.status},
            )
        )
    return suites


def gradebook_csv(results: Sequence[SubmissionResult]) -> str:
    """CSV: submission, one column per exercise, total, max, status, problem (first line)."""
    buf = io.StringIO()
    ex_ids = [e.id for e in results[0].exercises] if results else []
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["submission", *ex_ids, "total", "max_score", "status", "problem"])
    for r in results:
        scores = []
        for ex_id in ex_ids:
            try:
                scores.append(_num(r.exercise(ex_id).score))
            except KeyError:
                scores.append("")
        writer.writerow(
            [r.name, *scores, _num(r.score), _num(r.max_score), r.status, (r.problem.splitlines() or [""])[0]]
        )
    return buf.getvalue()


def write_gradescope(result: SubmissionResult, path: Path) -> None:
    write_text_atomic(path, json.dumps(gradescope_results(result, html=True), indent=2) + "\n")


def write_junit(results: Sequence[SubmissionResult], path: Path) -> None:
    write_text_atomic(path, junit_xml(junit_suites(results), name="neuro-grade"))


def write_csv(results: Sequence[SubmissionResult], path: Path) -> None:
    write_text_atomic(path, gradebook_csv(results), newline="")


def write_results_dir(results: Sequence[SubmissionResult], directory: Path) -> None:
    """Per submission ``<name>/results.json`` (Gradescope), ``<name>/feedback.txt``,
    ``<name>/feedback.html`` (the same with the run's trace view) and ``<name>/telemetry.jsonl``
    (what the run exported, OTLP JSON), plus ``gradebook.csv``."""
    directory = Path(directory)
    used: set[str] = set()
    for r in results:
        name = r.name
        n = 1
        while name in used:
            n += 1
            name = f"{r.name}-{n}"
        used.add(name)
        write_gradescope(r, directory / name / "results.json")
        write_text_atomic(directory / name / "feedback.txt", feedback_text(r) + "\n")
        write_text_atomic(directory / name / "feedback.html", feedback_html(r))
        if r.telemetry_otlp_json:  # what arrived, for `telemetry-asserts check CONTRACT --from FILE`
            write_text_atomic(directory / name / "telemetry.jsonl", r.telemetry_otlp_json)
    write_csv(results, directory / "gradebook.csv")


__all__ = [
    "check_output",
    "feedback_html",
    "feedback_text",
    "gradebook_csv",
    "gradescope_html",
    "gradescope_results",
    "junit_suites",
    "summary_table",
    "validate_gradescope",
    "write_csv",
    "write_gradescope",
    "write_junit",
    "write_results_dir",
]
