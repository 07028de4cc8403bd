"""What the views lead with: the swept keys of config-group, value and Optuna sweeps, with the
config keys that follow a group choice folded behind it (tests/apps/group_sweep)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import APPS, app_env, commit_all, init_repo

import hydra_ledger
from hydra_ledger.cli import main

LEAD = ["run_id", "status", "started_at", "duration_s"]
MODEL_KEYS = ["cfg.model.C", "cfg.model.kernel", "cfg.model.n_estimators", "cfg.model.max_depth"]
DATASET_KEYS = ["cfg.dataset.n_samples", "cfg.dataset.noise"]


def _app(repo: Path, *args: str) -> None:
    proc = subprocess.run([sys.executable, "app.py", *args], cwd=repo, env=app_env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """multirun/groups: model=svm,forest dataset=a,b seed=0,1; multirun/values: lr=0.1,0.2;
    multirun/optuna: 12 trials sampling lr from an interval, and the model."""
    repo = tmp_path_factory.mktemp("views") / "repo"
    shutil.copytree(APPS / "group_sweep", repo)
    init_repo(repo)
    commit_all(repo, "initial")
    _app(repo, "-m", "model=svm,forest", "dataset=a,b", "seed=0,1", "hydra.sweep.dir=multirun/groups")
    _app(repo, "-m", "lr=0.1,0.2", "hydra.sweep.dir=multirun/values")
    _app(repo, "-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=12", "hydra.sweeper.direction=maximize",
         "hydra.sweeper.sampler.seed=0", "lr=interval(0.0001,0.1)", "model=svm,forest", "return_float=true",
         "hydra.sweep.dir=multirun/optuna")
    return repo


@pytest.fixture
def in_repo(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(repo)
    return repo


def header(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    assert main(["ls", *argv, "--format", "csv"]) == 0
    return capsys.readouterr().out.splitlines()[0].split(",")


def test_a_group_sweep_lists_its_swept_keys_in_command_line_order_then_the_summary(in_repo, capsys):
    assert header(capsys, "multirun/groups") == [*LEAD, "choice.model", "choice.dataset", "cfg.seed",
                                                 "summary.accuracy"]
    frame = hydra_ledger.load_runs("multirun/groups")
    assert hydra_ledger.swept_keys(frame) == ["choice.model", "choice.dataset", "cfg.seed"]
    assert hydra_ledger.swept_keys(frame.iloc[::-1]) == ["choice.model", "choice.dataset", "cfg.seed"]


def test_the_table_has_the_same_columns(in_repo, capsys):
    assert main(["ls", "multirun/groups"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0].split() == [*LEAD, "choice.model", "choice.dataset", "cfg.seed", "summary.accuracy"]
    assert len(out.splitlines()) == 2 + 8 and err == ""  # no note when the output is not a terminal


def test_all_columns_shows_the_folded_keys(in_repo, capsys):
    shown = header(capsys, "multirun/groups", "--all-columns")
    assert set(MODEL_KEYS + DATASET_KEYS + ["choice.model", "choice.dataset", "cfg.seed"]) <= set(shown)
    assert header(capsys, "multirun/groups", "--columns", "cfg.model.*") == [
        "run_id", "cfg.model.kind", *MODEL_KEYS]


def test_a_folded_key_named_in_sort_or_where_is_shown(in_repo, capsys):
    assert header(capsys, "multirun/groups", "--sort", "model.C", "--where", "`cfg.dataset.noise` > 0.2") == [
        *LEAD, "choice.model", "cfg.seed", "cfg.model.C", "cfg.dataset.noise", "summary.accuracy"]  # one dataset left
    assert header(capsys, "multirun/groups", "--sort", "model") == [  # a group's name is its choice
        *LEAD, "choice.model", "choice.dataset", "cfg.seed", "summary.accuracy"]


def test_on_a_terminal_a_note_says_what_is_folded_behind_which_choice(in_repo, capsys, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["ls", "multirun/groups"]) == 0
    assert capsys.readouterr().err == (
        "hydra-ledger: 8 varying config keys folded (5 behind choice.model, 3 behind choice.dataset); "
        "--all-columns shows them, --columns picks some\n")
    assert main(["ls", "multirun/optuna"]) == 0
    assert capsys.readouterr().err == (
        "hydra-ledger: 5 varying config keys folded behind choice.model; "
        "--all-columns shows them, --columns picks some\n")
    assert main(["ls", "multirun/groups", "--all-columns"]) == 0
    assert capsys.readouterr().err == ""


def test_a_value_sweep_keeps_its_config_key(in_repo, capsys):
    assert header(capsys, "multirun/values") == [*LEAD, "cfg.lr", "summary.accuracy"]


def test_sweeps_listed_together_show_the_union_of_what_they_swept(in_repo, capsys):
    assert header(capsys, "multirun/groups", "multirun/values") == [
        *LEAD, "choice.model", "choice.dataset", "cfg.seed", "cfg.lr", "summary.accuracy"]


def test_an_optuna_sweep_leads_with_its_sampled_keys(in_repo, capsys):
    assert header(capsys, "multirun/optuna") == [*LEAD, "cfg.lr", "choice.model", "summary.accuracy",
                                                 "summary.value"]


def test_runs_without_varying_overrides_show_the_config_keys_that_vary(tmp_path, monkeypatch, capsys):
    """Two single runs of different config files: nothing was overridden, the config changed."""
    repo = tmp_path / "repo"
    shutil.copytree(APPS / "group_sweep", repo)
    init_repo(repo)
    commit_all(repo, "initial")
    _app(repo, "hydra.run.dir=outputs/first")
    config = repo / "config.yaml"
    config.write_text(config.read_text().replace("seed: 0", "seed: 7"))
    _app(repo, "hydra.run.dir=outputs/second")
    monkeypatch.chdir(repo)
    assert header(capsys, "outputs") == [*LEAD, "cfg.seed", "summary.accuracy"]


def test_folded_names_what_each_key_follows():
    from hydra_ledger.load.swept import folded

    frame = pd.DataFrame({
        "overrides": [["model=svm", "seed=0"], ["model=forest", "seed=0"], ["model=svm", "seed=1"]],
        "choice.model": ["svm", "forest", "svm"], "cfg.seed": [0, 0, 1],
        "cfg.model.C": [1.0, None, 1.0], "cfg.out": ["/a/0", "/a/1", "/a/2"],
    })
    assert hydra_ledger.swept_keys(frame) == ["choice.model", "cfg.seed"]
    assert folded(frame, ["choice.model", "cfg.seed"]) == {"choice.model": ["cfg.model.C"], "": ["cfg.out"]}


@pytest.mark.parametrize(("override", "key"), [("model=svm", "model"), ("+x=1", "x"), ("++db.port=3306", "db.port"),
                                               ("~extra=1", "extra"), ("model/enc=big", "model/enc"), ("~extra", None),
                                               ("a=b=c", "a")])
def test_override_key(override, key):
    from hydra_ledger.load.swept import override_key

    assert override_key(override) == key


def test_log_summarizes_sampled_floats_as_a_count_and_a_range(in_repo, capsys):
    assert main(["log", "multirun"]) == 0
    out = capsys.readouterr().out
    lr = hydra_ledger.load_runs("multirun/optuna")["cfg.lr"]
    assert lr.nunique() == 12
    assert f"  swept:    lr: 12 values in [{lr.min():.3g}, {lr.max():.3g}]  model=svm,forest\n" in out
    assert "  swept:    model=svm,forest  dataset=a,b  seed=0,1\n" in out  # a few values: listed
    assert "  swept:    lr=0.1,0.2\n" in out


@pytest.mark.parametrize("paths", [["multirun/groups"], ["multirun/optuna"], ["multirun/groups", "multirun/values"],
                                   []])
def test_the_listing_from_the_index_folds_what_the_frame_folds(in_repo, capsys, monkeypatch, paths):
    """The default view comes from the index (hydra_ledger.load.newest); sorted explicitly, from the frame."""
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["ls", *paths]) == 0
    quick = capsys.readouterr()
    assert main(["ls", *paths, "--sort=~started_at"]) == 0
    assert capsys.readouterr() == quick
    assert quick.out.strip()
