"""The pipeline's exceptions: one class per failure a user can act on.

Each message is one line naming the file (where there is one) and the problem. Each class has a
short, stable ``reason`` (a low-cardinality value usable as a span or metric attribute).
"""

from __future__ import annotations

from pathlib import Path


class PipelineError(Exception):
    """Base of every error the pipeline raises on purpose."""

    reason: str = "pipeline_error"

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.message = message
        super().__init__(f"{Path(self.path).name}: {message}" if self.path else message)


class InputError(PipelineError):
    """The input file cannot be used."""

    reason = "invalid_input"


class InputNotFoundError(InputError):
    reason = "not_found"


class NotAFileError(InputError):
    reason = "not_a_file"


class UnreadableFileError(InputError):
    """The file exists but cannot be opened for reading (permissions)."""

    reason = "unreadable"


class EmptyFileError(InputError):
    reason = "empty"


class CorruptFileError(InputError):
    """Not parseable as NIfTI, truncated, or inconsistent with its own header."""

    reason = "corrupt"


class UnsupportedImageError(InputError):
    """A valid NIfTI the pipeline cannot process: 4D, zero-size dimension, absurd header."""

    reason = "unsupported"


class InvalidVoxelsError(InputError):
    """NaN or infinite voxel values."""

    reason = "invalid_voxels"


class OutputError(PipelineError):
    """The output cannot be written (missing or unwritable directory, disk error)."""

    reason = "output"


class StageError(PipelineError):
    """A stage was misconfigured or failed on this image."""

    reason = "stage"


__all__ = [
    "CorruptFileError",
    "EmptyFileError",
    "InputError",
    "InputNotFoundError",
    "InvalidVoxelsError",
    "NotAFileError",
    "OutputError",
    "PipelineError",
    "StageError",
    "UnreadableFileError",
    "UnsupportedImageError",
]
