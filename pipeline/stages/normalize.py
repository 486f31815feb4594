"""Intensity normalisation: z-score within the brain mask, or percentile scaling to [0, 1]."""

from __future__ import annotations

import math

import numpy as np

from pipeline.stages import ImageState, Info, StageResult, require

METHODS = ("zscore", "percentile")
FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_params(*, method: str, low_pct: float, high_pct: float) -> None:
    """Raise StageError for a parameter ``normalize`` cannot use (before any work)."""
    require("normalize", method in METHODS, f"method must be one of {', '.join(METHODS)} (got {method!r})")
    if method == "percentile":
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low_pct, high_pct))
        ok = numeric and 0.0 <= low_pct < high_pct <= 100.0
        require("normalize", ok, f"need 0 <= low_pct < high_pct <= 100 (got {low_pct}, {high_pct})")


def normalize(
    state: ImageState, *, method: str = "zscore", low_pct: float = 1.0, high_pct: float = 99.0
) -> StageResult:
    """Intensity normalisation: z-score (mean 0, sd 1 within the mask) or percentile clip to [0, 1].

    A skull-stripped input (zero everywhere outside the mask) keeps a zero background.
    """
    check_params(method=method, low_pct=low_pct, high_pct=high_pct)
    use_mask = state.mask is not None and bool(state.mask.any())
    values = state.data[state.mask] if use_mask else state.data.ravel()
    values = values.astype(np.float64)
    keep_zero_background = use_mask and not bool(np.any(state.data[~state.mask]))
    info: Info = {
        "method": method,
        "zero_background": keep_zero_background,
        "mask_used": use_mask,
        "region": "mask" if use_mask else "whole_volume",
        "region_voxels": int(values.size),
    }
    if method == "zscore":
        mean = float(values.mean())
        sd = float(values.std())
        require("normalize", math.isfinite(sd) and sd > 0, "intensities are constant in the region; cannot z-score")
        data = (state.data.astype(np.float64) - mean) / sd
        largest = float(np.abs(data).max())
        require("normalize", largest < FLOAT32_MAX,
                f"the region's intensities are nearly constant (sd {sd:.3g}); z-scores would overflow float32")
        info.update(input_mean=mean, input_sd=sd)
    else:
        low, high = (float(v) for v in np.percentile(values, [low_pct, high_pct]))
        require("normalize", high > low, f"the {low_pct} and {high_pct} percentiles are equal ({low}); cannot scale")
        data = np.clip((state.data.astype(np.float64) - low) / (high - low), 0.0, 1.0)
        info.update(low_pct=float(low_pct), high_pct=float(high_pct), low_value=low, high_value=high)
    if keep_zero_background:
        data[~state.mask] = 0.0
    return StageResult(ImageState(data.astype(np.float32), state.affine, state.mask), info)
