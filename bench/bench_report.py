"""Time to make and to use the HTML report of N runs.

Run: python bench/bench_report.py --runs 5000 [--root /tmp/runs-5k] [--repeats 3] [--no-browser]
Job dirs are made by make_runs.py (real records), each given a 10-step loss curve in its
``metrics.jsonl`` as log_metrics writes it, so the report carries N curves too. Figures are
medians over ``--repeats``:
  report-cold:  ``hydra-ledger report ROOT`` in a fresh process, no loader index yet (wall time,
                interpreter start and imports included: what a user waits for);
  report-warm:  the same with the index in place;
  size:         the HTML file written;
  page-ready:   headless Chromium (tests/_cdp.py), a fresh browser each time: navigation until the
                page says it is ready (table, plots and curves drawn), polled every 50 ms;
  sort:         a click on a metric's header until the next frame is drawn (timed in the page:
                layout and paint included); sort-handler: the click's own JavaScript;
  filter:       a filter typed until the count shows the match, timed in the page; includes the
                page's 120 ms input debounce.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import median, timed
from make_runs import make_runs

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from _cdp import CHROMIUM, NO_CHROMIUM, DevTools  # noqa: E402 - the tests' DevTools client, not a copy

from hydra_ledger.record.files import append_line  # noqa: E402
from hydra_ledger.record.paths import RunPaths  # noqa: E402

SORT_BY = "summary.val_loss"
FILTER = "model.lr=0.1 model.depth>3"

SORT_JS = """new Promise(resolve => {
  const start = performance.now();
  document.querySelector('th[data-col="%s"]').click();
  const handler = performance.now() - start;
  requestAnimationFrame(() => setTimeout(() => resolve([performance.now() - start, handler])));
})""" % SORT_BY  # noqa: UP031 - str.format would need every brace of the JavaScript doubled

FILTER_JS = """new Promise(resolve => {
  const count = document.getElementById('count'), box = document.getElementById('filter');
  const start = performance.now();
  const seen = new MutationObserver(() => {
    if (count.textContent.includes(' of ')) {
      seen.disconnect(); resolve([performance.now() - start, count.textContent]);
    }
  });
  seen.observe(count, {childList: true, characterData: true, subtree: true});
  box.value = %s;
  box.dispatchEvent(new Event('input'));
})""" % json.dumps(FILTER)  # noqa: UP031 - str.format would need every brace of the JavaScript doubled


def add_curves(root: Path) -> int:
    """A 10-step loss curve in each job dir, as ``log_metrics`` appends it; returns the job count."""
    jobs = sorted(p for p in root.glob("sweep_*/*") if p.name.isdigit())
    for job in jobs:
        lr = json.loads(RunPaths(job).record.read_text())["config"]["model"]["lr"]
        for step in range(0, 50, 5):
            append_line(RunPaths(job).metrics, {"step": step, "time": 0.0, "values": {"loss": 1 / (step + 1) + lr}})
    return len(jobs)


def expected_matches(root: Path, cache: Path) -> int:
    """Runs the filter must show, counted by the loader (in a fresh process, like the report)."""
    code = ("import sys, hydra_ledger; f = hydra_ledger.load_runs(sys.argv[1]); "
            "print(int(((f['cfg.model.lr'] == 0.1) & (f['cfg.model.depth'] > 3)).sum()))")
    out = subprocess.run([sys.executable, "-c", code, str(root)], check=True, capture_output=True, text=True,
                         env={**os.environ, "HYDRA_LEDGER_CACHE": str(cache)})
    return int(out.stdout)


def report(root: Path, out: Path, cache: Path) -> float:
    """Wall seconds of ``hydra-ledger report`` in a fresh process."""
    seconds, _ = timed(subprocess.run, [sys.executable, "-m", "hydra_ledger", "report", str(root), "-o", str(out)],
                       check=True, capture_output=True, env={**os.environ, "HYDRA_LEDGER_CACHE": str(cache)})
    return seconds


def use_page(page: Path, runs: int, matches: int) -> dict[str, float]:
    """Open, sort and filter the report in a fresh headless Chromium; checks what it shows."""
    with tempfile.TemporaryDirectory() as tmp, DevTools(Path(tmp)) as browser:
        ready = browser.open(page)
        if browser.js("document.getElementById('count').textContent") != f"{runs} runs":
            raise RuntimeError(f"{page}: the page does not show {runs} runs")
        sort_ms, handler_ms = browser.js(SORT_JS)
        filter_ms, shown = browser.js(FILTER_JS)
        if shown != f"{matches} of {runs} runs":
            raise RuntimeError(f"{page}: filter {FILTER!r} shows {shown!r}, expected {matches} of {runs} runs")
        if browser.errors:
            raise RuntimeError(f"{page}: errors in the page: {browser.errors}")
    return {"page_ready_s": ready, "sort_ms": sort_ms, "sort_handler_ms": handler_ms, "filter_ms": filter_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--root", type=Path, help="job dirs; made here with curves if missing, and kept")
    parser.add_argument("--no-browser", action="store_true", help="only the report command and the file size")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    args = parser.parse_args()
    if not args.no_browser and CHROMIUM is None:
        sys.exit(f"{NO_CHROMIUM}; or give --no-browser")
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or Path(tmp) / "runs"
        if not root.exists():
            make_runs(root, args.runs)
            add_curves(root)
        runs = sum(1 for p in root.glob("sweep_*/*") if p.name.isdigit())
        cache, out = Path(tmp) / "cache", Path(tmp) / "report.html"
        matches = expected_matches(root, cache)
        for _ in range(args.repeats):
            shutil.rmtree(cache, ignore_errors=True)
            results.setdefault("report-cold", []).append(report(root, out, cache))
            results.setdefault("report-warm", []).append(report(root, out, cache))
            results.setdefault("size_mb", []).append(out.stat().st_size / 1e6)
            if not args.no_browser:
                for name, value in use_page(out, runs, matches).items():
                    results.setdefault(name, []).append(value)
    print(f"report of {runs} runs with curves, repeats: {args.repeats} (medians; cores: {os.cpu_count()})")
    figures = {k: median(v) for k, v in results.items()}
    print(f"  report-cold   {figures['report-cold']:8.2f} s   (fresh process, no index)")
    print(f"  report-warm   {figures['report-warm']:8.2f} s   (fresh process, index in place)")
    print(f"  size          {figures['size_mb']:8.2f} MB")
    if not args.no_browser:
        print(f"  page-ready    {figures['page_ready_s']:8.2f} s")
        print(f"  sort          {figures['sort_ms']:8.0f} ms  (by {SORT_BY}, to the next frame)")
        print(f"  sort-handler  {figures['sort_handler_ms']:8.0f} ms  (the click's JavaScript alone)")
        print(f"  filter        {figures['filter_ms']:8.0f} ms  ({FILTER!r}, {matches} shown; "
              "includes the 120 ms input debounce)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
