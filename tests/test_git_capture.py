"""Git state recorded with each job: commit, branch, dirty patch that restores the tree, untracked files."""
from __future__ import annotations

import filecmp
import json
import subprocess
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
