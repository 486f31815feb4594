"""The loader: valid files load exactly; every bad input gives its own InputError and a one-line message."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from pipeline.errors import (
    CorruptFileError,
    EmptyFileError,
    InputError,
    InputNotFoundError,
    InvalidVoxelsError,
    NotAFileError,
    UnreadableFileError,
    UnsupportedImageError,
)
from pipeline.loader import file_facts, load_volume
from pipeline.phantom import make_head_phantom

DIM_OFFSET, PIXDIM_OFFSET, VOX_OFFSET = 40, 76, 108  # NIfTI-1 header field offsets


def small_image(shape: tuple[int, ...] = (16, 18, 20), dtype: type = np.int16) -> nib.Nifti1Image:
    data = (np.arange(np.prod(shape)).reshape(shape) % 251).astype(dtype)
    affine = np.diag([2.0, 2.5, 3.0, 1.0])
    affine[:3, 3] = [-10.0, 20.0, 5.0]
    return nib.Nifti1Image(data, affine)


def write_bytes(path: Path, raw: bytes) -> Path:
    path.write_bytes(gzip.compress(raw, compresslevel=1) if path.name.endswith(".gz") else raw)
    return path


def patched(img: nib.Nifti1Image, fmt: str, offset: int, *values: float) -> bytes:
    raw = bytearray(img.to_bytes())
    struct.pack_into(fmt, raw, offset, *values)
    return bytes(raw)


def test_loads_gz_exactly_with_facts(phantom_path: Path) -> None:
    vol = load_volume(phantom_path)
    expected = nib.load(phantom_path)
    assert vol.data.dtype == np.float32 and vol.data.shape == (48, 48, 48)
    np.testing.assert_array_equal(vol.data, expected.get_fdata(dtype=np.float32))
    np.testing.assert_allclose(vol.affine, expected.affine)
    assert vol.affine.dtype == np.float64
    assert vol.shape == (48, 48, 48) and vol.voxel_sizes_mm == (4.0, 4.0, 4.0)
    assert vol.dtype == "int16"
    assert vol.size_bytes == phantom_path.stat().st_size
    assert vol.sha256 == hashlib.sha256(phantom_path.read_bytes()).hexdigest()
    assert vol.header.get_data_shape() == (48, 48, 48)


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32, np.float64])
def test_plain_and_gzip_every_dtype(tmp_path: Path, suffix: str, dtype: type) -> None:
    img = small_image(dtype=dtype)
    path = tmp_path / f"img{suffix}"
    nib.save(img, path)
    vol = load_volume(path)
    np.testing.assert_array_equal(vol.data, np.asarray(img.dataobj, dtype=np.float32))
    assert vol.voxel_sizes_mm == (2.0, 2.5, 3.0)
    assert vol.dtype == np.dtype(dtype).name


def test_big_endian_nifti2_and_scaling(tmp_path: Path) -> None:
    data = np.arange(4 * 5 * 6, dtype=">i2").reshape(4, 5, 6)
    img = nib.Nifti2Image(data, np.diag([1.0, 1.0, 1.0, 1.0]))
    img.header.set_slope_inter(0.5, 10.0)
    path = tmp_path / "be.nii"
    nib.save(img, path)
    vol = load_volume(path)
    np.testing.assert_allclose(vol.data, data.astype(np.float32) * 0.5 + 10.0)
    assert isinstance(vol.header, nib.Nifti2Header)


def test_trailing_singleton_dimension_is_squeezed(tmp_path: Path) -> None:
    img = nib.Nifti1Image(np.ones((6, 7, 8, 1), dtype=np.float32), np.eye(4))
    path = tmp_path / "t1.nii.gz"
    nib.save(img, path)
    vol = load_volume(path)
    assert vol.shape == (6, 7, 8) and vol.data.shape == (6, 7, 8)


def test_file_facts(phantom_path: Path, tmp_path: Path) -> None:
    facts = file_facts(phantom_path)
    assert facts == {
        "file_path": str(phantom_path),
        "file_exists": True,
        "file_size_mb": round(phantom_path.stat().st_size / 1e6, 3),
    }
    assert file_facts(tmp_path / "nope.nii") == {
        "file_path": str(tmp_path / "nope.nii"), "file_exists": False, "file_size_mb": 0.0,
    }


# ---- bad inputs: (error class, reason, message) -------------------------------------------------


def expect(path: Path, error: type[InputError], reason: str, message: str) -> InputError:
    with pytest.raises(error) as info:
        load_volume(path)
    exc = info.value
    assert exc.reason == reason
    assert str(exc) == f"{path.name}: {message}"
    assert "\n" not in str(exc)
    return exc


def test_missing_file(tmp_path: Path) -> None:
    expect(tmp_path / "sub-02_T1w.nii.gz", InputNotFoundError, "not_found", "file not found")


def test_directory(tmp_path: Path) -> None:
    directory = tmp_path / "sub-02_T1w.nii.gz"
    directory.mkdir()
    expect(directory, NotAFileError, "not_a_file", "is a directory, not a NIfTI file")


def _load_as_nobody(path: Path) -> str:
    """Load ``path`` in a forked child that dropped root (root reads everything); report the outcome."""
    import os

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        message = "no error"
        try:
            os.setegid(65534)
            os.seteuid(65534)
            load_volume(path)
        except UnreadableFileError as exc:
            message = f"{exc.reason} | {exc}"
        except BaseException as exc:  # noqa: BLE001 - reported to the parent as a failure
            message = f"unexpected {type(exc).__name__}: {exc}"
        finally:
            os.write(write_end, message.encode())
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end, "rb") as pipe:
        return pipe.read().decode()


def test_unreadable_file() -> None:
    import os
    import shutil
    import tempfile

    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user in a child process")
    open_dir = Path(tempfile.mkdtemp(prefix="h1-unreadable-"))
    closed_dir = open_dir / "closed"
    try:
        open_dir.chmod(0o755)
        closed_dir.mkdir(mode=0o700)
        for directory in (open_dir, closed_dir):
            nib.save(small_image(), directory / "locked.nii.gz")
        (open_dir / "locked.nii.gz").chmod(0o000)
        assert _load_as_nobody(open_dir / "locked.nii.gz") == (
            "unreadable | locked.nii.gz: permission denied (cannot open the file for reading)"
        )
        assert _load_as_nobody(closed_dir / "locked.nii.gz") == (
            "unreadable | locked.nii.gz: permission denied (cannot access the file)"
        )
    finally:
        shutil.rmtree(open_dir)


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.nii.gz"
    empty.touch()
    expect(empty, EmptyFileError, "empty", "file is empty (0 bytes)")


def test_truncated_gzip(tmp_path: Path) -> None:
    full = tmp_path / "full.nii.gz"
    nib.save(make_head_phantom(shape=(40, 40, 40), voxel_size_mm=(5.0, 5.0, 5.0)), full)
    cut = tmp_path / "cut.nii.gz"
    raw = full.read_bytes()
    cut.write_bytes(raw[: len(raw) // 2])
    exc = expect(cut, CorruptFileError, "corrupt",
                 f"truncated gzip stream (file is {len(raw) // 2 / 1e3:.1f} kB, the header promises 128.0 kB of voxels)")
    assert exc.path == str(cut)


def test_truncated_plain_file(tmp_path: Path) -> None:
    raw = small_image().to_bytes()
    path = write_bytes(tmp_path / "cut.nii", raw[:5000])
    expect(path, CorruptFileError, "corrupt", "truncated file (file is 5.0 kB, the header promises 11.9 kB)")


def test_damaged_gzip_stream(tmp_path: Path) -> None:
    path = tmp_path / "bad.nii.gz"
    nib.save(small_image(), path)
    raw = bytearray(path.read_bytes())
    raw[30:60] = bytes(30)  # zeros in the middle of the deflate data
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError, match=r"^bad\.nii\.gz: (damaged gzip stream|truncated gzip|not a NIfTI)"):
        load_volume(path)


def test_gzip_checksum_mismatch_in_the_voxels(tmp_path: Path) -> None:
    stored = bytearray(gzip.compress(small_image().to_bytes(), compresslevel=0))  # deflate "stored" blocks
    stored[-1000] ^= 0xFF  # one voxel byte changes; the stream stays well-formed
    path = tmp_path / "flip.nii.gz"
    path.write_bytes(bytes(stored))
    expect(path, CorruptFileError, "corrupt",
           "damaged gzip stream (Error -3 while decompressing data: incorrect data check)")


def test_gzip_without_its_end_marker(tmp_path: Path) -> None:
    raw = gzip.compress(small_image().to_bytes(), compresslevel=1)
    path = tmp_path / "noend.nii.gz"
    path.write_bytes(raw[:-8])  # the voxels are all there, the CRC/size trailer is not
    expect(path, CorruptFileError, "corrupt", "truncated gzip stream (the end-of-stream marker is missing)")


def test_non_nifti_bytes(tmp_path: Path) -> None:
    text = b"<html><body>not an image</body></html>\n" * 20
    expect(write_bytes(tmp_path / "page.nii", text), CorruptFileError, "corrupt",
           "not a NIfTI file (header size field is 1836345404, expected 348 or 540)")
    expect(write_bytes(tmp_path / "page.nii.gz", text), CorruptFileError, "corrupt",
           "not a NIfTI file (header size field is 1836345404, expected 348 or 540)")


def test_bad_magic(tmp_path: Path) -> None:
    expect(write_bytes(tmp_path / "m.nii", patched(small_image(), "4s", 344, b"abc\x00")), CorruptFileError,
           "corrupt", "not a NIfTI file (magic b'abc', expected b'n+1' or b'n+2')")


def test_truncated_nifti2_header(tmp_path: Path) -> None:
    raw = nib.Nifti2Image(np.zeros((2, 2, 2), np.float32), np.eye(4)).to_bytes()
    expect(write_bytes(tmp_path / "n2.nii", raw[:500]), CorruptFileError, "corrupt",
           "truncated NIfTI-2 header (500 of 540 bytes)")


def test_non_finite_affine(tmp_path: Path) -> None:
    raw = patched(small_image(), "<f", 280, float("nan"))  # srow_x[0] of the sform nibabel writes
    expect(write_bytes(tmp_path / "aff.nii", raw), CorruptFileError, "corrupt",
           "the header's voxel-to-world affine is not finite")


def test_fifo_and_symlink_loop(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "pipe.nii"
    os.mkfifo(fifo)
    expect(fifo, NotAFileError, "not_a_file", "is not a regular file")
    loop = tmp_path / "loop.nii"
    loop.symlink_to(loop)
    expect(loop, InputNotFoundError, "not_found", "cannot access the file (Too many levels of symbolic links)")
    missing_parent = tmp_path / "pipe.nii" / "x.nii"
    expect(missing_parent, InputNotFoundError, "not_found", "file not found (a parent of the path is not a directory)")


def test_gz_name_without_gzip_content(tmp_path: Path) -> None:
    path = tmp_path / "plain.nii.gz"
    path.write_bytes(small_image().to_bytes())
    expect(path, CorruptFileError, "corrupt", "not gzip-compressed although the name ends in .gz")


def test_too_short_for_a_header(tmp_path: Path) -> None:
    expect(write_bytes(tmp_path / "short.nii", b"\x5c\x01\x00\x00" + bytes(100)), CorruptFileError, "corrupt",
           "too short to be NIfTI (104 bytes; a NIfTI-1 header alone is 348)")


def test_wrong_extension(tmp_path: Path) -> None:
    path = tmp_path / "scan.mgz"
    path.write_bytes(b"x" * 10)
    expect(path, UnsupportedImageError, "unsupported", "unsupported file type (expected .nii or .nii.gz)")


def test_4d_image(tmp_path: Path) -> None:
    path = tmp_path / "bold.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8, 3), dtype=np.float32), np.eye(4)), path)
    expect(path, UnsupportedImageError, "unsupported",
           "4D image with 3 volumes (shape 8x8x8x3); the pipeline needs a single 3D volume")


def test_2d_image(tmp_path: Path) -> None:
    path = tmp_path / "slice.nii"
    nib.save(nib.Nifti1Image(np.zeros((8, 8), dtype=np.float32), np.eye(4)), path)
    expect(path, UnsupportedImageError, "unsupported", "2D image (shape 8x8); the pipeline needs a 3D volume")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_voxels(tmp_path: Path, bad: float) -> None:
    data = np.ones((6, 6, 6), dtype=np.float32)
    data[2, 3, 4] = bad
    data[5, 5, 5] = bad
    path = tmp_path / "nan.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    expect(path, InvalidVoxelsError, "invalid_voxels", "2 voxels are NaN or infinite (first at voxel (2, 3, 4))")


def test_zero_size_dimension(tmp_path: Path) -> None:
    raw = patched(small_image(), "<h", DIM_OFFSET + 2 * 2, 0)
    expect(write_bytes(tmp_path / "zero.nii.gz", raw), UnsupportedImageError, "unsupported",
           "zero-size dimension in shape 16x0x20")


@pytest.mark.parametrize("value", [0.0, -1.0, float("nan"), float("inf")])
def test_absurd_voxel_size(tmp_path: Path, value: float) -> None:
    raw = patched(small_image(), "<f", PIXDIM_OFFSET + 4 * 2, value)
    with pytest.raises(UnsupportedImageError, match=r"^vox\.nii: implausible voxel sizes \[2\.0, .*\] mm \(each must"):
        load_volume(write_bytes(tmp_path / "vox.nii", raw))


def test_invalid_dim_count_and_data_offset(tmp_path: Path) -> None:
    expect(write_bytes(tmp_path / "dim.nii", patched(small_image(), "<h", DIM_OFFSET, 9)), CorruptFileError,
           "corrupt", "invalid number of dimensions dim[0]=9 (must be 1..7)")
    expect(write_bytes(tmp_path / "off.nii", patched(small_image(), "<f", VOX_OFFSET, 100.0)), CorruptFileError,
           "corrupt", "invalid voxel data offset 100.0 (must be an integer >= 348)")


def test_lying_gzip_header_cannot_force_a_huge_allocation(tmp_path: Path) -> None:
    raw = patched(small_image(), "<hhh", DIM_OFFSET + 2, 600, 600, 600)  # 432 MB promised
    path = write_bytes(tmp_path / "liar.nii.gz", raw)
    size = path.stat().st_size
    expect(path, CorruptFileError, "corrupt",
           f"the header promises 432.0 MB of voxels, more than a {size / 1e3:.1f} kB gzip file can hold")


def test_lying_gzip_header_within_the_ratio_reads_to_the_end_and_stops(tmp_path: Path) -> None:
    raw = patched(small_image(), "<hhh", DIM_OFFSET + 2, 16, 18, 40)  # twice the real data
    path = write_bytes(tmp_path / "liar.nii.gz", raw)
    expect(path, CorruptFileError, "corrupt",
           f"truncated gzip stream (file is {path.stat().st_size / 1e3:.1f} kB, the header promises 23.0 kB of voxels)")


def test_voxel_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.nii"
    nib.save(small_image(), path)
    with pytest.raises(UnsupportedImageError, match=r"^big\.nii: image of 16x18x20 voxels exceeds the limit of 1000 voxels$"):
        load_volume(path, max_voxels=1000)


def test_nifti_pair_header_is_unsupported(tmp_path: Path) -> None:
    raw = patched(small_image(), "4s", 344, b"ni1\x00")
    expect(write_bytes(tmp_path / "pair.nii", raw), UnsupportedImageError, "unsupported",
           "is a NIfTI header/image pair (.hdr/.img); only single-file NIfTI is supported")


@pytest.mark.parametrize(("code", "name"), [(0, "unknown"), (32, "complex64"), (128, "RGB")])
def test_unsupported_datatype(tmp_path: Path, code: int, name: str) -> None:
    raw = patched(small_image(), "<h", 70, code)
    expect(write_bytes(tmp_path / "dt.nii", raw), UnsupportedImageError, "unsupported",
           f"unsupported voxel datatype {name} (code {code}); need integer or float")


def test_unknown_datatype_code(tmp_path: Path) -> None:
    expect(write_bytes(tmp_path / "dt.nii", patched(small_image(), "<h", 70, 7)), CorruptFileError, "corrupt",
           "unknown voxel datatype code 7")


def test_singular_affine(tmp_path: Path) -> None:
    img = small_image()
    img.set_sform(np.zeros((4, 4)), code=1)
    path = tmp_path / "flat.nii"
    nib.save(img, path)
    expect(path, CorruptFileError, "corrupt", "the header's voxel-to-world affine is singular")


# ---- the sample-data set-up step ------------------------------------------------------------------


def test_setup_is_idempotent_and_needs_no_wheels_when_done(sample_data: dict[str, Path]) -> None:
    from pipeline.sample_data import reference_paths, sample_t1w_path, setup_sample_data

    root = sample_data["t1w"].parents[3]
    wheels_before = (root / ".wheels").exists()
    assert setup_sample_data(root, verify=False) == sample_data
    assert (root / ".wheels").exists() == wheels_before  # nothing downloaded
    assert sample_t1w_path(root) == root / "input/sub-001/anat/sub-001_T1w.nii.gz"
    assert reference_paths(root) == (root / "reference/atlas.nii.gz", root / "reference/atlas_mask.nii.gz")


def test_missing_sample_data_tells_how_to_set_it_up(tmp_path: Path) -> None:
    from pipeline.sample_data import SampleDataError, sample_t1w_path

    with pytest.raises(SampleDataError) as info:
        sample_t1w_path(tmp_path)
    assert str(info.value) == (
        f"sample data {tmp_path}/input/sub-001/anat/sub-001_T1w.nii.gz is missing; "
        "run the set-up step: python -m pipeline.sample_data"
    )


def test_setup_rejects_a_wheel_with_other_content(tmp_path: Path) -> None:
    import zipfile

    from pipeline.sample_data import SampleDataError, setup_sample_data

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "pydra-0.25-py3-none-any.whl", "w") as zf:
        zf.writestr("pydra/engine/tests/data_tests/test.nii.gz", b"not the head")
    with pytest.raises(SampleDataError, match=r"^pydra/engine/tests/data_tests/test\.nii\.gz in pydra-0\.25-py3-none-any\.whl has an unexpected SHA-256$"):
        setup_sample_data(tmp_path / "data", wheel_dirs=[wheels])
    assert list((tmp_path / "data" / "input" / "sub-001" / "anat").iterdir()) == []  # no partial file
