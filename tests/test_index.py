"""The loader's index gives the same frame as reading every record, whatever happened to the tree."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from conftest import APPS, app_env, commit_all, init_repo, start_app

import hydra_ledger
from hydra_ledger.cli import main as cli_main
from hydra_ledger.load import LedgerLoadWarning
from hydra_ledger.load.index import IndexWarning, cache_file

LEDGER = "hydra/callbacks=ledger"
HOUR = 3600


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """A repo whose ``multirun/a`` holds a recorded three-job sweep (job 1 fails), made once."""
    app = tmp_path_factory.mktemp("index") / "repo"
    shutil.copytree(APPS / "ledger_app", app)
    init_repo(app)
    commit_all(app)
    proc = subprocess.run([sys.executable, "app.py", "-m", LEDGER, "hydra.sweep.dir=multirun/a", "x=1,2,3",
                           "fail_on=[2]", "log_summary=true"],
                          cwd=app, env=app_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    return app


@pytest.fixture
def repo(recorded, tmp_path, monkeypatch) -> Path:
    """A private copy of the recorded repo, aged by an hour (no racily recent times), with its own cache."""
    copy = tmp_path / "repo"
    shutil.copytree(recorded, copy, symlinks=True)
    age(copy / "multirun")
    monkeypatch.setenv("HYDRA_LEDGER_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(copy)
    return copy


def age(root: Path) -> None:
    """Set every mtime under ``root`` an hour back, as for runs recorded long ago."""
    then = time.time() - HOUR
    for path in [*sorted(root.rglob("*"), reverse=True), root]:
        os.utime(path, (then, then), follow_symlinks=False)


def run(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "app.py", "-m", LEDGER, *args], cwd=repo, env=app_env(),
                          capture_output=True, text=True, timeout=120)


def loads_alike(root: Path, **kwargs) -> pd.DataFrame:
    """Load through the index and by reading every record; both frames and warnings must be equal."""
    with warnings.catch_warnings(record=True) as indexed_warnings:
        warnings.simplefilter("always")
        indexed = hydra_ledger.load_runs(root, **kwargs)
    with warnings.catch_warnings(record=True) as plain_warnings:
        warnings.simplefilter("always")
        plain = hydra_ledger.load_runs(root, cache="off", **kwargs)
    pd.testing.assert_frame_equal(indexed, plain)
    assert [str(w.message) for w in indexed_warnings] == [str(w.message) for w in plain_warnings]
    for caught in indexed_warnings:
        warnings.warn(caught.message, stacklevel=1)
    return indexed


def index_file(root: Path) -> Path:
    path = cache_file(os.path.abspath(root))
    assert path is not None
    return path


def test_adds_changes_deletions_and_corrupt_records(repo):
    root = repo / "multirun"
    first = loads_alike(root)
    assert first["cfg.x"].tolist() == [1, 2, 3]
    stamp = index_file(root).stat().st_mtime_ns
    assert loads_alike(root)["run_id"].tolist() == first["run_id"].tolist()
    assert index_file(root).stat().st_mtime_ns == stamp  # nothing changed: the index is not rewritten

    # a new sweep, and a rerun into the first one (its jobs' records replaced in place)
    assert run(repo, "hydra.sweep.dir=multirun/b", "x=7,8").returncode == 0
    assert run(repo, "hydra.sweep.dir=multirun/a", "x=4,5,6").returncode == 0
    frame = loads_alike(root)
    assert sorted(frame["cfg.x"].tolist()) == [4, 5, 6, 7, 8]
    assert index_file(root).stat().st_mtime_ns != stamp

    # tags and notes added later (sidecars), a deleted job, a record broken by a partial copy
    age(root)
    assert cli_main(["tag", "multirun/b/0", "best"]) == 0
    assert cli_main(["note", "multirun/b/1", "too slow"]) == 0
    shutil.rmtree(root / "b" / "1")
    broken = root / "a" / "2"
    partial = root / "a" / ".2.partial"
    shutil.copytree(broken, partial)
    record = partial / ".ledger" / "run.json"
    record.write_bytes(record.read_bytes()[:100])
    shutil.rmtree(broken)
    partial.rename(broken)
    record = broken / ".ledger" / "run.json"
    with pytest.warns(LedgerLoadWarning, match="truncated or corrupt JSON"):
        frame = loads_alike(root)
    assert sorted(frame["cfg.x"].tolist()) == [4, 5, 7]
    assert frame.set_index("cfg.x").loc[7, "tags"] == ["best"]

    # the broken record repaired: found without any other change
    shutil.copy(root / "a" / "0" / ".ledger" / "run.json", record)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sorted(loads_alike(root)["cfg.x"].tolist()) == [4, 4, 5, 7]

    # a whole sweep deleted
    shutil.rmtree(root / "b")
    assert sorted(loads_alike(root)["cfg.x"].tolist()) == [4, 4, 5]


def test_corrupt_and_foreign_index_is_rebuilt_with_a_warning(repo):
    root = repo / "multirun"
    expected = loads_alike(root)
    index_file(root).write_bytes(b"not an index")
    with pytest.warns(IndexWarning, match="is corrupt .* rebuilding it from the records"):
        frame = hydra_ledger.load_runs(root)
    pd.testing.assert_frame_equal(frame, expected)
    other = repo / "other"
    shutil.copytree(root, other, symlinks=True)
    shutil.copy(index_file(root), index_file(other))  # e.g. a cache dir copied between machines
    with pytest.warns(IndexWarning, match=f"is an index of '{root}', not of '{other}'"):
        hydra_ledger.load_runs(other)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert hydra_ledger.load_runs(other)["cfg.x"].tolist() == [1, 2, 3]


def test_unwritable_cache_loads_from_memory_and_the_root_is_never_written(repo, monkeypatch, tmp_path):
    root = repo / "multirun"
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("HYDRA_LEDGER_CACHE", str(blocker / "cache"))  # cannot be created, even by root
    before = {p: p.stat().st_mtime_ns for p in [root, *root.rglob("*")]}
    frame = loads_alike(root)
    assert frame["cfg.x"].tolist() == [1, 2, 3]
    assert {p: p.stat().st_mtime_ns for p in [root, *root.rglob("*")]} == before
    monkeypatch.setenv("HYDRA_LEDGER_CACHE", "off")
    assert hydra_ledger.load_runs(root)["cfg.x"].tolist() == [1, 2, 3]


def test_the_index_is_on_disk_whole_when_load_runs_returns(repo):
    """The index is written while the frame is built, in a thread that is done when the load returns."""
    root = repo / "multirun"
    frame = hydra_ledger.load_runs(root)
    assert not [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    with pa.memory_map(str(index_file(root))) as source:
        assert pa.ipc.open_file(source).read_all().num_rows == len(frame) == 3


def test_concurrent_loaders_while_a_job_writes(repo, tmp_path):
    root = repo / "multirun"
    job = start_app(repo, "-m", LEDGER, "hydra.sweep.dir=multirun/live", "x=1", "sleep=30",
                    env={"HYDRA_LEDGER_CACHE": "off"})
    try:
        record = root / "live" / "0" / ".ledger" / "run.json"
        deadline = time.monotonic() + 60
        while not record.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert record.exists()
        code = ("import sys, hydra_ledger\n"
                "for _ in range(5):\n"
                "    frame = hydra_ledger.load_runs(sys.argv[1])\n"
                "print(sorted(frame.status.astype(str)))\n")
        env = {**app_env(), "HYDRA_LEDGER_CACHE": str(tmp_path / "cache"), "PYTHONWARNINGS": "error"}
        loaders = [subprocess.Popen([sys.executable, "-c", code, str(root)], env=env, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
        outputs = [p.communicate(timeout=120) for p in loaders]
        for proc, (out, err) in zip(loaders, outputs):
            assert proc.returncode == 0, err
            assert out == "['COMPLETED', 'COMPLETED', 'FAILED', 'RUNNING']\n"
        frame = loads_alike(root, stale_after=HOUR)
        assert sorted(frame["status"].astype(str)) == ["COMPLETED", "COMPLETED", "FAILED", "RUNNING"]
        # killed without a word: DIED once its heartbeat is stale, though its record still says RUNNING
        os.kill(job.pid, signal.SIGKILL)
        job.wait(timeout=30)
        time.sleep(1.5)
        frame = loads_alike(root, stale_after=1.0)
        assert sorted(frame["status"].astype(str)) == ["COMPLETED", "COMPLETED", "DIED", "FAILED"]
    finally:
        if job.poll() is None:
            job.kill()
        job.communicate()


def test_first_load_in_worker_processes_matches_one_process(repo, monkeypatch):
    """Many sweeps are shared among worker processes on a first load; rows, their order and the
    sweep records are as when one process reads them all. Copies of one job start at the same
    time, so only the walk order tells their rows apart."""
    from hydra_ledger.load import walk as discover

    root = repo / "multirun"
    for i in range(40):
        sweep = root / "many" / f"s{i:02d}"
        shutil.copytree(root / "a" / ".ledger", sweep / ".ledger")
        for num in range(5):
            shutil.copytree(root / "a" / "0", sweep / str(num), symlinks=True)
    shutil.rmtree(root / "many" / "s07" / "1")  # a sweep whose record lists a job with no record

    def both() -> pd.DataFrame:
        monkeypatch.setattr(discover, "_pool_size", lambda: 2)
        shared = hydra_ledger.load_runs(root, cache="off", errors="ignore")
        monkeypatch.setattr(discover, "_pool_size", lambda: 1)
        alone = hydra_ledger.load_runs(root, cache="off", errors="ignore")
        pd.testing.assert_frame_equal(shared, alone)
        return shared

    many = [str(root / "many" / "s00" / num) for num in "01"]
    frame = both()
    assert len(frame) == 3 + 40 * 5 - 1
    assert frame["path"].tolist()[:3] == [str(root / "a" / "0"), *many]
    shutil.copytree(root / "a" / "0", root / "b0")  # a job above the sweeps shared out: merged in walk order
    frame = both()
    assert frame["path"].tolist()[:4] == [str(root / "a" / "0"), str(root / "b0"), *many]


def test_columns_status_and_where_are_pushed_down(repo):
    root = repo / "multirun"
    full = hydra_ledger.load_runs(root, cache="off")
    narrow = loads_alike(root, columns=["run_id", "cfg.x", "summary.*"], status="COMPLETED")
    expected = full[full["status"] == "COMPLETED"][["run_id", "cfg.x"] + [c for c in full.columns
                                                                          if c.startswith("summary.")]]
    pd.testing.assert_frame_equal(narrow, expected.reset_index(drop=True))
    picked = loads_alike(root, where="cfg.x >= 2 and status == 'COMPLETED'", columns=["cfg.x"])
    pd.testing.assert_frame_equal(picked, pd.DataFrame({"cfg.x": pd.Series([3], dtype="int64")}))
    quoted = loads_alike(root, where="`cfg.x` >= 2 and `status` == 'COMPLETED'", columns=["cfg.x"])
    pd.testing.assert_frame_equal(quoted, picked)  # names back-quoted as pandas writes them
    with pytest.raises(ValueError, match=r"columns: no column matches 'cfg\.y' \(close names: cfg\.x\)"):
        hydra_ledger.load_runs(root, columns=["cfg.y"])
    with pytest.raises(ValueError, match=re.escape("unknown column 'cfg.y'")):
        hydra_ledger.load_runs(root, where="cfg.y > 1")


def test_ls_and_status_read_the_same_index(repo, capsys):
    root = repo / "multirun"
    hydra_ledger.load_runs(root)
    stamp = index_file(root).stat().st_mtime_ns
    assert cli_main(["status", "multirun", "--format", "json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [(e["total"], e["counts"]) for e in entries] == [(3, {"COMPLETED": 2, "FAILED": 1})]
    assert cli_main(["ls", "multirun", "--format", "csv", "--columns", "cfg.x"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [f"{i},{x}" for i, x in
                                                         zip(hydra_ledger.load_runs(root).sort_values(
                                                             "started_at", ascending=False)["run_id"], [3, 2, 1])]
    assert index_file(root).stat().st_mtime_ns == stamp
