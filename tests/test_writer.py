"""The writer: exact round trips, and every failure leaves neither the file nor a temp file behind."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from pipeline.errors import OutputError
from pipeline.writer import ensure_output_dir, write_json_atomic, write_nifti_atomic

AFFINE = np.array([[2.0, 0, 0, -30], [0, 2.5, 0, 12], [0, 0, 3.0, 7], [0, 0, 0, 1]])


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@contextlib.contextmanager
def tmpfs(path: Path, options: str) -> Iterator[Path]:
    """A real, tiny or read-only filesystem at ``path`` (needs root; skips otherwise)."""
    path.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


@pytest.mark.parametrize("name", ["out.nii.gz", "out.nii"])
def test_nifti_round_trip_is_exact(tmp_path: Path, name: str) -> None:
    data = np.random.default_rng(1).normal(size=(10, 11, 12)).astype(np.float32)
    path = tmp_path / name
    written = write_nifti_atomic(data, AFFINE, path)
    assert written == path.stat().st_size > 0
    img = nib.load(path)
    np.testing.assert_array_equal(np.asarray(img.dataobj), data)
    np.testing.assert_allclose(img.affine, AFFINE)
    assert listing(tmp_path) == [name]
    assert oct(path.stat().st_mode & 0o777) == "0o644"


def test_input_header_keeps_metadata_but_not_its_dtype_or_scaling(tmp_path: Path) -> None:
    source = nib.Nifti1Image(np.zeros((4, 4, 4), dtype=np.int16), AFFINE)
    source.header["descrip"] = b"scanner X"
    source.header.set_xyzt_units("mm", "sec")
    source.header.set_slope_inter(2.0, 5.0)
    data = np.linspace(-1, 1, 6 * 7 * 8, dtype=np.float32).reshape(6, 7, 8)
    path = tmp_path / "o.nii.gz"
    write_nifti_atomic(data, AFFINE, path, header=source.header)
    img = nib.load(path)
    assert img.get_data_dtype() == np.float32 and img.shape == (6, 7, 8)
    np.testing.assert_allclose(img.affine, AFFINE)
    np.testing.assert_array_equal(img.get_fdata(dtype=np.float32), data)
    assert img.header["descrip"].item() == b"scanner X"
    assert img.header.get_xyzt_units() == ("mm", "sec")


def test_boolean_mask_is_stored_as_uint8(tmp_path: Path) -> None:
    mask = np.zeros((5, 5, 5), bool)
    mask[1:4, 2, 2:] = True
    write_nifti_atomic(mask, AFFINE, tmp_path / "mask.nii.gz")
    img = nib.load(tmp_path / "mask.nii.gz")
    assert img.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asarray(img.dataobj) == 1, mask)


def test_output_is_deterministic(tmp_path: Path) -> None:
    data = np.arange(1000, dtype=np.float32).reshape(10, 10, 10)
    write_nifti_atomic(data, AFFINE, tmp_path / "a.nii.gz")
    write_nifti_atomic(data, AFFINE, tmp_path / "b.nii.gz")
    assert (tmp_path / "a.nii.gz").read_bytes() == (tmp_path / "b.nii.gz").read_bytes()


def test_json_round_trip(tmp_path: Path) -> None:
    meta = {"stages": ["smooth"], "parameters": {"smooth": {"fwhm_mm": 6.0}}, "sha256": "ab" * 32}
    path = tmp_path / "m_metadata.json"
    assert write_json_atomic(meta, path) == path.stat().st_size
    assert json.loads(path.read_text()) == meta


def test_missing_directory(tmp_path: Path) -> None:
    target = tmp_path / "nope" / "out.nii.gz"
    with pytest.raises(OutputError) as info:
        write_nifti_atomic(np.zeros((2, 2, 2), np.float32), AFFINE, target)
    assert str(info.value) == f"out.nii.gz: cannot write NIfTI file out.nii.gz: directory {target.parent} does not exist"
    assert info.value.reason == "output"
    assert listing(tmp_path) == []


def test_failed_replace_removes_the_temp(tmp_path: Path) -> None:
    (tmp_path / "out.nii.gz").mkdir()  # the target name is taken by a directory: os.replace fails
    with pytest.raises(OutputError, match=r"^out\.nii\.gz: cannot write NIfTI file: is a directory$"):
        write_nifti_atomic(np.ones((8, 8, 8), np.float32), AFFINE, tmp_path / "out.nii.gz")
    assert listing(tmp_path) == ["out.nii.gz"] and listing(tmp_path / "out.nii.gz") == []


def test_json_failing_mid_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    write_json_atomic({"version": 1}, path)
    before = path.read_bytes()
    bad = {"version": 2, "padding": "x" * 100_000, "value": object()}  # fails after 100 kB were written
    with pytest.raises(OutputError, match=r"^m\.json: cannot write JSON file: TypeError: Object of type object is not JSON serializable$"):
        write_json_atomic(bad, path)
    assert path.read_bytes() == before
    assert listing(tmp_path) == ["m.json"]


def test_json_rejects_nan(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"^m\.json: cannot write JSON file: ValueError: Out of range float values"):
        write_json_atomic({"duration_s": float("nan")}, tmp_path / "m.json")
    assert listing(tmp_path) == []


def test_disk_full_leaves_nothing(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "size=64k") as small:
        noise = np.random.default_rng(0).normal(size=(64, 64, 64)).astype(np.float32)  # 1 MiB, incompressible
        with pytest.raises(OutputError, match=r"^out\.nii\.gz: cannot write NIfTI file: no space left on device$"):
            write_nifti_atomic(noise, AFFINE, small / "out.nii.gz")
        assert listing(small) == []
        with pytest.raises(OutputError, match=r"^m\.json: cannot write JSON file: no space left on device$"):
            write_json_atomic({"blob": "y" * 200_000}, small / "m.json")
        assert listing(small) == []


def test_read_only_directory(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "ro,size=64k") as ro:
        with pytest.raises(OutputError) as info:
            ensure_output_dir(ro)
        assert str(info.value) == f"output directory {ro} is not writable: read-only file system"
        with pytest.raises(OutputError, match=r"^out\.nii\.gz: cannot write NIfTI file into .*: read-only file system$"):
            write_nifti_atomic(np.zeros((2, 2, 2), np.float32), AFFINE, ro / "out.nii.gz")
        with pytest.raises(OutputError, match=r"^cannot create output directory .*/ro/sub: read-only file system$"):
            ensure_output_dir(ro / "sub")


def test_ensure_output_dir(tmp_path: Path) -> None:
    nested = tmp_path / "a" / "b"
    assert ensure_output_dir(nested) == nested and nested.is_dir() and listing(nested) == []
    assert ensure_output_dir(nested) == nested  # idempotent
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(OutputError, match=rf"^output path {a_file} exists and is not a directory$"):
        ensure_output_dir(a_file)
    with pytest.raises(OutputError, match=rf"^cannot create output directory {a_file}/sub: not a directory$"):
        ensure_output_dir(a_file / "sub")


def test_bad_data_is_an_output_error(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"^o\.nii: cannot build a NIfTI image from the data: "):
        write_nifti_atomic(np.zeros((2, 2, 2), dtype=object), AFFINE, tmp_path / "o.nii")
    with pytest.raises(OutputError, match=r"^o\.nii: compresslevel must be 0\.\.9 \(got 12\)$"):
        write_nifti_atomic(np.zeros((2, 2, 2), np.float32), AFFINE, tmp_path / "o.nii", compresslevel=12)
    assert listing(tmp_path) == []
    assert os.listdir(tmp_path) == []
