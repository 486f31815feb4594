"""Benchmark the HTML trace view at 1k, 10k and 50k spans in one trace, in headless Chromium.

Pipeline-shaped synthetic traces (a root over ``process_file`` subtrees of 8 spans with attributes
and events). Per size: the Python side (``render_html``: build the data and the page) and the file
size; in the browser (Debian's chromium via Playwright): the time from navigation start until the
page has drawn itself (parse the JSON, index the spans, draw the first rows), the time to redraw
the waterfall at a new scroll position (the median of 60 positions from top to bottom: virtual
rows keep it flat), and collapse-all / expand-all. Medians of ``--repeat`` page loads; no
thresholds. Not a pytest test:

    python benchmarks/bench_html.py [--sizes 1000 10000 50000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from telemetry_asserts.html_report import render_html
from telemetry_asserts.model import Attributes, Event, Span, Telemetry

STAGES = ("bias_correction", "skull_strip", "normalize", "smooth", "resample")
US = 1_000


def big_trace(n: int) -> Telemetry:
    """One trace of about ``n`` spans: a batch root over process_file subtrees (8 spans each)."""
    spans = [Span("process_batch", 1, 1, None, start_time_ns=0, end_time_ns=(n // 8 + 1) * 10 * US)]
    sid = 1
    f = 0
    while len(spans) < n:
        t0 = f * 10 * US
        root, image = sid + 1, sid + 2
        spans.append(Span("process_file", 1, root, 1, start_time_ns=t0, end_time_ns=t0 + 9 * US,
                          attributes=Attributes({"neuro.file.name": f"sub-{f:05d}_T1w.nii.gz", "neuro.file.size_bytes": 1000 + f})))
        spans.append(Span("load_file", 1, sid + 3, root, start_time_ns=t0, end_time_ns=t0 + US))
        spans.append(Span("process_image", 1, image, root, start_time_ns=t0 + US, end_time_ns=t0 + 7 * US))
        for k, stage in enumerate(STAGES[: min(5, n - len(spans) - 1)]):
            spans.append(Span(stage, 1, sid + 4 + k, image, start_time_ns=t0 + (1 + k) * US, end_time_ns=t0 + (2 + k) * US,
                              attributes=Attributes({"neuro.stage.name": stage}),
                              events=(Event("stage_started", t0 + (1 + k) * US), Event("stage_completed", t0 + (2 + k) * US))))
        sid += 10
        f += 1
    return Telemetry(tuple(spans[:n]))


SCROLL_JS = """() => {
  const view = telemetryReport.views[0], vp = view.viewport, steps = 60, times = [];
  for (let i = 0; i <= steps; i++) {
    vp.scrollTop = (vp.scrollHeight - vp.clientHeight) * i / steps;
    const t = performance.now(); view.render(); times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  const rows = document.querySelectorAll('.span-row').length;
  let t = performance.now(); view.setAll(1); const collapse = performance.now() - t;
  t = performance.now(); view.setAll(0); const expand = performance.now() - t;
  return {scroll: times[Math.floor(times.length / 2)], rows: rows, collapse: collapse, expand: expand};
}"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000, 50000])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    from playwright.sync_api import sync_playwright

    rows = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        for n in args.sizes:
            telemetry = big_trace(n)
            build = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                text = render_html(telemetry)
                build.append(time.perf_counter() - t0)
            path = Path(tmp) / f"trace-{n}.html"
            path.write_text(text, encoding="utf-8")
            ready, scroll, collapse, expand, drawn = [], [], [], [], 0
            for _ in range(args.repeat):
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(path.as_uri())
                page.wait_for_selector("body[data-ready='1']", timeout=120_000)
                ready.append(page.evaluate("() => telemetryReport.readyMs"))
                m = page.evaluate(SCROLL_JS)
                scroll.append(m["scroll"])
                collapse.append(m["collapse"])
                expand.append(m["expand"])
                drawn = m["rows"]
                page.close()
            rows.append((n, statistics.median(build), len(text.encode()) / 2**20, statistics.median(ready),
                         statistics.median(scroll), drawn, statistics.median(collapse), statistics.median(expand)))
        browser.close()
    base = rows[0]
    print("### HTML trace view (one trace, headless Chromium)\n")
    print(f"medians of {args.repeat} page loads; per-span figures relative to {base[0]} spans\n")
    print("| spans | render_html (Python) | file | page ready | per span vs smallest | scroll redraw | rows in DOM | collapse all / expand all |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n, b, mb, ready, scroll, drawn, col, exp in rows:
        per = (ready / n) / (base[3] / base[0])
        print(f"| {n:,} | {b * 1000:.0f} ms | {mb:.1f} MiB | {ready:.0f} ms | {per:.2f}x | {scroll:.1f} ms | {drawn} | "
              f"{col:.0f} / {exp:.0f} ms |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
