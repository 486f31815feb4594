"""``neuro-grade``: write the students' starter, grade submissions.

    neuro-grade starter DIR
    neuro-grade grade SUBMISSION... [-j N] [--results DIR] [--gradescope PATH] [--junit-xml PATH]
                      [--csv PATH] [--timeout-s S] [--memory-mb M] [--exercise ID]... [-v]

Exit codes: 0 graded (whatever the scores), 1 some submission could not be run at all (invalid,
crashed, timeout, import error, tampered) - the verdicts are still written, 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from grading.course import CourseError, exercises_markdown, load_exercises
from grading.engine import GradeConfig, SubmissionResult, grade_many
from grading.results import feedback_text, summary_table, write_csv, write_gradescope, write_junit, write_results_dir
from grading.starter import MarkerError, find_exercises, reference_package, write_starter


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neuro-grade", description="Grade the neuro-preprocess instrumentation exercises."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    st = sub.add_parser("starter", help="write the students' starter pipeline/ into DIR")
    st.add_argument("dir", type=Path)
    gr = sub.add_parser("grade", help="grade submissions (a directory with pipeline/, a git repo, or a zip)")
    gr.add_argument("submissions", nargs="+", type=Path, metavar="SUBMISSION")
    gr.add_argument("-j", "--jobs", type=int, default=1, help="submissions graded in parallel (default 1)")
    gr.add_argument(
        "--results", type=Path, metavar="DIR", help="write <name>/results.json, <name>/feedback.txt, gradebook.csv"
    )
    gr.add_argument(
        "--gradescope",
        type=Path,
        metavar="PATH",
        help="Gradescope results.json (one submission: that file; several: a directory)",
    )
    gr.add_argument("--dask-scheduler", metavar="ADDRESS",
                    help="grade on this Dask cluster's workers (each submission still in its own isolated subprocess)")
    gr.add_argument("--junit-xml", type=Path, metavar="PATH")
    gr.add_argument("--csv", type=Path, metavar="PATH", help="CSV gradebook")
    gr.add_argument("--timeout-s", type=float, default=GradeConfig.timeout_s)
    gr.add_argument("--memory-mb", type=int, default=GradeConfig.memory_mb)
    gr.add_argument("--exercise", action="append", default=None, metavar="ID", help="grade only these exercises")
    gr.add_argument("-v", "--verbose", action="store_true", help="print each submission's full feedback")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "starter":
        return _starter(args.dir)
    return _grade(parser, args)[0]


def grade_command(argv: Sequence[str]) -> tuple[int, list[SubmissionResult]]:
    """``neuro-grade grade ARGV...`` in-process: the exit code and the results (for tests and tools)."""
    parser = _parser()
    return _grade(parser, parser.parse_args(["grade", *argv]))


def _starter(directory: Path) -> int:
    try:
        reference = reference_package()
        exercises = find_exercises(reference)
        target = write_starter(directory, reference_dir=reference)
        handout = directory / "EXERCISES.md"
        handout.write_text(exercises_markdown(load_exercises()) + "\n", encoding="utf-8")
    except (FileExistsError, MarkerError, RuntimeError, CourseError) as exc:
        print(f"neuro-grade: {exc}", file=sys.stderr)
        return 2
    print(f"wrote the starter to {target} ({len(exercises)} exercises: {', '.join(sorted(exercises))}) and {handout}")
    return 0


def _grade(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[int, list[SubmissionResult]]:
    if args.jobs < 1:
        parser.error("-j must be >= 1")
    if args.timeout_s <= 0 or args.memory_mb < 128:
        parser.error("--timeout-s must be > 0 and --memory-mb >= 128")
    # "." and ".." have no name of their own: grade them under their directory's name
    args.submissions = [p.resolve() if p.name in ("", "..") else p for p in args.submissions]
    missing = [str(p) for p in args.submissions if not p.exists()]
    if missing:
        parser.error(f"no such submission: {', '.join(missing)}")
    try:
        exercises = load_exercises(only=args.exercise)
    except CourseError as exc:
        parser.error(str(exc))
    config = GradeConfig(timeout_s=args.timeout_s, memory_mb=args.memory_mb)

    if args.dask_scheduler:
        from pipeline.parallel import SchedulerUnreachableError, check_scheduler

        try:
            check_scheduler(args.dask_scheduler)
        except SchedulerUnreachableError as exc:
            print(f"neuro-grade: error: {exc}", file=sys.stderr)
            return 2, []

    def progress(result: SubmissionResult) -> None:
        print(
            f"graded {result.name}: {result.score:g}/{result.max_score:g} ({_status_text(result)}, "
            f"{result.duration_s:.1f} s)",
            file=sys.stderr,
        )

    results = grade_many(args.submissions, jobs=args.jobs, config=config, exercises=exercises, on_result=progress,
                         dask_scheduler=args.dask_scheduler)
    if args.verbose:
        for r in results:
            print(feedback_text(r))
            print()
    print(summary_table(results))
    if args.results:
        write_results_dir(results, args.results)
    if args.gradescope:
        if len(results) == 1:
            write_gradescope(results[0], args.gradescope)
        else:
            for r in results:
                write_gradescope(r, args.gradescope / r.name / "results.json")
    if args.junit_xml:
        write_junit(results, args.junit_xml)
    if args.csv:
        write_csv(results, args.csv)
    return (0 if all(r.status == "ok" for r in results) else 1), results


def _status_text(result: SubmissionResult, limit: int = 300) -> str:
    """``ok``, or the status and why (the first line of the problem, bounded), e.g. ``invalid: no pipeline/``."""
    if result.status == "ok" or not result.problem.strip():
        return result.status
    reason = result.problem.strip().splitlines()[0]
    return f"{result.status}: {reason[:limit]}{'...' if len(reason) > limit else ''}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
