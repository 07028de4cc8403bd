"""What a job used: real jobs of known cost (memory held, CPU burnt, in the job process or a
child), read back from run.json, resources.jsonl, the loader and the CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from conftest import record

from hydra_ledger import load_runs
from hydra_ledger.job import gpu, resources
from hydra_ledger.report.build import report_data

MB = 1024 * 1024
FAKE_NVML = Path(__file__).parent / "fake_nvml"


def _resources(job_dir: Path) -> dict:
    return record(job_dir)["resources"]


# /proc counts CPU time in clock ticks (10 ms), by sampling: a burn of t seconds can read two ticks short
TICKS = 2 / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize("where", ["job process", "child process"])
def test_peak_memory_and_cpu_of_a_job_of_known_cost(make_app, run_app, where):
    app = make_app("resources_app")
    proc = run_app(app, "hydra.run.dir=out", "mb=200", "burn_s=1.5", "hold_s=1.5",
                   f"child={'true' if where == 'child process' else 'false'}",
                   "hydra.callbacks.ledger.heartbeat_s=0.25", timeout=300)
    assert proc.returncode == 0, proc.stderr
    used = _resources(app / "out")
    # the 200 MB block on top of the interpreter's own memory (Hydra, the ledger: ~35-60 MB)
    assert 200 * MB <= used["peak_rss_bytes"] <= used["rss_bytes"] + 200 * MB + 80 * MB
    # 1.5 s burnt; touching the block's 51,200 pages costs some system time on top
    assert 1.5 - TICKS <= used["cpu_s"] <= 3.0
    assert used["peak_processes"] == (2 if where == "child process" else 1)
    assert used["source"] == "proc"
    assert used["samples"] >= 3
    assert used["gpu"] == "unavailable"
    assert used["gpu_reason"] == "NVML not installed: pip install nvidia-ml-py"
    points = [json.loads(line) for line in (app / "out/.ledger/resources.jsonl").read_text().splitlines()]
    assert len(points) == used["samples"]
    assert max(p["rss_bytes"] for p in points) >= 200 * MB
    assert [p["cpu_s"] for p in points] == sorted(p["cpu_s"] for p in points)
    assert points[-1]["cpu_s"] == used["cpu_s"]


def test_each_job_of_a_sweep_in_one_process_has_its_own_peak(make_app, run_app):
    """The basic launcher runs the jobs one after another in one process: the kernel's
    high-water mark is reset when each job starts, so a small job after a big one is small."""
    app = make_app("resources_app")
    proc = run_app(app, "-m", "mb=200,10", "burn_s=0.2", "hydra.sweep.dir=multi", timeout=300)
    assert proc.returncode == 0, proc.stderr
    big, small = _resources(app / "multi/0"), _resources(app / "multi/1")
    assert big["peak_rss_bytes"] >= 200 * MB
    assert small["peak_rss_bytes"] < big["peak_rss_bytes"] - 150 * MB
    assert 0.2 - TICKS <= small["cpu_s"] < 1.5


def test_every_job_of_a_sweep_in_one_process_has_its_heartbeat(make_app, run_app):
    """The process's one heartbeat thread beats for each job in turn while it runs, and for
    none once it has ended."""
    app = make_app("resources_app")
    proc = run_app(app, "-m", "mb=10", "burn_s=0.1", "hold_s=1.0,1.1,1.2", "hydra.sweep.dir=multi",
                   "hydra.callbacks.ledger.heartbeat_s=0.05", timeout=300)
    assert proc.returncode == 0, proc.stderr
    for job in range(3):
        rec = record(app / f"multi/{job}")
        assert rec["resources"]["samples"] >= 3, job
        beat = float((app / f"multi/{job}/.ledger/heartbeat").read_text())
        started, ended = (datetime.fromisoformat(rec[k]).timestamp() for k in ("started_at", "ended_at"))
        # the beat's time is written to the millisecond, rounded
        assert started + 0.05 <= beat <= ended + 0.001, (job, started, beat, ended)


def test_a_later_jobs_first_beat_comes_one_interval_after_its_start(make_app, run_app):
    """The heartbeat thread is not woken when a job ends: still asleep until the ended job's
    next beat, it must still beat for the next job one interval after that job's start."""
    app = make_app("resources_app")
    proc = run_app(app, "-m", "mb=10", "burn_s=0.05", "hold_s=0.1,1.8", "hydra.sweep.dir=multi",
                   "hydra.callbacks.ledger.heartbeat_s=1.0", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert not (app / "multi/0/.ledger/heartbeat").exists()  # ended before its first beat
    rec = record(app / "multi/1")
    beat = float((app / "multi/1/.ledger/heartbeat").read_text())
    started, ended = (datetime.fromisoformat(rec[k]).timestamp() for k in ("started_at", "ended_at"))
    assert started + 1.0 <= beat + 0.001 and beat <= ended + 0.001, (started, beat, ended)


def test_resources_load_as_columns_and_show_in_the_cli(make_app, run_app):
    app = make_app("resources_app")
    proc = run_app(app, "hydra.run.dir=out", "mb=50", "burn_s=0.3", timeout=300)
    assert proc.returncode == 0, proc.stderr
    frame = load_runs(app / "out")
    assert frame["resources.peak_rss_bytes"].iloc[0] >= 50 * MB
    assert frame["resources.gpu"].iloc[0] == "unavailable"
    # 0.3 s of a 10 s heartbeat: the final sample is the only one, and no series is written
    assert frame["resources.samples"].iloc[0] == 1
    assert not (app / "out/.ledger/resources.jsonl").exists()
    cli = [sys.executable, "-m", "hydra_ledger"]
    listed = subprocess.run([*cli, "ls", "out", "--columns", "resources.*", "--format", "json"], cwd=app,
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    row = json.loads(listed.stdout)[0]
    assert {"resources.cpu_s", "resources.peak_rss_bytes", "resources.gpu", "resources.samples"} <= set(row)
    data = report_data(frame, {}, "t")  # the HTML report carries them (details pane, filters)
    assert data["data"]["resources.peak_rss_bytes"] == [int(frame["resources.peak_rss_bytes"].iloc[0])]
    assert "resources.cpu_s" in data["columns"]
    shown = subprocess.run([*cli, "show", "out"], cwd=app, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    section = shown.stdout.split("\nresources\n")[1].split("\n\n")[0].splitlines()
    assert [line.split(":")[0].strip() for line in section] == ["cpu", "peak memory", "gpu"]
    assert section[2] == "  gpu:          unavailable (NVML not installed: pip install nvidia-ml-py)"


def test_a_failing_sampler_warns_once_and_the_job_goes_on(make_app, run_app):
    """resources.jsonl cannot be written (a directory is in its place): one warning, the job's
    result and exit code unchanged, the summary still in the record."""
    app = make_app("resources_app")
    (app / "out/.ledger/resources.jsonl").mkdir(parents=True)
    proc = run_app(app, "hydra.run.dir=out", "mb=10", "burn_s=0.1", "hold_s=1",
                   "hydra.callbacks.ledger.heartbeat_s=0.2", timeout=300)
    assert proc.returncode == 0, proc.stderr
    warned = [line for line in proc.stdout.splitlines() + proc.stderr.splitlines() if "cannot sample" in line]
    assert len(warned) == 1, warned
    assert "out/.ledger/resources.jsonl" in warned[0] and warned[0].endswith("the job runs on")
    assert record(app / "out")["status"] == "COMPLETED"
    assert record(app / "out")["summary"] == {"value": 10.0}
    assert record(app / "out")["resources"]["samples"] >= 3


def test_the_time_series_is_bounded():
    sampler = resources.ResourceSampler()
    written = sum(sampler.worth_writing() for _ in range(5 * resources.SERIES_BLOCK))
    # the first block at every sample, the next at every 2nd, then every 4th
    assert written == resources.SERIES_BLOCK + resources.SERIES_BLOCK + resources.SERIES_BLOCK * 2 // 4


@pytest.mark.parametrize("visible", ["", "-1"])
def test_no_visible_gpu_is_unavailable(monkeypatch, visible):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    sampler = gpu.GpuSampler()
    assert sampler.sample() is None
    reason = f"no GPU visible (CUDA_VISIBLE_DEVICES={visible!r})"
    assert sampler.summary() == {"gpu": "unavailable", "gpu_reason": reason}


def test_the_nvml_path_with_a_stand_in_library(monkeypatch):
    """No GPU here: a stand-in pynvml (tests/fake_nvml) runs the NVML calls the sampler makes."""
    monkeypatch.syspath_prepend(str(FAKE_NVML))
    monkeypatch.delitem(sys.modules, "pynvml", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    sampler = gpu.GpuSampler()
    points = [sampler.sample() for _ in range(4)]
    assert points[0] == {"1": {"memory_bytes": 4 * 1024 ** 3, "utilization_percent": 70.0}}
    assert sampler.summary() == {"gpu": {"1": {"peak_memory_bytes": 4 * 1024 ** 3, "memory_total_bytes": 16 * 1024 ** 3,
                                               "mean_utilization_percent": 60.0}}}
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-8f1c")  # a UUID NVML does not know: unavailable, said why
    assert gpu.GpuSampler().summary() == {"gpu": "unavailable", "gpu_reason": "NVML: Not Found"}
