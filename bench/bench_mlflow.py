"""``mlflow.search_runs`` over N runs in MLflow's SQLite store, for bench_load.py.

Run with a Python that has MLflow (its own venv; see requirements-mlflow.txt), e.g.
  /tmp/venv-mlflow/bin/python bench/bench_mlflow.py --runs 100000 --logged 2000 --work /tmp/mlflow-bench
Logs ``--logged`` runs through MLflow's API (32 params, 5 metrics, 3 tags each, like the
benchmark's job records; ~22 ms per run), then grows the store to ``--runs`` by copying those
rows in SQL with new run ids, and times ``search_runs`` over the experiment in a fresh process.
The store is kept in ``--work`` between calls.
"""
from __future__ import annotations

import argparse
import random
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

SEARCH = """
import json, sys, time, resource
import mlflow, pandas
mlflow.set_tracking_uri(sys.argv[1])
experiment = mlflow.get_experiment_by_name("bench")
start = time.perf_counter()
frame = mlflow.search_runs([experiment.experiment_id], max_results=10_000_000)
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "rows": len(frame), "columns": frame.shape[1],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def log_runs(uri: str, count: int) -> None:
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("bench")
    rng = random.Random(0)
    for i in range(count):
        with mlflow.start_run():
            params = {f"model.p{k}": rng.choice([0.1, 0.01, 0.001]) for k in range(12)}
            params.update({f"data.p{k}": k for k in range(10)})
            params.update({f"trainer.p{k}": f"v{k}" for k in range(10)})
            mlflow.log_params(params)
            mlflow.log_metrics({"val_loss": rng.random(), "train_loss": rng.random(), "accuracy": rng.random(),
                                "epochs": rng.randint(1, 10), "best_step": rng.randint(0, 1000)})
            mlflow.set_tags({"sweep": f"sweep_{i // 100:04d}", "job_num": str(i % 100), "host": "bench"})


def grow(db: Path, target: int) -> None:
    """Copy the logged runs (with their params, metrics, latest metrics, tags) until ``target`` runs."""
    con = sqlite3.connect(db)
    cur = con.cursor()
    logged = [r[0] for r in cur.execute("SELECT run_uuid FROM runs")]
    have = len(logged)
    tables = {t: [c[1] for c in cur.execute(f"PRAGMA table_info({t})")]
              for t in ("runs", "params", "metrics", "latest_metrics", "tags")}
    while have < target:
        for source in logged:
            if have >= target:
                break
            new = uuid.uuid4().hex
            for table, columns in tables.items():
                key = "run_uuid"
                select = ", ".join("?" if c == key else c for c in columns)
                cur.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT {select} FROM {table} "
                            f"WHERE {key} = ?", (new, source))
            have += 1
    con.commit()
    con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--logged", type=int, default=2_000)
    parser.add_argument("--work", type=Path, required=True)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    db = args.work / f"mlflow-{args.runs}.db"
    uri = f"sqlite:///{db}"
    if not db.exists():
        log_runs(uri, min(args.logged, args.runs))
        grow(db, args.runs)
    out = subprocess.run([sys.executable, "-c", SEARCH, uri], check=True, capture_output=True, text=True)
    print(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
