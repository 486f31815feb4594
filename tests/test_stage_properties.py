"""Properties of the stage functions on small random volumes and random (oblique) affines."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pipeline.errors import StageError
from pipeline.stages import ImageState, run_stage

PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # examples: the profile (50)

shapes = st.tuples(*[st.integers(3, 24)] * 3)
values = st.floats(-1e4, 1e4, allow_nan=False, width=32)


@st.composite
def volumes(
    draw: st.DrawFn, with_mask: bool = True, varied: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """A random float32 volume (and maybe a random mask); ``varied`` adds a shuffled ramp so no region is flat."""
    shape = draw(shapes)
    data = draw(hnp.arrays(np.float32, shape, elements=values))
    if varied:
        ramp = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).permutation(data.size).reshape(shape)
        data = data + (ramp * draw(st.sampled_from([1e-2, 1.0, 100.0]))).astype(np.float32)
    mask = draw(hnp.arrays(np.bool_, shape)) if with_mask and draw(st.booleans()) else None
    return data, mask


@st.composite
def affines(draw: st.DrawFn) -> np.ndarray:
    """voxel -> world: a random rotation times positive zooms (0.5-3 mm), plus a translation."""
    q = np.array(draw(st.tuples(*[st.floats(-1, 1)] * 4)))
    if np.linalg.norm(q) < 0.1:  # (nearly) zero: no rotation
        q = np.array([1.0, 0.0, 0.0, 0.0])
    w, x, y, z = q / np.linalg.norm(q)
    rotation = np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])
    zooms = draw(st.tuples(*[st.floats(0.5, 3.0)] * 3))
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag(zooms)
    affine[:3, 3] = draw(st.tuples(*[st.floats(-200, 200)] * 3))
    return affine


@PROPERTY
@given(volume=volumes(varied=True), affine=affines())
def test_zscore_gives_mean_0_sd_1_in_the_mask(volume: tuple[np.ndarray, np.ndarray | None], affine: np.ndarray) -> None:
    data, mask = volume
    region = data[mask] if mask is not None and mask.any() else data.ravel()
    sd = region.astype(np.float64).std()
    assume(region.size >= 2 and sd > 0)
    assume(float(np.abs(data.astype(np.float64) - region.mean(dtype=np.float64)).max()) / sd < 1e30)  # else: below
    result = run_stage("normalize", ImageState(data, affine, mask))
    inside = result.state.data[mask] if mask is not None and mask.any() else result.state.data.ravel()
    inside = inside.astype(np.float64)
    assert abs(inside.mean()) < 1e-4
    assert abs(inside.std() - 1.0) < 1e-4
    assert result.info["region_voxels"] == region.size


@PROPERTY
@given(volume=volumes(varied=True), low=st.floats(0, 49), high=st.floats(51, 100))
def test_percentile_maps_into_0_1(volume: tuple[np.ndarray, np.ndarray | None], low: float, high: float) -> None:
    data, mask = volume
    region = data[mask] if mask is not None and mask.any() else data.ravel()
    lo, hi = np.percentile(region.astype(np.float64), [low, high])
    assume(hi > lo)
    out = run_stage("normalize", ImageState(data, np.eye(4), mask), method="percentile", low_pct=low, high_pct=high)
    assert out.state.data.min() >= 0.0 and out.state.data.max() <= 1.0
    order = np.argsort(data.ravel(), kind="stable")  # monotone: a brighter input never maps darker
    assert np.all(np.diff(out.state.data.ravel()[order]) >= 0)


@PROPERTY
@given(volume=volumes(with_mask=False), affine=affines(), fwhm=st.floats(0.0, 15.0))
def test_smoothing_keeps_the_sum(volume: tuple[np.ndarray, None], affine: np.ndarray, fwhm: float) -> None:
    data, _ = volume
    out = run_stage("smooth", ImageState(data, affine), fwhm_mm=fwhm).state.data
    scale = float(np.abs(data).astype(np.float64).sum()) + 1.0
    assert abs(float(out.astype(np.float64).sum()) - float(data.astype(np.float64).sum())) <= 1e-5 * scale
    assert out.shape == data.shape and out.dtype == np.float32
    # Smoothing never widens the range of values (a gaussian is an average).
    assert out.min() >= data.min() - 1e-3 * scale / data.size and out.max() <= data.max() + 1e-3 * scale / data.size


def _world_box(shape: tuple[int, ...], affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    corners = np.array([[i, j, k, 1.0] for i in (0, shape[0] - 1) for j in (0, shape[1] - 1) for k in (0, shape[2] - 1)])
    world = corners @ affine.T
    return world[:, :3].min(axis=0), world[:, :3].max(axis=0)


@PROPERTY
@given(volume=volumes(), affine=affines(), size=st.floats(1.5, 6.0))
def test_resampling_keeps_the_world_extent(
    volume: tuple[np.ndarray, np.ndarray | None], affine: np.ndarray, size: float
) -> None:
    data, mask = volume
    result = run_stage("resample", ImageState(data, affine, mask), voxel_size_mm=size)
    out = result.state
    assert out.voxel_sizes_mm == tuple(np.float64(size) for _ in range(3)) or np.allclose(out.voxel_sizes_mm, size)
    np.testing.assert_allclose(out.affine[:3, :3], np.diag([size] * 3), atol=1e-9)
    lo_in, hi_in = _world_box(data.shape, affine)
    lo_out, hi_out = _world_box(out.shape, out.affine)
    tol = 1e-6 * (1 + float(np.abs(affine[:3, 3]).max()))
    assert np.all(lo_out <= lo_in + tol) and np.all(hi_out >= hi_in - tol)  # covers the input
    assert np.all((hi_out - lo_out) - (hi_in - lo_in) < size + tol)  # by less than one voxel more
    assert (out.mask is None) == (mask is None)
    if out.mask is not None:
        assert out.mask.dtype == bool and out.mask.shape == out.shape
    assert math.prod(out.shape) == result.info["output_voxels"]


STAGE_NAMES = ("bias_correction", "skull_strip", "normalize", "smooth", "resample")


@settings(PROPERTY, max_examples=max(10, settings.default.max_examples // 2))  # N4 per example: half
@given(volume=volumes(), affine=affines(), name=st.sampled_from(STAGE_NAMES))
def test_any_stage_on_any_volume_succeeds_cleanly_or_raises_stage_error(
    volume: tuple[np.ndarray, np.ndarray | None], affine: np.ndarray, name: str
) -> None:
    data, mask = volume
    try:
        result = run_stage(name, ImageState(data, affine, mask))
    except StageError as exc:
        assert str(exc).startswith(f"stage {name!r}") and "\n" not in str(exc)
        return
    out = result.state
    assert out.data.dtype == np.float32 and np.isfinite(out.data).all()
    assert out.mask is None or (out.mask.dtype == bool and out.mask.shape == out.data.shape)
    assert all(isinstance(v, (str, int, float, bool)) for v in result.info.values())
