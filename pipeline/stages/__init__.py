"""Image-processing stages: a mutable-free image state, a result type and a registry.

Every stage is a pure function ``stage(state, **params) -> StageResult`` (no OpenTelemetry here).
Its ``info`` holds low-cardinality, unit-suffixed scalars and its ``events`` the milestones; the
orchestrator turns them into span attributes and span events (no spans inside tight loops).
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from pipeline.errors import PipelineError, StageError

InfoValue = str | int | float | bool
Info = dict[str, InfoValue]


@dataclass
class ImageState:
    """The image flowing through the stages: float32 voxels, voxel-to-world affine, optional mask."""

    data: np.ndarray
    affine: np.ndarray
    mask: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.data = np.asarray(self.data, dtype=np.float32)
        self.affine = np.asarray(self.affine, dtype=np.float64)
        if self.data.ndim != 3:
            raise StageError(f"image must be 3D, got shape {self.data.shape}")
        if self.affine.shape != (4, 4):
            raise StageError(f"affine must be 4x4, got shape {self.affine.shape}")
        if not np.isfinite(self.affine).all() or abs(float(np.linalg.det(self.affine[:3, :3]))) < 1e-12:
            raise StageError("affine must be finite and invertible")
        if self.mask is not None:
            self.mask = np.asarray(self.mask, dtype=bool)
            if self.mask.shape != self.data.shape:
                raise StageError(f"mask shape {self.mask.shape} differs from image shape {self.data.shape}")

    @property
    def voxel_sizes_mm(self) -> tuple[float, float, float]:
        """Voxel edge lengths in mm (column norms of the affine's 3x3 part)."""
        sizes = np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))
        return (float(sizes[0]), float(sizes[1]), float(sizes[2]))

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.data.shape)  # type: ignore[return-value]


@dataclass
class StageResult:
    """A stage's output state, its info scalars and its milestone events ``(name, attributes)``."""

    state: ImageState
    info: Info = field(default_factory=dict)
    events: list[tuple[str, Info]] = field(default_factory=list)


@dataclass(frozen=True)
class StageSpec:
    """A registered stage: its function, default parameters, a one-line description, and ``check``
    (called with every resolved parameter; raises StageError) so a bad value is refused before any
    stage of a run starts."""

    name: str
    run: Callable[..., StageResult]
    defaults: Mapping[str, Any]
    description: str
    check: Callable[..., None]


def _spec(name: str, func: Callable[..., StageResult], check: Callable[..., None]) -> StageSpec:
    params = inspect.signature(func).parameters
    defaults = {p.name: p.default for p in params.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    checked = set(inspect.signature(check).parameters)
    if checked != set(defaults):  # a parameter added to a stage must be checked too
        raise TypeError(f"{name}: check_params takes {sorted(checked)}, the stage {sorted(defaults)}")
    doc = (func.__doc__ or "").strip().splitlines()
    return StageSpec(name, func, MappingProxyType(defaults), doc[0] if doc else name, check)


def require(stage: str, condition: bool, message: str) -> None:
    """Raise StageError(``stage: message``) unless ``condition`` (parameter validation helper)."""
    if not condition:
        raise StageError(f"stage {stage!r}: {message}")


def positive_mm(stage: str, key: str, value: float, allow_zero: bool = False) -> float:
    """Validate a length in mm: finite and > 0 (or >= 0)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value >= 0 if allow_zero else value > 0)
    require(stage, ok, f"{key} must be a finite number {'>= 0' if allow_zero else '> 0'} (got {value!r})")
    return float(value)


from pipeline.stages import bias, normalize as _normalize, resample as _resample, skullstrip, smooth as _smooth
from pipeline.stages.bias import bias_correction
from pipeline.stages.normalize import normalize
from pipeline.stages.resample import resample
from pipeline.stages.skullstrip import skull_strip
from pipeline.stages.smooth import smooth

STAGES: dict[str, StageSpec] = {
    spec.name: spec
    for spec in (
        _spec("bias_correction", bias_correction, bias.check_params),
        _spec("skull_strip", skull_strip, skullstrip.check_params),
        _spec("normalize", normalize, _normalize.check_params),
        _spec("smooth", smooth, _smooth.check_params),
        _spec("resample", resample, _resample.check_params),
    )
}
DEFAULT_STAGES: tuple[str, ...] = ("bias_correction", "skull_strip", "normalize", "smooth", "resample")


def get_stage(name: str) -> StageSpec:
    """The registered stage ``name``; StageError naming the valid stages otherwise."""
    try:
        return STAGES[name]
    except KeyError:
        raise StageError(f"unknown stage {name!r}; valid stages: {', '.join(STAGES)}") from None


def _coerce(stage: str, key: str, value: Any, default: Any) -> Any:
    """Convert a CLI string to the type of the parameter's default (other values pass through)."""
    if not isinstance(value, str) or isinstance(default, str):
        return value
    text = value.strip()
    try:
        if isinstance(default, bool):
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, tuple):
            item_type = type(default[0]) if default else float
            return tuple(item_type(part) for part in text.replace("x", ",").split(",") if part.strip())
    except ValueError:
        raise StageError(
            f"stage {stage!r}: parameter {key}={value!r} is not a valid {type(default).__name__}"
        ) from None
    return value


def resolve_params(name: str, **params: Any) -> dict[str, Any]:
    """The full parameter set of stage ``name``: defaults overridden by ``params``, checked.

    Unknown parameter names raise StageError naming the valid ones; strings are converted to the
    default's type (so CLI values like ``"4"`` or ``"50,50,50"`` work); a value the stage cannot
    use raises StageError (the stage's ``check_params``).
    """
    spec = get_stage(name)
    unknown = sorted(set(params) - set(spec.defaults))
    if unknown:
        raise StageError(
            f"unknown parameter {', '.join(map(repr, unknown))} for stage {name!r}; "
            f"valid parameters: {', '.join(spec.defaults) or '(none)'}"
        )
    resolved = dict(spec.defaults)
    for key, value in params.items():
        resolved[key] = _coerce(name, key, value, spec.defaults[key])
    try:
        spec.check(**resolved)
    except (TypeError, ValueError) as exc:  # a value of a type the check cannot even compare
        raise StageError(f"stage {name!r}: invalid parameters {params!r}: {exc}") from None
    return resolved


def run_stage(name: str, state: ImageState, **params: Any) -> StageResult:
    """Run stage ``name`` on ``state``; every failure becomes a StageError naming the stage."""
    spec = get_stage(name)
    resolved = resolve_params(name, **params)
    try:
        result = spec.run(state, **resolved)
    except PipelineError:
        raise
    except MemoryError:
        raise StageError(f"stage {name!r}: not enough memory for an image of shape {state.shape}") from None
    except Exception as exc:  # a library failure: one clear line, the cause kept for the traceback
        raise StageError(f"stage {name!r} failed: {type(exc).__name__}: {exc}") from exc
    if not np.isfinite(result.state.data).all():
        raise StageError(f"stage {name!r} produced NaN or infinite voxels")
    return result


__all__ = [
    "DEFAULT_STAGES",
    "STAGES",
    "Info",
    "InfoValue",
    "ImageState",
    "StageResult",
    "StageSpec",
    "get_stage",
    "resolve_params",
    "run_stage",
]
