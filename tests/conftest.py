"""Shared fixtures: real Hydra apps run in subprocesses inside real git repos under tmp_path."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

APPS = Path(__file__).parent / "apps"
# tests/extras need optional dependencies (torch and lightning): scripts/test runs them in their
# own environment, with HYDRA_LEDGER_TEST_EXTRAS=1.
collect_ignore = [] if os.environ.get("HYDRA_LEDGER_TEST_EXTRAS") else ["extras"]

# The Ctrl-C tests send SIGINT to the apps they start. A shell without job control starts a
# background command with SIGINT ignored, and an ignored signal stays ignored across exec: the
# apps would never see it. A handled one is reset to the default at exec, so they get that.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` and return its stdout (raises on failure)."""
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def init_repo(repo: Path) -> None:
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "tests@example.com")
    git(repo, "config", "user.name", "Tests")
    git(repo, "config", "commit.gpgsign", "false")


def commit_all(repo: Path, message: str = "commit") -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def record(job_dir: Path) -> dict:
    """The job's ``.ledger/run.json``, as written (no loader in between)."""
    return json.loads((job_dir / ".ledger" / "run.json").read_text())


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    """Wait until the app ``proc`` creates ``path``; fail with its stderr if it ends first."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the app ended (rc={proc.returncode}) before {path} appeared: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear within {timeout} s")
        time.sleep(0.02)


def first_run(app: Path, run_app: Callable[..., subprocess.CompletedProcess], *overrides: str) -> Path:
    """Run ``app`` once into ``outputs/first`` and return that job dir."""
    proc = run_app(app, *overrides, "hydra.run.dir=outputs/first")
    assert proc.returncode == 0, proc.stderr
    return app / "outputs" / "first"


@pytest.fixture
def make_app(tmp_path: Path) -> Callable[..., Path]:
    """Copy ``tests/apps/<name>`` into a fresh dir (a committed git repo unless ``git=False``)."""

    def _make(name: str = "basic", *, git: bool = True, dest: str = "repo") -> Path:
        app_dir = tmp_path / dest
        shutil.copytree(APPS / name, app_dir)
        if git:
            init_repo(app_dir)
            commit_all(app_dir, "initial")
        return app_dir

    return _make


# Holds a sitecustomize.py that makes hydra-ledger's own warnings errors in app processes.
LEDGER_WARNINGS_ARE_ERRORS = Path(__file__).parent / "ledger_warnings_are_errors"


def app_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HYDRA_", "SLURM_", "SUBMITIT_"))}
    env["HYDRA_FULL_ERROR"] = "1"
    env["PYTHONWARNINGS"] = "default"
    env.update(extra or {})
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(LEDGER_WARNINGS_ARE_ERRORS), env.get("PYTHONPATH")) if p)
    return env


def all_at_once(commands: list[list[str]], cwd: Path, env: dict[str, str] | None = None,
                timeout: float = 300) -> list[subprocess.CompletedProcess[str]]:
    """Start every command before waiting for any, so that they race on the same files."""
    procs = [subprocess.Popen(c, cwd=cwd, env=env if env is not None else app_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for c in commands]
    results = []
    for command, proc in zip(commands, procs):
        out, err = proc.communicate(timeout=timeout)
        results.append(subprocess.CompletedProcess(command, proc.returncode, out, err))
    return results


@pytest.fixture
def run_app() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``python <script> <args>`` in ``cwd`` with this interpreter; returns the finished process."""

    def _run(
        cwd: Path,
        *args: str,
        script: str = "app.py",
        env: dict[str, str] | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, script, *args],
            cwd=cwd,
            env=app_env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return _run


def start_app(cwd: Path, *args: str, script: str = "app.py",
              env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start an app without waiting (for signal tests)."""
    return subprocess.Popen(
        [sys.executable, script, *args], cwd=cwd, env=app_env(env),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def record_files(root: Path) -> Sequence[Path]:
    return sorted(root.rglob(".ledger/run.json"))
