"""Property: any corruption of a valid file's header bytes loads cleanly or raises InputError - nothing else.

The voxel budget (``max_voxels``) plus the loader's own size checks bound what a corrupted header can
make it allocate, so no example can exhaust memory or hang.
"""

from __future__ import annotations

import gzip
import math
import struct
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import InputError
from pipeline.loader import load_volume

MAX_VOXELS = 2**18  # 1 MiB of float32 per example at most


def _valid(dtype: str, nifti2: bool) -> bytes:
    rng = np.random.default_rng(0)
    data = (rng.random((8, 9, 10)) * 1000).astype(dtype)
    affine = np.diag([1.5, 2.0, 2.5, 1.0])
    klass = nib.Nifti2Image if nifti2 else nib.Nifti1Image
    img = klass(data, affine)
    img.header.set_qform(affine, code=1)
    return img.to_bytes()


BASES = {(dtype, v2): _valid(dtype, v2) for dtype in ("int16", "float32") for v2 in (False, True)}

# Header fields worth hitting with special values: (struct format, offset) for NIfTI-1.
FIELDS = [
    ("<i", 0),  # sizeof_hdr
    ("<h", 40), ("<h", 42), ("<h", 44), ("<h", 46), ("<h", 48),  # dim[0..4]
    ("<h", 70), ("<h", 72),  # datatype, bitpix
    ("<f", 76), ("<f", 80), ("<f", 84), ("<f", 88),  # pixdim[0..3]
    ("<f", 108), ("<f", 112), ("<f", 116),  # vox_offset, scl_slope, scl_inter
    ("<h", 252), ("<h", 254),  # qform_code, sform_code
    ("<f", 256), ("<f", 260), ("<f", 264), ("<f", 268),  # quatern_b..d, qoffset_x
    ("<f", 280), ("<f", 296), ("<f", 312),  # srow_x/y/z[0]
]
SPECIAL = [0, 1, -1, 2, 3, 4, 7, 8, 255, 348, 540, 32767, -32768, 2**31 - 1, -(2**31)]
SPECIAL_F = [0.0, -0.0, 1.0, -1.0, 1e-30, 1e30, 3.4e38, float("nan"), float("inf"), float("-inf"), 352.0, 351.5]

byte_edits = st.lists(st.tuples(st.integers(0, 347), st.integers(0, 255)), min_size=1, max_size=12)
field_edits = st.lists(
    st.sampled_from(FIELDS).flatmap(
        lambda f: st.tuples(
            st.just(f), st.sampled_from(SPECIAL_F) if f[0] == "<f" else st.sampled_from(SPECIAL) | st.integers(-(2**15), 2**15 - 1)
        )
    ),
    min_size=1,
    max_size=4,
)


def _apply_bytes(raw: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(raw)
    for index, value in edits:
        out[index] = value
    return bytes(out)


def _apply_fields(raw: bytes, edits: list[tuple[tuple[str, int], float]]) -> bytes:
    out = bytearray(raw)
    for (fmt, offset), value in edits:
        if fmt == "<h":
            value = int(max(-(2**15), min(2**15 - 1, value)))
        elif fmt == "<i":
            value = int(max(-(2**31), min(2**31 - 1, value)))
        struct.pack_into(fmt, out, offset, value)
    return bytes(out)


def _check(raw: bytes, suffix: str, gz_raw: bytes | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"sub-01_T1w{suffix}"
        if gz_raw is not None:
            path.write_bytes(gz_raw)
        else:
            path.write_bytes(gzip.compress(raw, compresslevel=1, mtime=0) if suffix == ".nii.gz" else raw)
        try:
            vol = load_volume(path, max_voxels=MAX_VOXELS)
        except InputError as exc:
            text = str(exc)
            assert text.startswith("sub-01_T1w") and "\n" not in text and exc.reason
            return
        assert vol.data.dtype == np.float32 and vol.data.ndim == 3
        assert math.prod(vol.shape) <= MAX_VOXELS and np.isfinite(vol.data).all()
        assert vol.affine.shape == (4, 4) and np.isfinite(vol.affine).all()


PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # examples: the profile (50)
bases = st.sampled_from(sorted(BASES))
suffixes = st.sampled_from([".nii", ".nii.gz"])


@PROPERTY
@given(base=bases, suffix=suffixes, edits=byte_edits)
def test_random_header_bytes(base: tuple[str, bool], suffix: str, edits: list[tuple[int, int]]) -> None:
    _check(_apply_bytes(BASES[base], edits), suffix)


@PROPERTY
@given(base=st.sampled_from([("int16", False), ("float32", False)]), suffix=suffixes, edits=field_edits)
def test_special_values_in_header_fields(base: tuple[str, bool], suffix: str, edits: list) -> None:
    _check(_apply_fields(BASES[base], edits), suffix)


@PROPERTY
@given(base=bases, edits=byte_edits)
def test_corrupted_compressed_bytes(base: tuple[str, bool], edits: list[tuple[int, int]]) -> None:
    compressed = gzip.compress(BASES[base], compresslevel=1, mtime=0)
    _check(b"", ".nii.gz", gz_raw=_apply_bytes(compressed, [(i % len(compressed), v) for i, v in edits]))


@PROPERTY
@given(base=bases, suffix=suffixes, cut=st.integers(1, 2000))
def test_any_truncation(base: tuple[str, bool], suffix: str, cut: int) -> None:
    raw = BASES[base]
    _check(raw[: max(1, len(raw) - cut)], suffix)
