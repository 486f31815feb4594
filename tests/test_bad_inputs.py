"""Every bad input: one clear error, ERROR spans with the exception, failed +1, nothing left behind.

The output directory may hold only the run registry (``runs.sqlite`` and its WAL files) after a
failed input; other files of a batch are still processed.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from pipeline.config import PipelineConfig
from pipeline.phantom import make_head_phantom
from pipeline.processor import process_batch, process_file
from pipeline.registry import RunRegistry
from pipeline.telemetry import PipelineTelemetry
from telemetry_asserts.model import Span, StatusCode, Telemetry
from telemetry_asserts.view import LiveTelemetryView

FAST = ("skull_strip", "normalize", "smooth")
REGISTRY_FILES = {"runs.sqlite", "runs.sqlite-wal", "runs.sqlite-shm"}


@pytest.fixture(scope="module")
def good_bytes() -> bytes:
    img = make_head_phantom(shape=(32, 32, 32), voxel_size_mm=(6.0, 6.0, 6.0))
    return gzip.compress(img.to_bytes(), compresslevel=1)


@pytest.fixture
def capture(telemetry: LiveTelemetryView) -> LiveTelemetryView:
    """The telemetry_asserts plugin's per-test capture (real SDK providers, in memory; logs bridged)."""
    return telemetry


@pytest.fixture
def tm(capture: LiveTelemetryView) -> PipelineTelemetry:
    return PipelineTelemetry(capture.tracer_provider, capture.meter_provider)


def _nifti(path: Path, data: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0])), path)
    return path


def missing(d: Path, good: bytes) -> Path:
    return d / "sub-01_T1w.nii.gz"


def directory(d: Path, good: bytes) -> Path:
    (d / "sub-01_T1w.nii.gz").mkdir()
    return d / "sub-01_T1w.nii.gz"


def empty(d: Path, good: bytes) -> Path:
    (d / "sub-01_T1w.nii.gz").write_bytes(b"")
    return d / "sub-01_T1w.nii.gz"


def truncated_gzip(d: Path, good: bytes) -> Path:
    (d / "sub-01_T1w.nii.gz").write_bytes(good[: len(good) // 2])
    return d / "sub-01_T1w.nii.gz"


def not_nifti(d: Path, good: bytes) -> Path:
    (d / "sub-01_T1w.nii").write_bytes(b"this is a text file, not an MRI volume\n" * 20)
    return d / "sub-01_T1w.nii"


def four_d(d: Path, good: bytes) -> Path:
    return _nifti(d / "sub-01_T1w.nii.gz", np.ones((8, 8, 8, 3), dtype=np.float32))


def nan_inf(d: Path, good: bytes) -> Path:
    data = np.ones((8, 8, 8), dtype=np.float32)
    data[1, 2, 3] = np.nan
    data[4, 4, 4] = np.inf
    return _nifti(d / "sub-01_T1w.nii.gz", data)


def zero_size_dim(d: Path, good: bytes) -> Path:
    path = _nifti(d / "sub-01_T1w.nii", np.ones((8, 8, 8), dtype=np.float32))
    raw = bytearray(path.read_bytes())
    header = nib.Nifti1Header.from_fileobj(__import__("io").BytesIO(bytes(raw[:348])))
    header["dim"][2] = 0
    raw[:348] = header.binaryblock
    path.write_bytes(bytes(raw))
    return path


BAD_INPUTS: dict[str, tuple[Callable[[Path, bytes], Path], str]] = {
    "missing": (missing, "file not found"),
    "directory": (directory, "is a directory"),
    "empty": (empty, "file is empty"),
    "truncated_gzip": (truncated_gzip, "truncated"),
    "not_nifti": (not_nifti, "not a NIfTI file"),
    "4d": (four_d, "4D image"),
    "nan_inf": (nan_inf, "NaN or infinite"),
    "zero_size_dim": (zero_size_dim, "zero-size dimension"),
}


def one(spans: tuple[Span, ...], name: str) -> Span:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, [s.name for s in spans]
    return found[0]


def failed_count(t: Telemetry) -> float:
    return sum(p.value or 0 for p in t.metrics if p.name == "neuro.files.processed" and p.attributes == {"status": "failed"})


def assert_error_span(span: Span, fragment: str, *, with_exception: bool = True) -> None:
    assert span.status_code is StatusCode.ERROR, span
    assert fragment in span.status_description, span.status_description
    if with_exception:
        [exc] = span.exceptions()
        assert exc.attributes["exception.type"] and fragment in str(exc.attributes["exception.message"])
    else:
        assert not span.exceptions()


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_a_clear_failure_with_telemetry(case: str, good_bytes: bytes, tmp_path: Path,
                                                     capture: LiveTelemetryView, tm: PipelineTelemetry) -> None:
    make, fragment = BAD_INPUTS[case]
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    out.mkdir()
    registry = RunRegistry.in_dir(out)
    path = make(inputs, good_bytes)

    result = process_file(path, out, PipelineConfig.create(FAST), telemetry=tm, registry=registry)

    assert result.status == "failed"
    assert result.error is not None and fragment in result.error and "\n" not in result.error
    assert result.error.startswith(path.name)  # names the file, not the user's directories
    t = capture.snapshot()
    root, load = one(t.spans, "process_file"), one(t.spans, "load_file")
    assert_error_span(root, fragment)
    assert_error_span(load, fragment)
    assert root.attributes["neuro.file.status"] == "failed"
    assert root.attributes["error.type"].endswith("Error")
    assert "process_image" not in {s.name for s in t.spans}
    assert failed_count(t) == 1
    errors = [r for r in t.logs if r.severity_text == "ERROR"]
    assert len(errors) == 1 and errors[0].span_id == root.span_id and fragment in str(errors[0].body)
    assert {p.name for p in out.iterdir()} <= REGISTRY_FILES
    row = registry.get(path)
    assert row is not None and row.status == "failed" and fragment in (row.error or "")


def test_unwritable_output_dir_fails_before_any_work(good_bytes: bytes, tmp_path: Path, capture: LiveTelemetryView,
                                                     tm: PipelineTelemetry) -> None:
    src = tmp_path / "sub-01_T1w.nii.gz"
    src.write_bytes(good_bytes)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the output directory's parent should be")

    result = process_file(src, blocker / "out", PipelineConfig.create(FAST), telemetry=tm)

    assert result.status == "failed" and result.error_reason == "output"
    assert "cannot create output directory" in (result.error or "")
    t = capture.snapshot()
    root = one(t.spans, "process_file")
    assert_error_span(root, "cannot create output directory")
    assert [s.name for s in t.spans] == ["process_file"]  # nothing was loaded
    assert failed_count(t) == 1
    assert not (blocker.parent / "out").exists()


def test_stage_failure_marks_stage_span_and_root_and_leaves_nothing(good_bytes: bytes, tmp_path: Path,
                                                                    capture: LiveTelemetryView, tm: PipelineTelemetry) -> None:
    src = tmp_path / "sub-01_T1w.nii.gz"
    src.write_bytes(good_bytes)
    out = tmp_path / "out"
    # 6 mm voxels resampled to 0.01 mm would need ~7e12 voxels: the stage refuses.
    config = PipelineConfig.create(["smooth", "resample"], {"resample": {"voxel_size_mm": 0.01}})

    result = process_file(src, out, config, telemetry=tm)

    assert result.status == "failed" and result.error_reason == "stage"
    t = capture.snapshot()
    assert_error_span(one(t.spans, "resample"), "resample")
    assert_error_span(one(t.spans, "process_image"), "resample", with_exception=False)
    assert_error_span(one(t.spans, "process_file"), "resample")
    assert one(t.spans, "smooth").status_code is StatusCode.UNSET
    assert "write_output" not in {s.name for s in t.spans}
    assert list(out.iterdir()) == []


def test_metadata_write_failure_removes_the_image_too(good_bytes: bytes, tmp_path: Path, capture: LiveTelemetryView,
                                                      tm: PipelineTelemetry) -> None:
    src = tmp_path / "sub-01_T1w.nii.gz"
    src.write_bytes(good_bytes)
    out = tmp_path / "out"
    (out / "sub-01_T1w_metadata.json").mkdir(parents=True)  # the JSON cannot be renamed over a directory

    result = process_file(src, out, PipelineConfig.create(FAST), telemetry=tm)

    assert result.status == "failed" and result.error_reason == "output"
    assert not (out / "sub-01_T1w_preproc.nii.gz").exists()
    assert sorted(p.name for p in out.iterdir()) == ["sub-01_T1w_metadata.json"]  # only what was there before
    assert not any(p.name.endswith(".tmp") for p in out.iterdir())
    t = capture.snapshot()
    assert_error_span(one(t.spans, "write_metadata"), "JSON")
    assert_error_span(one(t.spans, "write_output"), "JSON", with_exception=False)
    assert_error_span(one(t.spans, "process_file"), "JSON")


def test_batch_keeps_going_after_bad_inputs(good_bytes: bytes, tmp_path: Path, capture: LiveTelemetryView,
                                            tm: PipelineTelemetry) -> None:
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    paths = []
    for i, (case, (make, _)) in enumerate(sorted(BAD_INPUTS.items())):
        sub = inputs / case
        sub.mkdir()
        paths.append(make(sub, good_bytes))
        if i % 3 == 0:
            good = inputs / f"good{i}_T1w.nii.gz"
            good.write_bytes(good_bytes)
            paths.append(good)
    out.mkdir()

    batch = process_batch(paths, out, PipelineConfig.create(FAST), telemetry=tm, registry=RunRegistry.in_dir(out))

    assert len(batch.failed) == len(BAD_INPUTS) and len(batch.succeeded) == 3
    assert [r.input_path for r in batch.results] == [str(p) for p in paths]
    made = {p.name for p in out.iterdir()} - REGISTRY_FILES
    assert made == {f"good{i}_T1w_{kind}" for i in (0, 3, 6) for kind in ("preproc.nii.gz", "metadata.json")}
    t = capture.snapshot()
    assert failed_count(t) == len(BAD_INPUTS)
    batch_span = one(t.spans, "process_batch")
    assert batch_span.status_code is StatusCode.ERROR
    assert batch_span.attributes["neuro.batch.failed"] == len(BAD_INPUTS)
