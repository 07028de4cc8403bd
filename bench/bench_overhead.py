"""Per-job cost of the ledger: the same 200-job basic-launcher sweep with and without it.

Run: python bench/bench_overhead.py [--jobs 200] [--repeats 3]
Both variants run alternately in one repo of ~200 tracked files; the figure is
(median sweep time with ledger - median without) / jobs. By default the sweeps' output dirs
are git-ignored, as in most Hydra projects; with --outputs-untracked they are not, and every
job's `git status` then also lists the files of all earlier runs in the repo.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import make_repo, median, run_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--outputs-untracked", action="store_true", help="do not git-ignore the output dirs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(Path(tmp) / "repo")
        if not args.outputs_untracked:
            (repo / ".git" / "info" / "exclude").write_text("multirun/\n")
        sweep = [f"seed=range(0,{args.jobs})"]
        plain, ledger = [], []
        for i in range(args.repeats):
            plain.append(run_app(repo, "-m", *sweep, f"hydra.sweep.dir=multirun/plain{i}"))
            ledger.append(run_app(repo, "-m", *sweep, f"hydra.sweep.dir=multirun/ledger{i}", "hydra/callbacks=ledger"))
        recorded = len(list(Path(repo).glob("multirun/ledger0/*/.ledger/run.json")))
        assert recorded == args.jobs, f"expected {args.jobs} records, found {recorded}"
    per_job_plain = median(plain) / args.jobs * 1000
    per_job_ledger = median(ledger) / args.jobs * 1000
    where = "untracked, not ignored" if args.outputs_untracked else "git-ignored"
    print(f"jobs per sweep: {args.jobs}, repeats: {args.repeats}, output dirs {where}")
    print(f"sweep without ledger: median {median(plain):.2f} s  ({per_job_plain:.1f} ms/job)  "
          f"runs {[round(x, 2) for x in plain]}")
    print(f"sweep with ledger:    median {median(ledger):.2f} s  ({per_job_ledger:.1f} ms/job)  "
          f"runs {[round(x, 2) for x in ledger]}")
    print(f"ledger overhead: {per_job_ledger - per_job_plain:.1f} ms/job "
          f"({(per_job_ledger / per_job_plain - 1) * 100:.0f}% of plain Hydra's per-job time)")


if __name__ == "__main__":
    main()
