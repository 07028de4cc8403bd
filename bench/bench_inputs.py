"""Cost of input fingerprints (hydra.callbacks.ledger.inputs): cold hashing against cache hits.

Run: python bench/bench_inputs.py [--gb 1] [--files 2000] [--repeats 3]
Datasets, made in a temporary dir:
  big file:  one file of --gb GiB of random bytes (written once; the page cache then holds it,
             so "cold" measures hashing, not the disk)
  tree:      a directory of --files files of 4 KiB in 20 subdirectories
Each case is fingerprinted with an empty cache (cold: every byte read and hashed) and
then --repeats times with the cache filled (what jobs 2..N of a sweep pay). Figures are
medians, in a fresh cache dir per cold run.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from hydra_ledger.job.inputs import HashStats, fingerprint_path


def make_big(path: Path, gib: float) -> None:
    chunk = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for _ in range(int(gib * 1024)):
            f.write(chunk)


def make_tree(root: Path, files: int) -> None:
    for i in range(files):
        sub = root / f"part{i % 20:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"sample_{i:05d}.bin").write_bytes(os.urandom(4096))


def measure(path: Path, cache_root: Path, repeats: int) -> dict[str, float]:
    colds, warms = [], []
    for r in range(repeats):
        cache = cache_root / f"cold{r}"
        stats = HashStats()
        start = time.perf_counter()
        fingerprint_path(path, stats, cache)
        colds.append(time.perf_counter() - start)
        assert stats.cache_hits == 0, "cold run hit the cache"
        stats = HashStats()
        start = time.perf_counter()
        fingerprint_path(path, stats, cache)
        warms.append(time.perf_counter() - start)
        assert stats.files_hashed == 0, "warm run hashed again"
    return {"cold_s": statistics.median(colds), "cached_s": statistics.median(warms)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gb", type=float, default=1.0, help="size of the big file in GiB (default 1)")
    parser.add_argument("--files", type=int, default=2000, help="files in the tree (default 2000)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-inputs-"))
    try:
        big, tree = tmp / "big.bin", tmp / "tree"
        make_big(big, args.gb)
        make_tree(tree, args.files)
        size_tree = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file())
        print(f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f} python={sys.version.split()[0]}")
        print(f"{'dataset':<28} {'bytes':>14} {'cold (s)':>9} {'MB/s':>7} {'cached (s)':>11} {'speed-up':>9}")
        for name, path, size in ((f"file {args.gb:g} GiB", big, big.stat().st_size),
                                 (f"tree {args.files} x 4 KiB", tree, size_tree)):
            m = measure(path, tmp / f"cache-{path.name}", args.repeats)
            print(f"{name:<28} {size:>14,} {m['cold_s']:>9.3f} {size / m['cold_s'] / 1e6:>7.0f} "
                  f"{m['cached_s']:>11.4f} {m['cold_s'] / m['cached_s']:>8.0f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
