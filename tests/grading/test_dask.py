"""Grading on a Dask cluster gives the same verdicts as local ``-j``."""

from __future__ import annotations

import pytest

from grading.engine import GradeConfig, grade_many
from grading.mistakes import load_mistakes, materialise_mistake
from grading.starter import materialise, reference_package

GradedCourse = "tests.grading.conftest.GradedCourse"  # the session fixture type (see conftest.py)
TIMEOUT_S = 15.0  # as the session fixture's runs

PICKED = ("counter_without_stage", "syntax_error")


def _scores(result) -> dict[str, float]:
    return {f"{c.exercise}/{c.id}": c.points for e in result.exercises for c in e.checks}


@pytest.mark.slow
def test_dask_local_cluster_grades_like_local_jobs(graded_course: GradedCourse, tmp_path):
    from distributed import LocalCluster

    mistakes = {m.id: m for m in load_mistakes()}
    assert set(PICKED) <= set(mistakes)
    subs = [tmp_path / "reference"]
    materialise(reference_package(), subs[0] / "pipeline", ())
    for name in PICKED:
        materialise_mistake(mistakes[name], tmp_path / name)
        subs.append(tmp_path / name)
    seen = []
    # the scheduler serves HTTP even without a dashboard: a free port, never a clash on 8787
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      host="127.0.0.1") as cluster:
        results = grade_many(subs, config=GradeConfig(timeout_s=TIMEOUT_S),
                             dask_scheduler=cluster.scheduler_address, on_result=seen.append)
    assert [r.name for r in results] == ["reference", *PICKED]
    assert sorted(r.name for r in seen) == sorted(r.name for r in results)
    for r in results:
        local = graded_course.results[r.name]
        assert (r.status, r.score, r.max_score) == (local.status, local.score, local.max_score), r.name
        assert _scores(r) == _scores(local), r.name
    assert results[0].score == results[0].max_score
    assert results[2].status != "ok"  # the syntax error never ran
