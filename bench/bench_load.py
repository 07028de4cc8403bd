"""Load time of ``load_runs`` on N job dirs against naive YAML loops, measured in one run.

Run: python bench/bench_load.py [--runs 10000] [--repeats 3]
Each loader runs in a fresh Python process (no in-process cache; files in the page
cache), alternately, ``--repeats`` times; the figures are medians.
  naive-safe:  glob .hydra/config.yaml, parse it and overrides.yaml with PyYAML's
               pure-Python SafeLoader, pandas.json_normalize.
  naive-csafe: the same with the libyaml CSafeLoader.
  load_runs:   hydra_ledger.load_runs(root).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import median
from make_runs import make_runs

LOADERS = {
    "naive-safe": """
import glob, os, yaml, pandas as pd
rows = []
for cfg in glob.glob(os.path.join(ROOT, "**", ".hydra", "config.yaml"), recursive=True):
    with open(cfg) as f:
        row = yaml.load(f, Loader=yaml.SafeLoader)
    with open(os.path.join(os.path.dirname(cfg), "overrides.yaml")) as f:
        row["overrides"] = yaml.load(f, Loader=yaml.SafeLoader)
    rows.append(row)
frame = pd.json_normalize(rows)
""",
    "naive-csafe": """
import glob, os, yaml, pandas as pd
rows = []
for cfg in glob.glob(os.path.join(ROOT, "**", ".hydra", "config.yaml"), recursive=True):
    with open(cfg) as f:
        row = yaml.load(f, Loader=yaml.CSafeLoader)
    with open(os.path.join(os.path.dirname(cfg), "overrides.yaml")) as f:
        row["overrides"] = yaml.load(f, Loader=yaml.CSafeLoader)
    rows.append(row)
frame = pd.json_normalize(rows)
""",
    "load_runs": """
import hydra_ledger
frame = hydra_ledger.load_runs(ROOT)
""",
}

HARNESS = """
import json, sys, time, resource
ROOT = sys.argv[1]
import pandas, yaml  # imports are not part of the figure
start = time.perf_counter()
{body}
elapsed = time.perf_counter() - start
print(json.dumps({{"seconds": elapsed, "rows": len(frame), "columns": frame.shape[1],
                   "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def run_loader(name: str, root: Path) -> dict:
    code = HARNESS.format(body=LOADERS[name])
    out = subprocess.run([sys.executable, "-c", code, str(root)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--root", type=Path, help="reuse job dirs made by make_runs.py")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or make_runs(Path(tmp) / "runs", args.runs)
        results: dict[str, list[dict]] = {name: [] for name in LOADERS}
        for _ in range(args.repeats):
            for name in LOADERS:
                results[name].append(run_loader(name, root))
    rows = {name: runs[0]["rows"] for name, runs in results.items()}
    assert len(set(rows.values())) == 1, f"loaders disagree on the row count: {rows}"
    base = median([r["seconds"] for r in results["load_runs"]])
    print(f"job dirs: {rows['load_runs']}, repeats: {args.repeats} (medians; fresh process each)")
    for name, runs in results.items():
        seconds = median([r["seconds"] for r in runs])
        print(f"{name:12s} {seconds:6.2f} s  {seconds / rows[name] * 1000:6.3f} ms/run  "
              f"peak RSS {median([r['peak_rss_mb'] for r in runs]):6.0f} MB  "
              f"columns {runs[0]['columns']:3d}  ratio to load_runs {seconds / base:5.2f}x")


if __name__ == "__main__":
    main()
