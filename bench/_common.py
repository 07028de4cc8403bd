"""Shared bits of the benchmarks: timing, medians, making repos and sweeps."""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def median(values: list[float]) -> float:
    return statistics.median(values)


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def tree_pythonpath(tree: Path) -> dict[str, str]:
    """The environment that imports hydra_ledger (and its Hydra plugin) from the source tree ``tree``."""
    tree = tree.resolve()
    if not (tree / "src" / "hydra_ledger" / "__init__.py").is_file():  # else an installed one would run unnoticed
        sys.exit(f"{tree} is not a hydra-ledger source tree (no src/hydra_ledger/): give the root of a checkout, "
                 "e.g. a `git worktree add /tmp/before <commit>`")
    parts = [str(tree / "src"), str(tree), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {"PYTHONPATH": os.pathsep.join(parts)}


def make_repo(root: Path, n_files: int = 200) -> Path:
    """A git repo of ``n_files`` tracked source files plus the benchmark app, committed."""
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(HERE / "app", root)
    pkg = root / "lib"
    pkg.mkdir()
    for i in range(n_files - len(list(root.iterdir()))):
        (pkg / f"module_{i:03d}.py").write_text(f"VALUE_{i} = {i}\n" * 20)
    git(root, "init", "-q", "-b", "main")
    git(root, "-c", "user.email=b@example.com", "-c", "user.name=bench", "add", "-A")
    git(root, "-c", "user.email=b@example.com", "-c", "user.name=bench", "commit", "-q", "-m", "bench")
    return root


def run_app(repo: Path, *args: str, env: dict[str, str] | None = None) -> float:
    """Wall time of one ``python app.py ...`` in ``repo`` (``env``: variables set on top of ours)."""
    return run_app_timed(repo, *args, env=env)[0]


def run_app_timed(repo: Path, *args: str, env: dict[str, str] | None = None) -> tuple[float, float]:
    """``(wall time, CPU time)`` of one ``python app.py ...`` in ``repo``. The CPU time (user +
    system, with the processes it waited for, such as git) moves less than the wall time when
    other work shares the machine."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py", *args], cwd=repo, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, "HYDRA_FULL_ERROR": "1", **(env or {})})
    stderr = proc.stderr.read() if proc.stderr is not None else b""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, proc.args, stderr=stderr)
    return wall, usage.ru_utime + usage.ru_stime


def code_of(ref: str, into: Path) -> Path:
    """The ``src`` dir of git ref ``ref``, extracted under ``into``."""
    into.mkdir(parents=True, exist_ok=True)
    archive = into / "src.tar"
    subprocess.run(["git", "-C", str(HERE.parent), "archive", "--format=tar", "-o", str(archive), ref, "src"],
                   check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / "src"
