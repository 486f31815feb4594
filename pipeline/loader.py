"""Load and validate one 3D NIfTI volume (.nii / .nii.gz) into float32.

Validation happens before any voxel is read: the file exists, is a regular non-empty file, its
header parses as NIfTI-1/2 and describes a 3D image with sane dimensions and voxel sizes, and the
data size it promises fits the file (exactly for .nii; for .nii.gz the decompression is bounded so a
lying header can never make the loader allocate gigabytes or hang). Then the voxels must be finite.
Every failure is an :class:`~pipeline.errors.InputError` subclass with a one-line message.
"""

from __future__ import annotations

import hashlib
import io
import math
import stat
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from pipeline.errors import (
    CorruptFileError,
    EmptyFileError,
    InputError,
    InputNotFoundError,
    InvalidVoxelsError,
    NotAFileError,
    UnreadableFileError,
    UnsupportedImageError,
)

MAX_VOXELS = 2**28  # 256 Mi voxels = 1 GiB as float32; far above any structural MRI
MAX_DEFLATE_RATIO = 1032  # deflate cannot compress better than ~1032:1
VOXEL_SIZE_RANGE_MM = (1e-3, 1e3)
_CHUNK = 1 << 20
_NIFTI_HEADERS = {348: nib.Nifti1Header, 540: nib.Nifti2Header}


@dataclass(frozen=True)
class LoadedVolume:
    """A validated 3D volume and the facts about its file."""

    path: Path
    data: np.ndarray  # float32, 3D, finite
    affine: np.ndarray  # 4x4 float64 voxel -> world (mm)
    header: nib.Nifti1Header  # Nifti1Header or Nifti2Header, shape set to the 3D shape
    shape: tuple[int, ...]
    voxel_sizes_mm: tuple[float, ...]
    dtype: str  # on-disk voxel dtype, e.g. "int16"
    size_bytes: int  # file size on disk
    sha256: str  # hex digest of the file's bytes

    @property
    def size_mb(self) -> float:
        return self.size_bytes / 1e6


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB" if n >= 1e3 else f"{int(n)} bytes"


def file_facts(path: str | Path) -> dict[str, Any]:
    """``file_path``, ``file_exists`` and ``file_size_mb`` for logging; never raises."""
    p = Path(path)
    try:
        st = p.stat()
        exists, size_mb = True, round(st.st_size / 1e6, 3) if stat.S_ISREG(st.st_mode) else 0.0
    except OSError:
        exists, size_mb = False, 0.0
    return {"file_path": str(p), "file_exists": exists, "file_size_mb": size_mb}


class _Payload:
    """Sequential reads from a .nii (plain) or .nii.gz (bounded streaming inflate) file."""

    def __init__(self, fh: io.BufferedReader, path: Path, gzipped: bool) -> None:
        self._fh, self._path, self._gz = fh, path, gzipped
        self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzipped else None
        self._pending = b""  # compressed input not yet consumed
        self.eof = False

    def _corrupt(self, what: str) -> CorruptFileError:
        return CorruptFileError(what, self._path)

    def read_into(self, view: memoryview) -> int:
        """Fill ``view`` as far as the stream allows; return the number of bytes written."""
        if not self._gz:
            filled = 0
            while filled < len(view):
                n = self._fh.readinto(view[filled:]) or 0
                if n == 0:
                    break
                filled += n
            return filled
        filled, need = 0, len(view)
        while filled < need and not self.eof:
            assert self._inflate is not None
            if not self._pending and not self._inflate.unconsumed_tail:
                self._pending = self._fh.read(_CHUNK)
                if not self._pending:
                    break  # the compressed stream ended before the gzip trailer: truncated
            source = self._inflate.unconsumed_tail or self._pending
            if source is self._pending:
                self._pending = b""
            try:
                out = self._inflate.decompress(source, need - filled)
            except zlib.error as exc:
                raise self._corrupt(f"damaged gzip stream ({exc})") from None
            view[filled : filled + len(out)] = out
            filled += len(out)
            if self._inflate.eof:
                rest = self._inflate.unused_data + self._pending
                self._pending = b""
                if rest[:2] == b"\x1f\x8b":  # a concatenated gzip member
                    self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    self._pending = rest
                else:
                    self.eof = True
        return filled

    def check_end(self, limit: int = 1 << 16) -> None:
        """For gzip: read a little past the voxels so the CRC is checked and a missing end is caught."""
        if not self._gz or self.eof:
            return
        got = self.read_into(memoryview(bytearray(limit)))  # a CRC mismatch raises here
        if not self.eof and got < limit:
            raise self._corrupt("truncated gzip stream (the end-of-stream marker is missing)")

    def read(self, n: int) -> bytes:
        buf = bytearray(n)
        got = self.read_into(memoryview(buf))
        return bytes(buf[:got])


def _check_file(path: Path) -> int:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InputNotFoundError("file not found", path) from None
    except NotADirectoryError:
        raise InputNotFoundError("file not found (a parent of the path is not a directory)", path) from None
    except PermissionError:
        raise UnreadableFileError("permission denied (cannot access the file)", path) from None
    except OSError as exc:
        raise InputNotFoundError(f"cannot access the file ({exc.strerror or exc})", path) from None
    if stat.S_ISDIR(st.st_mode):
        raise NotAFileError("is a directory, not a NIfTI file", path)
    if not stat.S_ISREG(st.st_mode):
        raise NotAFileError("is not a regular file", path)
    if st.st_size == 0:
        raise EmptyFileError("file is empty (0 bytes)", path)
    return st.st_size


def _parse_header(raw: bytes, path: Path) -> nib.Nifti1Header:
    if len(raw) < 348:
        raise CorruptFileError(f"too short to be NIfTI ({len(raw)} bytes; a NIfTI-1 header alone is 348)", path)
    size_le, size_be = int.from_bytes(raw[:4], "little"), int.from_bytes(raw[:4], "big")
    sizeof_hdr, endianness = (size_le, "<") if size_le in _NIFTI_HEADERS else (size_be, ">")
    if sizeof_hdr not in _NIFTI_HEADERS:
        raise CorruptFileError(f"not a NIfTI file (header size field is {size_le}, expected 348 or 540)", path)
    if len(raw) < sizeof_hdr:
        raise CorruptFileError(f"truncated NIfTI-2 header ({len(raw)} of 540 bytes)", path)
    klass = _NIFTI_HEADERS[sizeof_hdr]
    try:
        header = klass.from_fileobj(io.BytesIO(raw[:sizeof_hdr]), endianness=endianness, check=False)
    except Exception as exc:  # noqa: BLE001 - any parser failure means a corrupt header
        raise CorruptFileError(f"cannot parse the NIfTI header ({exc})", path) from None
    magic = bytes(header["magic"]).rstrip(b"\x00")
    if magic in (b"ni1", b"ni2"):
        raise UnsupportedImageError("is a NIfTI header/image pair (.hdr/.img); only single-file NIfTI is supported", path)
    if magic not in (b"n+1", b"n+2"):
        raise CorruptFileError(f"not a NIfTI file (magic {magic!r}, expected b'n+1' or b'n+2')", path)
    return header


def _validate_shape(header: nib.Nifti1Header, path: Path) -> tuple[int, int, int]:
    dim = [int(d) for d in header["dim"]]
    ndim = dim[0]
    if not 1 <= ndim <= 7:
        raise CorruptFileError(f"invalid number of dimensions dim[0]={ndim} (must be 1..7)", path)
    shape = dim[1 : ndim + 1]
    text = "x".join(map(str, shape))
    if any(n < 0 for n in shape):
        raise CorruptFileError(f"negative dimension in shape {text}", path)
    if any(n == 0 for n in shape):
        raise UnsupportedImageError(f"zero-size dimension in shape {text}", path)
    while len(shape) > 3 and shape[-1] == 1:
        shape.pop()
    if len(shape) < 3:
        raise UnsupportedImageError(f"{len(shape)}D image (shape {text}); the pipeline needs a 3D volume", path)
    if len(shape) > 3:
        extra = math.prod(shape[3:])
        raise UnsupportedImageError(
            f"{len(shape)}D image with {extra} volumes (shape {text}); the pipeline needs a single 3D volume", path
        )
    return shape[0], shape[1], shape[2]


def _validate_dtype(header: nib.Nifti1Header, path: Path) -> np.dtype:
    try:
        dtype = header.get_data_dtype()
    except Exception:  # noqa: BLE001 - any parser failure means a corrupt header
        raise CorruptFileError(f"unknown voxel datatype code {int(header['datatype'])}", path) from None
    if dtype.kind not in "uif" or dtype.itemsize == 0:
        name = "unknown" if dtype.itemsize == 0 else "RGB" if dtype.kind == "V" else dtype.name
        code = int(header["datatype"])
        raise UnsupportedImageError(f"unsupported voxel datatype {name} (code {code}); need integer or float", path)
    return dtype


def _validate_geometry(header: nib.Nifti1Header, path: Path) -> tuple[tuple[float, float, float], np.ndarray]:
    pixdim = [float(v) for v in header["pixdim"][1:4]]
    lo, hi = VOXEL_SIZE_RANGE_MM
    if not all(math.isfinite(v) and lo <= v <= hi for v in pixdim):
        raise UnsupportedImageError(
            f"implausible voxel sizes {pixdim} mm (each must be finite and between {lo:g} and {hi:g})", path
        )
    try:
        with np.errstate(all="ignore"):
            affine = np.asarray(header.get_best_affine(), dtype=np.float64)
    except Exception as exc:  # noqa: BLE001 - any parser failure means a corrupt header
        raise CorruptFileError(f"invalid orientation fields in the header ({exc})", path) from None
    if affine.shape != (4, 4) or not np.isfinite(affine).all():
        raise CorruptFileError("the header's voxel-to-world affine is not finite", path)
    with np.errstate(all="ignore"):
        det = float(np.linalg.det(affine[:3, :3]))
    if not math.isfinite(det) or abs(det) < 1e-9:
        raise CorruptFileError("the header's voxel-to-world affine is singular", path)
    return (pixdim[0], pixdim[1], pixdim[2]), affine


def _data_offset(header: nib.Nifti1Header, sizeof_hdr: int, path: Path) -> int:
    offset = float(header["vox_offset"])
    if not math.isfinite(offset) or offset < sizeof_hdr or offset != int(offset):
        raise CorruptFileError(f"invalid voxel data offset {header['vox_offset']} (must be an integer >= {sizeof_hdr})", path)
    return int(offset)


def _scaled(raw: np.ndarray, header: nib.Nifti1Header) -> np.ndarray:
    """Apply scl_slope / scl_inter as nibabel does (slope 0 or NaN means unscaled)."""
    slope, inter = float(header["scl_slope"]), float(header["scl_inter"])
    with np.errstate(all="ignore"):
        data = raw.astype(np.float32)
        if math.isfinite(slope) and slope != 0 and (slope != 1 or (math.isfinite(inter) and inter != 0)):
            data = (raw.astype(np.float64) * slope + (inter if math.isfinite(inter) else 0.0)).astype(np.float32)
    return data


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def load_volume(path: str | Path, *, max_voxels: int = MAX_VOXELS) -> LoadedVolume:
    """Load a 3D .nii/.nii.gz as float32 after validating it; InputError subclasses on any problem.

    ``max_voxels`` bounds what the loader will ever allocate for voxels (float32 copy included).
    """
    p = Path(path)
    size = _check_file(p)
    try:
        return _load(p, size, max_voxels)
    except InputError:
        raise
    except MemoryError:
        raise UnsupportedImageError("not enough memory to load the image", p) from None
    except (OSError, EOFError, zlib.error) as exc:
        raise CorruptFileError(f"cannot read the file ({type(exc).__name__}: {exc})", p) from None
    except Exception as exc:  # noqa: BLE001 - anything else from nibabel/numpy: still one clear line, never a traceback
        raise CorruptFileError(f"invalid NIfTI file ({type(exc).__name__}: {exc})", p) from None


def _load(p: Path, size: int, max_voxels: int) -> LoadedVolume:
    name = p.name.lower()
    if not name.endswith((".nii", ".nii.gz")):
        raise UnsupportedImageError("unsupported file type (expected .nii or .nii.gz)", p)
    try:
        fh = p.open("rb")
    except PermissionError:
        raise UnreadableFileError("permission denied (cannot open the file for reading)", p) from None
    with fh:
        magic = fh.read(2)
        fh.seek(0)
        gzipped = magic == b"\x1f\x8b"
        if name.endswith(".gz") and not gzipped:
            raise CorruptFileError("not gzip-compressed although the name ends in .gz", p)
        stream = _Payload(fh, p, gzipped)
        raw_header = stream.read(540)
        header = _parse_header(raw_header, p)
        sizeof_hdr = int(header["sizeof_hdr"])
        shape = _validate_shape(header, p)
        dtype = _validate_dtype(header, p)
        voxel_sizes, affine = _validate_geometry(header, p)
        offset = _data_offset(header, sizeof_hdr, p)
        n_voxels = math.prod(shape)
        if n_voxels > max_voxels:
            raise UnsupportedImageError(
                f"image of {'x'.join(map(str, shape))} voxels exceeds the limit of {max_voxels} voxels", p
            )
        data_bytes = n_voxels * dtype.itemsize
        promised = offset + data_bytes
        if not gzipped and size < promised:
            raise CorruptFileError(
                f"truncated file (file is {_mb(size)}, the header promises {_mb(promised)})", p
            )
        if gzipped and promised > size * MAX_DEFLATE_RATIO + 1024:
            raise CorruptFileError(
                f"the header promises {_mb(data_bytes)} of voxels, more than a {_mb(size)} gzip file can hold", p
            )
        buf = bytearray(promised)
        view = memoryview(buf)
        head = raw_header[:promised]
        view[: len(head)] = head
        got = len(head) + stream.read_into(view[len(head) :])
        if got < promised:
            detail = "truncated gzip stream" if gzipped else "truncated file"
            raise CorruptFileError(
                f"{detail} (file is {_mb(size)}, the header promises {_mb(data_bytes)} of voxels)", p
            )
        stream.check_end()
    raw = np.ndarray(shape, dtype=dtype, buffer=buf, offset=offset, order="F")
    data = _scaled(raw, header)
    del raw, view, buf
    finite = np.isfinite(data)
    if not finite.all():
        bad = int(data.size - np.count_nonzero(finite))
        first = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise InvalidVoxelsError(f"{bad} voxels are NaN or infinite (first at voxel {first})", p)
    header.set_data_shape(shape)
    return LoadedVolume(
        path=p,
        data=data,
        affine=affine,
        header=header,
        shape=shape,
        voxel_sizes_mm=voxel_sizes,
        dtype=str(dtype.newbyteorder("=")),
        size_bytes=size,
        sha256=_sha256(p),
    )


__all__ = ["MAX_VOXELS", "LoadedVolume", "file_facts", "load_volume"]
