"""The SQLite run registry: rows, the resume key, traced cursors nested under manual spans, and
several processes writing at once."""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor

from pipeline.config import PipelineConfig
from pipeline.processor import process_batch, process_file
from pipeline.registry import RunRegistry, canonical_json
from pipeline.telemetry import PipelineTelemetry
from telemetry_asserts.model import Span, SpanKind
from telemetry_asserts.view import LiveTelemetryView

FAST = ("skull_strip", "normalize", "smooth")


@pytest.fixture
def capture(telemetry: LiveTelemetryView) -> LiveTelemetryView:
    """The telemetry_asserts plugin's per-test capture (real SDK providers, in memory; logs bridged)."""
    return telemetry


@pytest.fixture
def traced_sqlite(capture: LiveTelemetryView) -> Iterator[LiveTelemetryView]:
    """sqlite3 instrumented with the test's tracer provider, uninstrumented afterwards."""
    instrumentor = SQLite3Instrumentor()
    instrumentor.instrument(tracer_provider=capture.tracer_provider)
    try:
        yield capture
    finally:
        instrumentor.uninstrument()


def by_id(spans: tuple[Span, ...]) -> dict[int, Span]:
    return {s.span_id: s for s in spans}


def test_rows_record_success_and_failure(tmp_path: Path) -> None:
    reg = RunRegistry.in_dir(tmp_path)
    params = {"stages": ["smooth"], "stage_params": {"smooth": {"fwhm_mm": 4.0}}}
    reg.start(tmp_path / "a.nii", "c0ffee", params, trace_id="ab" * 16)
    reg.finish(tmp_path / "a.nii", "success", checksum="c0ffee", parameters=params,
               stage_durations={"smooth": 0.25}, outputs={"image": "a_preproc.nii.gz"})
    reg.finish(tmp_path / "b.nii", "failed", error="b.nii: file not found")

    a, b = reg.records()
    assert (a.status, a.checksum, a.parameters, a.stage_durations, a.outputs, a.trace_id) == (
        "success", "c0ffee", params, {"smooth": 0.25}, {"image": "a_preproc.nii.gz"}, "ab" * 16)
    assert a.finished_at is not None and a.started_at <= a.finished_at
    assert (b.status, b.error, b.checksum) == ("failed", "b.nii: file not found", "")
    assert a.input_path == str((tmp_path / "a.nii").resolve())


def test_one_row_per_input_and_restart_resets_it(tmp_path: Path) -> None:
    reg = RunRegistry.in_dir(tmp_path)
    reg.start("x.nii", "1", {})
    reg.finish("x.nii", "failed", error="boom")
    reg.start("x.nii", "2", {"k": 1})
    [row] = reg.records()
    assert (row.status, row.error, row.checksum, row.parameters, row.finished_at) == ("running", None, "2", {"k": 1}, None)


def test_is_done_needs_same_checksum_parameters_and_success(tmp_path: Path) -> None:
    reg = RunRegistry.in_dir(tmp_path)
    params = {"stages": ["smooth"], "stage_params": {"smooth": {"fwhm_mm": 4.0}}}
    assert not reg.is_done("x.nii", "abc", params)
    reg.start("x.nii", "abc", params)
    assert not reg.is_done("x.nii", "abc", params)  # running is not done
    reg.finish("x.nii", "success", checksum="abc", parameters=params)
    assert reg.is_done("x.nii", "abc", dict(reversed(list(params.items()))))  # key order does not matter
    assert not reg.is_done("x.nii", "abd", params)
    assert not reg.is_done("x.nii", "abc", {**params, "stage_params": {"smooth": {"fwhm_mm": 6.0}}})
    assert not reg.is_done("y.nii", "abc", params)
    assert canonical_json({"b": 1, "a": (1, 2)}) == '{"a":[1,2],"b":1}'


def test_finish_rejects_unknown_status(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="status must be 'success' or 'failed', not 'done'"):
        RunRegistry.in_dir(tmp_path).finish("x.nii", "done")


def test_registry_in_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    from pipeline.registry import RegistryError

    with pytest.raises(RegistryError, match="cannot open the run registry"):
        RunRegistry(tmp_path / "no" / "such" / "runs.sqlite")


def test_sqlite_spans_nest_under_the_manual_spans(phantom: Path, tmp_path: Path, traced_sqlite: LiveTelemetryView) -> None:
    tm = PipelineTelemetry(traced_sqlite.tracer_provider, traced_sqlite.meter_provider)
    registry = RunRegistry.in_dir(tmp_path)  # created after instrument(): its connections are traced
    traced_sqlite.clear()  # schema set-up is suppressed anyway; start from an empty window

    process_file(phantom, tmp_path, PipelineConfig.create(FAST), telemetry=tm, registry=registry)

    t = traced_sqlite.snapshot()
    spans = by_id(t.spans)
    db = [s for s in t.spans if s.attributes.get("db.system") == "sqlite"]
    assert [s.name for s in db] == ["INSERT", "INSERT"]
    assert all(s.kind is SpanKind.CLIENT and "runs" in str(s.attributes["db.statement"]) for s in db)
    parents = [spans[s.parent_span_id].name for s in db if s.parent_span_id]
    assert parents == ["process_file", "write_output"]  # start under the root, finish inside write_output
    assert len({s.trace_id for s in t.spans}) == 1


def test_resume_lookups_are_traced_under_the_batch(phantom: Path, tmp_path: Path, traced_sqlite: LiveTelemetryView) -> None:
    tm = PipelineTelemetry(traced_sqlite.tracer_provider, traced_sqlite.meter_provider)
    out = tmp_path / "out"
    out.mkdir()
    registry = RunRegistry.in_dir(out)
    config = PipelineConfig.create(FAST)
    process_batch([phantom], out, config, telemetry=tm, registry=registry)
    traced_sqlite.clear()

    again = process_batch([phantom], out, config, telemetry=tm, registry=registry, resume=True)

    assert [r.status for r in again.results] == ["skipped"] and (again.to_process, again.already_done) == (0, 1)
    t = traced_sqlite.snapshot()
    spans = by_id(t.spans)
    [select] = [s for s in t.spans if s.name == "SELECT"]
    plan = spans[select.parent_span_id]  # type: ignore[index]
    assert plan.name == "plan_batch" and spans[plan.parent_span_id].name == "process_batch"  # type: ignore[index]
    checksum = [s for s in t.spans if s.name == "open_resource"]
    assert len(checksum) == 1 and checksum[0].attributes["neuro.file.size_bytes"] == phantom.stat().st_size
    assert "process_file" not in {s.name for s in t.spans}
    skipped = [p for p in t.metrics if p.name == "neuro.files.processed"]
    assert [(dict(p.attributes), p.value) for p in skipped] == [({"status": "skipped"}, 1)]


def test_connection_execute_shortcut_is_not_what_we_use(tmp_path: Path, traced_sqlite: LiveTelemetryView) -> None:
    """Guards the reason the registry uses cursors: only cursor.execute is traced."""
    traced_sqlite.clear()
    conn = sqlite3.connect(str(tmp_path / "x.sqlite"))
    conn.execute("CREATE TABLE t (x)")
    conn.cursor().execute("INSERT INTO t VALUES (1)")
    conn.close()
    assert [s.name for s in traced_sqlite.snapshot().spans] == ["INSERT"]


def _writer(db: str, worker: int, n: int) -> None:
    reg = RunRegistry(db)
    for i in range(n):
        path = f"/inputs/w{worker}/f{i}.nii"
        reg.start(path, f"{worker}-{i}", {"w": worker})
        reg.finish(path, "success", checksum=f"{worker}-{i}", parameters={"w": worker})


def test_several_processes_write_concurrently(tmp_path: Path) -> None:
    RunRegistry.in_dir(tmp_path)
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path / "runs.sqlite"), w, 10)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    rows = RunRegistry.in_dir(tmp_path).records()
    assert len(rows) == 30 and {r.status for r in rows} == {"success"}
    with sqlite3.connect(str(tmp_path / "runs.sqlite")) as conn:
        assert conn.cursor().execute("PRAGMA journal_mode").fetchone() == ("wal",)
