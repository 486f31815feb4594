"""Machine-readable results for CI: JUnit XML and JSON, from plain suite/case records.

The records are independent of contracts so the grader (one suite per submission) and the CLI (one
suite per contract) write the same formats. JUnit follows the de-facto schema Jenkins, GitLab and
GitHub reporters read: ``<testsuites><testsuite name tests failures errors skipped time>
<testcase classname name time><failure message type>text</failure></testcase>``.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ._files import write_text_atomic

__all__ = ["CaseResult", "SuiteResult", "junit_xml", "results_json", "write_json", "write_junit_xml"]

Outcome = Literal["passed", "failed", "error", "skipped"]
_OUTCOMES = ("passed", "failed", "error", "skipped")


@dataclass(frozen=True)
class CaseResult:
    """One test case: a contract check, or one check of one submission."""

    name: str
    classname: str
    outcome: Outcome
    message: str = ""  # one line, shown by CI as the failure title
    details: str = ""  # the full report of the failure
    time_s: float = 0.0
    score: float | None = None
    max_score: float | None = None
    properties: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.outcome not in _OUTCOMES:
            raise ValueError(f"outcome must be one of {_OUTCOMES}, got {self.outcome!r}")


@dataclass(frozen=True)
class SuiteResult:
    """A group of cases: one contract run, or one graded submission."""

    name: str
    cases: tuple[CaseResult, ...]
    time_s: float = 0.0
    properties: Mapping[str, str] = field(default_factory=dict)
    system_out: str = ""

    def count(self, outcome: Outcome) -> int:
        return sum(1 for c in self.cases if c.outcome == outcome)

    @property
    def passed(self) -> bool:
        return all(c.outcome in ("passed", "skipped") for c in self.cases)


# XML 1.0 forbids most control characters even when escaped; program output may contain them.
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(text: str) -> str:
    return _ILLEGAL_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def junit_xml(suites: Sequence[SuiteResult], name: str = "telemetry-asserts") -> str:
    """The JUnit XML document for ``suites``."""
    root = ET.Element("testsuites", name=_clean(name))
    totals: dict[str, int] = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    total_time = 0.0
    for suite in suites:
        el = ET.SubElement(
            root,
            "testsuite",
            name=_clean(suite.name),
            tests=str(len(suite.cases)),
            failures=str(suite.count("failed")),
            errors=str(suite.count("error")),
            skipped=str(suite.count("skipped")),
            time=f"{suite.time_s:.3f}",
        )
        totals["tests"] += len(suite.cases)
        totals["failures"] += suite.count("failed")
        totals["errors"] += suite.count("error")
        totals["skipped"] += suite.count("skipped")
        total_time += suite.time_s
        if suite.properties:
            props = ET.SubElement(el, "properties")
            for k, v in suite.properties.items():
                ET.SubElement(props, "property", name=_clean(str(k)), value=_clean(str(v)))
        for case in suite.cases:
            _case(el, case)
        if suite.system_out:
            ET.SubElement(el, "system-out").text = _clean(suite.system_out)
    for key, count in totals.items():
        root.set(key, str(count))
    root.set("time", f"{total_time:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _case(parent: ET.Element, case: CaseResult) -> None:
    el = ET.SubElement(parent, "testcase", classname=_clean(case.classname), name=_clean(case.name),
                       time=f"{case.time_s:.3f}")
    props = dict(case.properties)
    if case.score is not None:
        props["score"] = _number(case.score)
    if case.max_score is not None:
        props["max_score"] = _number(case.max_score)
    if props:
        pel = ET.SubElement(el, "properties")
        for k, v in props.items():
            ET.SubElement(pel, "property", name=_clean(str(k)), value=_clean(str(v)))
    if case.outcome == "passed":
        return
    tag = {"failed": "failure", "error": "error", "skipped": "skipped"}[case.outcome]
    child = ET.SubElement(el, tag, message=_clean(case.message.splitlines()[0] if case.message else ""))
    if case.outcome != "skipped":
        child.set("type", "TelemetryContractViolation" if case.outcome == "failed" else "Error")
    if case.details:
        child.text = _clean(case.details)


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def results_json(suites: Sequence[SuiteResult]) -> dict[str, Any]:
    """A JSON-ready summary: totals and every case with outcome, message, details and scores."""
    out_suites = []
    for s in suites:
        out_suites.append({
            "name": s.name,
            "passed": s.passed,
            "time_s": round(s.time_s, 3),
            "properties": dict(s.properties),
            "cases": [
                {
                    "name": c.name,
                    "classname": c.classname,
                    "outcome": c.outcome,
                    "message": c.message,
                    "details": c.details,
                    "time_s": round(c.time_s, 3),
                    "score": c.score,
                    "max_score": c.max_score,
                    "properties": dict(c.properties),
                }
                for c in s.cases
            ],
        })
    cases = [c for s in suites for c in s.cases]
    return {
        "passed": all(s.passed for s in suites),
        "totals": {o: sum(1 for c in cases if c.outcome == o) for o in _OUTCOMES} | {"tests": len(cases)},
        "suites": out_suites,
    }


def write_junit_xml(suites: Sequence[SuiteResult], path: str | Path, name: str = "telemetry-asserts") -> None:
    """Write :func:`junit_xml` atomically (a CI job never reads half a file)."""
    write_text_atomic(path, junit_xml(suites, name))


def write_json(data: Any, path: str | Path) -> None:
    """Write JSON (e.g. :func:`results_json`) atomically, indented, UTF-8."""
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
