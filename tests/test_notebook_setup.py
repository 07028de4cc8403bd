"""The recorded runs shared by the notebook tests, made once per test session (all xdist workers).

tests/apps/notebook_app in a git repo, data in ``data/`` (a file, a directory of two
files, a 1 GB sparse file; ``labels.csv`` is missing), then, in this order:
- on ``main``: sweep ``a`` of 20 jobs with a note, tags, the four inputs and output capture;
- on branch ``exp`` (one more commit): debug sweep ``b`` of 2 jobs, a disabled run in
  ``outputs/disabled``, and a single run under ``outputs/<date>/<time>`` with a note and a tag.
Tests only read these runs, in any order and on any worker; a test that adds to them (tags,
notes, conclusions) works on its own copy (``shutil.copytree`` into its ``tmp_path``).
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import APPS, app_env, commit_all, git, init_repo

INPUTS = "hydra.callbacks.ledger.inputs=[data.train,data.images,data.big,data.labels]"
SWEEP_JOBS = 20


def _app(repo: Path, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "app.py", *args], cwd=repo, capture_output=True, text=True,
                          env=app_env({"XDG_CACHE_HOME": str(cache)}), timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


def _record(root: Path) -> dict[str, Any]:
    repo, cache = root / "repo", root / "cache"
    shutil.copytree(APPS / "notebook_app", repo)
    init_repo(repo)
    main_sha = commit_all(repo, "initial")
    (repo / "data" / "images" / "sub").mkdir(parents=True)
    (repo / "data" / "train.csv").write_text("a,b\n")
    (repo / "data" / "images" / "1.png").write_bytes(b"x")
    (repo / "data" / "images" / "sub" / "2.png").write_bytes(b"yy")
    with open(repo / "data" / "big.bin", "wb") as f:
        f.truncate(1 << 30)  # sparse: 1 GB of zeros, no disk blocks
    sweep = _app(repo, cache, "-m", f"seed=range({SWEEP_JOBS})", "hydra.sweep.dir=multirun/a",
                 'hydra.callbacks.ledger.note="does ABC help XYZ?"', "hydra.callbacks.ledger.tags=[abc,xyz]",
                 INPUTS, "hydra.callbacks.ledger.capture_output=true")
    latest_after_a = os.readlink(repo / "multirun" / "latest")
    git(repo, "checkout", "-q", "-b", "exp")
    (repo / "config.yaml").write_text((repo / "config.yaml").read_text().replace("lr: 0.1", "lr: 0.2"))
    exp_sha = commit_all(repo, "raise lr")
    _app(repo, cache, "-m", "seed=0,1", "hydra.sweep.dir=multirun/b", "hydra.callbacks.ledger.debug=true")
    _app(repo, cache, "hydra.callbacks.ledger.enabled=false", "hydra.run.dir=outputs/disabled")
    _app(repo, cache, "seed=7", 'hydra.callbacks.ledger.note="single note"', "hydra.callbacks.ledger.tags=[single]")
    return {"main": main_sha, "exp": exp_sha, "latest_after_a": latest_after_a,
            "sweep_stdout": sweep.stdout, "sweep_stderr": sweep.stderr}


@pytest.fixture(scope="session")
def notebook(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> dict[str, Any]:
    """``{"repo", "cache", "main", "exp", "latest_after_a", "sweep_stdout", "sweep_stderr"}``."""
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if worker_id != "master" else base) / "notebook"
    root.mkdir(exist_ok=True)
    with open(root.parent / "notebook.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the first worker records, the others wait and reuse
        done = root / "recorded.json"
        if not done.exists():
            done.write_text(json.dumps(_record(root)))
    return {**json.loads(done.read_text()), "repo": root / "repo", "cache": root / "cache"}
