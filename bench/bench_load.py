"""Load time of ``load_runs`` on N job dirs: warm, cold, after new jobs, page cache dropped; and
naive YAML loops and MLflow's ``search_runs`` on the same runs, measured in the same run.

Run: python bench/bench_load.py --runs 100000 --root /tmp/runs-100k [--repeats 3]
         [--mlflow-python /tmp/venv-mlflow/bin/python] [--drop-caches] [--naive]
Every measurement runs in a fresh Python process (imports are not part of the figures); the
figures are medians over ``--repeats``. Cases:
  warm:       the index is there and nothing changed;
  new-jobs:   1,000 new jobs (10 new sweeps) since the index was made;
  cold:       no index yet, the files in the page cache;
  cold-records: the same with the sweeps' row journals set aside (as runs recorded before the
              journals give): every record read;
  cold-nocache: no index, page cache dropped too (``--drop-caches``; root only:
              ``echo 3 > /proc/sys/vm/drop_caches``), against the floor of merely reading
              every record once after the same drop (``read-floor``); ``cold-nocache-records``
              with the journals set aside;
  naive-csafe: glob .hydra/config.yaml and parse it (and overrides.yaml) with PyYAML's
              CSafeLoader, pandas.json_normalize (``--naive``; ``naive-safe`` with the
              pure-Python loader below 20k runs);
  mlflow:     ``mlflow.search_runs`` over the same number of runs in MLflow's SQLite store
              (bench_mlflow.py, run by ``--mlflow-python``: MLflow lives in its own venv).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from _common import median
from make_runs import make_runs, next_sweep

HERE = Path(__file__).resolve().parent

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
    "load_runs-narrow": """
import hydra_ledger
frame = hydra_ledger.load_runs(ROOT, columns=["run_id", "cfg.model.*", "summary.val_loss"], status="COMPLETED")
""",
    "read-floor": """
import os, pandas as pd
n = 0  # every record read once, nothing else: the floor of a cold load
for sweep in sorted(os.scandir(ROOT), key=lambda e: e.name):
    if sweep.is_dir():
        for job in os.scandir(sweep.path):
            if job.is_dir() and not job.name.startswith("."):
                with open(os.path.join(job.path, ".ledger", "run.json"), "rb") as f:
                    f.read()
                n += 1
frame = pd.DataFrame(index=range(n))
""",
}

HARNESS = """
import json, sys, time, resource
ROOT = sys.argv[1]
import pandas, yaml, pyarrow  # imports are not part of the figure
start = time.perf_counter()
{body}
elapsed = time.perf_counter() - start
print(json.dumps({{"seconds": elapsed, "rows": len(frame), "columns": frame.shape[1],
                   "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                   "worker_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}}))
"""


def run_loader(name: str, root: Path, cache: Path | str) -> dict:
    code = HARNESS.format(body=LOADERS[name])
    env = {**os.environ, "HYDRA_LEDGER_CACHE": str(cache)}
    out = subprocess.run([sys.executable, "-c", code, str(root)], check=True, capture_output=True, text=True,
                         env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def journals_aside(root: Path) -> Iterator[None]:
    """The sweeps' row journals renamed away meanwhile: a load reads every record."""
    journals = list(root.glob("*/.ledger/rows.jsonl"))
    for path in journals:
        path.rename(path.with_suffix(".aside"))
    try:
        yield
    finally:
        for path in journals:
            path.with_suffix(".aside").rename(path)


def drop_caches() -> None:
    subprocess.run(["sync"], check=True)
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--root", type=Path, help="job dirs made by make_runs.py (made here if missing)")
    parser.add_argument("--new", type=int, default=1_000, help="jobs added for the new-jobs case")
    parser.add_argument("--drop-caches", action="store_true", help="also measure with the page cache dropped (root)")
    parser.add_argument("--naive", action="store_true", help="also measure the naive YAML loops")
    parser.add_argument("--mlflow-python", help="python of a venv with MLflow: also measure mlflow.search_runs")
    parser.add_argument("--mlflow-logged", type=int, default=2_000, help="runs logged through MLflow's API")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or Path(tmp) / "runs"
        if not root.exists():
            make_runs(root, args.runs)
        cache = Path(tmp) / "cache"
        results: dict[str, list[dict]] = {}

        def measure(name: str, loader: str, **kwargs) -> dict:
            result = run_loader(loader, root, kwargs.get("cache", cache))
            results.setdefault(name, []).append(result)
            return result

        for _ in range(args.repeats):
            shutil.rmtree(cache, ignore_errors=True)
            with journals_aside(root):
                measure("cold-records", "load_runs")
            shutil.rmtree(cache, ignore_errors=True)
            measure("cold", "load_runs")
            measure("warm", "load_runs")
            measure("warm-narrow", "load_runs-narrow")
            if args.naive:
                measure("naive-csafe", "naive-csafe")
                if args.runs <= 20_000:
                    measure("naive-safe", "naive-safe")
            first = next_sweep(root)
            make_runs(root, args.new, first_sweep=first, seed=1)
            measure("new-jobs", "load_runs")
            for i in range(first, next_sweep(root)):
                shutil.rmtree(root / f"sweep_{i:04d}")
            run_loader("load_runs", root, cache)  # the index back in step with the root
        if args.drop_caches:
            for _ in range(args.repeats):
                drop_caches()
                measure("read-floor", "read-floor")
                shutil.rmtree(cache, ignore_errors=True)
                drop_caches()
                measure("cold-nocache", "load_runs")
                shutil.rmtree(cache, ignore_errors=True)
                with journals_aside(root):
                    drop_caches()
                    measure("cold-nocache-records", "load_runs")
        if args.mlflow_python:
            for _ in range(max(1, args.repeats // 2)):
                out = subprocess.run([args.mlflow_python, str(HERE / "bench_mlflow.py"), "--runs", str(args.runs),
                                      "--logged", str(args.mlflow_logged), "--work", str(Path(tmp) / "mlflow")],
                                     check=True, capture_output=True, text=True)
                result = json.loads(out.stdout.strip().splitlines()[-1])
                results.setdefault("mlflow-search_runs", []).append(result)
    rows = results["warm"][0]["rows"]
    print(f"job dirs: {rows}, repeats: {args.repeats} (medians; a fresh process each; cores: {os.cpu_count()})")
    base = {k: median([r["seconds"] for r in v]) for k, v in results.items()}
    # worker RSS: the largest worker process's peak (pages shared with the loading process included)
    print(f"{'case':20s} {'median s':>9s} {'ms/run':>7s} {'peak RSS MB':>12s} {'worker RSS MB':>14s} "
          f"{'rows':>7s} {'columns':>7s}")
    for name, runs in results.items():
        seconds = base[name]
        print(f"{name:20s} {seconds:9.2f} {seconds / max(runs[0]['rows'], 1) * 1000:7.3f} "
              f"{median([r['peak_rss_mb'] for r in runs]):12.0f} "
              f"{median([r.get('worker_rss_mb', 0) for r in runs]):14.0f} {runs[0]['rows']:7d} {runs[0]['columns']:7d}")
    print("ratios:")
    for other in ("naive-csafe", "naive-safe", "mlflow-search_runs"):
        if other in base:
            print(f"  {other} / warm: {base[other] / base['warm']:.1f}x   "
                  f"{other} / cold: {base[other] / base['cold']:.1f}x")
    print(f"  cold / cold-records: {base['cold'] / base['cold-records']:.2f}x")
    if "cold-nocache" in base:
        print(f"  cold-nocache / read-floor: {base['cold-nocache'] / base['read-floor']:.2f}x   "
              f"cold-nocache / cold-nocache-records: {base['cold-nocache'] / base['cold-nocache-records']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
