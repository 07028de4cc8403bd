"""Git state recorded with each job: commit, branch, dirty patch that restores the tree, untracked files."""
from __future__ import annotations

import filecmp
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import commit_all, git, init_repo

import hydra_ledger

LEDGER = "hydra/callbacks=ledger"


def record(job_dir: Path) -> dict:
    return json.loads((job_dir / ".ledger" / "run.json").read_text())


def test_clean_repo(make_app, run_app):
    app = make_app("ledger_app")
    head = git(app, "rev-parse", "HEAD").strip()
    proc = run_app(app, LEDGER, "hydra.run.dir=out")
    assert proc.returncode == 0, proc.stderr
    info = record(app / "out")["git"]
    assert info == {
        "state": "ok", "root": str(app.resolve()), "commit": head, "detached": False, "branch": "main",
        "dirty": False, "untracked_count": 0, "untracked": [], "remote": None,
    }
    assert not (app / "out" / ".ledger" / "git.patch").exists()


def test_dirty_repo_patch_restores_the_tree(make_app, run_app, tmp_path):
    app = make_app("ledger_app")
    head = git(app, "rev-parse", "HEAD").strip()
    (app / "config.yaml").write_text((app / "config.yaml").read_text().replace("x: 1", "x: 5"))  # modified
    (app / "explicit.yaml").unlink()  # deleted
    (app / "data.bin").write_bytes(bytes(range(256)) * 4)  # staged binary file
    (app / "ünïcode name.txt").write_text("staged ✓\n")
    git(app, "add", "data.bin", "ünïcode name.txt")
    proc = run_app(app, LEDGER, "hydra.run.dir=out")
    assert proc.returncode == 0, proc.stderr
    rec = record(app / "out")
    assert rec["config"]["x"] == 5
    info = rec["git"]
    assert (info["state"], info["commit"], info["dirty"], info["patch"]) == ("ok", head, True, "git.patch")
    patch = app / "out" / ".ledger" / "git.patch"
    assert info["patch_bytes"] == patch.stat().st_size

    restored = tmp_path / "restored"
    subprocess.run(["git", "clone", "-q", str(app), str(restored)], check=True)
    git(restored, "checkout", "-q", info["commit"])
    git(restored, "apply", "--binary", str(patch))
    tracked = git(app, "ls-files", "-z").split("\0")
    compared = [f for f in tracked if f and (app / f).exists()]
    assert sorted(compared) == sorted(["app.py", "config.yaml", "enabled.yaml", "own_group.yaml", "probe.py",
                                       "hydra/callbacks/probe.yaml", "data.bin", "ünïcode name.txt"])
    _, mismatch, errors = filecmp.cmpfiles(app, restored, compared, shallow=False)
    assert (mismatch, errors) == ([], [])
    assert not (restored / "explicit.yaml").exists()


def test_untracked_files_listed_but_not_hydra_outputs(make_app, run_app):
    app = make_app("ledger_app")
    (app / "notes.txt").write_text("n\n")
    (app / "ignored.log").write_text("i\n")
    (app / ".gitignore").write_text("*.log\n")
    # earlier runs, in the default output dirs, are not "untracked code"
    assert run_app(app, "-m", LEDGER, "x=1,2").returncode == 0
    assert run_app(app, LEDGER).returncode == 0
    proc = run_app(app, LEDGER, "hydra.run.dir=out")
    assert proc.returncode == 0, proc.stderr
    info = record(app / "out")["git"]
    assert info["untracked"] == [".gitignore", "notes.txt"]
    assert info["untracked_count"] == 2
    assert info["dirty"] is False
    frame = hydra_ledger.load_runs(app / "out")
    assert frame["git.untracked_count"].tolist() == [2]


def test_detached_head(make_app, run_app):
    app = make_app("ledger_app")
    (app / "later.txt").write_text("later\n")
    commit_all(app, "second")
    first = git(app, "rev-parse", "HEAD~1").strip()
    git(app, "checkout", "-q", "--detach", first)
    proc = run_app(app, LEDGER, "hydra.run.dir=out")
    assert proc.returncode == 0, proc.stderr
    info = record(app / "out")["git"]
    assert (info["commit"], info["detached"], info["branch"], info["dirty"]) == (first, True, None, False)


def test_no_repo(make_app, run_app):
    app = make_app("ledger_app", git=False)
    proc = run_app(app, LEDGER, "hydra.run.dir=out")
    assert proc.returncode == 0, proc.stderr
    rec = record(app / "out")
    assert rec["git"] == {"state": "no-repo"}
    assert rec["status"] == "COMPLETED"


def test_repo_without_commits(make_app, run_app):
    app = make_app("ledger_app", git=False)
    init_repo(app)
    proc = run_app(app, LEDGER, "hydra.run.dir=out")
    assert proc.returncode == 0, proc.stderr
    rec = record(app / "out")
    info = rec["git"]
    assert (info["state"], info["commit"], info["branch"], info["dirty"]) == ("no-commits", None, "main", False)
    assert info["untracked"] == ["app.py", "config.yaml", "enabled.yaml", "explicit.yaml",
                                 "hydra/callbacks/probe.yaml", "own_group.yaml", "probe.py"]
    assert rec["status"] == "COMPLETED"


@pytest.mark.parametrize(
    ("url", "recorded"),
    [
        ("https://alice:ghp_s3cr3t@github.com/org/repo.git", "https://alice:***@github.com/org/repo.git"),
        ("https://ghp_t0ken@github.com/org/repo.git", "https://***@github.com/org/repo.git"),
        ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
    ],
    ids=["user-password", "token", "ssh"],
)
def test_remote_url_without_credentials(make_app, run_app, url, recorded):
    app = make_app("ledger_app")
    git(app, "remote", "add", "origin", url)
    proc = run_app(app, LEDGER, "hydra.run.dir=out")
    assert proc.returncode == 0, proc.stderr
    assert record(app / "out")["git"]["remote"] == recorded
    assert "s3cr3t" not in (app / "out" / ".ledger" / "run.json").read_text()
    assert "t0ken" not in (app / "out" / ".ledger" / "run.json").read_text()


def test_patch_over_cap_not_saved(make_app, run_app):
    app = make_app("ledger_app")
    (app / "app.py").write_text((app / "app.py").read_text() + "# a change\n" * 20)
    proc = run_app(app, LEDGER, "hydra.callbacks.ledger.patch_max_bytes=100", "hydra.run.dir=out")
    assert proc.returncode == 0, proc.stderr
    info = record(app / "out")["git"]
    assert info["dirty"] is True
    assert "patch" not in info
    assert info["patch_bytes"] > 100
    assert info["patch_skipped"] == f"{info['patch_bytes']} bytes > patch_max_bytes=100"
    assert not (app / "out" / ".ledger" / "git.patch").exists()
    warnings = [line for line in (app / "out" / "app.log").read_text().splitlines() if "WARNING" in line]
    assert len(warnings) == 1
    assert warnings[0].endswith(
        f"hydra-ledger: uncommitted diff not saved: {info['patch_bytes']} bytes > patch_max_bytes=100 "
        "(raise hydra.callbacks.ledger.patch_max_bytes)"
    )


def test_git_and_packages_disabled(make_app, run_app):
    app = make_app("ledger_app")
    proc = run_app(app, LEDGER, "hydra.callbacks.ledger.git=false", "hydra.callbacks.ledger.packages=false",
                   "hydra.run.dir=out")
    assert proc.returncode == 0, proc.stderr
    assert record(app / "out")["git"] == {"state": "disabled"}
    assert not (app / "out" / ".ledger" / "packages.json").exists()


# -- a sweep's git state, captured once by the launching process --------------------------------

SWEEP_LAUNCHERS = {
    "basic": [],
    # workers of their own, each reading the sweep's state from disk
    "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
}


def _logged_git(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment whose ``git`` (first on PATH) notes its arguments, then runs the real git."""
    real = shutil.which("git")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "git-calls.log"
    wrapper = bin_dir / "git"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{calls}"\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}, calls


def _status_calls(calls: Path) -> int:
    return sum(" status --porcelain" in line for line in calls.read_text().splitlines())


@pytest.mark.parametrize("launcher", list(SWEEP_LAUNCHERS), ids=list(SWEEP_LAUNCHERS))
def test_sweep_jobs_reuse_the_sweeps_git_state_until_a_tracked_file_changes(make_app, run_app, tmp_path, launcher):
    """The launching process runs git once; a job reuses that state while the tree is unchanged.
    Job x=1 edits a tracked file (as a user's edit while the sweep runs would): job x=2, which
    runs after it (one job per batch), records the tree dirty, with the patch of that edit."""
    app = make_app("sweep_git")
    head = git(app, "rev-parse", "HEAD").strip()
    env, calls = _logged_git(tmp_path)
    proc = run_app(app, "-m", "x=0,1,2", "edit_on=1", "hydra.sweep.dir=sweep", "hydra.sweeper.max_batch_size=1",
                   *SWEEP_LAUNCHERS[launcher], env=env)
    assert proc.returncode == 0, proc.stderr
    clean = {"state": "ok", "root": str(app.resolve()), "commit": head, "detached": False, "branch": "main",
             "dirty": False, "untracked_count": 0, "untracked": [], "remote": None}
    assert [record(app / "sweep" / str(n))["git"] for n in (0, 1)] == [clean, clean]
    assert (app / "sweep" / ".ledger" / "git.json").is_file()
    dirty = record(app / "sweep" / "2")["git"]
    patch = app / "sweep" / "2" / ".ledger" / "git.patch"
    assert dirty == {**clean, "dirty": True, "patch_bytes": patch.stat().st_size, "patch": "git.patch"}
    assert "+edited by job x=1\n" in patch.read_text()
    # one `git status` by the launching process, one by the job after the edit: none by jobs 0 and 1
    assert _status_calls(calls) == 2


@pytest.mark.parametrize("launcher", list(SWEEP_LAUNCHERS), ids=list(SWEEP_LAUNCHERS))
def test_an_edit_after_quiet_jobs_is_seen_by_the_next_job(make_app, run_app, tmp_path, launcher):
    """A process running several jobs watches the tree's directories from its second job on:
    the jobs before the edit reuse the sweep's state, the job after it sees the edit."""
    app = make_app("sweep_git")
    env, calls = _logged_git(tmp_path)
    proc = run_app(app, "-m", "x=0,1,2,3,4,5", "edit_on=4", "hydra.sweep.dir=sweep",
                   "hydra.sweeper.max_batch_size=1", *SWEEP_LAUNCHERS[launcher], env=env)
    assert proc.returncode == 0, proc.stderr
    dirty = [record(app / "sweep" / str(n))["git"]["dirty"] for n in range(6)]
    assert dirty == [False] * 5 + [True]
    assert "+edited by job x=4\n" in (app / "sweep" / "5" / ".ledger" / "git.patch").read_text()
    assert _status_calls(calls) == 2


@pytest.mark.parametrize("launcher", list(SWEEP_LAUNCHERS), ids=list(SWEEP_LAUNCHERS))
def test_sweep_jobs_writing_an_ignored_file_beside_tracked_ones_reuse_the_state(make_app, run_app, tmp_path,
                                                                                 launcher):
    """Every job appends to a git-ignored file in the tree's root: the watched directory sees a
    change at each job, yet no watched path changed, so no job runs git."""
    app = make_app("sweep_git")
    with open(app / ".git" / "info" / "exclude", "a") as exclude:
        exclude.write("scratch.log\n")
    (app / "scratch.log").write_text("")
    time.sleep(0.2)  # past the file system's clock tick of these changes
    env, calls = _logged_git(tmp_path)
    proc = run_app(app, "-m", "x=0,1,2,3,4", "log_scratch=true", "hydra.sweep.dir=sweep",
                   "hydra.sweeper.max_batch_size=1", *SWEEP_LAUNCHERS[launcher], env=env)
    assert proc.returncode == 0, proc.stderr
    assert (app / "scratch.log").read_text().count("job x=") == 5
    assert [record(app / "sweep" / str(n))["git"]["dirty"] for n in range(5)] == [False] * 5
    assert _status_calls(calls) == 1


def test_sweep_of_a_dirty_tree_gives_each_job_the_patch_of_its_own_code(make_app, run_app, tmp_path):
    """Dirty when the sweep starts: the jobs before the edit get the sweep's patch, the job after
    it a patch with both changes; each patch restores the tree that job ran."""
    app = make_app("sweep_git")
    head = git(app, "rev-parse", "HEAD").strip()
    notes = app / "notes.txt"
    notes.write_text(notes.read_text() + "uncommitted before the sweep\n")
    (app / "scratch.txt").write_text("untracked\n")
    time.sleep(0.2)  # past the file system's clock tick of these changes
    env, calls = _logged_git(tmp_path)
    proc = run_app(app, "-m", "x=0,1,2", "edit_on=1", "hydra.sweep.dir=sweep", "hydra.sweeper.max_batch_size=1",
                   env=env)
    assert proc.returncode == 0, proc.stderr
    trees = []
    for n in range(3):
        info = record(app / "sweep" / str(n))["git"]
        assert (info["commit"], info["dirty"], info["untracked"]) == (head, True, ["scratch.txt"])
        assert info["untracked_saved"] == ["scratch.txt"]
        restored = tmp_path / f"restored{n}"
        subprocess.run(["git", "clone", "-q", str(app), str(restored)], check=True)
        git(restored, "checkout", "-q", head)
        git(restored, "apply", "--binary", str(app / "sweep" / str(n) / ".ledger" / "git.patch"))
        trees.append((restored / "notes.txt").read_text())
    before = "tracked notes\nuncommitted before the sweep\n"
    assert trees == [before, before, before + "edited by job x=1\n"]
    assert _status_calls(calls) == 2


def test_sweep_job_after_a_file_was_added_lists_it(make_app, run_app, tmp_path):
    """A new untracked file changes no tracked file, but its directory: the next job runs git and
    lists (and keeps) it."""
    app = make_app("sweep_git")
    env, calls = _logged_git(tmp_path)
    proc = run_app(app, "-m", "x=0,1,2", "add_on=0", "hydra.sweep.dir=sweep", "hydra.sweeper.max_batch_size=1",
                   env=env)
    assert proc.returncode == 0, proc.stderr
    listed = [record(app / "sweep" / str(n))["git"]["untracked"] for n in range(3)]
    assert listed == [[], ["added.py"], ["added.py"]]
    assert _status_calls(calls) == 3


def test_sweep_with_save_patch_false_keeps_no_patch_anywhere(make_app, run_app, tmp_path):
    """save_patch=false: neither the sweep nor its jobs keep the uncommitted diff (it may hold
    secrets), and each record says why, as a single run's does."""
    app = make_app("sweep_git")
    notes = app / "notes.txt"
    notes.write_text(notes.read_text() + "uncommitted\n")
    env, calls = _logged_git(tmp_path)
    proc = run_app(app, "-m", "x=0,1", "hydra.sweep.dir=sweep", "hydra.callbacks.ledger.save_patch=false", env=env)
    assert proc.returncode == 0, proc.stderr
    assert list((app / "sweep").rglob("git.patch")) == []
    for n in ("0", "1"):
        info = record(app / "sweep" / n)["git"]
        assert (info["dirty"], info["patch_skipped"]) == (True, "not saved: hydra.callbacks.ledger.save_patch=false")
        assert "patch" not in info
    assert _status_calls(calls) == 1
    assert "uncommitted diff not saved" not in proc.stdout + proc.stderr
