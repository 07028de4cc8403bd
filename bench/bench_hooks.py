"""The ledger's hooks timed inside the job process, natively: what the instruction counts leave out.

Run: python bench/bench_hooks.py [--jobs 200] [--rounds 3] [--baseline <source tree>]
Each round runs the benchmark app's sweep of ``--jobs`` jobs with `hydra/callbacks=ledger` in a
repo of ~200 tracked files (output dirs git-ignored), with `time.perf_counter` around the two
hooks and their main parts; the garbage collector is held off inside the timed calls, so that a
collection Hydra's own allocations would trigger anyway is not charged to the ledger. With
--baseline, the ledger of another source tree runs alternately. The figures are per job, the
median over rounds. They hold what `bench_overhead.py --instructions` cannot count: the time in
the kernel (creating, writing and renaming the record files) and the caches the hooks find cold
after Hydra's work between two jobs.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import HERE, make_repo, median, tree_pythonpath

# (module, owner class or None, function): timed wherever the tree has it.
TIMED = [
    ("hydra_ledger.job.callback", "LedgerCallback", "on_job_start"),
    ("hydra_ledger.job.callback", "LedgerCallback", "on_job_end"),
    ("hydra_ledger.job.callback", None, "resolve_task_config"),
    ("hydra_ledger.job.runtime", "ActiveRun", "save"),  # the record's writes, with the parts below
    ("hydra_ledger.job.runtime", None, "dump_record"),
    ("hydra_ledger.job.runtime", None, "write_atomic"),  # also the heartbeat's few writes per sweep
    ("hydra_ledger.job.runtime", None, "append_final_row"),  # the name runtime calls
    ("hydra_ledger.job.artifacts", None, "record_artifacts"),
    ("hydra_ledger.job.callback", "LedgerCallback", "_reused_git"),
    ("hydra_ledger.job.callback", "LedgerCallback", "_write_packages"),
    # smaller parts: together with those above they account for nearly all of the hooks' time
    ("hydra_ledger.job.callback", None, "_make_ledger_dir"),
    ("hydra_ledger.job.callback", None, "capture_host"),
    ("hydra_ledger.job.callback", None, "capture_slurm"),
    ("hydra_ledger.job.callback", None, "_override_texts"),
    ("hydra_ledger.job.callback", None, "_launch_info"),
    ("hydra_ledger.job.callback", None, "_choices"),
    ("hydra_ledger.job.resources", "ResourceSampler", "__init__"),  # in on_job_start, outside `save`
    ("hydra_ledger.job.resources", "ResourceSampler", "sample"),  # the final sample, in on_job_end
    ("hydra_ledger.job.runtime", None, "mark_changed"),  # inside `save`
    ("hydra_ledger.record.row_journal", None, "parse_record"),  # inside append_final_row
    ("hydra_ledger.record.row_journal", None, "record_to_row"),  # inside append_final_row
]

# Runs in the app's process: wraps the functions above, runs app.py as `python app.py ...` would,
# then writes {label: [seconds, calls]} to the file named by the first argument (a method's label
# names its class: ``ResourceSampler.__init__``).
_TIMED_APP = '''
import functools, gc, importlib, json, runpy, sys, time
out, timed = sys.argv[1], json.loads(sys.argv[2])
totals = {}
def wrap(owner, name, label):
    original = getattr(owner, name)
    totals[label] = [0.0, 0]
    @functools.wraps(original)
    def timed_call(*args, **kwargs):
        enabled = gc.isenabled()
        gc.disable()
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            totals[label][0] += time.perf_counter() - start
            totals[label][1] += 1
            if enabled:
                gc.enable()
    setattr(owner, name, timed_call)
for module_name, owner_name, name in timed:
    module = importlib.import_module(module_name)
    owner = getattr(module, owner_name) if owner_name else module
    if hasattr(owner, name):
        wrap(owner, name, f"{owner_name}.{name}" if name.startswith("__") else name)
sys.argv = ["app.py", *sys.argv[3:]]
try:
    runpy.run_path("app.py", run_name="__main__")
except SystemExit as exit:
    if exit.code not in (None, 0):
        raise
with open(out, "w") as f:
    json.dump(totals, f)
'''


def _timed_sweep(repo: Path, tree: Path, env: dict[str, str], jobs: int, sweep_dir: str) -> dict[str, list[float]]:
    """``{function: [seconds, calls]}`` of one sweep with the ledger of the source tree ``tree``
    (``env``: the variables that import it)."""
    with tempfile.NamedTemporaryFile("r", suffix=".json") as out:
        proc = subprocess.run([sys.executable, "-c", _TIMED_APP, out.name, json.dumps(TIMED), "-m",
                               f"seed=range(0,{jobs})", f"hydra.sweep.dir={sweep_dir}", "hydra/callbacks=ledger"],
                              cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, **env})
        if proc.returncode != 0:
            raise RuntimeError(f"the sweep with the ledger of {tree} failed (exit {proc.returncode}):\n"
                               f"{proc.stderr[-3000:]}")
        totals = json.load(out)
    for hook in ("on_job_start", "on_job_end"):  # a tree whose ledger did not run measures nothing
        if totals.get(hook, [0, 0])[1] != jobs:
            raise RuntimeError(f"{tree}: {hook} ran {totals.get(hook, [0, 0])[1]} times in a sweep of {jobs} jobs")
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="another source tree, timed alternately (before)")
    args = parser.parse_args()
    trees = {"ledger": HERE.parent}
    if args.baseline is not None:
        trees = {"before": args.baseline, **trees}
    envs = {name: tree_pythonpath(tree) for name, tree in trees.items()}  # no source tree: stops before any sweep
    print(f"jobs per sweep: {args.jobs}, rounds: {args.rounds}, cpus: {os.cpu_count()}"
          + (f", before: {args.baseline}" if args.baseline else ""), flush=True)
    per_job: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(Path(tmp) / "repo")
        (repo / ".git" / "info" / "exclude").write_text("multirun/\n")
        for name, tree in trees.items():  # compiles each tree's bytecode before the timed rounds
            _timed_sweep(repo, tree, envs[name], 2, f"multirun/warm-up-{name}")
        for i in range(args.rounds):
            load = os.getloadavg()
            order = list(trees)[i % len(trees):] + list(trees)[:i % len(trees)]
            parts = []
            for name in order:
                totals = _timed_sweep(repo, trees[name], envs[name], args.jobs, f"multirun/{name}{i}")
                for function, (seconds, _calls) in totals.items():
                    per_job[name].setdefault(function, []).append(seconds / args.jobs * 1000)
                hooks = per_job[name]["on_job_start"][-1] + per_job[name]["on_job_end"][-1]
                parts.append(f"{name} {per_job[name]['on_job_start'][-1]:.3f} + {per_job[name]['on_job_end'][-1]:.3f}"
                             f" = {hooks:.3f} ms/job")
            print(f"round {i + 1}: load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; " + ", ".join(parts),
                  flush=True)
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("median over rounds, ms per job:")
    for function in dict.fromkeys(f for name in trees for f in per_job[name]):
        print(f"{function:>24}: " + ", ".join(
            f"{name} {median(per_job[name][function]):.3f}" for name in trees if function in per_job[name]))


if __name__ == "__main__":
    main()
