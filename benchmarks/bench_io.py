"""gzip write/read of the sample head: nibabel's default (level 1 writes) and level 6, vs ISA-L.

ISA-L (`isal` on PyPI, a dev dependency) is measured at the same compression ratio class; the
pipeline keeps nibabel's own gzip (see README for the figure and the decision).
Usage: ``python benchmarks/bench_io.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import gzip
import tempfile
from pathlib import Path

import nibabel as nib

import _common  # noqa: F401
from _common import median, sample_path, table, timed


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    src = sample_path()
    img = nib.load(src)
    raw = img.to_bytes()  # the uncompressed .nii stream nibabel would gzip
    tmp = Path(tempfile.mkdtemp(prefix="bench-io-"))
    rows = []

    def gz_write(level: int, path: Path) -> None:
        with gzip.open(path, "wb", compresslevel=level) as f:
            f.write(raw)

    for level in (1, 6):
        p = tmp / f"python-gzip-{level}.nii.gz"
        w = median([timed(lambda: gz_write(level, p)) for _ in range(args.repeat)])
        r = median([timed(lambda: gzip.decompress(p.read_bytes())) for _ in range(args.repeat)])
        rows.append((f"zlib level {level}", w, r, p.stat().st_size / len(raw)))
    try:
        from isal import igzip
    except ImportError:
        igzip = None
    if igzip is not None:
        for level in (1, 2):
            p = tmp / f"isal-{level}.nii.gz"

            def isal_write(level: int = level, p: Path = p) -> None:
                p.write_bytes(igzip.compress(raw, compresslevel=level))

            w = median([timed(isal_write) for _ in range(args.repeat)])
            r = median([timed(lambda: igzip.decompress(p.read_bytes())) for _ in range(args.repeat)])
            rows.append((f"ISA-L level {level}", w, r, p.stat().st_size / len(raw)))
    base_w, base_r = rows[0][1], rows[0][2]
    text = f"### gzip I/O of the sample head ({len(raw) / 2**20:.1f} MiB uncompressed)\n\n" + table(
        ("codec", "write", "read", "ratio", "write vs zlib-1", "read vs zlib-1"),
        [(n, f"{w:.3f} s", f"{r:.3f} s", f"{c:.3f}", f"{base_w / w:.2f}x", f"{base_r / r:.2f}x") for n, w, r, c in rows],
    )
    print(text)
    return text


if __name__ == "__main__":
    main()
