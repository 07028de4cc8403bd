"""Sweeps through hydra-submitit-launcher's ``submitit_local`` (runs everywhere, no Slurm).

Requeues are real: the task sends itself the SIGUSR2 that Slurm (or submitit's local
controller, 30 s before the time limit) would send, so submitit's own handler decides
"preempted" or "timed-out", checkpoints and requeues; the controller restarts the task in
the same output dir. Only the moment of the signal is staged.
"""
from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from conftest import start_app

import hydra_ledger

LOCAL = "hydra/launcher=submitit_local"


def record(job_dir: Path) -> dict:
    return json.loads((job_dir / ".ledger" / "run.json").read_text())


def test_sweep_is_recorded_like_the_basic_launcher(make_app, run_app):
    app = make_app("slurm_app")
    proc = run_app(app, "-m", LOCAL, "hydra.sweep.dir=sweep", "x=1,2")
    assert proc.returncode == 0, proc.stderr
    sweep = (app / "sweep").resolve()
    # rows come by start time, and the two jobs run at once: either may have started first
    frame = hydra_ledger.load_runs(sweep).sort_values("job_num").reset_index(drop=True)
    assert frame["status"].tolist() == ["COMPLETED", "COMPLETED"]
    assert frame["job_num"].tolist() == [0, 1]
    assert frame["summary.x2"].tolist() == [2, 4]
    assert frame["summary.attempt"].tolist() == [1, 1]
    assert frame["slurm.submitit_executor"].tolist() == ["local", "local"]
    for num, row in frame.iterrows():
        rec = record(sweep / str(num))
        job_id = rec["job"]["id"]  # submitit_local: the pid of the job's controller
        assert row["slurm.submitit_job_id"] == job_id
        assert row["slurm.submitit_folder"] == str(sweep / ".submitit" / job_id)
        assert row["slurm.stdout"] == str(sweep / ".submitit" / job_id / f"{job_id}_0_log.out")
        assert row["slurm.stderr"] == str(sweep / ".submitit" / job_id / f"{job_id}_0_log.err")
        assert Path(row["slurm.stderr"]).is_file()
        assert [(a["attempt"], a["status"], a["submitit_job_id"]) for a in rec["attempts"]] == [
            (1, "COMPLETED", job_id)
        ]
        assert "slurm.job_id" not in frame.columns  # no SLURM_* locally
    sweep_record = json.loads((sweep / ".ledger" / "sweep.json").read_text())
    assert sweep_record["jobs"] == [{"num": 0, "overrides": ["x=1"]}, {"num": 1, "overrides": ["x=2"]}]
    assert sweep_record["launcher"] == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"


def test_preempted_job_is_requeued_into_one_record_with_two_attempts(make_app, run_app):
    app = make_app("slurm_app")
    # timeout_min=60 (the default): an early SIGUSR2 is a preemption by submitit's rule
    proc = run_app(app, "-m", LOCAL, "hydra.sweep.dir=sweep", "x=3", "usr2_attempts=1")
    assert proc.returncode == 0, proc.stderr
    job_dir = app / "sweep" / "0"
    rec = record(job_dir)
    assert rec["status"] == "COMPLETED"
    assert rec["summary"] == {"x2": 6, "attempt": 2}
    first, second = rec["attempts"]
    job_id = rec["job"]["id"]
    assert {k: first[k] for k in ("attempt", "status", "requeued", "ended_by", "submitit_job_id")} == {
        "attempt": 1, "status": "PREEMPTED", "requeued": True, "ended_by": "SIGUSR2: preempted",
        "submitit_job_id": job_id,
    }
    assert [(s["signal"], s["case"], s["outcome"]) for s in first["signals"]] == [("SIGUSR2", "preempted", "requeued")]
    assert first["ended_at"] is not None and first["ended_at"] <= second["started_at"]
    assert (second["attempt"], second["status"], second["submitit_job_id"]) == (2, "COMPLETED", job_id)
    assert second["pid"] != first["pid"]
    assert "signals" not in rec  # the latest attempt saw none
    assert list((job_dir / ".ledger").glob("history/*")) == []  # the same run, not an earlier one
    log = (app / "sweep" / ".submitit" / job_id / f"{job_id}_0_log.out").read_text()
    assert f"Requeued job {job_id} (3 remaining timeouts)" in log  # submitit did requeue, unchanged


def test_time_out_with_no_retries_left_is_timeout_with_the_submitit_error(make_app, run_app):
    app = make_app("slurm_app")
    # timeout_min=1: every SIGUSR2 is a time-out; submitit_local allows 3 requeues, then gives up
    proc = run_app(app, "-m", LOCAL, "hydra.sweep.dir=sweep", "hydra.launcher.timeout_min=1", "usr2_attempts=9")
    assert proc.returncode == 1
    assert "Job not requeued because: timed-out too many times." in proc.stderr
    rec = record(app / "sweep" / "0")
    assert rec["status"] == "TIMEOUT"
    assert rec["error"]["type"] == "UncompletedJobError"
    assert rec["error"]["message"] == "Job not requeued because: timed-out too many times."
    assert "checkpoint_and_try_requeue" in rec["error"]["traceback"]
    assert [(a["status"], a.get("ended_by")) for a in rec["attempts"]] == [
        ("PREEMPTED", "SIGUSR2: timed-out"), ("PREEMPTED", "SIGUSR2: timed-out"),
        ("PREEMPTED", "SIGUSR2: timed-out"), ("TIMEOUT", None),
    ]
    assert [(s["case"], s["outcome"]) for s in rec["signals"]] == [
        ("timed-out", "not requeued: Job not requeued because: timed-out too many times.")
    ]
    frame = hydra_ledger.load_runs(app / "sweep")
    assert (frame["status"][0], frame["error.type"][0]) == ("TIMEOUT", "UncompletedJobError")


def test_pending_jobs_appear_while_the_sweep_runs_and_vanish_with_their_launcher(make_app):
    """Basic launcher: job 1 waits for job 0, so it is PENDING; once the launcher is killed it never starts."""
    app = make_app("slurm_app")
    proc = start_app(app, "-m", "hydra.sweep.dir=sweep", "x=1,2", "sleep=60")
    try:
        sweep = app / "sweep"
        deadline = time.monotonic() + 60
        while not (sweep / "0" / ".ledger" / "run.json").exists():
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.2)
        frame = hydra_ledger.load_runs(sweep)
        assert frame[["job_num", "status", "overrides"]].to_dict("records") == [
            {"job_num": 0, "status": "RUNNING", "overrides": ["x=1", "sleep=60"]},
            {"job_num": 1, "status": "PENDING", "overrides": ["x=2", "sleep=60"]},
        ]
        assert frame["path"].tolist() == [str((sweep / "0").resolve()), None]
        assert frame["run_id"].isna().tolist() == [False, True]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    frame = hydra_ledger.load_runs(sweep, stale_after=0)
    assert frame[["job_num", "status"]].to_dict("records") == [{"job_num": 0, "status": "DIED"}]
