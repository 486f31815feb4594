"""Snapshot mode: record the telemetry shape, compare later runs, update only when asked."""

from __future__ import annotations

from pathlib import Path

import yaml

from telemetry_asserts import model
from telemetry_asserts.capture import Capture
from telemetry_asserts.contracts import load_contract
from telemetry_asserts.contracts.check import run_contract
from telemetry_asserts.contracts.snapshot import render_snapshot, snapshot_data, snapshot_file


def run(*, size: int = 100, name: str = "a.nii.gz", stages: tuple[str, ...] = ("skull_strip", "smooth"),
        extra_attr: bool = False, files: int = 1) -> model.Telemetry:
    """A small traced and measured run with the real SDK; values vary with the arguments."""
    cap = Capture()
    tracer = cap.tracer_provider.get_tracer("snap")
    counter = cap.meter_provider.get_meter("snap").create_counter("neuro.stages.executed", unit="{execution}")
    for i in range(files):
        attrs = {"neuro.file.name": f"{i}{name}", "neuro.file.size_bytes": size + i, "neuro.image.shape": [size, 2]}
        if extra_attr:
            attrs["neuro.file.checksum"] = "abc"
        with tracer.start_as_current_span("process_file", context=None, attributes=attrs):
            with tracer.start_as_current_span("process_image"):
                for stage in stages:
                    with tracer.start_as_current_span(stage, attributes={"neuro.stage.ratio": size / 7}):
                        counter.add(1, {"stage": stage})
            with tracer.start_as_current_span("load_file", attributes={"ok": True}):
                pass
    return cap.snapshot()


def test_shape_keeps_names_hierarchy_keys_and_types_not_values() -> None:
    data = snapshot_data(run())
    (trace,) = data["traces"]
    assert trace["id"] == "shape_process_file" and trace["root"] == "process_file" and trace["exact"] is True
    tree = trace["tree"]
    assert tree["attributes"] == {"neuro.file.name": {"type": "str"}, "neuro.file.size_bytes": {"type": "int"},
                                  "neuro.image.shape": {"type": "array"}}
    # children sorted by name, whatever the order they ran in
    assert [c["name"] for c in tree["children"]] == ["load_file", "process_image"]
    assert tree["children"][0]["attributes"] == {"ok": {"type": "bool"}}
    assert [c["name"] for c in tree["children"][1]["children"]] == ["skull_strip", "smooth"]
    assert tree["children"][1]["children"][0]["attributes"] == {"neuro.stage.ratio": {"type": "float"}}
    (metric,) = data["metrics"]
    assert metric == {"id": "metric_neuro.stages.executed", "name": "neuro.stages.executed", "type": "counter",
                      "unit": "{execution}", "data_points": [{"attributes": {"stage": {"type": "str"}}}]}


def test_volatile_values_and_order_do_not_change_the_text() -> None:
    first = render_snapshot(run(size=100, name="a.nii.gz"))
    assert first == render_snapshot(run(size=7, name="other.nii"))
    assert first == render_snapshot(run(stages=("smooth", "skull_strip")))
    assert first == render_snapshot(run(files=3))  # same-shaped traces are recorded once
    assert first != render_snapshot(run(stages=("smooth",)))
    assert first != render_snapshot(run(extra_attr=True))


def test_snapshot_is_a_contract_that_judges_the_shape(tmp_path: Path) -> None:
    path = tmp_path / "shape.yaml"
    assert snapshot_file(path, run()).status == "created"
    contract = load_contract(path)  # valid against the published schema
    assert run_contract(contract, run(size=5, files=2)).passed
    changed = run_contract(contract, run(stages=("skull_strip",)))
    assert not changed.passed
    assert "smooth" in changed.result("shape_process_file").message


def test_create_compare_update_never_rewrites_silently(tmp_path: Path) -> None:
    path = tmp_path / "snaps" / "shape.yaml"
    created = snapshot_file(path, run())
    assert created.status == "created" and created.ok and path.is_file()
    recorded = path.read_text()
    assert recorded.startswith("# Telemetry shape recorded by `telemetry-asserts snapshot`")
    assert yaml.safe_load(recorded)["name"] == "shape"

    same = snapshot_file(path, run(size=3))
    assert (same.status, same.diff) == ("unchanged", "")

    differs = snapshot_file(path, run(extra_attr=True))
    assert differs.status == "differs" and not differs.ok
    assert path.read_text() == recorded  # untouched
    assert f"--- {path} (recorded)\n+++ {path} (this run)\n" in differs.diff
    assert "+      neuro.file.checksum:\n+        type: str\n" in differs.diff

    updated = snapshot_file(path, run(extra_attr=True), update=True)
    assert updated.status == "updated" and updated.diff == differs.diff
    assert "neuro.file.checksum" in path.read_text()
    assert snapshot_file(path, run(extra_attr=True)).status == "unchanged"
    assert not list(path.parent.glob(".shape.yaml.*"))  # no temporary files left behind
