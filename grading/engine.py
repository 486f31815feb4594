"""Grade submissions: materialise, run isolated, collect telemetry into the model, judge, score.

A submission is a directory holding a ``pipeline/`` package, a git repository of one, or a zip of
one. Each is copied into a private run directory and run by :mod:`grading.runner` in its own
subprocess (:mod:`grading.isolate`). Only what the runner's grader-owned exporters captured and
wrote with the run's nonce is judged; a run that timed out, crashed, could not be imported or
tampered with the capture scores 0 on every check, with feedback saying so.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grading.checks import Evidence, run_check
from grading.course import CheckSpec, Exercise, load_exercises
from grading.isolate import IsolatedResult, Limits, minimal_env, run_isolated
from telemetry_asserts import model
from telemetry_asserts.otlp.files import read_otlp_json
from telemetry_asserts.report import render_logs, render_metrics, render_tree

PHANTOM_NAME = "sub-01_T1w.nii.gz"
MISSING_NAME = "sub-02_T1w.nii.gz"
MAX_ZIP_BYTES = 50 * 1024 * 1024


class SubmissionError(ValueError):
    """The submission cannot be materialised (no pipeline/ package, bad zip, not a git repo...)."""


@dataclass(frozen=True)
class GradeConfig:
    """How every submission is run: limits, the stages and the small phantom volume."""

    timeout_s: float = 30.0
    memory_mb: int = 1536
    stages: tuple[str, ...] = ("skull_strip", "normalize", "smooth", "resample")
    phantom_shape: tuple[int, int, int] = (32, 32, 32)
    large_file_threshold_bytes: int = 1024
    python: str = sys.executable

    def limits(self) -> Limits:
        return Limits(timeout_s=self.timeout_s, memory_mb=self.memory_mb)


@dataclass(frozen=True)
class CheckResult:
    exercise: str
    id: str
    title: str
    points: float
    max_points: float
    passed: bool
    feedback: str
    detail: str
    evidence: str = ""

    @property
    def name(self) -> str:
        return f"{self.exercise}/{self.id}"


@dataclass(frozen=True)
class ExerciseResult:
    id: str
    title: str
    checks: tuple[CheckResult, ...]

    @property
    def score(self) -> float:
        return sum(c.points for c in self.checks)

    @property
    def max_score(self) -> float:
        return sum(c.max_points for c in self.checks)


@dataclass(frozen=True)
class SubmissionResult:
    """The verdict on one submission. ``status``: ok | timeout | crashed | import_error | tampered | invalid."""

    name: str
    source: str
    status: str
    problem: str
    exercises: tuple[ExerciseResult, ...]
    duration_s: float = 0.0
    stdout: str = ""
    stderr: str = ""
    telemetry_report: str = ""
    telemetry_otlp_json: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def score(self) -> float:
        return sum(e.score for e in self.exercises)

    @property
    def max_score(self) -> float:
        return sum(e.max_score for e in self.exercises)

    def exercise(self, exercise_id: str) -> ExerciseResult:
        for e in self.exercises:
            if e.id == exercise_id:
                return e
        raise KeyError(exercise_id)


# ------------------------------------------------------------------------------ submissions


def materialise_submission(source: Path, dest: Path) -> Path:
    """Copy ``source`` (dir, git repo or zip) so that ``dest/pipeline`` is its package; returns ``dest``."""
    source = Path(source)
    dest.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / (dest.name + ".staging")
    if source.is_file() and zipfile.is_zipfile(source):
        _safe_extract(source, staging)
    elif source.is_dir() and (source / ".git").exists():
        proc = subprocess.run(
            ["git", "clone", "--quiet", "--depth", "1", "--no-hardlinks", f"file://{source.resolve()}", str(staging)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if proc.returncode != 0:
            raise SubmissionError(f"{source}: git clone failed: {proc.stderr.strip()[:300]}")
    elif source.is_dir():
        shutil.copytree(source, staging, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".git"), symlinks=False)
    else:
        raise SubmissionError(f"{source}: not a directory, git repository or zip file")
    package = _find_package(staging)
    if package is None:
        shutil.rmtree(staging, ignore_errors=True)
        raise SubmissionError(f"{source}: no pipeline/ package (a directory 'pipeline' with __init__.py) found")
    shutil.copytree(package, dest / "pipeline", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), symlinks=False)
    shutil.rmtree(staging, ignore_errors=True)
    return dest


def _find_package(root: Path) -> Path | None:
    """``root/pipeline`` or, for archives with one top folder, ``root/<top>/pipeline``."""
    for candidate in [root / "pipeline", *sorted(p / "pipeline" for p in root.iterdir() if p.is_dir())]:
        if (candidate / "__init__.py").is_file():
            return candidate
    return None


def _safe_extract(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        total = 0
        for info in zf.infolist():
            target = (dest / info.filename).resolve()
            if not target.is_relative_to(dest.resolve()):
                raise SubmissionError(f"{archive}: member {info.filename!r} escapes the archive")
            total += info.file_size
            if total > MAX_ZIP_BYTES:
                raise SubmissionError(f"{archive}: more than {MAX_ZIP_BYTES // 2**20} MiB uncompressed")
        zf.extractall(dest)


def submission_name(source: Path) -> str:
    name = Path(source).name
    return name.removesuffix(".zip")


# ------------------------------------------------------------------------------ the session


class GradingSession:
    """A temporary area with the phantom volume, shared by the runs of one grading call."""

    def __init__(self, config: GradeConfig = GradeConfig(), root: Path | None = None) -> None:
        self.config = config
        self._tmp = tempfile.TemporaryDirectory(prefix="neuro-grade-", dir=root)
        self.root = Path(self._tmp.name)
        self.phantom = self.root / PHANTOM_NAME
        _write_phantom(self.phantom, config.phantom_shape)
        self._counter = 0
        self._lock = threading.Lock()

    def new_run_dir(self, name: str) -> Path:
        with self._lock:
            self._counter += 1
            number = self._counter
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:60] or "submission"
        path = self.root / f"{number:04d}-{safe}"
        path.mkdir()
        return path

    def close(self) -> None:
        self._tmp.cleanup()

    def __enter__(self) -> GradingSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _write_phantom(path: Path, shape: Sequence[int]) -> None:
    """The small T1w-like phantom from the *reference* pipeline (grader side, not the submission's)."""
    import nibabel as nib

    from pipeline.phantom import make_head_phantom

    nib.save(make_head_phantom(shape=tuple(shape), voxel_size_mm=(192.0 / shape[0],) * 3, seed=0), str(path))


# ------------------------------------------------------------------------------ grading


def run_submission(
    source: Path, session: GradingSession
) -> tuple[str, str, IsolatedResult | None, dict[str, Any] | None, Path]:
    """Materialise and run one submission; returns (status, problem, run, payload, run_dir)."""
    run_dir = session.new_run_dir(submission_name(source))
    try:
        sub = materialise_submission(source, run_dir / "submission")
    except SubmissionError as exc:
        return "invalid", str(exc), None, None, run_dir
    work = run_dir / "work"
    work.mkdir()
    phantom = work / PHANTOM_NAME
    shutil.copyfile(session.phantom, phantom)
    nonce = secrets.token_hex(16)
    result_path = run_dir / "result.json"
    config = session.config
    job = {
        "nonce": nonce,
        "result_path": str(result_path),
        "telemetry_path": str(run_dir / "telemetry.jsonl"),
        "submission": str(sub),
        "phantom": str(phantom),
        "missing_file": str(work / MISSING_NAME),
        "output_dir": str(work / "out"),
        "stages": list(config.stages),
        "stage_params": {},
        "large_file_threshold_bytes": config.large_file_threshold_bytes,
    }
    run = run_isolated(
        [config.python, "-I", "-c", _RUNNER_BOOTSTRAP.format(root=str(_SOURCE_ROOT))],
        cwd=work,
        limits=config.limits(),
        env=minimal_env(),
        stdin_data=json.dumps(job).encode(),
        output_dir=run_dir,
    )
    if run.timed_out:
        return (
            "timeout",
            f"stopped at the time limit of {config.timeout_s:g} s (an infinite loop or a hang?)",
            run,
            None,
            run_dir,
        )
    payload = _read_payload(result_path, nonce, run_dir / "telemetry.jsonl")
    if payload is None:
        how = f"killed by {run.signal_name}" if run.signal_name else f"exit code {run.returncode}"
        if run.signal_name in ("SIGKILL", "SIGXCPU"):
            how += " (a resource limit: memory or CPU time)"
        tail = "\n".join(run.stderr.strip().splitlines()[-8:])
        return (
            "crashed",
            f"the run ended without a valid result ({how})" + (f":\n{tail}" if tail else ""),
            run,
            None,
            run_dir,
        )
    outcome = payload.get("outcome") or {}
    if outcome.get("import"):
        err = outcome["import"]
        return (
            "import_error",
            f"importing your pipeline failed: {err['type']}: {err['message']}\n{err.get('traceback', '')}",
            run,
            payload,
            run_dir,
        )
    if payload.get("integrity_violations"):
        listing = "; ".join(payload["integrity_violations"][:6])
        return "tampered", f"the grader's telemetry capture was tampered with: {listing}", run, payload, run_dir
    outside = outcome.get("modules_outside_submission") or []
    if outside:
        return (
            "invalid",
            f"pipeline modules were imported from outside the submission: {', '.join(outside)}",
            run,
            payload,
            run_dir,
        )
    return "ok", "", run, payload, run_dir


# ``python -I`` ignores PYTHONPATH and the working directory; the grader's own source root is
# appended (installed copies still win) so an uninstalled checkout grades too. ``pipeline`` itself
# is only ever resolved by the runner's import guard, from the submission.
_SOURCE_ROOT = Path(__file__).resolve().parent.parent
_RUNNER_BOOTSTRAP = "import sys; sys.path.append({root!r}); from grading.runner import main; main()"


def _read_payload(path: Path, nonce: str, telemetry_path: Path | None = None) -> dict[str, Any] | None:
    """The runner's result if it carries this run's nonce (and its telemetry file's sha256), else None.

    The OTLP JSON telemetry is decoded into the model under ``payload["telemetry"]``.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            payload = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(payload, dict) or payload.get("nonce") != nonce:
        return None
    if telemetry_path is not None:
        try:
            data = telemetry_path.read_bytes()
        except OSError:
            return None
        if hashlib.sha256(data).hexdigest() != payload.get("telemetry_sha256"):
            return None
        try:
            payload["telemetry"] = read_otlp_json(telemetry_path) if data.strip() else model.Telemetry()
        except ValueError:
            return None
        payload["telemetry_otlp_json"] = data.decode("utf-8", errors="replace")
    return payload


def build_evidence(payload: Mapping[str, Any], work_dir: str) -> Evidence:
    """The runner's payload as judge input: the model, split per scenario by time window."""
    telemetry = payload.get("telemetry") or model.Telemetry()
    outcome = payload.get("outcome") or {}
    scenarios: dict[str, model.Telemetry] = {}
    roots = _trace_starts(telemetry)
    for name, info in (outcome.get("scenarios") or {}).items():
        if "start_ns" not in info:
            continue
        lo, hi = int(info["start_ns"]), int(info.get("end_ns") or 2**63)
        traces = {t for t, start in roots.items() if lo <= start <= hi}
        scenarios[name] = model.Telemetry(
            tuple(s for s in telemetry.spans if s.trace_id in traces),
            telemetry.metrics,
            tuple(
                r
                for r in telemetry.logs
                if (r.trace_id in traces) or (not r.is_correlated and lo <= r.timestamp_ns <= hi)
            ),
        )
    return Evidence(
        telemetry=telemetry,
        scenarios=scenarios,
        outcome=outcome,
        prometheus=_prometheus_samples(str(payload.get("prometheus") or "")),
        work_dir=work_dir,
    )


def _trace_starts(telemetry: model.Telemetry) -> dict[int, int]:
    starts: dict[int, int] = {}
    for s in telemetry.spans:
        starts[s.trace_id] = min(starts.get(s.trace_id, s.start_time_ns), s.start_time_ns)
    return starts


def _prometheus_samples(text: str) -> dict[str, tuple[str, ...]]:
    from prometheus_client.parser import text_string_to_metric_families

    try:
        return {f.name: tuple(sorted({s.name for s in f.samples})) for f in text_string_to_metric_families(text)}
    except (ValueError, TypeError):
        return {}


_SPAN_KINDS = (
    "span_present",
    "span_parent",
    "span_attributes",
    "span_size_matches_output",
    "span_error",
    "span_exception",
    "span_event",
)
_METRIC_KINDS = (
    "metric_present",
    "metric_attribute_keys",
    "metric_value",
    "metric_counts_spans",
    "no_path_in_metric_attributes",
    "metric_series_limit",
)
_LOG_KINDS = ("log_present", "log_inside_span")


def evidence_text(check: CheckSpec, evidence: Evidence) -> str:
    """What the submission actually produced, for the part a failed check is about."""
    scenario = check.params.get("scenario", "success")
    if check.kind in _SPAN_KINDS:
        spans = evidence.scope(scenario).spans
        text = f"your span tree ({scenario.replace('_', '-')} run):\n" + render_tree(
            spans, durations=False, max_lines=40
        )
        if check.kind in ("span_event", "span_exception"):
            events = [f"  {s.name}: {', '.join(e.name for e in s.events) or '(none)'}" for s in spans[:30]]
            text += "\nevents per span:\n" + "\n".join(events)
        return text
    if check.kind in _METRIC_KINDS:
        name = check.params.get("metric")
        points = [p for p in evidence.telemetry.metrics if name is None or p.name == name] or list(
            evidence.telemetry.metrics
        )
        return "your metric points:\n" + render_metrics(points, max_lines=40)
    if check.kind in _LOG_KINDS:
        index = {(s.trace_id, s.span_id): s.name for s in evidence.telemetry.spans}
        logs = evidence.scope(scenario).logs
        lines = render_logs(logs, max_lines=30).splitlines()
        for i, r in enumerate(logs[:30]):
            if r.is_correlated:
                lines[i] = lines[i].replace(
                    f"span={r.span_id_hex}", f"span={index.get((r.trace_id, r.span_id), r.span_id_hex)}"
                )
        return "your log records:\n" + "\n".join(lines)
    if check.kind == "prometheus_series":
        names = sorted({s for v in evidence.prometheus.values() for s in v})
        return "Prometheus series your run exposes:\n" + ("\n".join(names) or "(none)")
    return ""


def _with_expected(spec: CheckSpec, actual: str) -> str:
    if not spec.expected:
        return actual
    expected = "expected:\n" + spec.expected
    return f"{expected}\n\n{actual}" if actual else expected


def judge_exercises(
    exercises: Sequence[Exercise], evidence: Evidence | None, problem: str
) -> tuple[ExerciseResult, ...]:
    """Score every check; with no evidence (a failed run) every check gets 0 and the run's problem."""
    results = []
    for ex in exercises:
        checks = []
        for spec in ex.checks:
            if evidence is None:
                headline = problem.splitlines()[0] if problem else "the run produced no telemetry"
                checks.append(CheckResult(ex.id, spec.id, spec.title, 0.0, spec.points, False, spec.feedback, headline))
                continue
            verdict = run_check(spec.kind, evidence, {"scenario": "success", **spec.params})
            checks.append(
                CheckResult(
                    ex.id,
                    spec.id,
                    spec.title,
                    spec.points if verdict.passed else 0.0,
                    spec.points,
                    verdict.passed,
                    spec.feedback,
                    verdict.detail,
                    "" if verdict.passed else _with_expected(spec, evidence_text(spec, evidence)),
                )
            )
        results.append(ExerciseResult(ex.id, ex.title, tuple(checks)))
    return tuple(results)


def grade_submission(
    source: Path, session: GradingSession, exercises: Sequence[Exercise] | None = None
) -> SubmissionResult:
    """Run and judge one submission."""
    exercises = tuple(exercises) if exercises is not None else load_exercises()
    status, problem, run, payload, run_dir = run_submission(Path(source), session)
    evidence = build_evidence(payload, str(run_dir)) if status == "ok" and payload is not None else None
    notes: list[str] = []
    report = ""
    if evidence is not None:
        for name, info in (evidence.outcome.get("scenarios") or {}).items():
            if not info.get("ok", True) and info.get("error"):
                err = info["error"]
                notes.append(f"the {name} run raised {err['type']}: {err['message']}")
        report = "\n".join(
            [
                "span tree:",
                render_tree(evidence.telemetry.spans, durations=False, max_lines=60),
                "metric points:",
                render_metrics(evidence.telemetry.metrics, max_lines=40),
            ]
        )
    result = SubmissionResult(
        name=submission_name(Path(source)),
        source=str(source),
        status=status,
        problem=problem,
        exercises=judge_exercises(exercises, evidence, problem),
        duration_s=run.duration_s if run is not None else 0.0,
        stdout=run.stdout if run is not None else "",
        stderr=run.stderr if run is not None else "",
        telemetry_report=report,
        telemetry_otlp_json=str((payload or {}).get("telemetry_otlp_json", "")) if status == "ok" else "",
        notes=tuple(notes),
    )
    shutil.rmtree(run_dir, ignore_errors=True)
    return result


def _grade_on_worker(source: str, *, config: GradeConfig, exercises: Sequence[Exercise]) -> SubmissionResult:
    """One submission on a Dask worker: a session (phantom, run dir) of its own on that machine."""
    with GradingSession(config) as session:
        return grade_submission(Path(source), session, exercises)


def grade_many(
    sources: Iterable[Path],
    *,
    jobs: int = 1,
    config: GradeConfig = GradeConfig(),
    exercises: Sequence[Exercise] | None = None,
    on_result: Callable[[SubmissionResult], None] | None = None,
    dask_scheduler: str | None = None,
) -> list[SubmissionResult]:
    """Grade ``sources`` with up to ``jobs`` runs at a time; results in input order.

    With ``dask_scheduler`` each submission is graded on a worker of that Dask cluster instead (in
    its own isolated subprocess there, with the same limits, so the verdicts are the same as local
    ``jobs``); the workers need this package installed and the submission paths readable.
    """
    sources = [Path(s) for s in sources]
    chosen = tuple(exercises) if exercises is not None else load_exercises()
    if dask_scheduler:
        from functools import partial

        from pipeline.parallel import map_on_dask

        grade_remote = partial(_grade_on_worker, config=config, exercises=chosen)
        return map_on_dask(grade_remote, [str(s) for s in sources], dask_scheduler, on_result)
    with GradingSession(config) as session, ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:

        def one(src: Path) -> SubmissionResult:
            result = grade_submission(src, session, chosen)
            if on_result is not None:
                on_result(result)
            return result

        return list(pool.map(one, sources))


__all__ = [
    "CheckResult",
    "ExerciseResult",
    "GradeConfig",
    "GradingSession",
    "SubmissionError",
    "SubmissionResult",
    "build_evidence",
    "grade_many",
    "grade_submission",
    "judge_exercises",
    "materialise_submission",
    "run_submission",
]
