"""Load time of ``load_runs`` against config width: runs whose configs have ``--keys`` keys (10,000
by default), with this tree's code and with the code of a git ref (``--before``), in the same run.

Run: python bench/bench_width.py [--runs 100] [--keys 10000] [--repeats 3] [--before main]
Each load runs in a fresh Python process (imports not counted), the two codes taking turns, so
that both see the same machine; the figures are medians over ``--repeats``. Cases:
  cold: no index yet (files in the page cache);
  warm: the index is there and nothing changed (the common case: a later load).
A load slower than ``--give-up`` seconds is stopped and reported as such.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import code_of, median
from make_runs import make_runs

from hydra_ledger.record.files import write_json_atomic
from hydra_ledger.record.schema import read_record

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"

HARNESS = """
import json, sys, time
import hydra_ledger
start = time.perf_counter()
frame = hydra_ledger.load_runs(sys.argv[1])
print(json.dumps({"seconds": time.perf_counter() - start, "rows": len(frame), "columns": frame.shape[1],
                  "module": hydra_ledger.__file__}))
"""


def widen(root: Path, keys: int) -> None:
    """Give every job's config ``keys`` more keys (``wide.k00000``...), values varying by run."""
    for n, record_file in enumerate(sorted(root.glob("*/*/.ledger/run.json"))):
        record = read_record(record_file)
        record["config"]["wide"] = {f"k{i:05d}": (i * 7 + n) % 1000 / 10 for i in range(keys)}
        write_json_atomic(record_file, record)


def load(src: Path, root: Path, cache: Path, give_up: float) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src), "HYDRA_LEDGER_CACHE": str(cache)}
    try:
        out = subprocess.run([sys.executable, "-c", HARNESS, str(root)], check=True, capture_output=True,
                             text=True, env=env, timeout=give_up)
    except subprocess.TimeoutExpired:
        return {"seconds": float("inf")}
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["module"].startswith(str(src)), result  # the code asked for, not the installed one
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before", default="main", help="the git ref to compare with (default: main)")
    parser.add_argument("--give-up", type=float, default=300.0, metavar="SECONDS")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        codes = {f"before ({args.before})": code_of(args.before, work / "before"), "after (this tree)": SRC}
        root = make_runs(work / "runs", args.runs)
        widen(root, args.keys)
        times: dict[tuple[str, str], list[float]] = {}
        shape = None
        for repeat in range(args.repeats):
            for label, src in codes.items():
                cache = work / f"cache-{repeat}-{label.split()[0]}"
                cold = load(src, root, cache, args.give_up)
                warm = load(src, root, cache, args.give_up)
                times.setdefault((label, "cold"), []).append(cold["seconds"])
                times.setdefault((label, "warm"), []).append(warm["seconds"])
                if shape is None and "rows" in warm:  # a load that gave up has no frame
                    shape = (warm["rows"], warm["columns"])
                print(f"# repeat {repeat + 1}: {label}: cold {cold['seconds']:.3f} s, warm {warm['seconds']:.3f} s",
                      file=sys.stderr)
    rows, columns = shape or ("?", "?")
    print(f"{args.runs} runs of {args.keys:,} config keys (frame {rows} x {columns}), medians of "
          f"{args.repeats}, each load in a fresh process:")
    print("| code | cold load | warm load |\n|---|---:|---:|")
    for label in codes:
        cold, warm = median(times[(label, "cold")]), median(times[(label, "warm")])
        print(f"| {label} | {_seconds(cold, args.give_up)} | {_seconds(warm, args.give_up)} |")
    print(json.dumps({f"{label} {case}": values for (label, case), values in times.items()}))


def _seconds(value: float, give_up: float) -> str:
    return f"{value:.3f} s" if value != float("inf") else f"> {give_up:.0f} s (gave up)"


if __name__ == "__main__":
    main()
