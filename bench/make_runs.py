"""Make N realistic job dirs fast: record a real sweep once, then clone its job dirs.

Each clone gets its own run id, config values, overrides, summary and Hydra files
(``.hydra/config.yaml``, ``overrides.yaml``), written with the project's own record writer,
so the loader and the naive baselines read what real jobs leave on disk. Jobs are grouped
100 per sweep dir, each sweep with its ``.ledger/sweep.json`` listing its jobs, as a
launcher writes it, and its row journal (``.ledger/rows.jsonl``), as the jobs append it.

Run: python bench/make_runs.py ROOT --runs 100000          (a new root)
     python bench/make_runs.py ROOT --runs 1000 --add      (1,000 more jobs in new sweeps)
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
from pathlib import Path

import yaml
from _common import make_repo, run_app

from hydra_ledger.job.callback import new_id
from hydra_ledger.record.files import write_json_atomic
from hydra_ledger.record.paths import RunPaths, SweepPaths
from hydra_ledger.record.row_journal import append_final_row
from hydra_ledger.record.schema import SWEEP_SCHEMA, read_record

JOBS_PER_SWEEP = 100


def record_template(work: Path) -> Path:
    """A real job dir recorded by a real Hydra sweep through the ledger."""
    repo = make_repo(work / "repo")
    run_app(repo, "-m", "seed=0,1", "hydra.sweep.dir=template", "hydra/callbacks=ledger")
    return repo / "template" / "0"


def next_sweep(root: Path) -> int:
    """The number of the first sweep dir not made yet under ``root``."""
    numbers = [int(p.name.split("_")[1]) for p in root.glob("sweep_*")] if root.is_dir() else []
    return max(numbers) + 1 if numbers else 0


def make_runs(root: Path, count: int, seed: int = 0, first_sweep: int = 0, random_search: bool = False) -> Path:
    """``count`` job dirs under ``root``, in sweeps ``sweep_<first_sweep>``, ``sweep_<first_sweep + 1>``...;
    ``random_search``: each job's learning rate drawn from a range, so that every run's overrides differ."""
    rng = random.Random(seed + first_sweep)
    with tempfile.TemporaryDirectory() as tmp:
        template = record_template(Path(tmp))
        record = read_record(RunPaths(template).record)
        sweep_record = read_record(SweepPaths(template.parent).record, SWEEP_SCHEMA)
        config = yaml.safe_load((template / ".hydra" / "config.yaml").read_text())
        jobs: list[dict] = []
        for i in range(count):
            sweep, num = divmod(i, JOBS_PER_SWEEP)
            sweep_dir = root / f"sweep_{first_sweep + sweep:04d}"
            job_dir = sweep_dir / str(num)
            shutil.copytree(template, job_dir)
            lr, depth, seed_value = rng.choice([0.1, 0.01, 0.001]), rng.choice([2, 4, 8]), num % 5
            if random_search:
                lr = 10 ** rng.uniform(-4, -1)
            config["seed"], config["model"]["lr"], config["model"]["depth"] = seed_value, lr, depth
            overrides = [f"seed={seed_value}", f"model.lr={lr}", f"model.depth={depth}"]
            (job_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
            (job_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
            record["run_id"] = new_id()
            record["config"] = config
            record["overrides"] = overrides
            record["job"] = {**record["job"], "num": num, "id": str(num),
                             "output_dir": str(job_dir), "sweep_dir": str(sweep_dir)}
            record["summary"] = {"val_loss": rng.random(), "train_loss": rng.random(), "accuracy": rng.random(),
                                 "epochs": rng.randint(1, 10), "best_step": rng.randint(0, 1000)}
            write_json_atomic(RunPaths(job_dir).record, record)
            # the job's line in its sweep's row journal, as a job appends it at its end
            SweepPaths(sweep_dir).ledger_dir.mkdir(parents=True, exist_ok=True)
            append_final_row(RunPaths(job_dir), record, RunPaths(job_dir).record.read_bytes())
            jobs.append({"num": num, "overrides": overrides})
            if num == JOBS_PER_SWEEP - 1 or i == count - 1:
                write_json_atomic(SweepPaths(sweep_dir).record,
                                  {**sweep_record, "sweep_id": new_id(), "sweep_dir": str(sweep_dir), "jobs": jobs})
                jobs = []
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--add", action="store_true", help="add the jobs in new sweeps of an existing root")
    parser.add_argument("--random-search", action="store_true",
                        help="draw each job's learning rate from a range: every run's overrides differ")
    args = parser.parse_args()
    if args.root.exists() and not args.add:
        sys.exit(f"{args.root} exists; give a new directory, or --add to add jobs to it")
    first = next_sweep(args.root) if args.add else 0
    make_runs(args.root, args.runs, first_sweep=first, random_search=args.random_search)
    print(json.dumps({"root": str(args.root), "runs": args.runs, "first_sweep": first}))


if __name__ == "__main__":
    main()
