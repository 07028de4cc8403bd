"""CPU cost of the job's resource sampler (one sample per heartbeat, in the heartbeat thread).

Run: python bench/bench_resources.py [--samples 2000] [--children 0 8]
For each process-tree size (the job process plus N sleeping children), it times what one
heartbeat adds: a sample of the tree (CPU, RSS: /proc reads), its line in resources.jsonl,
and the summary a record save adds. CPU time of the sampling thread (time.thread_time),
medians over 5 blocks; the share of a core follows for the default 10 s heartbeat.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from hydra_ledger.job.resources import ResourceSampler
from hydra_ledger.record.files import append_line

HEARTBEAT_S = 10.0


def per_sample_ms(samples: int, children: int) -> float:
    kids = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"]) for _ in range(children)]
    try:
        time.sleep(0.5)
        sampler = ResourceSampler()
        assert sampler.sample()["processes"] == children + 1
        blocks = []
        with tempfile.TemporaryDirectory() as tmp:
            series = Path(tmp) / "resources.jsonl"
            for _ in range(5):
                start = time.thread_time()
                for _ in range(samples // 5):
                    point = sampler.sample()
                    if sampler.worth_writing():
                        append_line(series, point)
                    sampler.summary()
                blocks.append((time.thread_time() - start) / (samples // 5) * 1000)
        return statistics.median(blocks)
    finally:
        for kid in kids:
            kid.kill()
            kid.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--children", type=int, nargs="+", default=[0, 8])
    args = parser.parse_args()
    print(f"samples: {args.samples}, heartbeat: {HEARTBEAT_S:g} s")
    for children in args.children:
        ms = per_sample_ms(args.samples, children)
        share = ms / 1000 / HEARTBEAT_S * 100
        print(f"processes {children + 1:3d}: {ms:.3f} ms CPU per sample, {ms / HEARTBEAT_S:.4f} ms CPU per second "
              f"= {share:.4f} % of a core")


if __name__ == "__main__":
    main()
