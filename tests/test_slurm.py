"""Sweeps on a real one-node Slurm cluster (``scripts/slurm-cluster.sh``) through ``submitit_slurm``.

The launcher runs in the background and the tests read the records while jobs run, never
waiting on the launcher's result (submitit polls sacct with a growing interval). Every job
gets a job name unique to the test, so teardown cancels exactly the test's leftovers.
Tests not marked ``slurm`` (sacct parsing, joblib workers) run everywhere.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import app_env

import hydra_ledger
from hydra_ledger.load.slurm import parse_sacct, parse_usage

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "slurm-cluster.sh"
SLURM = ("hydra/launcher=submitit_slurm",)
# A 1 min limit with SIGUSR2 30 s before it. submitit's default signal_delay_s (120 s) is longer
# than the limit, so Slurm signals at its first periodic check after the start, which can come
# before the job's Python has installed submitit's handlers: SIGUSR2 then kills it with no record.
TIME_LIMIT = ("hydra.launcher.timeout_min=1", "hydra.launcher.signal_delay_s=30")


@pytest.fixture(scope="module")
def slurm_cluster() -> None:
    """The machine's cluster, started if needed; skipped (with the reason) where it cannot run."""
    available = subprocess.run(["bash", str(SCRIPT), "available"], capture_output=True, text=True)
    if available.returncode != 0:
        pytest.skip((available.stderr or available.stdout).strip())
    # Test workers share the machine-wide cluster: only one of them starts it.
    with open("/tmp/hydra-ledger-slurm-cluster.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        up = subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True).returncode == 0
        # a cluster started by an older script lacks a partition: start again applies the new slurm.conf
        if not up or subprocess.run(["scontrol", "show", "partition", "nograce"], capture_output=True).returncode:
            started = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True, timeout=300)
            assert started.returncode == 0, started.stderr


class Sweep:
    """A multirun launched in the background, and its job records."""

    def __init__(self, app: Path, name: str, args: tuple[str, ...], partition: str) -> None:
        self.app = app
        self.name = name
        self.dir = (app / "sweep").resolve()
        self.log = app.parent / f"{name}.log"
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "app.py", "-m", *SLURM, f"hydra.launcher.partition={partition}",
                 f"hydra.launcher.name={name}", "hydra.sweep.dir=sweep", *args],
                cwd=app, env=app_env(), stdout=out, stderr=subprocess.STDOUT, text=True,
            )

    def record(self, num: int) -> dict[str, Any] | None:
        try:
            return json.loads((self.dir / str(num) / ".ledger" / "run.json").read_text())
        except (OSError, ValueError):
            return None

    def last_beat(self, num: int) -> float:
        """The job's last sign of life as the loader judges it: its heartbeat, or its start
        until its first beat (a job cancelled at once never beats)."""
        beat = self.dir / str(num) / ".ledger" / "heartbeat"
        if beat.exists():  # written by renaming: once there, never gone
            return float(beat.read_text())
        return datetime.fromisoformat((self.record(num) or {})["started_at"]).timestamp()

    def wait(self, what: str, check: Callable[[], Any], timeout: float = 240) -> Any:
        """Poll ``check`` until it returns something truthy; fail with the launcher's log otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                queue = subprocess.run(["squeue", "-n", self.name], capture_output=True, text=True).stdout
                launcher = self.log.read_text()[-3000:]
                pytest.fail(f"timed out waiting for {what}\nsqueue:\n{queue}\nlauncher:\n{launcher}")
            time.sleep(0.5)

    def status(self, num: int) -> str | None:
        rec = self.record(num)
        return None if rec is None else rec["status"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        subprocess.run(["scancel", "--name", self.name], capture_output=True)


@pytest.fixture
def sweep(slurm_cluster: None, make_app: Callable[..., Path],
          request: pytest.FixtureRequest) -> Iterator[Callable[..., Sweep]]:
    started: list[Sweep] = []

    def _launch(*args: str, partition: str = "debug", app: str = "slurm_app") -> Sweep:
        run = Sweep(make_app(app), f"hl-{request.node.name[5:40]}-{os.getpid()}", args, partition)
        started.append(run)
        return run

    yield _launch
    for run in started:
        run.stop()


def sacct_state(job_id: int | str) -> str:
    out = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "State", "-j", str(job_id)], capture_output=True, text=True)
    return out.stdout.strip()


@pytest.mark.slurm
def test_sweep_of_several_jobs_completes_with_slurm_ids_and_one_failure(sweep):
    run = sweep("hydra.launcher.timeout_min=5", "x=1,2,3", "fail_x=2")
    run.wait("3 finished jobs", lambda: all(run.status(n) in ("COMPLETED", "FAILED") for n in range(3)))
    frame = hydra_ledger.load_runs(run.dir).sort_values("job_num").reset_index(drop=True)  # rows come in start order
    assert frame["job_num"].tolist() == [0, 1, 2]
    assert frame["status"].tolist() == ["COMPLETED", "FAILED", "COMPLETED"]
    assert frame["summary.x2"].tolist()[::2] == [2, 6]
    failed = frame.iloc[1]
    assert (failed["error.type"], failed["error.message"]) == ("ValueError", "requested failure for x=2")
    assert 'raise ValueError(f"requested failure for x={cfg.x}")' in failed["error.traceback"]
    array_id = int(frame["slurm.array_job_id"][0])
    assert frame["slurm.array_job_id"].tolist() == [str(array_id)] * 3
    assert frame["slurm.array_task_id"].tolist() == [0, 1, 2]
    assert frame["slurm.job_id"].nunique() == 3  # SLURM_JOB_ID is unique per array task
    assert frame["slurm.submitit_job_id"].tolist() == [f"{array_id}_{i}" for i in range(3)]
    assert frame["slurm.partition"].tolist() == ["debug"] * 3
    assert frame["slurm.job_name"].tolist() == [run.name] * 3
    assert frame["slurm.restart_count"].tolist() == [0, 0, 0]
    assert frame["slurm.cluster"].notna().all() and frame["slurm.node"].notna().all()
    assert frame["slurm.submitit_executor"].tolist() == ["slurm"] * 3
    for i, row in frame.iterrows():
        rec = run.record(i)
        assert rec["job"]["id"] == f"{array_id}_{i}"
        assert row["slurm.stdout"] == str(run.dir / ".submitit" / f"{array_id}_{i}" / f"{array_id}_{i}_0_log.out")
        assert Path(row["slurm.stdout"]).is_file() and Path(row["slurm.stderr"]).is_file()
        assert [(a["attempt"], a["job_id"], a["array_task_id"], a["restart_count"]) for a in rec["attempts"]] == [
            (1, row["slurm.job_id"], i, 0)
        ]


@pytest.mark.slurm
def test_scancel_of_a_running_job_is_died_then_cancelled_by_sacct(sweep):
    run = sweep("hydra.launcher.timeout_min=5", "x=1", "sleep=300")
    job_id = run.wait("the job to run", lambda: (run.record(0) or {}).get("slurm", {}).get("job_id"))
    subprocess.run(["scancel", str(job_id)], check=True)
    run.wait("Slurm to end the job", lambda: sacct_state(job_id).startswith("CANCELLED"), timeout=60)
    # submitit bypasses SIGTERM and Slurm SIGKILLs after KillWait: the record stays RUNNING.
    # sacct may say CANCELLED before the job has even received the SIGTERM: wait for its note.
    rec = run.wait("the SIGTERM noted in the record", lambda: (r := run.record(0)) and "signals" in r and r,
                   timeout=30)
    assert rec["status"] == "RUNNING"
    assert [s["signal"] for s in rec["signals"]][:1] == ["SIGTERM"]  # noted, then killed
    # the process lives until KillWait's SIGKILL; stale after max(3 * 1 s, 1 s + 5) = 6 s
    run.wait("a stale heartbeat", lambda: time.time() - run.last_beat(0) > 7, timeout=30)
    # without sacct on the PATH the loader can only say DIED ...
    no_sacct = {"PATH": os.path.dirname(sys.executable)}
    code = f"import hydra_ledger; print(hydra_ledger.load_runs({str(run.dir)!r})['status'][0])"
    proc = subprocess.run([sys.executable, "-c", code], env=app_env(no_sacct), capture_output=True, text=True)
    assert proc.stdout.strip() == "DIED", proc.stderr
    # ... with sacct, one call turns it into Slurm's own verdict
    frame = hydra_ledger.load_runs(run.dir)
    assert frame["status"].tolist() == ["CANCELLED"]
    assert frame["slurm.state"][0].startswith("CANCELLED by")


@pytest.mark.slurm
def test_job_reaching_its_time_limit_is_timeout(sweep):
    """SIGUSR2 30 s before a 1 min limit and no retries (submitit's max_num_timeout=0): submitit
    raises "timed-out too many times" into the task at once."""
    run = sweep(*TIME_LIMIT, "x=1", "sleep=300")
    # the 1 min limit, submitit's signal and the job's end: about 90 s on a quiet machine, the
    # 150 s once allowed were seen to run out on a loaded 2-core CI machine
    run.wait("the time-out", lambda: run.record(0) is not None
             and hydra_ledger.load_runs(run.dir)["status"].tolist() == ["TIMEOUT"], timeout=240)
    rec = run.record(0)
    assert [(s["signal"], s["case"]) for s in rec["signals"] if s["signal"] == "SIGUSR2"] == [("SIGUSR2", "timed-out")]
    if rec["status"] == "RUNNING":
        # Slurm sent SIGCONT with the SIGUSR2 and submitit's error was raised while its SIGCONT
        # handler was logging: logging swallowed it and Slurm ended the job at its limit (the
        # path of test_time_out_error_never_reaching_the_task_loads_as_timeout)
        return
    assert rec["status"] == "TIMEOUT"
    assert (rec["error"]["type"], rec["error"]["message"]) == (
        "UncompletedJobError", "Job not requeued because: timed-out too many times.")
    assert [a["status"] for a in rec["attempts"]] == ["TIMEOUT"]


@pytest.mark.slurm
def test_time_out_error_never_reaching_the_task_loads_as_timeout(sweep):
    """A task that catches every Exception never ends on submitit's time-out error; Slurm ends it at
    the limit. The record's last SIGUSR2 note ("timed-out", not requeued), not sacct, makes it TIMEOUT."""
    run = sweep(*TIME_LIMIT, "x=1", "sleep=300", "catch_errors=true")
    job_id = run.wait("the job to run", lambda: (run.record(0) or {}).get("slurm", {}).get("job_id"))
    run.wait("Slurm to end the job", lambda: sacct_state(job_id) == "TIMEOUT", timeout=240)
    rec = run.record(0)
    assert rec["status"] == "RUNNING"
    assert [(s["signal"], s["case"], s["outcome"]) for s in rec["signals"] if s["signal"] == "SIGUSR2"] == [
        ("SIGUSR2", "timed-out", "not requeued: Job not requeued because: timed-out too many times.")]
    run.wait("a stale heartbeat", lambda: time.time() - run.last_beat(0) > 7, timeout=30)
    frame = hydra_ledger.load_runs(run.dir)
    assert frame["status"].tolist() == ["TIMEOUT"]
    assert "slurm.state" not in frame.columns  # sacct was not asked: only DIED and PREEMPTED rows are


@pytest.mark.slurm
def test_job_killed_at_its_time_limit_is_died_then_timeout_by_sacct(sweep):
    """No SIGUSR2 handled before the limit: submitit bypasses Slurm's SIGTERM, SIGKILL follows
    KillWait later, and the record is left RUNNING; sacct's TIMEOUT is what the loader shows."""
    run = sweep(*TIME_LIMIT, "x=1", "sleep=300", "ignore_usr2=true")
    job_id = run.wait("the job to run", lambda: (run.record(0) or {}).get("slurm", {}).get("job_id"))
    run.wait("Slurm to end the job", lambda: sacct_state(job_id) == "TIMEOUT", timeout=120)
    rec = run.record(0)
    assert rec["status"] == "RUNNING"
    assert "SIGTERM" in [s["signal"] for s in rec.get("signals", [])]
    run.wait("a stale heartbeat", lambda: time.time() - run.last_beat(0) > 7, timeout=30)
    frame = hydra_ledger.load_runs(run.dir)
    assert frame["status"].tolist() == ["TIMEOUT"]
    assert frame["slurm.state"].tolist() == ["TIMEOUT"]


@pytest.mark.slurm
def test_preempted_job_is_requeued_and_completes_with_two_attempts(sweep):
    # timeout_min > 10: submitit then tells a preemption from a time-out; 2 CPUs: the job holds the
    # whole node, so the urgent job preempts it and nothing else
    run = sweep("hydra.launcher.timeout_min=20", "hydra.launcher.cpus_per_task=2", "x=5", "sleep_first=300")
    job_id = run.wait("the job to run", lambda: (run.record(0) or {}).get("slurm", {}).get("job_id"))
    subprocess.run(["sbatch", "-p", "urgent", "-c", "2", "-J", run.name, "-o", "/dev/null", "--wrap", "sleep 1"],
                   check=True, capture_output=True)
    run.wait("the preemption", lambda: run.status(0) == "PREEMPTED", timeout=60)
    frame = hydra_ledger.load_runs(run.dir)  # requeued and waiting: sacct says PENDING or REQUEUED
    assert (frame["status"][0], frame["slurm.state"][0] in ("PENDING", "REQUEUED", "PREEMPTED")) == ("PREEMPTED", True)

    def restarted() -> bool:  # skip the 120 s BeginTime of a requeued job
        subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], capture_output=True)
        return len((run.record(0) or {}).get("attempts", [])) == 2

    run.wait("the second attempt", restarted, timeout=90)
    run.wait("completion", lambda: run.status(0) == "COMPLETED", timeout=60)
    rec = run.record(0)
    first, second = rec["attempts"]
    assert {k: first[k] for k in ("attempt", "status", "requeued", "ended_by", "job_id", "restart_count")} == {
        "attempt": 1, "status": "PREEMPTED", "requeued": True, "ended_by": "SIGUSR2: preempted",
        "job_id": job_id, "restart_count": 0,
    }
    # submitit's own requeue normally wins; on a busy machine Slurm's requeue may come first
    outcomes = [(s["case"], s["outcome"].split(" (")[0]) for s in first["signals"] if s["signal"] == "SIGUSR2"]
    assert outcomes in ([("preempted", "requeued")], [("preempted", "requeued by Slurm")])
    assert (second["attempt"], second["status"], second["job_id"], second["restart_count"]) == (
        2, "COMPLETED", job_id, 1)
    assert rec["summary"] == {"x2": 10, "attempt": 2}
    assert rec["slurm"]["restart_count"] == 1


@pytest.mark.slurm
def test_preempted_job_without_grace_time_is_preempted_though_submitits_requeue_fails(sweep):
    """GraceTime=0 (Slurm's default): Slurm requeues the job as it signals it, so submitit's own
    `scontrol requeue` fails inside its handler and the error reaches the task. The job will
    start again: PREEMPTED, not FAILED."""
    run = sweep("hydra.launcher.timeout_min=20", "hydra.launcher.cpus_per_task=2", "x=5", "sleep_first=300",
                partition="nograce")
    job_id = run.wait("the job to run", lambda: (run.record(0) or {}).get("slurm", {}).get("job_id"))
    subprocess.run(["sbatch", "-p", "urgent", "-c", "2", "-J", run.name, "-o", "/dev/null", "--wrap", "sleep 1"],
                   check=True, capture_output=True)
    run.wait("the preemption", lambda: run.status(0) not in (None, "RUNNING"), timeout=60)
    rec = run.record(0)
    usr2 = [s for s in rec["signals"] if s["signal"] == "SIGUSR2"]
    assert [(s["case"], s["outcome"]) for s in usr2] == [("preempted", "requeued by Slurm (submitit's own requeue "
            f"failed: Command '['scontrol', 'requeue', '{job_id}']' returned non-zero exit status 1.)")]
    assert rec["status"] == "PREEMPTED"
    attempt = rec["attempts"][-1]
    assert (attempt["status"], attempt["requeued"], attempt["ended_by"]) == ("PREEMPTED", True, "SIGUSR2: preempted")
    assert hydra_ledger.load_runs(run.dir)["status"].tolist() == ["PREEMPTED"]


@pytest.mark.slurm
def test_array_of_50_jobs_writes_whole_records_with_pending_rows_meanwhile(sweep):
    run = sweep("hydra.launcher.timeout_min=5", "x=range(0,50)")
    def submitted() -> bool:
        names = [p.name for p in (run.dir / ".submitit").glob("*")]
        return len([n for n in names if re.fullmatch(r"\d+_\d+", n)]) == 50

    run.wait("the submission", submitted, timeout=60)
    early = hydra_ledger.load_runs(run.dir)
    assert sorted(early["job_num"]) == list(range(50))  # started or not, every job has a row
    pending = early[early["status"] == "PENDING"]
    assert len(pending) > 0  # 2 CPUs: most tasks wait
    array_id = pending["slurm.array_job_id"].iloc[0]
    assert (pending["slurm.submitit_job_id"] == array_id + "_" + pending["job_num"].astype(str)).all()
    assert set(early["status"]) <= {"PENDING", "RUNNING", "COMPLETED"}
    # a task cancelled while pending leaves no sacct record in Slurm 22.05; it must not stay PENDING
    subprocess.run(["scancel", f"{array_id}_49"], check=True)
    run.wait("49 completed jobs", lambda: all(run.status(n) == "COMPLETED" for n in range(49)), timeout=240)
    frame = hydra_ledger.load_runs(run.dir, errors="raise").sort_values("job_num", ignore_index=True)
    assert frame["job_num"].tolist() == list(range(50))
    started = frame[frame["run_id"].notna()]
    assert started["summary.x2"].tolist() == [2 * x for x in range(49)]
    assert started["run_id"].nunique() == 49
    assert started["slurm.array_task_id"].tolist() == list(range(49))
    assert set(started["status"]) == {"COMPLETED"}
    assert frame.iloc[49][["status", "slurm.submitit_job_id", "slurm.state"]].tolist() == [
        "CANCELLED", f"{array_id}_49", "CANCELLED (while pending; sacct has no record)"]


def test_joblib_parallel_workers_write_whole_records(make_app, run_app):
    app = make_app("slurm_app")
    proc = run_app(app, "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=4", "hydra.sweep.dir=sweep",
                   "x=range(0,16)")
    assert proc.returncode == 0, proc.stderr
    frame = hydra_ledger.load_runs(app / "sweep", errors="raise")
    assert sorted(frame["job_num"]) == list(range(16))
    assert sorted(frame["summary.x2"]) == [2 * x for x in range(16)]
    assert frame["run_id"].nunique() == 16 and set(frame["status"]) == {"COMPLETED"}
    assert frame["host.pid"].nunique() > 1  # really several worker processes


def test_parse_sacct_expands_pending_array_ranges():
    text = "58|57_0|COMPLETED\n57|57_1|CANCELLED by 0\n59|59_[2-4,7%8]|PENDING\n60|60|TIMEOUT\n"
    assert parse_sacct(text) == {
        "58": "COMPLETED", "57_0": "COMPLETED", "57": "CANCELLED by 0", "57_1": "CANCELLED by 0",
        "59": "PENDING", "59_[2-4,7%8]": "PENDING", "59_2": "PENDING", "59_3": "PENDING", "59_4": "PENDING",
        "59_7": "PENDING", "60": "TIMEOUT",
    }


MB = 1024 * 1024


@pytest.mark.slurm
def test_sacct_efficiency_of_a_finished_job_against_what_it_asked_for(sweep):
    """seff's figures as columns: 2G asked, ~230M used. The test cluster gathers accounting every
    30 s (Slurm's default), so the job asks for a 1 s sampling to be seen in a few seconds."""
    run = sweep("hydra.launcher.timeout_min=5", "hydra.launcher.mem_gb=2", "hydra.launcher.cpus_per_task=1",
                '+hydra.launcher.additional_parameters={acctg-freq:"task=1"}', "mb=200", "burn_s=1.5", "hold_s=2",
                app="resources_app")
    run.wait("the job to complete", lambda: run.status(0) == "COMPLETED")
    job_id = run.record(0)["slurm"]["job_id"]
    run.wait("sacct to account the job", lambda: sacct_state(job_id) == "COMPLETED")
    # each load asks sacct once, with a time-out: on a machine busy with the suite one call may
    # get no answer (the loader then warns and leaves the columns out), so load until one answers
    (row,) = run.wait("a load with sacct's answer", lambda: _with_usage(hydra_ledger.load_runs(run.dir)), timeout=60)
    assert row["slurm.req_mem_bytes"] == 2 * 1024 ** 3
    assert (row["slurm.req_cpus"], row["slurm.alloc_cpus"], row["slurm.timelimit_s"]) == (1, 1, 300.0)
    assert 200 * MB <= row["slurm.max_rss_bytes"] <= 400 * MB
    # Python's round, as the loader's: numpy's rounds the double 0.69675 up, Python's (exact) down
    assert row["slurm.mem_efficiency"] == round(int(row["slurm.max_rss_bytes"]) / 2 ** 31, 4)
    assert row["slurm.total_cpu_s"] >= 1.5
    assert row["slurm.elapsed_s"] >= 2
    assert row["slurm.cpu_efficiency"] == round(float(row["slurm.total_cpu_s"]) / float(row["slurm.elapsed_s"]), 4)
    # the job's own sampling saw the same process (sacct: the srun step's tree, with submitit around it)
    assert abs(row["slurm.max_rss_bytes"] - row["resources.peak_rss_bytes"]) <= 100 * MB


def _with_usage(frame: Any) -> tuple[Any] | None:
    """The first row of ``frame``, when it has sacct's usage columns."""
    return (frame.iloc[0],) if "slurm.req_mem_bytes" in frame.columns else None


def test_parse_usage_computes_what_seff_shows():
    text = ("14|14|COMPLETED|1G|1|1|00:02:00|00:00:04|00:01.280|\n"
            "14.batch|14.batch|COMPLETED||1|1||00:00:04|00:00.014|1024K\n"
            "14.0|14.0|COMPLETED||1|1||00:00:04|00:01.265|218264K\n"
            "58|57_0|TIMEOUT|2Gc|2|2|1-00:00:00|1-00:00:03|1-12:00:00|\n"
            "58.0|57_0.0|CANCELLED||2|2||1-00:00:03|1-12:00:00|3.50G\n"
            "60|60|PENDING|4000M|4|0|UNLIMITED|00:00:00|00:00:00|\n")
    assert parse_usage(text) == {
        "14": {"slurm.req_cpus": 1, "slurm.alloc_cpus": 1, "slurm.timelimit_s": 120.0, "slurm.elapsed_s": 4.0,
               "slurm.total_cpu_s": 1.28, "slurm.req_mem_bytes": 1024 ** 3, "slurm.max_rss_bytes": 218264 * 1024,
               "slurm.mem_efficiency": 0.2082, "slurm.cpu_efficiency": 0.32},
        "58": {"slurm.req_cpus": 2, "slurm.alloc_cpus": 2, "slurm.timelimit_s": 86400.0, "slurm.elapsed_s": 86403.0,
               "slurm.total_cpu_s": 129600.0, "slurm.req_mem_bytes": 4 * 1024 ** 3,
               "slurm.max_rss_bytes": round(3.5 * 1024 ** 3), "slurm.mem_efficiency": 0.875,
               "slurm.cpu_efficiency": 0.75},
        "60": {"slurm.req_cpus": 4, "slurm.alloc_cpus": 0, "slurm.elapsed_s": 0.0, "slurm.total_cpu_s": 0.0,
               "slurm.req_mem_bytes": 4000 * MB},
    }
    assert parse_sacct(text) == {"14": "COMPLETED", "58": "TIMEOUT", "57_0": "TIMEOUT", "60": "PENDING"}
