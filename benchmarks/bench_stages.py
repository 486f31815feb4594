"""Stage times on the sample head against the memory-bandwidth floor of one pass over the volume.

The floor is the median time of ``np.copyto`` of the float32 volume into an existing buffer (one read
and one write of every voxel); each stage's figure is its median time and that time in floor units.
Usage: ``python benchmarks/bench_stages.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import _common  # noqa: F401
from _common import median, sample_path, table, timed


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)

    from pipeline.config import PipelineConfig
    from pipeline.loader import load_volume
    from pipeline.stages import DEFAULT_STAGES, ImageState, run_stage

    vol = load_volume(sample_path())
    buf = np.empty_like(vol.data)
    floor = median([timed(lambda: np.copyto(buf, vol.data)) for _ in range(21)])
    config = PipelineConfig.create()
    rows = [("load (gzip + checks)", median([timed(lambda: load_volume(sample_path())) for _ in range(args.repeat)]))]
    state = ImageState(vol.data.copy(), vol.affine.copy(), None)
    for name in DEFAULT_STAGES:
        times, result = [], None
        for _ in range(args.repeat):
            inp = ImageState(state.data.copy(), state.affine.copy(), None if state.mask is None else state.mask.copy())
            t0 = time.perf_counter()
            result = run_stage(name, inp, **config.params_for(name))
            times.append(time.perf_counter() - t0)
        rows.append((name, median(times)))
        state = result.state
    mb = vol.data.nbytes / 2**20
    text = (
        f"### Stage times vs one memory pass (sample head, float32 {mb:.0f} MiB; floor = {floor * 1e3:.1f} ms)\n\n"
        + table(("step", "median", "x floor"), [(n, f"{t:.3f} s", f"{t / floor:.0f}") for n, t in rows])
    )
    print(text)
    return text


if __name__ == "__main__":
    main()
