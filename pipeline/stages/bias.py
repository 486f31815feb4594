"""N4 bias-field correction (SimpleITK) fitted on a shrunk image, applied at full resolution."""

from __future__ import annotations

import math

import numpy as np
import SimpleITK as sitk

from pipeline.stages import ImageState, Info, StageResult, require
from pipeline.stages.skullstrip import otsu_threshold


def _to_sitk(array: np.ndarray, spacing: tuple[float, ...]) -> sitk.Image:
    """nibabel's (i, j, k) array -> a SimpleITK image (which indexes numpy arrays as k, j, i)."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(array.transpose(2, 1, 0)))
    image.SetSpacing(tuple(float(s) for s in spacing))
    return image


def _from_sitk(image: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(image).transpose(2, 1, 0)


def check_params(*, shrink_factor: int, iterations: tuple[int, ...], convergence_threshold: float) -> None:
    """Raise StageError for a parameter ``bias_correction`` cannot use (before any work)."""
    require("bias_correction", isinstance(shrink_factor, int) and shrink_factor >= 1,
            f"shrink_factor must be an integer >= 1 (got {shrink_factor!r})")
    iterations = tuple(iterations) if isinstance(iterations, (list, tuple)) else (iterations,)
    require("bias_correction", len(iterations) >= 1 and all(isinstance(i, int) and i >= 1 for i in iterations),
            f"iterations must be integers >= 1 per level (got {iterations!r})")
    require("bias_correction", math.isfinite(convergence_threshold) and convergence_threshold >= 0,
            f"convergence_threshold must be finite and >= 0 (got {convergence_threshold!r})")


def bias_correction(
    state: ImageState,
    *,
    shrink_factor: int = 4,
    iterations: tuple[int, ...] = (50, 50, 50, 50),
    convergence_threshold: float = 1e-3,
) -> StageResult:
    """N4 bias-field correction within an Otsu head mask (fit on a shrunk image, log field applied at full size)."""
    check_params(shrink_factor=shrink_factor, iterations=iterations, convergence_threshold=convergence_threshold)
    iterations = tuple(iterations) if isinstance(iterations, (list, tuple)) else (iterations,)
    data = state.data
    threshold = otsu_threshold(data)
    head = (data > threshold) & (data > 0)  # N4 works on log intensities: positive voxels only
    require("bias_correction", int(head.sum()) >= 64, "too few voxels above the Otsu threshold to fit a bias field")
    shrink = max(1, min(shrink_factor, min(state.shape) // 4 or 1))
    image = _to_sitk(data, state.voxel_sizes_mm)
    mask = _to_sitk(head.astype(np.uint8), state.voxel_sizes_mm)
    small_image = sitk.Shrink(image, [shrink] * 3)
    small_mask = sitk.Shrink(mask, [shrink] * 3)

    corrector = sitk.N4BiasFieldCorrectionImageFilter()
    corrector.SetMaximumNumberOfIterations([int(i) for i in iterations])
    corrector.SetConvergenceThreshold(float(convergence_threshold))
    events: list[tuple[str, Info]] = []
    progress = {"level": 0, "iterations": 0, "total": 0, "convergence": math.nan}

    def level_done() -> None:
        events.append(("n4.level_completed", {
            "level": progress["level"],
            "iterations": progress["iterations"],
            "convergence": float(progress["convergence"]),
        }))

    def on_iteration() -> None:
        level = corrector.GetCurrentLevel()
        if level != progress["level"]:
            level_done()
            progress.update(level=level, iterations=0)
        progress["iterations"] += 1
        progress["total"] += 1
        progress["convergence"] = corrector.GetCurrentConvergenceMeasurement()

    corrector.AddCommand(sitk.sitkIterationEvent, on_iteration)
    corrector.Execute(small_image, small_mask)
    if progress["total"]:
        level_done()
    log_bias = _from_sitk(corrector.GetLogBiasFieldAsImage(image)).astype(np.float64)
    log_bias -= log_bias[head].mean()  # N4's field has an arbitrary scale: keep the head's mean intensity
    corrected = (data / np.exp(log_bias)).astype(np.float32)
    bias_in_head = np.exp(log_bias[head])
    final_convergence = float(progress["convergence"])
    last_level_iterations = int(progress["iterations"])
    info: Info = {
        "shrink_factor": shrink,
        "levels": len(iterations),
        "iterations": int(progress["total"]),
        "convergence_threshold": float(convergence_threshold),
        "converged": bool(last_level_iterations < iterations[-1]),
        "final_convergence": final_convergence if math.isfinite(final_convergence) else -1.0,
        "otsu_threshold": round(threshold, 6),
        "mask_voxels": int(head.sum()),
        "bias_field_min": round(float(bias_in_head.min()), 6),
        "bias_field_max": round(float(bias_in_head.max()), 6),
    }
    return StageResult(ImageState(corrected, state.affine, state.mask), info, events)
