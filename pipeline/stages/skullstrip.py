"""Brain mask by Otsu threshold, erosion, largest connected component, dilation and hole filling."""

from __future__ import annotations

import numpy as np
from scipy import ndimage  # type: ignore[import-untyped]

from pipeline.stages import ImageState, Info, StageResult, positive_mm, require

_CROSS = ndimage.generate_binary_structure(3, 1)
_CUBE = ndimage.generate_binary_structure(3, 3)


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of ``values`` (maximises the between-class variance of a histogram)."""
    values = values[np.isfinite(values)]
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return lo
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(counts, dtype=np.float64)
    w1 = w0[-1] - w0
    m0 = np.cumsum(counts * centres)
    mean0 = m0 / np.maximum(w0, 1)
    mean1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mean0 - mean1) ** 2
    return float(edges[int(np.argmax(between[:-1])) + 1])


def steps_per_axis(radius_mm: float, voxel_sizes_mm: tuple[float, ...]) -> tuple[int, ...]:
    """How many one-voxel morphology steps give ``radius_mm`` along each axis."""
    return tuple(round(radius_mm / v) for v in voxel_sizes_mm)


def _morph(mask: np.ndarray, steps: tuple[int, ...], dilate: bool) -> np.ndarray:
    """Erode/dilate by repeated 3x3x3 steps (alternating cross and cube, close to a ball), per-axis in mm."""
    op = ndimage.binary_dilation if dilate else ndimage.binary_erosion
    for step in range(max(steps, default=0)):
        struct = (_CROSS if step % 2 == 0 else _CUBE).copy()
        for axis, n in enumerate(steps):
            if step >= n:  # this axis has reached its radius: do not grow along it any more
                index: list[slice | list[int]] = [slice(None)] * 3
                index[axis] = [0, 2]
                struct[tuple(index)] = False
        mask = op(mask, structure=struct, border_value=0)
    return mask


def largest_component(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """The largest 6-connected component of ``mask`` and the number of components."""
    labels, n = ndimage.label(mask, structure=_CROSS)
    if n <= 1:
        return labels > 0, n
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes)), n


def fill_holes_3d_2d(mask: np.ndarray) -> np.ndarray:
    """Fill enclosed holes in 3D, then slice by slice along each axis (ventricles open to the CSF in 3D)."""
    mask = ndimage.binary_fill_holes(mask)
    for axis in range(3):
        moved = np.moveaxis(mask, axis, 0)
        filled = np.stack([ndimage.binary_fill_holes(plane) for plane in moved])
        mask = np.moveaxis(filled, 0, axis)
    return np.ascontiguousarray(mask)


def closing(mask: np.ndarray, steps: tuple[int, ...]) -> np.ndarray:
    """Morphological closing (dilate then erode) with padding, so the volume edge does not erode it."""
    pad = max(steps, default=0)
    if pad == 0:
        return mask
    padded = np.pad(mask, pad)
    closed = _morph(_morph(padded, steps, dilate=True), steps, dilate=False)
    return closed[pad:-pad, pad:-pad, pad:-pad]


def check_params(*, threshold_scale: float, erosion_mm: float, dilation_mm: float, closing_mm: float,
                 fill_holes: bool, apply_mask: bool) -> None:
    """Raise StageError for a parameter ``skull_strip`` cannot use (before any work)."""
    positive_mm("skull_strip", "threshold_scale", threshold_scale)
    for key, value in (("erosion_mm", erosion_mm), ("dilation_mm", dilation_mm), ("closing_mm", closing_mm)):
        positive_mm("skull_strip", key, value, allow_zero=True)
    for key, flag in (("fill_holes", fill_holes), ("apply_mask", apply_mask)):
        require("skull_strip", isinstance(flag, bool), f"{key} must be true or false (got {flag!r})")


def skull_strip(
    state: ImageState,
    *,
    threshold_scale: float = 0.7,
    erosion_mm: float = 5.0,
    dilation_mm: float = 6.5,
    closing_mm: float = 4.0,
    fill_holes: bool = True,
    apply_mask: bool = True,
) -> StageResult:
    """Brain mask: Otsu, erosion, largest component, dilation, closing and hole filling (radii in mm).

    With ``apply_mask`` (the default) voxels outside the mask are set to 0: the output is the
    brain-extracted image. The mask itself travels on in the state for the later stages.

    The foreground is ``data > threshold_scale * otsu``; erosion cuts the thin links between brain and
    scalp, the largest component is the brain, dilation (kept inside the foreground) restores its
    surface, closing bridges sulci and hole filling adds the ventricles.
    """
    check_params(threshold_scale=threshold_scale, erosion_mm=erosion_mm, dilation_mm=dilation_mm,
                 closing_mm=closing_mm, fill_holes=fill_holes, apply_mask=apply_mask)
    threshold_scale = positive_mm("skull_strip", "threshold_scale", threshold_scale)
    erosion_mm = positive_mm("skull_strip", "erosion_mm", erosion_mm, allow_zero=True)
    dilation_mm = positive_mm("skull_strip", "dilation_mm", dilation_mm, allow_zero=True)
    closing_mm = positive_mm("skull_strip", "closing_mm", closing_mm, allow_zero=True)
    data = state.data
    otsu = otsu_threshold(data)
    threshold = otsu * threshold_scale
    foreground = data > threshold
    require("skull_strip", bool(foreground.any()), f"nothing above the threshold {threshold:.4g}")
    voxels = state.voxel_sizes_mm
    erode_steps = steps_per_axis(erosion_mm, voxels)
    dilate_steps = steps_per_axis(dilation_mm, voxels)
    close_steps = steps_per_axis(closing_mm, voxels)
    eroded = _morph(foreground, erode_steps, dilate=False)
    require("skull_strip", bool(eroded.any()), f"erosion by {erosion_mm} mm removed the whole foreground")
    brain, n_components = largest_component(eroded)
    # Everything after this stays within the brain's bounding box plus the growth of dilation and
    # closing: work on that crop (identical result, several times faster on a full head).
    margin = [d + c + 1 for d, c in zip(dilate_steps, close_steps)]
    box = tuple(
        slice(max(int(idx.min()) - m, 0), min(int(idx.max()) + m + 1, n))
        for idx, m, n in zip(np.nonzero(brain), margin, brain.shape)
    )
    crop = _morph(brain[box], dilate_steps, dilate=True) & foreground[box]
    crop = closing(crop, close_steps)
    if fill_holes:
        crop = fill_holes_3d_2d(crop)
    crop, _ = largest_component(crop)
    mask = np.zeros_like(brain)
    mask[box] = crop
    voxel_ml = float(np.prod(voxels)) / 1000.0
    info: Info = {
        "otsu_threshold": round(otsu, 6),
        "threshold": round(threshold, 6),
        "erosion_mm": erosion_mm,
        "dilation_mm": dilation_mm,
        "closing_mm": closing_mm,
        "erosion_steps": max(erode_steps, default=0),
        "dilation_steps": max(dilate_steps, default=0),
        "components": int(n_components),
        "mask_voxels": int(mask.sum()),
        "mask_volume_ml": round(float(mask.sum()) * voxel_ml, 3),
        "holes_filled": bool(fill_holes),
        "mask_applied": bool(apply_mask),
    }
    if apply_mask:
        data = np.where(mask, data, 0).astype(np.float32)
    events: list[tuple[str, Info]] = [("skull_strip.brain_component_selected", {"components": int(n_components), "brain_voxels": int(brain.sum())})]
    return StageResult(ImageState(data, state.affine, mask), info, events)
