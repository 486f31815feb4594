"""What a run does: the selected stages, their parameters and the large-input threshold.

:class:`PipelineConfig` is immutable and validated against the stage registry when built with
:meth:`PipelineConfig.create`; :meth:`PipelineConfig.parameters` is the JSON-ready description
written to the metadata file and used (as canonical JSON) as the run registry's resume key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pipeline.errors import StageError

LARGE_FILE_THRESHOLD_BYTES = 64 * 2**20  # inputs above this log a WARNING and get a span event

# CLI option -> (stage, parameter). Other parameters are reachable with ``--param stage.key=value``.
CLI_STAGE_OPTIONS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "fwhm_mm": ("smooth", "fwhm_mm"),
        "voxel_size_mm": ("resample", "voxel_size_mm"),
        "normalize_method": ("normalize", "method"),
        "erosion_mm": ("skull_strip", "erosion_mm"),
        "dilation_mm": ("skull_strip", "dilation_mm"),
        "n4_shrink_factor": ("bias_correction", "shrink_factor"),
        "n4_iterations": ("bias_correction", "iterations"),
    }
)


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


@dataclass(frozen=True)
class PipelineConfig:
    """Selected stages (in order), fully resolved parameters per stage, large-input threshold."""

    stages: tuple[str, ...]
    stage_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    large_file_threshold_bytes: int = LARGE_FILE_THRESHOLD_BYTES

    @classmethod
    def create(
        cls,
        stages: Iterable[str] | None = None,
        stage_params: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        large_file_threshold_bytes: int = LARGE_FILE_THRESHOLD_BYTES,
    ) -> PipelineConfig:
        """Validate stage names and parameters (raises StageError) and fill in the defaults.

        ``stages=None`` means the default order; parameters given for a stage that is not selected
        are rejected, since they would silently do nothing.
        """
        from pipeline.stages import DEFAULT_STAGES, get_stage, resolve_params

        chosen = tuple(DEFAULT_STAGES if stages is None else stages)
        if not chosen:
            raise StageError("no stages selected")
        for name in chosen:
            get_stage(name)
        if len(set(chosen)) != len(chosen):
            raise StageError(f"a stage is listed twice: {', '.join(chosen)}")
        given = dict(stage_params or {})
        for name in given:
            get_stage(name)
            if name not in chosen:
                raise StageError(f"parameters given for stage {name!r}, which is not selected")
        resolved = {name: MappingProxyType(resolve_params(name, **dict(given.get(name, {})))) for name in chosen}
        if large_file_threshold_bytes <= 0:
            raise StageError("large_file_threshold_bytes must be > 0")
        return cls(chosen, MappingProxyType(resolved), large_file_threshold_bytes)

    def params_for(self, stage: str) -> dict[str, Any]:
        """Keyword arguments for ``run_stage(stage, ...)``."""
        return dict(self.stage_params.get(stage, {}))

    def parameters(self) -> dict[str, Any]:
        """JSON-ready ``{"stages": [...], "stage_params": {stage: {param: value}}}``."""
        return {
            "stages": list(self.stages),
            "stage_params": {s: {k: _jsonable(v) for k, v in self.stage_params.get(s, {}).items()} for s in self.stages},
        }


def parse_param_assignments(items: Iterable[str]) -> dict[str, dict[str, str]]:
    """``["smooth.fwhm_mm=4", ...]`` -> ``{"smooth": {"fwhm_mm": "4"}}`` (values converted later)."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        target, sep, value = item.partition("=")
        stage, dot, key = target.strip().partition(".")
        if not sep or not dot or not stage or not key:
            raise StageError(f"--param {item!r}: expected STAGE.NAME=VALUE, e.g. smooth.fwhm_mm=4")
        out.setdefault(stage, {})[key] = value
    return out


__all__ = ["CLI_STAGE_OPTIONS", "LARGE_FILE_THRESHOLD_BYTES", "PipelineConfig", "parse_param_assignments"]
