"""The CLI commands on a fixed set of runs recorded once per module by a real Hydra sweep.

Runs (tests/apps/cli_sweep): a sweep ``model=small,large seed=0,1`` in multirun/sweep,
where large/seed=1 fails; then a commit, an uncommitted edit, and a single run
``lr=0.5`` in outputs/single.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import APPS, app_env, commit_all, init_repo, start_app

import hydra_ledger
from hydra_ledger.cli import main
from hydra_ledger.record.paths import RunPaths


def _python(cwd: Path, *args: str) -> None:
    proc = subprocess.run([sys.executable, "app.py", *args], cwd=cwd, env=app_env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("recorded") / "repo"
    shutil.copytree(APPS / "cli_sweep", repo)
    init_repo(repo)
    commit_all(repo, "initial")
    _python(repo, "-m", "model=small,large", "seed=0,1", "hydra.sweep.dir=multirun/sweep")
    (repo / "README").write_text("notes\n")
    commit_all(repo, "add a readme")
    with open(repo / "app.py", "a") as f:
        f.write("# an uncommitted edit\n")
    _python(repo, "lr=0.5", "hydra.run.dir=outputs/single")
    return repo


@pytest.fixture
def runs(recorded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the recorded runs, as the cwd."""
    repo = tmp_path / "repo"
    shutil.copytree(recorded, repo, symlinks=True)
    monkeypatch.chdir(repo)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return repo


def ids(repo: Path) -> dict[str, str]:
    """``{"sweep/0": run_id, ..., "single": run_id}``."""
    frame = hydra_ledger.load_runs(repo / "multirun", repo / "outputs")
    out = {}
    for run_id, path in zip(frame["run_id"], frame["path"]):
        name = Path(path).relative_to(repo)
        out["single" if name.parts[0] == "outputs" else f"sweep/{name.name}"] = run_id
    return out


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- ls -------------------------------------------------------------------------------------

def test_ls_csv_exact(runs, capsys):
    code, out, err = cli(capsys, "ls", "--format", "csv", "--columns", "cfg.model.name", "cfg.seed", "cfg.lr",
                         "status", "summary.*", "--sort", "cfg.model.name", "--sort", "cfg.seed", "--sort", "cfg.lr")
    i = ids(runs)
    assert (code, err) == (0, "")
    assert out == (
        "run_id,cfg.model.name,cfg.seed,cfg.lr,status,summary.acc,summary.loss\n"
        f"{i['sweep/2']},large,0,0.1,COMPLETED,0.4,0.125\n"
        f"{i['sweep/3']},large,1,0.1,FAILED,,\n"
        f"{i['sweep/0']},small,0,0.1,COMPLETED,0.1,0.2\n"
        f"{i['single']},small,0,0.5,COMPLETED,0.1,0.6\n"
        f"{i['sweep/1']},small,1,0.1,COMPLETED,0.2,0.2\n"
    )


def test_ls_json_exact_with_where(runs, capsys):
    code, out, _ = cli(capsys, "ls", "multirun", "--format", "json", "--where",
                       "cfg.model.name == 'small' and summary.acc > 0.15", "--columns", "cfg.seed", "summary.*")
    assert code == 0
    assert json.loads(out) == [{"run_id": ids(runs)["sweep/1"], "cfg.seed": 1, "summary.acc": 0.2,
                                "summary.loss": 0.2}]


def test_ls_table_newest_first_with_the_swept_keys(runs, capsys):
    code, out, err = cli(capsys, "ls")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    # the model's own keys (name, width, unstable) follow choice.model: folded
    assert lines[0].split() == ["run_id", "status", "started_at", "duration_s", "choice.model", "cfg.seed", "cfg.lr",
                                "summary.acc", "summary.loss"]
    assert set(lines[1]) == {"-", " "}
    i = ids(runs)
    assert [line.split()[0] for line in lines[2:]] == [i["single"], i["sweep/3"], i["sweep/2"], i["sweep/1"],
                                                      i["sweep/0"]]
    assert lines[2].split()[1] == "COMPLETED" and lines[3].split()[1] == "FAILED"
    assert "\033[" not in out  # not a terminal: no colour


def test_ls_group_by_mean_std(runs, capsys):
    code, out, _ = cli(capsys, "ls", "multirun", "--group-by", "model.name", "--format", "csv")
    assert code == 0
    assert out == (
        "cfg.model.name,count,summary.acc.mean,summary.acc.std,summary.loss.mean,summary.loss.std\n"
        "large,2,0.4,,0.125,\n"
        "small,2,0.15000000000000002,0.07071067811865477,0.2,0.0\n"
    )
    code, out, _ = cli(capsys, "ls", "multirun", "--group-by", "model.name", "--format", "markdown")
    assert out == (
        "| cfg.model.name | count | summary.acc | summary.loss |\n"
        "|---|---:|---|---|\n"
        "| large | 2 | 0.4 | 0.125 |\n"
        "| small | 2 | 0.15 ± 0.071 | 0.2 ± 0 |\n"
    )


def test_ls_latex_is_escaped(runs, capsys):
    code, out, _ = cli(capsys, "ls", "multirun", "--group-by", "model.name", "--format", "latex")
    assert code == 0
    assert out == (
        "\\begin{tabular}{lrll}\n\\toprule\n"
        "cfg.model.name & count & summary.acc & summary.loss \\\\\n\\midrule\n"
        "large & 2 & 0.4 & 0.125 \\\\\n"
        "small & 2 & 0.15 $\\pm$ 0.071 & 0.2 $\\pm$ 0 \\\\\n"
        "\\bottomrule\n\\end{tabular}\n"
    )


def test_ls_limit_and_accessor(runs, capsys):
    _, out, _ = cli(capsys, "ls", "--format", "csv", "--columns", "status", "--limit", "2",
                    "--where", "status.str.startswith('COMP')")
    i = ids(runs)
    assert out == f"run_id,status\n{i['single']},COMPLETED\n{i['sweep/2']},COMPLETED\n"


@pytest.mark.parametrize("where", ["`status` == 'COMPLETED' and `cfg.lr` > 0", "`status`.str.startswith('COMP')"],
                         ids=["backticks", "backticks-accessor"])
def test_ls_where_takes_pandas_backtick_quoted_names(runs, capsys, where):
    _, plain, _ = cli(capsys, "ls", "--format", "csv", "--columns", "status", "--where", "status == 'COMPLETED'")
    code, out, err = cli(capsys, "ls", "--format", "csv", "--columns", "status", "--where", where)
    assert (code, err) == (0, "")
    assert out == plain and len(out.splitlines()) > 1


def test_ls_where_backticks_name_only_columns(runs, capsys):
    code, out, err = cli(capsys, "ls", "--where", "`cfg.lrr` > 0")
    assert (code, out) == (1, "")
    assert err.startswith("hydra-ledger: --where: unknown column 'cfg.lrr' (close names: cfg.lr)")


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("cfg.model.widht > 10",
         "hydra-ledger: --where: unknown column 'cfg.model.widht' (close names: cfg.model.width); "
         "list the columns with 'hydra-ledger ls --all-columns --format csv | head -1'\n"),
        ("stauts == 'FAILED'",
         "hydra-ledger: --where: unknown column 'stauts' (close names: status); list the columns with "
         "'hydra-ledger ls --all-columns --format csv | head -1'\n"),
        ("cfg.lr >",
         "hydra-ledger: --where 'cfg.lr >' failed: SyntaxError: invalid syntax (<unknown>, line 1)\n"),
        ("cfg.lr + 1",
         "hydra-ledger: --where 'cfg.lr + 1' must be a condition (true or false per run), "
         "e.g. \"cfg.lr > 0.01 and status == 'COMPLETED'\"\n"),
    ],
    ids=["misspelt-dotted", "misspelt-base", "syntax", "not-a-condition"],
)
def test_ls_where_errors(runs, capsys, where, message):
    code, out, err = cli(capsys, "ls", "--where", where)
    assert (code, out, err) == (1, "", message)


def test_ls_unknown_glob_and_sort_column(runs, capsys):
    assert cli(capsys, "ls", "--columns", "cfg.modle.*") == (
        1, "", "hydra-ledger: --columns: no column matches 'cfg.modle.*' (close names: cfg.model.*)\n")
    code, _, err = cli(capsys, "ls", "--sort", "acc", "--format", "csv")
    assert code == 0 and err == ""  # `acc` means summary.acc
    assert cli(capsys, "ls", "--sort", "nope") == (1, "", "hydra-ledger: --sort: unknown column 'nope'\n")


# -- show -----------------------------------------------------------------------------------

def test_show_names_a_single_run_without_a_job_number_and_a_moved_sweep_where_it_is(runs, capsys):
    """The runs were recorded elsewhere and copied here: show names the sweep dir as it is now."""
    _, out, _ = cli(capsys, "show", ids(runs)["single"])
    head = out.split("\n\n")[0].splitlines()
    assert "  job:          app (RUN)" in head
    assert not any(line.startswith("  sweep:") for line in head)
    _, out, _ = cli(capsys, "show", ids(runs)["sweep/3"])
    head = out.split("\n\n")[0].splitlines()
    assert "  job:          app #3 (MULTIRUN)" in head
    assert "  sweep:        multirun/sweep" in head


def test_show_failed_run_by_id_prefix(runs, capsys):
    run_id = ids(runs)["sweep/3"]
    code, out, err = cli(capsys, "show", run_id[:8])
    assert (code, err) == (0, "")
    head = out.split("\n\n")[0].splitlines()
    assert head[0] == f"run {run_id}  FAILED"
    assert head[1] == "  path:         multirun/sweep/3"
    sections = [block.splitlines()[0] for block in out.split("\n\n")[1:]]
    assert sections == ["error", "command", "overrides", "config", "choices", "git", "environment", "resources",
                        "summary", "metrics (last values)", "files"]
    error = out.split("\n\n")[1].splitlines()
    assert error[1] == "  FloatingPointError: loss diverged (width=40, seed=1)"
    assert error[3] == "  Traceback (most recent call last):"
    assert error[2] == "  second line"  # a multi-line message stays indented
    assert "\nconfig\n  model:\n    name: large\n    width: 40\n    unstable: true\n  lr: 0.1\n  seed: 1\n" in out
    assert "\nchoices\n  model:        large\n" in out
    assert "\nmetrics (last values)\n  loss:         0.373333  (step 2)\n" in out
    assert "\n  log app.log:  multirun/sweep/3/app.log\n" in out


def test_show_patch_and_json(runs, capsys):
    code, out, _ = cli(capsys, "show", "outputs/single", "--patch")
    assert code == 0
    assert "  dirty:        yes\n" in out
    assert out.endswith("+# an uncommitted edit\n")
    code, out, _ = cli(capsys, "show", "outputs/single", "--format", "json")
    data = json.loads(out)
    assert (data["run_id"], data["status"], data["summary"]) == (ids(runs)["single"], "COMPLETED",
                                                                  {"acc": 0.1, "loss": 0.6})
    assert data["metrics_last"] == {"loss": {"value": 0.343333, "step": 2}}


def test_ambiguous_prefix_lists_the_matches(runs, capsys):
    shutil.copytree(runs / "multirun" / "sweep", runs / "multirun" / "sweep-copy")  # e.g. rsynced twice
    run_id = ids(runs)["sweep/0"]
    code, out, err = cli(capsys, "show", run_id[:6])
    assert (code, out) == (1, "")
    assert err == (
        f"hydra-ledger: run id prefix {run_id[:6]!r} matches 2 runs under outputs, multirun:\n"
        f"  {run_id}  multirun/sweep-copy/0\n"
        f"  {run_id}  multirun/sweep/0\n"
        "type more characters of the id, or the job dir\n"
    )
    assert cli(capsys, "show", "zzzz") == (
        1, "", "hydra-ledger: no run with id starting with 'zzzz' under outputs, multirun, and no such run directory\n")
    assert cli(capsys, "show", "multirun/sweep") == (
        1, "", "hydra-ledger: multirun/sweep holds no run record (.ledger/run.json); is it a sweep dir? "
               "pass one of its job dirs, or a run id\n")


# -- diff -----------------------------------------------------------------------------------

def test_diff_sections(runs, capsys):
    i = ids(runs)
    code, out, _ = cli(capsys, "diff", i["sweep/0"], "outputs/single", "--format", "json")
    assert code == 0
    diff = json.loads(out)
    assert diff["config"] == {"added": [], "removed": [],
                              "changed": [{"key": "lr", "a": 0.1, "b": 0.5, "delta": 0.4}]}
    assert diff["overrides"] == {"only_a": ["model=small", "seed=0"], "only_b": ["lr=0.5"]}
    assert diff["choices"] == {"added": [], "removed": [], "changed": []}
    assert diff["summary"] == {"added": [], "removed": [],
                               "changed": [{"key": "loss", "a": 0.2, "b": 0.6, "delta": 0.39999999999999997}]}
    assert [c["key"] for c in diff["git"]["changed"]] == ["commit", "dirty"]
    assert [line.split(" ", 1)[1] for line in diff["git"]["commits"]] == ["add a readme"]
    assert diff["git"]["patch_changed"] is True
    assert diff["environment"] == {"added": [], "removed": [], "changed": []}

    code, out, _ = cli(capsys, "diff", i["sweep/0"], "outputs/single")
    assert out.splitlines()[:2] == [f"A: {i['sweep/0']}  multirun/sweep/0", f"B: {i['single']}  outputs/single"]
    assert "\nconfig\n  ~ lr: 0.1 -> 0.5  (Δ 0.4)\n" in out
    assert "\noverrides\n  - model=small\n  - seed=0\n  + lr=0.5\n" in out
    assert "\nsummary\n  ~ loss: 0.2 -> 0.6  (Δ 0.4)\n" in out
    assert out.endswith("\nsame: status, choices, inputs, environment, packages\n")


# -- status ---------------------------------------------------------------------------------

def test_status_counts_and_failures(runs, capsys):
    code, out, _ = cli(capsys, "status", "--format", "json")
    assert code == 0
    assert json.loads(out) == [
        {"sweep": "multirun/sweep", "total": 4, "counts": {"COMPLETED": 3, "FAILED": 1}, "running": [],
         "problems": [{"path": "multirun/sweep/3", "run_id": ids(runs)["sweep/3"], "status": "FAILED",
                       "error": "FloatingPointError: loss diverged (width=40, seed=1)"}], "finished": 4},
        {"sweep": "outputs", "total": 1, "counts": {"COMPLETED": 1}, "running": [], "problems": [], "finished": 1},
    ]
    code, out, _ = cli(capsys, "status")
    assert out == (
        "sweep           total  COMPLETED  FAILED\n"
        "--------------  -----  ---------  ------\n"
        "multirun/sweep      4          3       1\n"
        "outputs             1          1       0\n"
        "\n"
        "multirun/sweep\n"
        "  FAILED  multirun/sweep/3  FloatingPointError: loss diverged (width=40, seed=1)\n"
    )
    code, out, _ = cli(capsys, "status", "multirun", "--format", "csv")
    assert out == "sweep,total,COMPLETED,FAILED\nmultirun/sweep,4,3,1\n"


def test_status_of_a_running_sweep(runs, capsys):
    proc = start_app(runs, "-m", "seed=0,1", "sleep=60", "hydra.sweep.dir=multirun/live")
    try:
        record = runs / "multirun" / "live" / "0" / ".ledger" / "run.json"
        deadline = time.monotonic() + 60
        while not record.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert record.exists(), proc.stderr.read() if proc.poll() is not None else "no record yet"
        _, out, _ = cli(capsys, "status", "multirun/live")
    finally:
        proc.kill()
        proc.communicate()
    lines = out.splitlines()
    # job 1 has not started yet: the sweep's job list makes it PENDING, so 0 of 2 are finished
    assert lines[:3] == ["sweep          total  PENDING  RUNNING",
                         "-------------  -----  -------  -------",
                         "multirun/live      2        1        1"]
    assert lines[4] == "multirun/live: running, 0/2 finished"
    assert re.fullmatch(r"  RUNNING  multirun/live/0  for \d+\.\ds", lines[5])


# -- tag, untag, note -----------------------------------------------------------------------

def test_tags_and_notes_are_sidecars_and_columns(runs, capsys):
    i = ids(runs)
    record_file = RunPaths(runs / "multirun" / "sweep" / "1").record
    before = record_file.read_bytes()
    assert cli(capsys, "tag", i["sweep/1"][:8], "best", "table-2") == (0, f"{i['sweep/1']}: tags best, table-2\n", "")
    assert cli(capsys, "untag", "multirun/sweep/1", "table-2") == (0, f"{i['sweep/1']}: tags best\n", "")
    _, out, _ = cli(capsys, "note", i["sweep/1"], "the one in the paper")
    assert out == f"{i['sweep/1']}: note added (multirun/sweep/1/.ledger/notes.jsonl)\n"
    assert record_file.read_bytes() == before  # the job's record is never rewritten
    assert json.loads((record_file.parent / "tags.json").read_text()) == {"added": ["best"], "removed": ["table-2"]}

    frame = hydra_ledger.load_runs("multirun", tags=["best"])
    assert frame["run_id"].tolist() == [i["sweep/1"]]
    assert frame["tags"].tolist() == [["best"]]
    assert frame["note"].tolist() == ["the one in the paper"]
    _, out, _ = cli(capsys, "ls", "--tag", "best", "--format", "csv", "--columns", "tags", "note")
    assert out == f"run_id,tags,note\n{i['sweep/1']},\"[\"\"best\"\"]\",the one in the paper\n"
    assert cli(capsys, "note", i["sweep/1"], "--clear")[1] == f"{i['sweep/1']}: notes cleared\n"
    assert "note" not in hydra_ledger.load_runs("multirun").columns
    assert cli(capsys, "tag", i["sweep/1"], "a,b") == (
        1, "", "hydra-ledger: invalid tag 'a,b': tags are non-empty and contain no comma\n")


def _read_all(fd: int) -> str:
    """Everything written to a pty so far: one read may return only the first of several writes."""
    import os
    import select

    chunks = []
    while select.select([fd], [], [], 0.2)[0]:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode()


def test_colour_and_progress_only_on_a_terminal(monkeypatch):
    import io
    import os

    from hydra_ledger.cli._output import progress, use_colour

    master, replica = os.openpty()
    try:
        with open(replica, "w") as tty:
            monkeypatch.delenv("NO_COLOR", raising=False)
            monkeypatch.setenv("TERM", "xterm")
            assert use_colour(tty) is True
            assert list(progress(list(range(300)), "reading runs", enabled=True, stream=tty)) == list(range(300))
            tty.flush()
            drawn = _read_all(master)
            assert "reading runs [" in drawn and "300/300" in drawn
            monkeypatch.setenv("NO_COLOR", "1")
            assert use_colour(tty) is False
    finally:
        os.close(master)
    pipe = io.StringIO()
    monkeypatch.delenv("NO_COLOR")
    assert use_colour(pipe) is False
    assert list(progress(list(range(300)), "reading runs", enabled=True, stream=pipe)) == list(range(300))
    assert pipe.getvalue() == ""


@pytest.mark.parametrize("spelling", [["--sort", "~summary.loss"], ["--sort=-summary.loss"],
                                      ["--sort", "-summary.loss"], ["-s", "-summary.loss"]],
                         ids=["tilde", "equals-minus", "minus", "short-minus"])
def test_ls_sort_descending(runs, capsys, spelling):
    code, out, err = cli(capsys, "ls", "--format", "csv", "--columns", "summary.loss", *spelling)
    i = ids(runs)
    assert (code, err) == (0, "")
    assert out.splitlines()[1:4] == [f"{i['single']},0.6", f"{i['sweep/0']},0.2", f"{i['sweep/1']},0.2"]


def test_unreadable_path_is_one_clear_line(runs, capsys, tmp_path):
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("")
    code, out, err = cli(capsys, "note", str(blocked / "x"), "text")
    assert code == 1 and out == ""
    assert err.startswith("hydra-ledger: ") and "Traceback" not in err


def test_a_long_first_load_draws_a_progress_bar_on_a_terminal(runs, monkeypatch, tmp_path):
    """An unindexed root is read in worker processes; on a terminal, ls shows how far they are."""
    import os

    from hydra_ledger.load import walk as discover

    monkeypatch.setenv("HYDRA_LEDGER_CACHE", str(tmp_path / "fresh-cache"))  # no index yet: a cold load
    monkeypatch.setattr(discover, "PARALLEL_MIN", 1)  # even these few jobs go to worker processes
    master, replica = os.openpty()
    try:
        with open(replica, "w") as tty:
            monkeypatch.setattr("sys.stderr", tty)
            assert main(["ls", "multirun", "--format", "csv"]) == 0
            tty.flush()
            os.set_blocking(master, False)
            try:
                drawn = os.read(master, 65536).decode()
            except BlockingIOError:  # nothing was drawn
                drawn = ""
    finally:
        os.close(master)
    assert "reading runs [" in drawn
