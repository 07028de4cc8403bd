"""How fast the command line answers on a big root, whole processes, this tree against a git ref.

Run: python bench/bench_cli.py ROOT [--rounds 5] [--before REF]
ROOT: job dirs made by make_runs.py (e.g. 100,000). Each round runs every case once with the
code of REF (default: main) and once with this tree's, alternately, each code with an index
cache of its own (made before the rounds: the figures are warm). Reports medians of wall and
CPU time, every round, and the load average, so that a noisy shared machine shows as such.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import HERE, code_of, median

SRC = HERE.parent / "src"
# The whole-process cases: command-line arguments of ``python``; ROOT and RUN_ID are filled in.
PROCESS_CASES = {
    "--version": ["-m", "hydra_ledger", "--version"],
    "--help": ["-m", "hydra_ledger", "--help"],
    "ls -n 20": ["-m", "hydra_ledger", "ls", "-n", "20", "ROOT"],
    "status": ["-m", "hydra_ledger", "status", "ROOT"],
    "show ID": ["-m", "hydra_ledger", "show", "RUN_ID", "--in", "ROOT"],
    "load_runs (process)": ["-c", "import sys, hydra_ledger; hydra_ledger.load_runs(sys.argv[1])", "ROOT"],
    # the floor of any command reading the index: Python, the command line, pyarrow (numpy with it)
    # and its compiled compute functions (not the pyarrow.compute wrappers: see load/kernels.py)
    "imports: cli + pyarrow": ["-c", "import hydra_ledger.cli, pyarrow, pyarrow._compute"],
}
# A warm load_runs in one process, imports not counted: median of a few loads after one.
IN_PROCESS = """
import sys, time, hydra_ledger
hydra_ledger.load_runs(sys.argv[1])
times = []
for _ in range(5):
    start = time.perf_counter()
    hydra_ledger.load_runs(sys.argv[1])
    times.append(time.perf_counter() - start)
print(sorted(times)[2])
"""


def run(src: Path, cache: Path, argv: list[str]) -> tuple[float, float, str]:
    """Wall and CPU seconds (user + system, of the child) of ``python ARGV``; its stdout."""
    env = {**os.environ, "PYTHONPATH": str(src), "HYDRA_LEDGER_CACHE": str(cache)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # the code's bytecode is cached after the first run, as installed
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise SystemExit(f"{argv} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stdout


def first_run_id(root: Path) -> str:
    record = next(root.glob("*/*/.ledger/run.json"))
    return str(json.loads(record.read_text())["run_id"])[:8]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before", default="main", help="the git ref to compare with (default: main)")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    args = parser.parse_args()
    root = args.root.resolve()
    run_id = first_run_id(root)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        codes = {f"before ({args.before})": code_of(args.before, work / "before"), "after (this tree)": SRC}
        caches = {name: work / f"cache-{i}" for i, name in enumerate(codes)}
        for name, src in codes.items():  # the index of each code, made once: every case below is warm
            run(src, caches[name], ["-c", "import sys, hydra_ledger; hydra_ledger.load_runs(sys.argv[1])", str(root)])
        results: dict[str, dict[str, list[list[float]]]] = {name: {} for name in codes}
        loads = []
        for round_ in range(args.rounds):
            for name, src in codes.items():
                for case, argv in PROCESS_CASES.items():
                    argv = [str(root) if a == "ROOT" else run_id if a == "RUN_ID" else a for a in argv]
                    wall, cpu, _ = run(src, caches[name], argv)
                    results[name].setdefault(case, []).append([wall, cpu])
                _, _, out = run(src, caches[name], ["-c", IN_PROCESS, str(root)])
                results[name].setdefault("load_runs (in process, warm)", []).append([float(out), float("nan")])
            loads.append(os.getloadavg()[0])
            print(f"round {round_ + 1}/{args.rounds} done, load average {loads[-1]:.2f}", file=sys.stderr)
    cases = [*PROCESS_CASES, "load_runs (in process, warm)"]
    print(f"root: {root}, rounds: {args.rounds}, load average after each round: {[round(x, 2) for x in loads]}")
    print(f"{'case':30} " + " ".join(f"{n:>30}" for n in codes) + "   ratio")
    for case in cases:
        walls = [median([w for w, _ in results[n][case]]) for n in codes]
        cpus = [median([c for _, c in results[n][case]]) for n in codes]
        cells = [f"{w:8.3f} s wall {c:6.3f} s CPU" if c == c else f"{w:8.3f} s" for w, c in zip(walls, cpus)]
        print(f"{case:30} " + " ".join(f"{c:>30}" for c in cells) + f"   {walls[1] / walls[0]:.2f}x")
    for case in cases:
        for name in codes:
            print(f"  {case} {name}: wall " + " / ".join(f"{w:.3f}" for w, _ in results[name][case]))
    if args.json:
        args.json.write_text(json.dumps({"loads": loads, "results": results}, indent=1))


if __name__ == "__main__":
    main()
