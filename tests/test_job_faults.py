"""Faults on the job side: a kill while the record is first written, a full disk, a signal while
the final status is saved, a live job whose heartbeat stops (#12). Real apps, real signals, real
git repos, a real (small) file system."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
from conftest import app_env, git, record, start_app, wait_for

import hydra_ledger
from hydra_ledger.cli import main as cli_main
from hydra_ledger.load import LedgerLoadWarning


def finish(proc: subprocess.Popen, timeout: float = 60) -> tuple[int | None, str]:
    """Wait for the app: (exit code, stdout + stderr); one still running after ``timeout`` (a
    deadlock) is killed: exit code None."""
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
        return proc.returncode, stdout + stderr
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        return None, stdout + stderr


def temp_files(job_dir: Path) -> list[str]:
    return sorted(p.name for p in (job_dir / ".ledger").glob("*.tmp"))


@pytest.fixture
def app(make_app):
    return make_app("fault_app")


# -- 6. a kill while the job's record is first written ------------------------------------------


@pytest.fixture
def slow_git(app, tmp_path):
    """git status in the app's repo takes seconds: a real fsmonitor hook that sleeps (as a slow
    network file system or a huge work tree would); it touches ``in_git`` when called."""
    marker = tmp_path / "in_git"
    hook = tmp_path / "slow-fsmonitor.sh"
    hook.write_text(f"#!/bin/sh\ntouch '{marker}'\nexec sleep 8\n")
    hook.chmod(0o755)
    git(app, "config", "core.fsmonitor", str(hook))
    return marker


@pytest.mark.parametrize(("sig", "expected"), [(signal.SIGKILL, "DIED"), (signal.SIGTERM, "INTERRUPTED"),
                                               (signal.SIGINT, "INTERRUPTED")], ids=["sigkill", "sigterm", "ctrl-c"])
def test_a_job_killed_while_its_start_hook_captures_git_is_recorded(app, slow_git, sig, expected):
    out = app / "out"
    proc = start_app(app, "hydra.run.dir=out", "hydra.callbacks.ledger.heartbeat_s=0.2", "sleep=60")
    try:
        wait_for(slow_git, proc)  # on_job_start is inside `git status`
        proc.send_signal(sig)
        returncode, stderr = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert returncode is not None and returncode != 0, stderr
    assert not (out / "started").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame = hydra_ledger.load_runs(out, stale_after=0.0)
    assert frame["status"].tolist() == [expected], stderr
    rec = record(out)
    assert rec["job"]["name"] == "app"
    assert rec["overrides"] == ["sleep=60"]
    assert rec["attempts"][-1]["pid"] == proc.pid
    assert rec["started_at"] and rec["host"]["hostname"]
    assert "git" not in rec or rec["git"].get("state") != "ok"  # killed before git answered
    assert temp_files(out) == []


def test_a_ledger_dir_without_a_record_is_reported_naming_it(app, tmp_path):
    """A job killed before its first write (an older hydra-ledger) leaves `.ledger/` only: loads say so."""
    job = tmp_path / "runs" / "lost"
    (job / ".ledger").mkdir(parents=True)
    long_ago = time.time() - 3600
    os.utime(job / ".ledger", (long_ago, long_ago))
    for load in (lambda: hydra_ledger.load_runs(tmp_path / "runs"),  # indexed,
                 lambda: hydra_ledger.load_runs(tmp_path / "runs"),  # from the index,
                 lambda: hydra_ledger.load_runs(tmp_path / "runs", cache="off"),  # without one
                 lambda: hydra_ledger.load_metrics(tmp_path / "runs")):
        with pytest.warns(LedgerLoadWarning, match="lost/.ledger/run.json: missing"):
            assert len(load()) == 0


def test_a_ledger_dir_a_starting_job_has_not_written_to_yet_is_not_reported(app, tmp_path):
    """Between creating `.ledger/` and its first write a job is starting, not lost: a load racing a
    sweep stays silent about it (and reports it once it is older than a dead heartbeat would be)."""
    (tmp_path / "runs" / "starting" / ".ledger").mkdir(parents=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for cache in ("auto", "auto", "off"):
            assert len(hydra_ledger.load_runs(tmp_path / "runs", cache=cache, errors="raise")) == 0
        assert len(hydra_ledger.load_metrics(tmp_path / "runs")) == 0


# -- 7. a full disk -----------------------------------------------------------------------------


@pytest.fixture
def small_fs(tmp_path):
    """A 2 MB tmpfs (needs root and a kernel that lets us mount); unmounted after the test."""
    mount = tmp_path / "small"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs (mount -t tmpfs -o size=2m: {proc.stderr.strip()})")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.parametrize(("fail", "expected", "expected_rc"), [(False, "COMPLETED", 0), (True, "FAILED", 1)],
                         ids=["returning", "raising"])
def test_a_task_that_fills_its_disk_keeps_its_final_status_and_exit_code(app, small_fs, tmp_path, fail, expected,
                                                                          expected_rc):
    out = small_fs / "out"
    marker = tmp_path / "task-runs"
    proc = start_app(app, f"hydra.run.dir={out}", "hydra.callbacks.ledger.heartbeat_s=0.2", "fill_disk=true",
                     f"fail={str(fail).lower()}", "sleep=2.5", env={"FAULT_MARKER": str(marker)})
    try:
        wait_for(marker, proc)
        assert os.statvfs(small_fs).f_bavail == 0  # the disk is full
        time.sleep(1.5)  # the heartbeat goes on in place, and the process lives: RUNNING
        assert hydra_ledger.load_runs(out, stale_after=1.0, cache="off")["status"].tolist() == ["RUNNING"]
        returncode, stderr = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert returncode == expected_rc, stderr
    assert record(out)["status"] == expected
    assert hydra_ledger.load_runs(out, cache="off")["status"].tolist() == [expected]
    rec = record(out)
    if fail:
        assert rec["error"]["type"] == "ValueError"
    else:
        assert rec["summary"] == {"x": 1}
    assert temp_files(out) == []
    # the ledger said why optional files were left out, once
    assert stderr.count("optional files") == 1, stderr
    assert not (out / ".ledger" / "packages.json").exists()


# -- 8. a signal while the final status is saved ------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
@pytest.mark.parametrize("point", ["wait_for", "write_atomic", "c:write", "c:replace"],
                         ids=["in-stop-heartbeat", "status-set-not-saved", "temp-file-empty", "before-replace"])
@pytest.mark.parametrize(("fail", "expected"), [(False, "COMPLETED"), (True, "FAILED")], ids=["returning", "raising"])
def test_a_signal_while_the_final_status_is_saved_keeps_it(app, point, sig, fail, expected):
    out = app / "out"
    proc = start_app(app, "hydra.run.dir=out", f"fail={str(fail).lower()}",
                     env={"FAULT_SIGNAL_AT": point, "FAULT_SIGNAL": sig.name})
    returncode, stderr = finish(proc, timeout=30)
    assert returncode is not None, f"the job hung (deadlock) after {sig.name} at {point}: {stderr}"
    if sig == signal.SIGTERM:
        assert returncode == -signal.SIGTERM, stderr  # the signal still ends the process, as it would have
    rec = record(out)
    assert rec["status"] == expected, stderr
    assert rec["attempts"][-1]["status"] == expected
    assert rec["ended_at"] is not None
    assert temp_files(out) == []
    assert hydra_ledger.load_runs(out, cache="off")["status"].tolist() == [expected]


def test_sigterm_at_random_moments_of_the_end_hook_never_loses_the_status(app, tmp_path):
    """Many runs, each sending itself SIGTERM a random 0-2 ms after the ledger starts writing the final status."""
    runs = 24

    def one(i: int) -> tuple[int | None, str, dict, list[str]]:
        proc = start_app(app, f"hydra.run.dir=out{i}", env={"FAULT_SIGNAL_AT": "random:2"})
        returncode, stderr = finish(proc, timeout=60)
        job = app / f"out{i}"
        return returncode, stderr, record(job), temp_files(job)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(one, range(runs)))
    for returncode, stderr, rec, temps in results:
        assert returncode is not None, f"hung: {stderr}"
        assert rec["status"] == "COMPLETED", stderr  # the signal came after the job's outcome was known
        assert temps == []


def failing_run_ctrl_c_at(app: Path, point: str) -> tuple[dict, str]:
    """A run whose task raises, sent Ctrl-C at ``point`` (see FAULT_SIGNAL_AT in the fault app):
    (its record, its output), once the process has ended by Ctrl-C, as it would without the ledger."""
    proc = start_app(app, "hydra.run.dir=out", "fail=true", env={"FAULT_SIGNAL_AT": point, "FAULT_SIGNAL": "SIGINT"})
    returncode, output = finish(proc, timeout=60)
    assert returncode == -signal.SIGINT, output
    rec = record(app / "out")
    assert [s["signal"] for s in rec["signals"]] == ["SIGINT"], output
    return rec, output


def test_ctrl_c_once_the_task_raised_keeps_its_failure(app):
    """Ctrl-C lands after the task raised, while Hydra stores its exception (before any end hook):
    the run failed by itself, so it is FAILED with the task's traceback, the SIGINT noted."""
    rec, output = failing_run_ctrl_c_at(app, "run_job:return_value")
    assert (rec["status"], rec["error"]["type"]) == ("FAILED", "ValueError"), output
    assert "x=1 is bad" in rec["error"]["traceback"]
    assert hydra_ledger.load_runs(app / "out", cache="off")["status"].tolist() == ["FAILED"]


def test_ctrl_c_while_the_task_handles_its_failure_interrupts_it(app):
    """Ctrl-C inside the task's own except block (it cleans up before re-raising) stops the task
    itself: INTERRUPTED, even though an exception was being handled."""
    rec, output = failing_run_ctrl_c_at(app, "main:clean_up")
    assert (rec["status"], rec["error"]["type"]) == ("INTERRUPTED", "KeyboardInterrupt"), output


# -- a signal the app catches, then completes ----------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_the_app_catches_is_recorded_in_the_completed_job(app, sig, capsys):
    """A training script that stops early on Ctrl-C or SIGTERM and returns normally is COMPLETED,
    and its record, row and ``show`` say which signal arrived."""
    out = app / "out"
    proc = start_app(app, "hydra.run.dir=out", "sleep=60", env={"FAULT_CATCH": sig.name})
    wait_for(out / ".ledger" / "run.json", proc)
    time.sleep(1)  # the task is in its sleep
    proc.send_signal(sig)
    returncode, output = finish(proc, timeout=30)
    assert returncode == 0, output
    rec = record(out)
    assert rec["status"] == "COMPLETED", output
    assert [s["signal"] for s in rec["signals"]] == [sig.name]
    assert hydra_ledger.load_runs(out, cache="off")["signals"].tolist() == [sig.name]
    assert cli_main(["show", str(out)]) == 0
    assert f"signals:      {sig.name} at " in capsys.readouterr().out


def test_a_job_that_is_sent_no_signal_has_no_signals_column(app):
    out = app / "out"
    returncode, output = finish(start_app(app, "hydra.run.dir=out", env={"FAULT_CATCH": "SIGINT"}))
    assert returncode == 0, output
    assert "signals" not in record(out)
    assert "signals" not in hydra_ledger.load_runs(out, cache="off").columns


# -- 16. a live job whose heartbeat stops -------------------------------------------------------


def test_a_stopped_job_whose_heartbeat_is_stale_is_running_and_not_resumed(app, capsys):
    """SIGSTOP (Ctrl-Z, or a task holding the GIL) stops the heartbeat of a process that lives:
    it is RUNNING, and `resume` leaves it alone; once it is gone it is DIED."""
    sweep = app / "sweep"
    proc = subprocess.Popen(
        [sys.executable, "app.py", "-m", "hydra.sweep.dir=sweep", "hydra.callbacks.ledger.heartbeat_s=0.2",
         "x=1", "sleep=60"],
        cwd=app, env=app_env({"FAULT_MARKER": str(app / "task-runs")}), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        wait_for(app / "task-runs", proc)
        wait_for(sweep / "0" / ".ledger" / "heartbeat", proc)  # the first beat comes one interval after the start
        job_pid = int((app / "task-runs").read_text())
        os.kill(job_pid, signal.SIGSTOP)
        time.sleep(1.0)
        beat = float((sweep / "0" / ".ledger" / "heartbeat").read_text())
        assert time.time() - beat > 0.8  # stale
        assert hydra_ledger.load_runs(sweep, stale_after=0.5)["status"].tolist() == ["RUNNING"]
        assert hydra_ledger.load_runs(sweep, stale_after=0.5, cache="off")["status"].tolist() == ["RUNNING"]
        capsys.readouterr()
        assert cli_main(["resume", str(sweep), "--stale-after", "0.5", "--dry-run"]) == 0
        captured = capsys.readouterr()
        printed = captured.out
        assert "to relaunch" not in printed, printed
        assert "left alone: 0 RUNNING" in printed
        assert captured.err == (f"hydra-ledger: job 0 is left alone: its process (pid {job_pid}) "
                                "still runs on this host\n")
    finally:
        proc.kill()
        proc.communicate()
    assert hydra_ledger.load_runs(sweep, stale_after=0.5)["status"].tolist() == ["DIED"]
    # the job's pid reused by another live process (here: this one) is not the job: start times differ
    path = sweep / "0" / ".ledger" / "run.json"
    rec = json.loads(path.read_text())
    assert isinstance(rec["attempts"][-1]["pid_start"], int)
    rec["attempts"][-1]["pid"] = os.getpid()
    path.write_text(json.dumps(rec))
    assert hydra_ledger.load_runs(sweep, stale_after=0.5, cache="off")["status"].tolist() == ["DIED"]


def test_a_job_holding_the_gil_is_running_though_its_heartbeat_is_stale(app, tmp_path):
    """One long C call holds the GIL: the heartbeat thread cannot beat, yet the job lives."""
    out = app / "out"
    marker = tmp_path / "task-runs"
    proc = start_app(app, "hydra.run.dir=out", "hydra.callbacks.ledger.heartbeat_s=0.2", "hold_gil=6",
                     env={"FAULT_MARKER": str(marker)})
    try:
        wait_for(marker, proc)
        time.sleep(2.0)
        assert proc.poll() is None
        beats = out / ".ledger" / "heartbeat"  # none at all when the GIL was held before the first beat
        beat = float(beats.read_text()) if beats.exists() else pd.Timestamp(record(out)["started_at"]).timestamp()
        assert time.time() - beat > 1.0, "the heartbeat went on: the GIL was not held"
        assert hydra_ledger.load_runs(out, stale_after=1.0, cache="off")["status"].tolist() == ["RUNNING"]
        returncode, output = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert returncode == 0, output
    assert hydra_ledger.load_runs(out)["status"].tolist() == ["COMPLETED"]


# -- a Ctrl-C while the heartbeat thread starts ---------------------------------------------------


INTERRUPT_AT_HEARTBEAT = '''\
"""app.py, with Ctrl-C arriving while the ledger starts its heartbeat thread (as a real one can:
Thread.start waits for the new thread, and a signal's KeyboardInterrupt is raised there)."""
import os
import runpy
import signal
import threading

start = threading.Thread.start


def start_interrupted(self):
    if self.name == "hydra-ledger-heartbeat":
        os.kill(os.getpid(), signal.SIGINT)
    start(self)


threading.Thread.start = start_interrupted
runpy.run_path("app.py", run_name="__main__")
'''


def test_ctrl_c_while_the_heartbeat_thread_starts_is_recorded(app, run_app):
    """The heartbeat thread is then never started: stopping it must not try to join it (a
    RuntimeError that left the record RUNNING, loaded as DIED, for a job that was interrupted)."""
    (app / "interrupt_at_heartbeat.py").write_text(INTERRUPT_AT_HEARTBEAT)
    result = run_app(app, "hydra.run.dir=out", "sleep=0", script="interrupt_at_heartbeat.py")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "cannot join thread" not in output
    rec = record(app / "out")
    assert (rec["status"], rec["error"]["type"]) == ("INTERRUPTED", "KeyboardInterrupt"), output
    assert hydra_ledger.load_runs(app / "out", stale_after=0.0)["status"].tolist() == ["INTERRUPTED"]
