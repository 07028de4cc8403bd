"""Runs outside ./outputs and ./multirun are found from anywhere in their project.

The app (tests/apps/project_roots) puts its runs and sweeps in absolute dirs outside its
repository; each launch registers them in the repository's git dir, so that a bare
``hydra-ledger ls`` from a subdirectory lists them, ids resolve, and a rerun lands where the
app puts a new run. HYDRA_LEDGER_ROOTS and ``[tool.hydra-ledger] roots`` name more dirs.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from conftest import APPS, commit_all, init_repo, record

import hydra_ledger
from hydra_ledger.cli import main as cli_main
from hydra_ledger.record import registry
from hydra_ledger.record.schema import LedgerLoadWarning


def make_project(tmp_path: Path, *, git: bool = True) -> tuple[Path, Path]:
    """``(repo, away)``: the app in ``tmp_path/repo``, its runs and sweeps under ``tmp_path/away``."""
    repo, away = tmp_path / "repo", tmp_path / "away"
    shutil.copytree(APPS / "project_roots", repo)
    config = repo / "config.yaml"
    config.write_text(config.read_text().replace("RUNS_HOME", str(away)))
    (repo / "sub" / "deeper").mkdir(parents=True)
    (repo / "sub" / "deeper" / ".keep").write_text("")
    if git:
        init_repo(repo)
        commit_all(repo, "initial")
    return repo, away


def ls_json(*args: str, capsys: pytest.CaptureFixture[str]) -> list[dict]:
    assert cli_main(["ls", "--format", "json", "--columns", "path", *args]) == 0
    return json.loads(capsys.readouterr().out)


def ran(proc) -> None:
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_runs_and_sweeps_outside_the_repo_are_listed_looked_up_and_rerun_where_the_app_puts_runs(
        tmp_path, run_app, monkeypatch, capsys):
    repo, away = make_project(tmp_path)
    ran(run_app(repo, "seed=1"))
    ran(run_app(repo, "-m", "seed=2,3"))
    (single,) = (away / "runs").glob("[0-9]*/[0-9]*")
    sweep_jobs = sorted((away / "sweeps").glob("[0-9]*/[0-9]"))
    assert len(sweep_jobs) == 2
    assert not (repo / "outputs").exists() and not (repo / "multirun").exists()
    # one entry per dir holding runs, in the repository's git dir
    entries = sorted(json.loads(f.read_text())["path"] for f in (repo / ".git" / "hydra-ledger" / "roots").iterdir())
    assert entries == [str(away / "runs"), str(away / "sweeps")]

    monkeypatch.chdir(repo / "sub" / "deeper")
    rows = ls_json(capsys=capsys)
    assert sorted(r["path"] for r in rows) == sorted(map(str, [single, *sweep_jobs]))
    assert sorted(hydra_ledger.load_runs()["path"]) == sorted(map(str, [single, *sweep_jobs]))

    run_id = record(single)["run_id"]
    assert cli_main(["show", run_id[:6]]) == 0
    assert f"path:         {single}" in capsys.readouterr().out
    assert cli_main(["status"]) == 0
    status = capsys.readouterr().out
    assert str(single.parent) in status and str(sweep_jobs[0].parent) in status

    # a rerun goes where the app puts a new run: its absolute hydra.run.dir, resolved now
    assert cli_main(["rerun", run_id[:6]]) == 0
    out = capsys.readouterr().out
    rerun_dir = Path(re.search(r": (\S+)  run_id=", out).group(1))
    assert rerun_dir.parent.parent == away / "runs" and rerun_dir != single
    assert record(rerun_dir)["rerun_of"] == run_id
    assert not (repo / "outputs").exists()
    rows = ls_json(capsys=capsys)
    assert sorted(r["path"] for r in rows) == sorted(map(str, [single, rerun_dir, *sweep_jobs]))

    # --output-dir still wins, and that dir is registered too
    assert cli_main(["rerun", run_id[:6], "--output-dir", str(tmp_path / "chosen")]) == 0
    capsys.readouterr()
    assert record(tmp_path / "chosen")["rerun_of"] == run_id
    assert str(tmp_path / "chosen") in [r["path"] for r in ls_json(capsys=capsys)]


def test_a_relative_run_dir_reruns_beside_the_original_and_the_dry_run_shows_the_template(
        tmp_path, run_app, monkeypatch, capsys):
    repo, _ = make_project(tmp_path)
    ran(run_app(repo, "seed=4", "hydra.run.dir=results/${now:%Y-%m-%d}/${now:%H-%M-%S}"))
    (job,) = (repo / "results").glob("[0-9]*/[0-9]*")
    monkeypatch.chdir(repo / "sub")
    assert [r["path"] for r in ls_json(capsys=capsys)] == [str(job)]

    assert cli_main(["rerun", str(job), "--dry-run"]) == 0
    template = f"{repo}/results/${{now:%Y-%m-%d}}/${{now:%H-%M-%S}}"
    assert f"hydra.mode=RUN 'hydra.run.dir='\"'\"'{template}'\"'\"''" in capsys.readouterr().out

    result = hydra_ledger.rerun(job, capture=True)
    assert result.returncode == 0
    assert result.path.parent.parent == repo / "results"  # not in the temporary worktree, nor outputs/rerun
    assert result.run["rerun_of"] == record(job)["run_id"]


def test_a_copied_repository_lists_its_own_runs_not_the_originals(tmp_path, run_app, monkeypatch, capsys):
    repo, _ = make_project(tmp_path)
    ran(run_app(repo, "seed=4", "hydra.run.dir=results/${now:%Y-%m-%d}/${now:%H-%M-%S}"))
    copy = tmp_path / "copy"
    shutil.copytree(repo, copy, symlinks=True)
    (job,) = (copy / "results").glob("[0-9]*/[0-9]*")
    monkeypatch.chdir(copy / "sub")
    assert [r["path"] for r in ls_json(capsys=capsys)] == [str(job)]
    shutil.rmtree(copy / "results")  # gone from the copy only: the original's entry stays
    monkeypatch.chdir(repo / "sub")
    assert [Path(r["path"]).parent.parent for r in ls_json(capsys=capsys)] == [repo / "results"]


def test_hydra_ledger_roots_and_the_pyproject_table_name_more_dirs(tmp_path, run_app, monkeypatch, capsys):
    repo, away = make_project(tmp_path)
    for name in ("a", "b"):
        ran(run_app(repo, f"hydra.run.dir={away / name}", "hydra.callbacks.ledger.register=false"))
    assert not (repo / ".git" / "hydra-ledger").exists()
    monkeypatch.chdir(repo / "sub")
    monkeypatch.delenv("HYDRA_LEDGER_ROOTS", raising=False)
    message = (f"hydra-ledger: no runs found from here: no 'outputs' or 'multirun' directory here, no run dirs "
               f"registered for the project {repo} (its launches register them), and no HYDRA_LEDGER_ROOTS or "
               "[tool.hydra-ledger] roots in a pyproject.toml; pass the paths of runs or sweeps to load")
    with pytest.raises(FileNotFoundError, match=re.escape(message)):
        hydra_ledger.load_runs()
    assert cli_main(["ls"]) == 1
    assert capsys.readouterr().err == message + "\n"

    (repo / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.hydra-ledger]\nroots = ["../away/b"]\n')
    assert [r["path"] for r in ls_json(capsys=capsys)] == [str(away / "b")]

    monkeypatch.setenv("HYDRA_LEDGER_ROOTS", f"{away / 'a'}{os.pathsep}{tmp_path / 'nowhere'}")  # the variable wins
    assert [r["path"] for r in ls_json(capsys=capsys)] == [str(away / "a")]
    monkeypatch.setenv("HYDRA_LEDGER_ROOTS", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=re.escape(
            f"and HYDRA_LEDGER_ROOTS names no existing dir ({tmp_path / 'nowhere'})")):
        hydra_ledger.load_runs()


def test_gone_entries_are_pruned_and_a_corrupt_one_is_skipped_with_a_warning(tmp_path, run_app, monkeypatch):
    repo, away = make_project(tmp_path)
    ran(run_app(repo, "seed=1"))
    ran(run_app(repo, f"hydra.run.dir={away / 'fixed'}"))
    entries = repo / ".git" / "hydra-ledger" / "roots"
    assert len(list(entries.iterdir())) == 2
    shutil.rmtree(away / "fixed")
    (entries / "0123456789abcdef.json").write_text('{"schema": "hydra-ledger/root", "path": ')
    monkeypatch.chdir(repo)

    with pytest.warns(LedgerLoadWarning, match=re.escape(
            f"hydra-ledger: cannot read the run-dir registry entry {entries / '0123456789abcdef.json'}: ")) as caught:
        frame = hydra_ledger.load_runs()
    assert len(frame) == 1 and frame["path"][0].startswith(str(away / "runs"))
    assert "— skipped; delete it (the app's next launch registers its run dir again)" in str(caught[0].message)
    remaining = sorted(f.name for f in entries.iterdir())
    # both sorted: the live entry's name is a hash of a tmp path, which may sort before 0123...
    assert remaining == sorted(["0123456789abcdef.json", registry.project_of(repo).entry_file(str(away / "runs")).name])


def test_a_registry_that_cannot_be_written_never_fails_the_job(tmp_path, run_app):
    repo, away = make_project(tmp_path)
    (repo / ".git" / "hydra-ledger").write_text("not a directory\n")

    single = run_app(repo, "seed=5")
    sweep = run_app(repo, "-m", "seed=6,7")

    for proc in (single, sweep):
        assert proc.returncode == 0, proc.stderr
        assert f"hydra-ledger: cannot register {away}" in proc.stdout + proc.stderr
        assert "the job runs on" in proc.stdout + proc.stderr
    frame = hydra_ledger.load_runs(away)
    assert sorted(frame["cfg.seed"]) == [5, 6, 7] and set(frame["status"]) == {"COMPLETED"}


def test_outside_git_the_launch_dir_is_the_project_registered_in_the_user_cache(tmp_path, run_app, monkeypatch,
                                                                                 capsys):
    repo, away = make_project(tmp_path, git=False)
    cache = tmp_path / "cache"
    ran(run_app(repo, "seed=8", env={"XDG_CACHE_HOME": str(cache)}))
    (entry,) = cache.glob("hydra-ledger/projects/*/roots/*.json")
    assert json.loads(entry.read_text())["project"] == str(repo)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.chdir(repo / "sub")
    assert [Path(r["path"]).parent.parent for r in ls_json(capsys=capsys)] == [away / "runs"]


@pytest.mark.parametrize(("template", "run_dir", "expected"), [
    ("outputs/${now:%Y-%m-%d}/${now:%H-%M-%S}", "outputs/2026-01-02/03-04-05", "outputs"),
    ("/data/runs/${now:%Y-%m-%d_%H-%M-%S}", "/data/runs/2026-01-02_03-04-05", "/data/runs"),
    ("/data/${now:%Y/%m/%d}/run", "/data/2026/01/02/run", "/data/2026/01/02/run"),  # fixed last part: the dir itself
    ("/data/${now:%Y/%m/%d}", "/data/2026/01/02", "/data"),
    ("${oc.env:RUNS}/exp/${now:%H-%M-%S}", "/srv/r/exp/03-04-05", "/srv/r/exp"),
    ("/data/${hydra.job.name}_${now:%H}", "/data/app_03", "/data/app_03"),  # not only time: the dir itself
    ("/data/x-${hydra.job.override_dirname}", "/data/x-a=1", "/data/x-a=1"),
    ("/data/exp1", "/data/exp1", "/data/exp1"),
    ("${now:%Y-%m-%d}", "2026-01-02", "2026-01-02"),  # its parent is the launch dir
    (".", ".", None),
])
def test_the_dir_registered_is_the_parent_of_the_time_stamped_part(tmp_path, template, run_dir, expected):
    launch = tmp_path / "launch"
    root = registry.runs_root(run_dir, template, launch)
    assert root == (None if expected is None else launch / expected)


def test_the_dir_registered_is_never_the_temp_or_home_dir(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert registry.runs_root(tmp_path / "x", f"{tmp_path}/${{now:%H}}", "/elsewhere") == tmp_path / "x"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    home_run = tmp_path / "home" / "12"
    assert registry.runs_root(home_run, f"{tmp_path}/home/${{now:%H}}", "/elsewhere") == home_run
