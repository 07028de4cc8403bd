"""Where jobs run and write: chdir, custom run/sweep dirs and subdirs, no .hydra, awkward paths."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import hydra_ledger

LEDGER = "hydra/callbacks=ledger"


def record(job_dir: Path) -> dict:
    return json.loads((job_dir / ".ledger" / "run.json").read_text())


@pytest.mark.parametrize("chdir", [True, False], ids=["chdir", "no-chdir"])
def test_job_chdir(make_app, run_app, chdir):
    app = make_app("ledger_app")
    proc = run_app(app, LEDGER, "hydra.run.dir=out", f"hydra.job.chdir={chdir}")
    assert proc.returncode == 0, proc.stderr
    rec = record(app / "out")
    out = (app / "out").resolve()
    assert rec["job"]["output_dir"] == str(out)
    assert rec["job"]["working_dir"] == str(out if chdir else app.resolve())
    assert rec["launch"]["cwd"] == str(app.resolve())
    assert (app / "out" / "started").read_text() == str(out)  # hydra_ledger.run_dir() inside the task
    assert (rec["git"]["state"], rec["git"]["root"], rec["git"]["untracked"]) == ("ok", str(app.resolve()), [])
    assert rec["status"] == "COMPLETED"


def test_custom_sweep_dir_and_subdir(make_app, run_app):
    app = make_app("ledger_app")
    proc = run_app(app, "-m", LEDGER, "hydra.sweep.dir=runs/grid", "hydra.sweep.subdir=${hydra.job.override_dirname}",
                   "x=1,2", "kind=float")
    assert proc.returncode == 0, proc.stderr
    sweep = (app / "runs" / "grid").resolve()
    for x in (1, 2):
        job = record(sweep / f"kind=float,x={x}")["job"]
        assert (job["output_dir"], job["sweep_dir"]) == (str(sweep / f"kind=float,x={x}"), str(sweep))
    frame = hydra_ledger.load_runs(app / "runs")
    assert frame["path"].tolist() == [str(sweep / "kind=float,x=1"), str(sweep / "kind=float,x=2")]
    assert frame["sweep"].tolist() == [str(sweep)] * 2
    assert frame["summary.value"].tolist() == [2, 4]


def test_nested_subdir(make_app, run_app):
    """A subdir several levels deep still gives the sweep dir, also after the sweep is moved."""
    app = make_app("ledger_app")
    proc = run_app(app, "-m", LEDGER, "hydra.sweep.dir=s", "hydra.sweep.subdir=a/${hydra.job.num}/b", "x=1,2")
    assert proc.returncode == 0, proc.stderr
    moved = app.parent / "moved"
    (app / "s").rename(moved)
    frame = hydra_ledger.load_runs(moved)
    assert frame["path"].tolist() == [str(moved / "a" / "0" / "b"), str(moved / "a" / "1" / "b")]
    assert frame["sweep"].tolist() == [str(moved)] * 2


@pytest.mark.parametrize("mode", ["run", "multirun"])
def test_output_subdir_null(make_app, run_app, mode):
    app = make_app("ledger_app")
    args = ["hydra.run.dir=out"] if mode == "run" else ["hydra.sweep.dir=out", "x=1,2"]
    proc = run_app(app, *(["-m"] if mode == "multirun" else []), LEDGER, "hydra.output_subdir=null", *args)
    assert proc.returncode == 0, proc.stderr
    assert not list(app.rglob(".hydra"))
    frame = hydra_ledger.load_runs(app / "out")
    assert frame["status"].tolist() == ["COMPLETED"] * (1 if mode == "run" else 2)
    assert frame["summary.value"].tolist() == ([2] if mode == "run" else [2, 4])


AWKWARD = "dir with space 'quote' a=b ünï ✓"


def test_awkward_paths(make_app, run_app):
    app = make_app("ledger_app", dest=AWKWARD)
    (app / "dirty file ü.txt").write_text("x\n")
    proc = run_app(app, "-m", LEDGER, "hydra.sweep.dir='sweep ü=1'", "x=1,2", "kind='a b=c ü'")
    assert proc.returncode == 0, proc.stderr
    sweep = (app / "sweep ü=1").resolve()
    rec = record(sweep / "0")
    assert rec["job"]["output_dir"] == str(sweep / "0")
    assert rec["launch"]["script"] == str((app / "app.py").resolve())
    assert rec["git"]["root"] == str(app.resolve())
    assert rec["git"]["untracked"] == ["dirty file ü.txt"]
    assert rec["config"]["kind"] == "a b=c ü"
    frame = hydra_ledger.load_runs(app)
    assert frame["path"].tolist() == [str(sweep / "0"), str(sweep / "1")]
    assert frame["sweep"].tolist() == [str(sweep)] * 2
    assert frame["cfg.kind"].tolist() == ["a b=c ü"] * 2
