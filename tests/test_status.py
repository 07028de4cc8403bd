"""Statuses of jobs that do not end normally: Ctrl-C, SIGTERM, SIGKILL (DIED once the heartbeat is stale)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import app_env, record, start_app, wait_for

import hydra_ledger
from hydra_ledger.job.sweep_interrupt import STOPPED_MESSAGE, mark_lost_jobs

LEDGER = "hydra/callbacks=ledger"


def signalled(app: Path, sig: signal.Signals, *args: str) -> tuple[int, str]:
    """Start a sleeping job, send ``sig`` once its task runs, return (exit code, stderr)."""
    proc = start_app(app, *args, "hydra.run.dir=out", "sleep=60")
    try:
        wait_for(app / "out" / "started", proc)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, stderr


@pytest.fixture
def app(make_app):
    return make_app("ledger_app")


@pytest.mark.parametrize(
    ("sig", "expected_rc", "error_type"),
    [(signal.SIGINT, -signal.SIGINT, "KeyboardInterrupt"), (signal.SIGTERM, -signal.SIGTERM, "SIGTERM")],
    ids=["ctrl-c", "sigterm"],
)
@pytest.mark.parametrize("ledger", [False, True], ids=["without-ledger", "with-ledger"])
def test_interrupted_job(app, sig, expected_rc, error_type, ledger):
    """The exit code is the one the app has without the ledger; the record says INTERRUPTED."""
    returncode, stderr = signalled(app, sig, *([LEDGER] if ledger else []))
    assert returncode == expected_rc, stderr
    if not ledger:
        assert not (app / "out" / ".ledger").exists()
        return
    rec = record(app / "out")
    assert rec["status"] == "INTERRUPTED"
    assert rec["error"]["type"] == error_type
    assert rec["attempts"][-1]["status"] == "INTERRUPTED"
    assert rec["ended_at"] is not None
    if sig == signal.SIGINT:
        assert rec["error"]["traceback"].endswith("KeyboardInterrupt\n")
        # the app's own frame is in it (where exactly depends on when the signal lands)
        assert 'app.py", line' in rec["error"]["traceback"]
        assert ", in main\n" in rec["error"]["traceback"]
    else:
        assert rec["error"]["message"] == "terminated by SIGTERM"
    frame = hydra_ledger.load_runs(app / "out")
    assert frame["status"].tolist() == ["INTERRUPTED"]


def test_sigkill_stays_running_then_died(app):
    """SIGKILL leaves RUNNING on disk; the loader reports DIED once the heartbeat is stale."""
    out = app / "out"
    proc = start_app(app, LEDGER, "hydra.callbacks.ledger.heartbeat_s=0.5", "hydra.run.dir=out", "sleep=60")
    try:
        wait_for(out / "started", proc)
        heartbeat = out / ".ledger" / "heartbeat"
        wait_for(heartbeat, proc)  # the first beat comes one interval after the start
        first = float(heartbeat.read_text())
        deadline = time.monotonic() + 20
        while float(heartbeat.read_text()) == first:  # the heartbeat is refreshed while the job runs
            assert time.monotonic() < deadline, "heartbeat not refreshed"
            time.sleep(0.1)
        # a live job beating every 0.5 s is RUNNING by the default rule (polled: a load may
        # land in a scheduling stall of the job's heartbeat thread on a busy machine)
        deadline = time.monotonic() + 60
        while hydra_ledger.load_runs(out)["status"].tolist() != ["RUNNING"]:
            assert time.monotonic() < deadline, "a live job not RUNNING within 60 s"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    rec = record(out)
    assert rec["status"] == "RUNNING"
    assert rec["heartbeat_s"] == 0.5
    last_beat = float(heartbeat.read_text())
    assert hydra_ledger.load_runs(out, stale_after=0.0)["status"].tolist() == ["DIED"]
    assert hydra_ledger.load_runs(out, stale_after=3600)["status"].tolist() == ["RUNNING"]
    # default rule: stale after max(3 * heartbeat_s, heartbeat_s + 5) = 5.5 s. Each load is
    # bracketed by the clock, so each status is checked against the heartbeat's age at that
    # load, whatever the machine's speed: RUNNING only while fresh, then DIED for good.
    limit = 5.5
    statuses = []
    deadline = time.monotonic() + limit + 60
    while not statuses or statuses[-1] != ["DIED"]:
        assert time.monotonic() < deadline, f"not DIED within 60 s of going stale: {statuses}"
        before = time.time()
        status = hydra_ledger.load_runs(out)["status"].tolist()
        after = time.time()
        statuses.append(status)
        if status == ["RUNNING"]:
            assert before - last_beat <= limit, f"RUNNING with a heartbeat {before - last_beat:.2f} s old"
        else:
            assert status == ["DIED"]
            assert after - last_beat > limit, f"DIED with a heartbeat {after - last_beat:.2f} s old"
        time.sleep(0.2)
    assert hydra_ledger.load_runs(out)["status"].tolist() == ["DIED"]  # stays DIED
    assert hydra_ledger.load_runs(out, status="DIED")["path"].tolist() == [str(out.resolve())]


def test_a_rerun_in_the_same_dir_is_not_judged_by_the_earlier_runs_heartbeat(app):
    """A job's first heartbeat comes one interval after its start in a fresh .ledger/; in a dir
    that an earlier run left a heartbeat in, the job beats at once: the old beat, an hour old
    here, must not make the new run DIED while it lives."""
    out = app / "out"
    done = subprocess.run([sys.executable, "app.py", LEDGER, "hydra.run.dir=out"], cwd=app, env=app_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    heartbeat = out / ".ledger" / "heartbeat"
    assert not heartbeat.exists()  # a job shorter than its heartbeat interval never beat: its start stands for it
    heartbeat.write_text(f"{time.time() - 3600:.3f}\n")  # as an earlier run killed an hour ago would leave it
    (out / "started").unlink()
    proc = start_app(app, LEDGER, "hydra.run.dir=out", "sleep=60")
    try:
        wait_for(out / "started", proc)
        assert float(heartbeat.read_text()) > time.time() - 60
        assert hydra_ledger.load_runs(out)["status"].tolist() == ["RUNNING"]
    finally:
        proc.kill()
        proc.communicate()


@pytest.mark.parametrize("ledger", [False, True], ids=["without-ledger", "with-ledger"])
def test_sigterm_chains_the_apps_own_handler(app, ledger, monkeypatch):
    """The app's SIGTERM handler still runs (here it exits with 7); the ledger notes the signal."""
    monkeypatch.setenv("APP_SIGTERM_EXIT", "7")
    returncode, stderr = signalled(app, signal.SIGTERM, *([LEDGER] if ledger else []))
    assert returncode == 7, stderr
    if ledger:
        rec = record(app / "out")
        assert rec["status"] == "INTERRUPTED"
        assert rec["error"]["type"] == "SystemExit"
        assert [s["signal"] for s in rec["signals"]] == ["SIGTERM"]


def test_ctrl_c_of_a_joblib_sweep_marks_the_killed_jobs_interrupted(app):
    """Ctrl-C reaches the whole process group; joblib then SIGKILLs its workers, so the launching
    process records the jobs they were running (Hydra 1.4 workers may record themselves first)."""
    sweep = app / "sweep"
    proc = subprocess.Popen(
        [sys.executable, "app.py", "-m", LEDGER, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
         "hydra.sweep.dir=sweep", "x=1,2,3", "sleep=60"],
        cwd=app, env=app_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # a process group of its own, as a terminal's foreground job has
    )
    try:
        for num in (0, 1):
            wait_for(sweep / str(num) / "started", proc)
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == -signal.SIGINT, stderr
    records = [record(sweep / str(num)) for num in (0, 1)]
    assert [(r["status"], r["error"]["type"]) for r in records] == [("INTERRUPTED", "KeyboardInterrupt")] * 2
    assert all(r["host"]["ppid"] == proc.pid for r in records)
    assert not (sweep / "2").exists()
    frame = hydra_ledger.load_runs(sweep).sort_values("job_num")
    assert frame["status"].tolist() == ["INTERRUPTED", "INTERRUPTED"]


def test_lost_jobs_are_marked_only_once_their_process_is_gone(app):
    """A child still running keeps its RUNNING record; once SIGKILLed (a zombie not yet reaped
    counts as gone) it is marked INTERRUPTED; a job of another parent or sweep is never touched."""
    proc = start_app(app, LEDGER, "hydra.run.dir=out", "sleep=60")
    try:
        wait_for(app / "out" / "started", proc)
        assert mark_lost_jobs(app, None, os.getppid(), wait_s=0) == []  # not the job's parent
        assert mark_lost_jobs(app, None, os.getpid(), wait_s=0.3) == []  # alive
        assert record(app / "out")["status"] == "RUNNING"
        os.kill(proc.pid, signal.SIGKILL)
        assert mark_lost_jobs(app, "another-sweep", os.getpid(), wait_s=0) == []
        assert mark_lost_jobs(app, None, os.getpid(), wait_s=30) == [app / "out"]  # before it is reaped
    finally:
        proc.kill()
        proc.communicate()
    rec = record(app / "out")
    assert (rec["status"], rec["error"]["message"], rec["attempts"][-1]["status"]) == (
        "INTERRUPTED", STOPPED_MESSAGE, "INTERRUPTED")
    assert rec["ended_at"] is not None and rec["duration_s"] > 0
    assert hydra_ledger.load_runs(app / "out")["status"].tolist() == ["INTERRUPTED"]
