"""Atomic output: write a temp file in the target directory, fsync, then ``os.replace``.

A failure at any point removes the temp file and raises :class:`~pipeline.errors.OutputError`, so
the output directory never holds a partial file (an existing file at the target stays untouched).
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, cast

import nibabel as nib
import numpy as np

from pipeline.errors import OutputError


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        if exc.errno == errno.ENOSPC:
            return "no space left on device"
        if exc.errno == errno.EDQUOT:
            return "disk quota exceeded"
        if exc.errno in (errno.EACCES, errno.EPERM):
            return "permission denied"
        if exc.errno == errno.EROFS:
            return "read-only file system"
        if exc.strerror:
            return exc.strerror[:1].lower() + exc.strerror[1:]
    return f"{type(exc).__name__}: {exc}"


def ensure_output_dir(path: str | Path) -> Path:
    """Create ``path`` (with parents) and prove it is writable by creating and removing a probe file."""
    directory = Path(path)
    if directory.exists() and not directory.is_dir():
        raise OutputError(f"output path {directory} exists and is not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output directory {directory}: {_reason(exc)}") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"output directory {directory} is not writable: {_reason(exc)}") from None
    return directory


@contextlib.contextmanager
def _atomic(path: Path, what: str) -> Iterator[IO[bytes]]:
    """Yield a temp file next to ``path``; on success fsync + rename over ``path``, else remove it."""
    directory = path.parent
    if not directory.is_dir():
        raise OutputError(f"cannot write {what} {path.name}: directory {directory} does not exist", path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise OutputError(f"cannot write {what} into {directory}: {_reason(exc)}", path) from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, (KeyboardInterrupt, SystemExit, OutputError)):
            raise
        raise OutputError(f"cannot write {what}: {_reason(exc)}", path) from exc
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _write_with(path: str | Path, what: str, write: Callable[[IO[bytes]], None]) -> int:
    target = Path(path)
    with _atomic(target, what) as fh:
        write(fh)
    return target.stat().st_size


def write_nifti_atomic(
    data: np.ndarray,
    affine: np.ndarray,
    path: str | Path,
    header: nib.Nifti1Header | None = None,
    compresslevel: int = 1,
) -> int:
    """Write ``data`` (voxel dtype kept) with ``affine`` as .nii or .nii.gz; returns bytes written.

    A given ``header`` (e.g. the input's) supplies units, descriptions and codes; its shape, dtype and
    scaling are replaced by the data's so the voxels are stored exactly.
    """
    target = Path(path)
    if not 0 <= compresslevel <= 9:
        raise OutputError(f"compresslevel must be 0..9 (got {compresslevel})", target)
    try:
        array = np.asarray(data)
        if array.dtype == bool:  # NIfTI has no boolean type: masks are stored as uint8 0/1
            array = array.astype(np.uint8)
        klass = nib.Nifti2Image if isinstance(header, nib.Nifti2Header) else nib.Nifti1Image
        image = klass(array, np.asarray(affine, dtype=np.float64), header=header)
        image.header.set_data_dtype(array.dtype)
        if array.dtype.kind == "f":
            image.header.set_slope_inter(1.0, 0.0)
        image.update_header()
    except Exception as exc:
        raise OutputError(f"cannot build a NIfTI image from the data: {_reason(exc)}", target) from exc

    def write(fh: IO[bytes]) -> None:
        if target.name.lower().endswith(".gz"):
            with gzip.GzipFile(fileobj=fh, mode="wb", compresslevel=compresslevel, mtime=0) as gz:
                image.to_file_map({"image": nib.FileHolder(fileobj=gz)})
        else:
            image.to_file_map({"image": nib.FileHolder(fileobj=cast(io.IOBase, fh))})

    return _write_with(target, "NIfTI file", write)


def write_json_atomic(obj: Any, path: str | Path) -> int:
    """Write ``obj`` as indented JSON (streamed, so a non-serialisable value fails mid-write safely)."""

    def write(fh: IO[bytes]) -> None:
        text = json.JSONEncoder(indent=2, sort_keys=False, allow_nan=False).iterencode(obj)
        for chunk in text:
            fh.write(chunk.encode("utf-8"))
        fh.write(b"\n")

    return _write_with(path, "JSON file", write)


__all__ = ["ensure_output_dir", "write_json_atomic", "write_nifti_atomic"]
