"""A synthetic T1w-like head for fast tests: brain (WM, GM, ventricles), CSF, dark skull, bright scalp.

The geometry is defined in mm around the volume centre, so any shape/voxel size gives the same
anatomy (a 64^3 grid of 3 mm voxels holds the whole head). A smooth multiplicative bias field and
Rician-like noise make it realistic enough for N4 and skull stripping; the ground-truth brain mask
and tissue labels come from the same geometry.
"""

from __future__ import annotations

from collections.abc import Sequence

import nibabel as nib
import numpy as np

BACKGROUND, SCALP, SKULL, CSF, GM, WM = 0, 1, 2, 3, 4, 5
LABEL_NAMES = {BACKGROUND: "background", SCALP: "scalp", SKULL: "skull", CSF: "csf", GM: "gm", WM: "wm"}
# T1w contrast: fat-rich scalp and WM bright, GM darker, CSF dark, skull (cortical bone) darkest.
INTENSITY = {BACKGROUND: 0.0, SCALP: 0.85, SKULL: 0.06, CSF: 0.2, GM: 0.6, WM: 1.0}
BRAIN_RADII_MM = (58.0, 72.0, 60.0)  # left-right, posterior-anterior, inferior-superior
_LAYERS_MM = (("csf", 3.0), ("skull", 7.0), ("scalp", 6.0))  # outward from the brain surface
_GM_MM = 3.5
FULL_SCALE = 1000.0  # int16 output: WM ~ 1000


def _grid_mm(shape: Sequence[int], voxel_size_mm: Sequence[float]) -> tuple[np.ndarray, ...]:
    axes = [(np.arange(n) - (n - 1) / 2.0) * v for n, v in zip(shape, voxel_size_mm)]
    return tuple(np.meshgrid(*axes, indexing="ij", sparse=True))


def _ellipsoid_distance(coords: tuple[np.ndarray, ...], radii: Sequence[float], wobble: np.ndarray) -> np.ndarray:
    """Approximate signed distance (mm) outside an ellipsoid whose surface is perturbed by ``wobble`` mm."""
    x, y, z = coords
    r = np.sqrt((x / radii[0]) ** 2 + (y / radii[1]) ** 2 + (z / radii[2]) ** 2)
    mean_radius = float(np.mean(radii))
    return (r - 1.0) * mean_radius - wobble


def _smooth_field(coords: tuple[np.ndarray, ...], rng: np.random.Generator, scale_mm: float, terms: int) -> np.ndarray:
    """A smooth random function of position: a sum of low-frequency cosines (unit amplitude)."""
    x, y, z = coords
    field = np.zeros(np.broadcast_shapes(x.shape, y.shape, z.shape))
    for _ in range(terms):
        k = rng.normal(size=3)
        k *= 2 * np.pi / scale_mm / max(float(np.linalg.norm(k)), 1e-9)
        field = field + np.cos(k[0] * x + k[1] * y + k[2] * z + rng.uniform(0, 2 * np.pi))
    return field / np.sqrt(terms / 2.0)


def head_phantom_labels(
    shape: Sequence[int] = (64, 64, 64), voxel_size_mm: Sequence[float] = (3.0, 3.0, 3.0), seed: int = 0
) -> np.ndarray:
    """Tissue labels (uint8: BACKGROUND, SCALP, SKULL, CSF, GM, WM) of the phantom head."""
    rng = np.random.default_rng(seed)
    coords = _grid_mm(shape, voxel_size_mm)
    wobble = 2.0 * _smooth_field(coords, rng, scale_mm=80.0, terms=6)
    brain_d = _ellipsoid_distance(coords, BRAIN_RADII_MM, wobble)
    labels = np.full(tuple(shape), BACKGROUND, dtype=np.uint8)
    outer = 0.0
    layer_labels = {"csf": CSF, "skull": SKULL, "scalp": SCALP}
    bounds = []
    for name, thickness in _LAYERS_MM:
        bounds.append((outer, outer + thickness, layer_labels[name]))
        outer += thickness
    for low, high, label in reversed(bounds):
        labels[(brain_d > low) & (brain_d <= high)] = label
    labels[brain_d <= 0] = GM
    labels[brain_d <= -_GM_MM] = WM
    x, y, z = coords  # two lateral ventricles: small CSF ellipsoids either side of the midline
    for side in (-1.0, 1.0):
        ventricle = ((x - side * 10.0) / 6.0) ** 2 + ((y + 5.0) / 22.0) ** 2 + ((z - 8.0) / 9.0) ** 2 <= 1.0
        labels[np.broadcast_to(ventricle, labels.shape)] = CSF
    return labels


def make_head_phantom_with_mask(
    shape: Sequence[int] = (64, 64, 64),
    voxel_size_mm: Sequence[float] = (3.0, 3.0, 3.0),
    seed: int = 0,
    bias: bool = True,
    noise: float = 0.02,
    dtype: str = "int16",
) -> tuple[nib.Nifti1Image, np.ndarray]:
    """The phantom image and its ground-truth brain mask (GM, WM and the ventricles inside)."""
    if len(shape) != 3 or len(voxel_size_mm) != 3:
        raise ValueError("shape and voxel_size_mm must have 3 entries")
    labels = head_phantom_labels(shape, voxel_size_mm, seed)
    rng = np.random.default_rng([seed, 1])
    lut = np.array([INTENSITY[label] for label in sorted(INTENSITY)], dtype=np.float64)
    image = lut[labels]
    if bias:  # smooth multiplicative field, roughly 0.7 .. 1.4 across the head
        coords = _grid_mm(shape, voxel_size_mm)
        image = image * np.exp(0.18 * _smooth_field(coords, rng, scale_mm=250.0, terms=3))
    if noise > 0:  # magnitude of complex gaussian noise: Rician, like MR magnitude images
        real = image + rng.normal(0.0, noise, image.shape)
        imag = rng.normal(0.0, noise, image.shape)
        image = np.sqrt(real**2 + imag**2)
    affine = np.diag([*map(float, voxel_size_mm), 1.0])
    affine[:3, 3] = [-(n - 1) / 2.0 * v for n, v in zip(shape, voxel_size_mm)]
    if dtype == "int16":
        data = np.clip(np.round(image * FULL_SCALE), 0, 32767).astype(np.int16)
    elif dtype == "float32":
        data = image.astype(np.float32)
    else:
        raise ValueError(f"dtype must be 'int16' or 'float32' (got {dtype!r})")
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm", "sec")
    img.header.set_qform(affine, code=1)
    img.header.set_sform(affine, code=1)
    img.header["descrip"] = b"neuro-otel-harness head phantom"
    brain = np.isin(labels, (GM, WM)) | ((labels == CSF) & _inside_brain(labels))
    return img, brain


def _inside_brain(labels: np.ndarray) -> np.ndarray:
    """Voxels enclosed by brain tissue (the ventricles), via hole filling of GM|WM."""
    from scipy import ndimage  # type: ignore[import-untyped]

    tissue = np.isin(labels, (GM, WM))
    return ndimage.binary_fill_holes(tissue) & ~tissue


def make_head_phantom(
    shape: Sequence[int] = (64, 64, 64),
    voxel_size_mm: Sequence[float] = (3.0, 3.0, 3.0),
    seed: int = 0,
    bias: bool = True,
    noise: float = 0.02,
    dtype: str = "int16",
) -> nib.Nifti1Image:
    """A synthetic T1w-like head (see the module docstring); int16 (WM ~ 1000) or float32 (WM ~ 1)."""
    return make_head_phantom_with_mask(shape, voxel_size_mm, seed, bias, noise, dtype)[0]


__all__ = [
    "BACKGROUND",
    "CSF",
    "GM",
    "SCALP",
    "SKULL",
    "WM",
    "head_phantom_labels",
    "make_head_phantom",
    "make_head_phantom_with_mask",
]
