"""Loading a column of lists that differ in every run: the overrides of a random search.

Run: python bench/bench_distinct_lists.py [--sizes 5000 20000 50000 100000] [--rounds 3] [--before REF]
A random (or Optuna) search gives every job its own overrides (``lr=0.0031...``), so every
row's ``overrides`` list is a distinct JSON text in the index. This times the loader's decoding
of such a column (``hydra_ledger.load.frame.decode``, which every load runs on it), with the
code of this tree and, with --before, of a git ref, in fresh processes taking turns; medians.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import HERE, code_of, median

SRC = HERE.parent / "src"
TIMER = """
import json, sys, time
import pyarrow as pa
from hydra_ledger.load.frame import decode
n = int(sys.argv[1])
texts = [json.dumps([f"lr={0.1 * (i + 1) / n:.9f}", f"seed={i % 5}", "model.depth=4"]) for i in range(n)]
column = pa.chunked_array([pa.array(texts, pa.large_string())])
start = time.perf_counter()
rows = decode(column)
print(time.perf_counter() - start)
assert len(rows) == n and rows[0] is not rows[1]
"""


def timed(src: Path, size: int) -> float:
    proc = subprocess.run([sys.executable, "-c", TIMER, str(size)], capture_output=True, text=True, check=True,
                          env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"})
    return float(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[5_000, 20_000, 50_000, 100_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", help="a git ref to compare with")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        codes = {"this tree": SRC}
        if args.before:
            codes = {f"before ({args.before})": code_of(args.before, Path(tmp)), **codes}
        print(f"rounds: {args.rounds}; seconds to decode a column of distinct lists, median (all rounds)")
        for size in args.sizes:
            times: dict[str, list[float]] = {name: [] for name in codes}
            for _ in range(args.rounds):
                for name, src in codes.items():
                    times[name].append(timed(src, size))
            print(f"{size:>7} rows: " + "; ".join(
                f"{name} {median(t):.3f} ({' / '.join(f'{x:.3f}' for x in t)})" for name, t in times.items()),
                flush=True)


if __name__ == "__main__":
    main()
