"""Gaussian smoothing by a full width at half maximum in mm."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage  # type: ignore[import-untyped]

from pipeline.stages import ImageState, Info, StageResult, positive_mm

FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))  # 0.4247


def check_params(*, fwhm_mm: float) -> None:
    """Raise StageError for a parameter ``smooth`` cannot use (before any work)."""
    positive_mm("smooth", "fwhm_mm", fwhm_mm, allow_zero=True)


def smooth(state: ImageState, *, fwhm_mm: float = 6.0) -> StageResult:
    """Gaussian smoothing: sigma_vox = fwhm_mm / (2 sqrt(2 ln 2)) / voxel_mm per axis."""
    fwhm_mm = positive_mm("smooth", "fwhm_mm", fwhm_mm, allow_zero=True)
    sigma_mm = fwhm_mm * FWHM_TO_SIGMA
    sigma_vox = tuple(sigma_mm / v for v in state.voxel_sizes_mm)
    # 'reflect' (half-sample symmetric) boundaries keep the image's total intensity exactly.
    data = ndimage.gaussian_filter(state.data, sigma_vox, mode="reflect") if fwhm_mm > 0 else state.data.copy()
    info: Info = {
        "fwhm_mm": fwhm_mm,
        "sigma_mm": round(sigma_mm, 6),
        "sigma_max_vox": round(max(sigma_vox), 6),
        "applied": fwhm_mm > 0,
    }
    return StageResult(ImageState(data.astype(np.float32, copy=False), state.affine, state.mask), info)
