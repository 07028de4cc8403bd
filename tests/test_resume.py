"""Resuming a broken sweep: only its failed, killed and missing jobs run again, with their numbers."""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import git
from test_rerun import expected_score, repo_state
from test_slurm import sacct_state, slurm_cluster  # noqa: F401  (a fixture)

import hydra_ledger
from hydra_ledger.cli import main as cli_main


def records(sweep: Path) -> dict[int, dict]:
    out = {}
    for path in sweep.glob("*/.ledger/run.json"):
        rec = json.loads(path.read_text())
        out[rec["job"]["num"]] = rec
    return out


def test_resume_reruns_only_failed_killed_and_missing_jobs_keeping_their_numbers(make_app, run_app, capsys):
    app = make_app("rerun_app")
    # job 1 raises, job 3 is SIGKILLed: the basic launcher runs jobs in its own process, so job 4 never starts
    proc = run_app(app, "-m", "seed=0,1,2,3,4", "hydra.sweep.dir=multirun/broken",
                   env={"RERUN_TEST_FAIL_JOBS": "1", "RERUN_TEST_KILL_JOB": "3"})
    assert proc.returncode == -9, proc.stderr
    sweep = app / "multirun" / "broken"
    before_records = records(sweep)
    assert {n: r["status"] for n, r in before_records.items()} == {0: "COMPLETED", 1: "FAILED", 2: "COMPLETED",
                                                                   3: "RUNNING"}
    time.sleep(1.5)  # job 3's heartbeat (every 0.2 s) has stopped: it is DIED once older than 1 s
    before = repo_state(app)

    assert cli_main(["resume", str(sweep), "--stale-after", "1", "--dry-run"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[:5] == ["left alone: 0 COMPLETED, 2 COMPLETED", "to relaunch:",
                           "  1  FAILED      seed=1", "  3  DIED        seed=3", "  4  MISSING     seed=4"]
    assert sorted(p.name for p in sweep.iterdir() if not p.name.startswith(".")) == [
        "0", "1", "2", "3", "multirun.yaml"]

    result = hydra_ledger.resume(sweep, stale_after=1.0, capture=True)

    assert result.returncode == 0
    assert result.runs[["job_num", "status"]].values.tolist() == [[1, "COMPLETED"], [3, "COMPLETED"],
                                                                   [4, "COMPLETED"]]
    frame = hydra_ledger.load_runs(sweep)
    assert sorted(zip(frame["job_num"], frame["status"], frame["summary.score"])) == [
        (n, "COMPLETED", expected_score(n)) for n in range(5)]
    after = records(sweep)
    for n in (0, 2):  # completed jobs were never rerun
        assert after[n]["run_id"] == before_records[n]["run_id"]
    for n in (1, 3):  # the earlier record is archived, the new one points to it
        assert after[n]["rerun_of"] == before_records[n]["run_id"]
        assert (sweep / str(n) / ".ledger" / "history" / f"{before_records[n]['run_id']}.json").is_file()
    assert after[4]["rerun_of"] is None
    assert {after[n]["job"]["output_dir"] for n in range(5)} == {str(sweep / str(n)) for n in range(5)}
    sweep_record = json.loads((sweep / ".ledger" / "sweep.json").read_text())
    assert [job["num"] for job in sweep_record["jobs"]] == [0, 1, 2, 3, 4]
    assert len(sweep_record["resumes"]) == 1
    assert repo_state(app) == before

    assert cli_main(["resume", str(sweep)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "nothing to resume: every job of the sweep completed (or is still running)")


def test_resume_with_another_launcher(make_app, run_app):
    app = make_app("rerun_app")
    proc = run_app(app, "-m", "seed=7,8", "hydra.sweep.dir=multirun/two", env={"RERUN_TEST_FAIL_JOBS": "0"})
    assert proc.returncode == 1
    sweep = app / "multirun" / "two"
    before = repo_state(app)

    result = hydra_ledger.resume(sweep, launcher="joblib", capture=True)

    assert result.returncode == 0
    assert result.runs[["job_num", "status"]].values.tolist() == [[0, "COMPLETED"]]
    rerun = records(sweep)[0]
    assert rerun["job"]["id"] == "app_0"  # joblib's job ids: <job name>_<num>
    assert rerun["summary"]["score"] == expected_score(7)
    assert repo_state(app) == before
    assert git(app, "worktree", "list").count("\n") == 1


def test_resume_listing_and_dry_run_redact_secret_overrides_but_jobs_get_the_real_value(make_app, run_app, capsys):
    app = make_app("rerun_app")
    proc = run_app(app, "-m", "seed=7,8", "+db.password=hunter2", "hydra.sweep.dir=multirun/secret",
                   env={"RERUN_TEST_FAIL_JOBS": "1"})
    assert proc.returncode == 1
    sweep = app / "multirun" / "secret"

    assert cli_main(["resume", str(sweep), "--dry-run"]) == 0

    out = capsys.readouterr().out
    assert "  1  FAILED      seed=8 +db.password=***\n" in out
    assert "hunter2" not in out

    result = hydra_ledger.resume(sweep, capture=True)

    assert result.returncode == 0
    assert result.runs[["job_num", "status"]].values.tolist() == [[1, "COMPLETED"]]
    assert yaml.safe_load((sweep / "1" / ".hydra" / "overrides.yaml").read_text()) == [
        "seed=8", "+db.password=hunter2"]


def sbatch(name: str, *args: str) -> str:
    out = subprocess.run(["sbatch", "--parsable", "-J", name, "-o", "/dev/null", *args, "--wrap", "true"],
                         capture_output=True, text=True, check=True).stdout
    return out.strip().split(";")[0]


def wait_for_state(job_id: str, state: str, timeout: float = 240) -> None:
    """Until sacct reports ``state`` for ``job_id``: Slurm's accounting can lag by more than a
    minute on a busy 2-core machine, even for a job that only runs ``true``."""
    deadline = time.monotonic() + timeout
    while not (found := sacct_state(job_id)).startswith(state):
        assert time.monotonic() < deadline, f"Slurm job {job_id} never reached {state} in {timeout} s: {found!r}"
        time.sleep(0.5)


@pytest.mark.slurm
def test_resume_leaves_preempted_jobs_alone_unless_slurm_says_they_are_gone(slurm_cluster, make_app, run_app,
                                                                           capsys):
    app = make_app("rerun_app")
    proc = run_app(app, "-m", "seed=0,1,2,3", "hydra.sweep.dir=multirun/pre")
    assert proc.returncode == 0, proc.stderr
    sweep = app / "multirun" / "pre"
    name = f"hl-resume-preempted-{os.getpid()}"
    try:
        requeued = sbatch(name, "--hold")  # PENDING: Slurm will start it again
        cancelled = sbatch(name, "--hold")
        subprocess.run(["scancel", cancelled], check=True)
        finished = sbatch(name)
        wait_for_state(cancelled, "CANCELLED")
        wait_for_state(finished, "COMPLETED")
        # jobs 0, 1 and 3 were preempted under these Slurm ids; job 2 has none, so sacct cannot tell
        for num, job_id in ((0, requeued), (1, cancelled), (2, None), (3, finished)):
            path = sweep / str(num) / ".ledger" / "run.json"
            rec = json.loads(path.read_text())
            rec["status"] = "PREEMPTED"
            rec["slurm"] = {"job_id": job_id} if job_id else {}
            path.write_text(json.dumps(rec))

        assert cli_main(["resume", str(sweep), "--dry-run"]) == 0
    finally:
        subprocess.run(["scancel", "--name", name], capture_output=True)

    assert capsys.readouterr().out.splitlines()[:4] == [
        "left alone: 0 PREEMPTED, 2 PREEMPTED", "to relaunch:", "  1  CANCELLED   seed=1",
        "  3  PREEMPTED (COMPLETED in Slurm) seed=3"]
