"""The benchmarks run at a small size, so that they cannot rot (no timing is asserted)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_bench_load_runs_at_a_small_size(tmp_path):
    root = tmp_path / "runs"
    made = subprocess.run([sys.executable, "make_runs.py", str(root), "--runs", "2000"], cwd=BENCH,
                          capture_output=True, text=True, timeout=600)
    assert made.returncode == 0, made.stderr
    assert len(list(root.glob("sweep_*/*/.ledger/run.json"))) == 2000
    assert len(list(root.glob("sweep_*/.ledger/sweep.json"))) == 20
    journals = list(root.glob("sweep_*/.ledger/rows.jsonl"))  # the lines the jobs would have appended
    assert len(journals) == 20 and {len(j.read_bytes().splitlines()) for j in journals} == {100}
    proc = subprocess.run([sys.executable, "bench_load.py", "--runs", "2000", "--root", str(root), "--repeats", "1",
                           "--new", "100", "--naive"], cwd=BENCH, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("job dirs: 2000, repeats: 1")
    cases = {line.split()[0]: line.split() for line in lines[2:] if not line.startswith(" ") and ":" not in line}
    assert set(cases) == {"cold-records", "cold", "warm", "warm-narrow", "naive-csafe", "naive-safe", "new-jobs"}
    assert [cases[c][5] for c in ("cold-records", "cold", "warm", "naive-csafe", "new-jobs")] == [
        "2000", "2000", "2000", "2000", "2100"]
    assert len(list(root.glob("sweep_*"))) == 20  # the jobs added for the new-jobs case are gone again
    assert sorted(root.glob("sweep_*/.ledger/rows.jsonl")) == sorted(journals)  # set aside, then put back


def test_bench_resources_at_a_small_size():
    proc = subprocess.run([sys.executable, "bench_resources.py", "--samples", "50", "--children", "0", "2"], cwd=BENCH,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "samples: 50, heartbeat: 10 s"
    assert [line.split(":")[0] for line in lines[1:]] == ["processes   1", "processes   3"]


def test_bench_overhead_at_a_small_size():
    """Both ways of measuring: alternated sweeps (with the callbacks enabled each way, each
    ledger variant checked to have recorded its jobs), and each variant beside a plain sweep (--paired)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BENCH.parent / "src"), str(BENCH.parent)])}
    for mode in (["--explicit", "--defaults-list"], ["--paired"]):
        proc = subprocess.run([sys.executable, "bench_overhead.py", "--jobs", "2", "--rounds", "1", "--floor", *mode],
                              cwd=BENCH, capture_output=True, text=True, timeout=600, env=env)
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.splitlines()
        assert lines[0].startswith("jobs per sweep: 2, rounds: 1"), lines
        assert "ledger" in lines[1] and "do-nothing" in lines[1], lines
        assert any("over a do-nothing callback" in line or "pairs" in line for line in lines[-3:]), lines
        if "--defaults-list" in mode:
            for name in ("ledger-node", "ledger-defaults"):
                assert any(f"cpu {name:>15}:" in line and "over a do-nothing callback enabled alike" in line
                           for line in lines), lines


def test_bench_overhead_counts_instructions_at_a_small_size():
    """--instructions: each variant under valgrind at two sweep sizes, the difference per job."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BENCH.parent / "src"), str(BENCH.parent)])}
    proc = subprocess.run([sys.executable, "bench_overhead.py", "--instructions", "--counted", "1,2", "--jobs", "2",
                           "--rounds", "1", "--floor"], cwd=BENCH, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[1].startswith("instructions (cachegrind, PYTHONHASHSEED=0) of sweeps of 1 and 2 jobs"), lines
    per_job = {line.split(":")[0].strip(): line for line in lines[2:]}
    assert list(per_job) == ["plain", "do-nothing", "ledger"], lines
    assert "over plain Hydra" in per_job["ledger"] and "ms/job" in per_job["ledger"], lines


def test_bench_hooks_times_the_hooks_at_a_small_size():
    """Both trees' hooks timed in their job processes, alternately; every timed part reported."""
    env = {**os.environ, "PYTHONPATH": ""}
    proc = subprocess.run([sys.executable, "bench_hooks.py", "--jobs", "2", "--rounds", "2", "--baseline",
                           str(BENCH.parent)], cwd=BENCH, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("jobs per sweep: 2, rounds: 2"), lines
    assert lines[1].startswith("round 1:") and "before" in lines[1] and "ledger" in lines[1], lines
    medians = {line.split(":")[0].strip(): line for line in lines[lines.index("median over rounds, ms per job:") + 1:]}
    assert list(medians) == ["on_job_start", "on_job_end", "resolve_task_config", "save", "dump_record",
                             "write_atomic", "append_final_row", "record_artifacts", "_reused_git",
                             "_write_packages", "_make_ledger_dir", "capture_host", "capture_slurm",
                             "_override_texts", "_launch_info", "_choices", "ResourceSampler.__init__", "sample",
                             "mark_changed", "parse_record", "record_to_row"], lines
    assert all("before" in line and "ledger" in line for line in medians.values()), lines


def test_bench_baseline_that_is_no_source_tree_stops_before_any_sweep(tmp_path):
    """Else the installed hydra_ledger would be imported in its place and measured as "before"."""
    for bench in ("bench_hooks.py", "bench_overhead.py"):
        proc = subprocess.run([sys.executable, bench, "--jobs", "2", "--rounds", "1", "--baseline", str(tmp_path)],
                              cwd=BENCH, capture_output=True, text=True, timeout=120)
        assert proc.returncode != 0, proc.stdout
        assert f"{tmp_path} is not a hydra-ledger source tree (no src/hydra_ledger/)" in proc.stderr, proc.stderr
        assert "round 1" not in proc.stdout, proc.stdout


def test_bench_distinct_lists_at_a_small_size():
    proc = subprocess.run([sys.executable, "bench_distinct_lists.py", "--sizes", "200", "--rounds", "1"], cwd=BENCH,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[1].startswith("    200 rows: this tree ")
