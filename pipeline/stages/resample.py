"""Resampling to isotropic voxels on a world-aligned (RAS) grid covering the input."""

from __future__ import annotations

import math

import nibabel as nib
import numpy as np
from nibabel.processing import resample_from_to, vox2out_vox

from pipeline.stages import ImageState, Info, StageResult, positive_mm, require

MAX_OUTPUT_VOXELS = 2**28  # 1 GiB of float32: a guard against absurd voxel sizes


def check_params(*, voxel_size_mm: float, order: int) -> None:
    """Raise StageError for a parameter ``resample`` cannot use (before any work)."""
    positive_mm("resample", "voxel_size_mm", voxel_size_mm)
    require("resample", isinstance(order, int) and not isinstance(order, bool) and 0 <= order <= 5,
            f"order must be 0..5 (got {order!r})")


def resample(state: ImageState, *, voxel_size_mm: float = 2.0, order: int = 1) -> StageResult:
    """Resample to isotropic voxel_size_mm (spline order 1 for data, nearest for the mask)."""
    check_params(voxel_size_mm=voxel_size_mm, order=order)
    size = float(voxel_size_mm)
    out_shape, out_affine = vox2out_vox((state.shape, state.affine), (size, size, size))
    n_out = math.prod(out_shape)
    require(
        "resample",
        n_out <= MAX_OUTPUT_VOXELS,
        f"output grid {'x'.join(map(str, out_shape))} at {size} mm is too large ({n_out} voxels)",
    )
    target = (tuple(int(n) for n in out_shape), out_affine)
    img = nib.Nifti1Image(state.data, state.affine)
    out = resample_from_to(img, target, order=order, mode="constant", cval=0.0)
    mask = None
    if state.mask is not None:
        mask_img = nib.Nifti1Image(state.mask.astype(np.uint8), state.affine)
        mask = np.asarray(resample_from_to(mask_img, target, order=0, mode="constant", cval=0).dataobj) > 0
    info: Info = {
        "voxel_size_mm": size,
        "input_voxel_size_max_mm": round(max(state.voxel_sizes_mm), 6),
        "input_voxel_size_min_mm": round(min(state.voxel_sizes_mm), 6),
        "output_voxels": int(n_out),
        "order": order,
    }
    data = np.asarray(out.dataobj, dtype=np.float32)
    return StageResult(ImageState(data, out.affine, mask), info)
