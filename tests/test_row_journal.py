"""A sweep's row journal: each job appends its final row."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import APPS, app_env, commit_all, init_repo

from hydra_ledger.record.row_journal import stat_signature
from hydra_ledger.record.rows import record_to_row
from hydra_ledger.record.schema import read_record

LEDGER = "hydra/callbacks=ledger"


@pytest.fixture
def sweep(tmp_path, monkeypatch) -> Path:
    """``multirun/a`` of a fresh repo: a recorded three-job sweep whose job 1 fails, its journal as written."""
    app = tmp_path / "repo"
    shutil.copytree(APPS / "ledger_app", app)
    init_repo(app)
    commit_all(app)
    proc = subprocess.run([sys.executable, "app.py", "-m", LEDGER, "hydra.sweep.dir=multirun/a", "x=1,2,3",
                           "fail_on=[2]", "log_summary=true"],
                          cwd=app, env=app_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    monkeypatch.setenv("HYDRA_LEDGER_CACHE", str(tmp_path / "cache"))
    return app / "multirun" / "a"


def journal(sweep_dir: Path) -> Path:
    return sweep_dir / ".ledger" / "rows.jsonl"


def lines(sweep_dir: Path) -> list[dict]:
    return [json.loads(line) for line in journal(sweep_dir).read_bytes().splitlines()]


def test_each_job_of_a_sweep_appends_the_row_of_its_final_record(sweep):
    entries = {line["job"]: line for line in lines(sweep)}
    assert sorted(entries) == ["0", "1", "2"]
    for name, line in entries.items():
        job_dir = sweep / name
        record_file = job_dir / ".ledger" / "run.json"
        assert line["sig"] == stat_signature(os.stat(record_file))
        row = record_to_row(read_record(record_file), str(job_dir))
        assert line["row"] == {**row, "path": None, "sweep": None}  # where the job is now: filled in at load
    assert [entries[n]["row"]["status"] for n in ("0", "1", "2")] == ["COMPLETED", "FAILED", "COMPLETED"]


def test_a_single_run_writes_no_journal(tmp_path):
    app = tmp_path / "repo"
    shutil.copytree(APPS / "ledger_app", app)
    init_repo(app)
    commit_all(app)
    proc = subprocess.run([sys.executable, "app.py", LEDGER, "hydra.run.dir=outputs/one"], cwd=app, env=app_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert not list(app.rglob("rows.jsonl"))


def test_a_journal_that_cannot_be_written_never_fails_the_jobs(tmp_path):
    app = tmp_path / "repo"
    shutil.copytree(APPS / "ledger_app", app)
    init_repo(app)
    commit_all(app)
    (app / "multirun" / "a" / ".ledger" / "rows.jsonl").mkdir(parents=True)  # a directory in its place
    proc = subprocess.run([sys.executable, "app.py", "-m", LEDGER, "hydra.sweep.dir=multirun/a", "x=1,2"],
                          cwd=app, env=app_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "rows.jsonl" not in proc.stderr
    for job in ("0", "1"):
        assert read_record(app / "multirun" / "a" / job / ".ledger" / "run.json")["status"] == "COMPLETED"
