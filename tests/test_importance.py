"""Hyperparameter importance of real sweeps: a grid of the basic launcher and an Optuna sweep of an app
whose metric is 10 * x whatever y and the optimiser group (tests/apps/importance_app)."""
from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _cdp import CHROMIUM, NO_CHROMIUM, DevTools
from conftest import APPS, app_env, commit_all, init_repo

import hydra_ledger
from hydra_ledger.cli import main
from hydra_ledger.load.importance import (
    ImportanceError,
    default_evaluator,
    evaluators,
    param_importance,
    study_direction,
)

SWEEPS = {
    "grid": ["x=0,1,2,3", "y=0,1,2", "opt=sgd,adam"],
    "optuna": ["hydra/sweeper=optuna", "hydra.sweeper.n_trials=12", "hydra.sweeper.sampler.seed=0",
               "hydra.sweeper.direction=maximize",
               "x=interval(0,3)", "y=choice(0,1,2)", "opt=sgd,adam"],
}
INSTALL = "pip install 'hydra-ledger[importance]'"
OPTUNA_2 = importlib.metadata.version("optuna").startswith("2.")  # the 1.3 line's
DEFAULT_LABEL = "mean decrease impurity" if OPTUNA_2 else "fANOVA"


def _app(repo: Path, *args: str) -> None:
    proc = subprocess.run([sys.executable, "app.py", *args], cwd=repo, env=app_env(), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """multirun/grid: 24 jobs over x, y and opt; multirun/optuna: 12 trials over the same keys;
    multirun/one: x alone swept."""
    repo = tmp_path_factory.mktemp("importance") / "repo"
    shutil.copytree(APPS / "importance_app", repo)
    init_repo(repo)
    commit_all(repo, "initial")
    for name, overrides in SWEEPS.items():
        _app(repo, "-m", *overrides, f"hydra.sweep.dir=multirun/{name}")
    _app(repo, "-m", "x=0,1,2", "hydra.sweep.dir=multirun/one")
    return repo


@pytest.fixture
def in_repo(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(repo)
    return repo


@pytest.mark.parametrize("sweep", sorted(SWEEPS))
@pytest.mark.parametrize("evaluator", [None, "mdi", *(["fanova"] if not OPTUNA_2 else [])])
def test_the_key_the_metric_depends_on_ranks_first(in_repo, sweep, evaluator):
    frame = hydra_ledger.load_runs(f"multirun/{sweep}")
    result = param_importance(frame, "summary.value", evaluator=evaluator)
    assert next(iter(result.importances)) == "cfg.x"
    assert set(result.importances) == {"cfg.x", "cfg.y", "choice.opt"}
    assert result.importances["cfg.x"] > 0.9
    assert result.importances["cfg.x"] > 10 * max(result.importances["cfg.y"], result.importances["choice.opt"])
    assert result.runs == result.total == len(frame) == (24 if sweep == "grid" else 12)
    assert sum(result.importances.values()) == pytest.approx(1.0)


def test_the_default_evaluator_is_fanova_but_on_optuna_2():
    assert default_evaluator() == ("mdi" if OPTUNA_2 else "fanova")


def test_fanova_ranks_the_key_that_matters_or_says_what_works(in_repo, capsys):
    """fANOVA everywhere but in optuna 2 (the stable Hydra line's), whose fANOVA fails inside optuna
    with the numpy releases its Python lines install (1.24 and 2.x alike): there the command says
    so and names the evaluator that works."""
    import numpy

    if OPTUNA_2:
        assert main(["importance", "multirun/grid", "--metric", "value", "--evaluator", "fanova"]) == 1
        assert capsys.readouterr().err.startswith(
            f"hydra-ledger: the fANOVA of optuna 2.10.1 fails with numpy {numpy.__version__} (setting an array element")
        return
    result = param_importance(hydra_ledger.load_runs("multirun/grid"), "value", evaluator="fanova")
    assert next(iter(result.importances)) == "cfg.x"
    assert result.importances["cfg.x"] > 0.9


def test_ped_anova_where_optuna_has_it(in_repo, capsys):
    if "ped-anova" not in evaluators():
        assert main(["importance", "multirun/grid", "--metric", "value", "--evaluator", "ped-anova"]) == 1
        assert capsys.readouterr().err == (f"hydra-ledger: evaluator 'ped-anova' is not in optuna "
                                           f"{importlib.metadata.version('optuna')} (installed); available: "
                                           f"fanova, mdi\n")
        return
    result = param_importance(hydra_ledger.load_runs("multirun/grid"), "value", evaluator="ped-anova")
    assert next(iter(result.importances)) == "cfg.x"


def test_the_table_lists_keys_by_importance_with_the_runs_used(in_repo, capsys):
    assert main(["importance", "multirun/grid", "--metric", "summary.value"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == (f"summary.value (minimize): {DEFAULT_LABEL} importance over 24 of 24 runs of multirun/grid "
                        "(completed, with a finite summary.value)")
    assert lines[1].split() == ["key", "importance"]
    assert lines[2].split()[0] == "cfg.x"
    assert sorted(line.split()[0] for line in lines[2:]) == ["cfg.x", "cfg.y", "choice.opt"]
    values = [float(line.split()[1]) for line in lines[2:]]
    assert values == sorted(values, reverse=True)
    assert re.search(r"^cfg\.x +0\.9\d+  █{28,30}$", lines[2])
    assert err == ""


def test_json_for_scripts(in_repo, capsys):
    assert main(["importance", "multirun/optuna", "--metric", "value", "--format", "json", "-e", "mdi"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {k: data[k] for k in ("metric", "direction", "evaluator", "runs", "total", "sweeps", "note")} == {
        "metric": "summary.value", "direction": "maximize", "evaluator": "mdi", "runs": 12, "total": 12,
        "sweeps": ["multirun/optuna"], "note": None}  # maximize: the direction of the study, as it recorded
    assert data["importances"][0]["key"] == "cfg.x"
    assert [row["importance"] for row in data["importances"]] == sorted(
        (row["importance"] for row in data["importances"]), reverse=True)


def test_the_direction_is_the_studys_for_its_objective_unless_given(in_repo, capsys):
    frame = hydra_ledger.load_runs("multirun/optuna", "multirun/grid")
    assert study_direction(frame[frame["sweep"].str.endswith("optuna")], "summary.value") == "maximize"
    assert study_direction(frame, "summary.value") is None  # the grid sweep says nothing
    assert study_direction(frame[frame["sweep"].str.endswith("optuna")], "summary.other") is None
    assert main(["importance", "multirun/optuna", "-m", "value", "-f", "json", "--direction", "minimize"]) == 0
    assert json.loads(capsys.readouterr().out)["direction"] == "minimize"
    assert main(["importance", "multirun/grid", "-m", "value", "-f", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["direction"] == "minimize"


def test_without_a_sweep_the_latest_is_ranked(in_repo, capsys):
    assert main(["importance", "--metric", "value", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["sweeps"] == ["multirun/one"]
    assert err == "hydra-ledger: the latest sweep, multirun/one (name sweeps to rank their runs together)\n"


def test_one_swept_key_is_trivially_all_of_the_importance(in_repo, capsys):
    assert main(["importance", "multirun/one", "--metric", "value"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[2].split() == ["cfg.x", "1.0000", "█" * 30]
    assert err == ("hydra-ledger: only cfg.x varies across the 3 completed runs with a finite summary.value (of 3): "
                   "its importance is 1 trivially\n")


def test_runs_that_did_not_complete_or_lack_the_metric_are_left_out(in_repo):
    frame = hydra_ledger.load_runs("multirun/grid")
    frame.loc[0, "status"] = "FAILED"
    frame["summary.value"] = frame["summary.value"].astype(float)
    frame.loc[1, "summary.value"] = float("nan")
    result = param_importance(frame, "value")
    assert (result.runs, result.total) == (22, 24)
    assert next(iter(result.importances)) == "cfg.x"


def test_a_swept_key_constant_in_the_runs_used_is_left_out(in_repo):
    frame = hydra_ledger.load_runs("multirun/grid")
    frame.loc[frame["choice.opt"] == "adam", "status"] = "FAILED"
    result = param_importance(frame, "value")
    assert result.constant == ["choice.opt"]
    assert next(iter(result.importances)) == "cfg.x"
    assert set(result.importances) == {"cfg.x", "cfg.y"}
    assert (result.runs, result.total) == (12, 24)


def test_a_missing_metric_names_the_summary_columns(in_repo, capsys):
    assert main(["importance", "multirun/grid", "--metric", "summary.loss"]) == 1
    assert capsys.readouterr().err == (
        "hydra-ledger: no column 'summary.loss'; the summary columns: summary.value\n")
    with pytest.raises(ImportanceError, match=re.escape("no column 'valeu'; the summary columns: summary.value")):
        param_importance(hydra_ledger.load_runs("multirun/grid"), "valeu")


def test_too_few_runs_or_a_constant_metric_say_so(in_repo):
    frame = hydra_ledger.load_runs("multirun/grid")
    two = frame[(frame["cfg.y"] == 0) & (frame["choice.opt"] == "sgd")].head(2).copy()
    two["cfg.y"] = [0, 1]
    with pytest.raises(ImportanceError, match=re.escape(
            "too few runs: 2 completed runs with a finite summary.value (of 2); importance needs at least 3")):
        param_importance(two, "value")
    flat = frame[frame["cfg.x"] == 2]
    with pytest.raises(ImportanceError, match=re.escape(
            "summary.value is 20 in all 6 completed runs with a finite summary.value (of 6): "
            "no key explains a variation")):
        param_importance(flat, "value")
    with pytest.raises(ImportanceError, match=re.escape(
            "no swept key varies across the 1 completed run with a finite summary.value (of 24) (swept: cfg.x, "
            "cfg.y, choice.opt): nothing to attribute summary.value to")):
        one = (frame["cfg.x"] == 1) & (frame["cfg.y"] == 1) & (frame["choice.opt"] == "sgd")
        param_importance(frame.assign(status=frame["status"].where(one, "FAILED")), "value")


def test_without_optuna_the_error_names_the_extra(in_repo):
    """optuna made unimportable in a real process: a None entry in sys.modules blocks its import."""
    code = ("import sys; sys.modules['optuna'] = None; from hydra_ledger.cli import main; "
            "sys.exit(main(['importance', 'multirun/grid', '--metric', 'value']))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=in_repo, env=app_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1
    assert proc.stderr == f"hydra-ledger: hyperparameter importance needs optuna: {INSTALL}\n"
    assert proc.stdout == ""


def test_the_command_registers_without_pandas_or_optuna():
    code = ("import argparse, sys; import hydra_ledger.cli.importance as command; "
            "command.register(argparse.ArgumentParser().add_subparsers()); "
            "print(sorted(m for m in ('pandas', 'optuna', 'pyarrow', 'sklearn') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], env=app_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "[]\n"


def report_data(html: str) -> dict:
    payload = re.search(r'<script id="ledger-data" type="application/json">(.*?)</script>', html, re.S)
    assert payload
    return json.loads(payload.group(1))


@pytest.mark.browser
def test_the_report_has_an_importance_pane(in_repo, tmp_path):
    assert main(["report", "multirun/grid", "-o", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text()
    pane = report_data(html)["importance"]
    assert pane["note"] is None
    result = pane["metrics"]["summary.value"]
    assert result["importances"][0]["key"] == "cfg.x"
    assert (result["runs"], result["evaluator"], result["label"]) == (24, default_evaluator(), DEFAULT_LABEL)
    if CHROMIUM is None:
        pytest.fail(NO_CHROMIUM)
    browser = DevTools(tmp_path)
    try:
        browser.open(tmp_path / "r.html")
        rows = browser.js("Array.from(document.querySelectorAll('#imp-table tr')).map(tr => "
                          "[tr.children[0].textContent, tr.children[2].firstChild.style.width])")
        note = browser.js("document.getElementById('imp-note').textContent")
    finally:
        browser.close()
    assert rows[0][0] == "x"
    assert sorted(key for key, _ in rows) == ["opt", "x", "y"]
    assert float(rows[0][1].rstrip("%")) > 90  # the bar of x: nearly the whole width
    assert note == f"{DEFAULT_LABEL} importance over 24 of 24 runs (completed, with a finite value)"


def test_without_optuna_the_report_says_so_in_one_line(in_repo, tmp_path):
    out = tmp_path / "r.html"
    code = ("import sys; sys.modules['optuna'] = None; from hydra_ledger.cli import main; "
            f"sys.exit(main(['report', 'multirun/grid', '-o', {str(out)!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=in_repo, env=app_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    pane = report_data(out.read_text())["importance"]
    assert pane == {"note": f"Hyperparameter importance needs optuna: {INSTALL}", "metrics": {}}


def test_the_report_ranks_many_runs_with_mdi(in_repo):
    """fANOVA's cost grows with the runs: above FANOVA_MAX_RUNS the pane uses mean decrease impurity."""
    import pandas as pd

    from hydra_ledger.report.build import FANOVA_MAX_RUNS, report_data

    frame = hydra_ledger.load_runs("multirun/grid")
    many = pd.concat([frame] * (FANOVA_MAX_RUNS // len(frame) + 1), ignore_index=True)
    result = report_data(many)["importance"]["metrics"]["summary.value"]
    assert (result["evaluator"], result["runs"]) == ("mdi", len(many))
    assert result["importances"][0]["key"] == "cfg.x"
    assert report_data(frame)["importance"]["metrics"]["summary.value"]["evaluator"] == default_evaluator()
