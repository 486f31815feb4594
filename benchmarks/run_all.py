"""Run every benchmark of the project and write their tables to benchmarks/RESULTS.md.

Each benchmark is also a script of its own (see benchmarks/README.md). Nothing here asserts a time:
the figures are medians and ratios measured in one run on this machine. ``--quick`` uses fewer
rounds (for a smoke check, not for the README).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (script, full args, quick args)
BENCHES = [
    ("bench_overhead.py", [], ["--rounds", "2", "--small-rounds", "5"]),
    ("bench_stages.py", [], ["--repeat", "1"]),
    ("bench_io.py", [], ["--repeat", "1"]),
    ("bench_batch.py", [], ["--files", "2"]),
    ("bench_matching.py", [], []),
    ("bench_cardinality.py", [], []),
    ("bench_collector_load.py", [], []),
    ("bench_grading.py", [], []),
    ("bench_html.py", [], ["--sizes", "1000", "10000", "--repeat", "1"]),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", nargs="*", help="script names to run (default: all)")
    ap.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    args = ap.parse_args(argv)
    sections = [
        f"# Benchmark results\n\n{dt.date.today().isoformat()}, {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} cores, {platform.machine()}\n"
    ]
    failed = 0
    for script, full, quick in BENCHES:
        if args.only and script not in args.only:
            continue
        path = HERE / script
        if not path.exists():
            sections.append(f"### {script}\n\nnot present\n")
            continue
        print(f"== {script}", flush=True)
        proc = subprocess.run([sys.executable, str(path), *(quick if args.quick else full)], cwd=HERE.parent,
                              capture_output=True, text=True)
        print(proc.stdout[-4000:], proc.stderr[-2000:] if proc.returncode else "", flush=True)
        if proc.returncode:
            failed += 1
            sections.append(f"### {script}\n\nFAILED (exit {proc.returncode}):\n\n```\n{proc.stderr[-1500:]}\n```\n")
        else:
            sections.append(proc.stdout.strip() + "\n")
    args.output.write_text("\n".join(sections))
    print(f"wrote {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
