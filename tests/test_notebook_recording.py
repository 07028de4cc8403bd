"""Notes and tags at launch, input fingerprints, artifacts, output capture, debug runs, the
'latest' link and enabled=false, on the runs recorded by tests/test_notebook_setup.py."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from test_notebook_setup import SWEEP_JOBS, notebook  # noqa: F401 - the shared fixture

import hydra_ledger
from hydra_ledger.cli import main


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sweep_a(repo: Path) -> pd.DataFrame:
    return hydra_ledger.load_runs(repo / "multirun" / "a").sort_values("job_num").reset_index(drop=True)


def records(repo: Path, sweep: str) -> list[dict]:
    files = sorted((repo / "multirun" / sweep).glob("*/.ledger/run.json"), key=lambda p: int(p.parent.parent.name))
    return [json.loads(f.read_text()) for f in files]


def test_launch_note_and_tags_reach_every_job_of_the_sweep(notebook):
    frame = sweep_a(notebook["repo"])
    assert len(frame) == SWEEP_JOBS
    assert frame["note"].tolist() == ["does ABC help XYZ?"] * SWEEP_JOBS
    assert frame["tags"].tolist() == [["abc", "xyz"]] * SWEEP_JOBS
    sweep = json.loads((notebook["repo"] / "multirun/a/.ledger/sweep.json").read_text())
    assert (sweep["note"], sweep["tags"], sweep["debug"]) == ("does ABC help XYZ?", ["abc", "xyz"], False)


def test_tags_and_notes_added_later_join_the_launch_ones(notebook, capsys, monkeypatch, tmp_path):
    # on a copy of the single run: the shared runs stay as recorded for the other tests
    shutil.copytree(notebook["repo"] / "outputs", tmp_path / "outputs", symlinks=True)
    monkeypatch.chdir(tmp_path)
    single = hydra_ledger.load_runs("outputs")
    assert (single["tags"].tolist(), single["note"].tolist()) == ([["single"]], ["single note"])
    job_dir = single["path"][0]
    assert job_dir.startswith(str(tmp_path))
    assert main(["tag", job_dir, "best"]) == 0
    assert main(["note", job_dir, "later"]) == 0
    capsys.readouterr()
    again = hydra_ledger.load_runs("outputs")
    assert (again["tags"].tolist(), again["note"].tolist()) == ([["single", "best"]], ["single note\nlater"])
    shared = hydra_ledger.load_runs(notebook["repo"] / "outputs")
    assert (shared["tags"].tolist(), shared["note"].tolist()) == ([["single"]], ["single note"])


def test_inputs_are_fingerprinted_and_hashed_once_across_the_sweep(notebook):
    repo, cache = notebook["repo"], notebook["cache"]
    frame = sweep_a(repo)
    data = repo / "data"
    tree = hashlib.sha256(f"F 1.png\0{sha(b'x')}\nF sub/2.png\0{sha(b'yy')}\n".encode()).hexdigest()
    expected = {
        "input.data.train.path": str(data / "train.csv"), "input.data.train.kind": "file",
        "input.data.train.size": 4, "input.data.train.hash": sha(b"a,b\n"),
        "input.data.images.path": str(data / "images"), "input.data.images.kind": "dir",
        "input.data.images.size": 3, "input.data.images.files": 2, "input.data.images.hash": f"sha256:{tree}",
        "input.data.big.path": str(data / "big.bin"), "input.data.big.kind": "file",
        "input.data.big.size": 1 << 30, "input.data.big.hash": sha(bytes(1 << 30)),
        "input.data.labels.path": str(data / "labels.csv"), "input.data.labels.kind": "missing",
    }
    for column, value in expected.items():
        assert frame[column].tolist() == [value] * SWEEP_JOBS, column
    assert frame["input.data.labels.hash"].isna().all()
    assert frame["input.data.big.mtime"].nunique() == 1
    # hashed once: job 0 read the four files; the 19 others found the two files' and the tree's hashes cached
    costs = [r["input_hashing"] for r in records(repo, "a")]
    assert [(c["files_hashed"], c["bytes_hashed"], c["cache_hits"]) for c in costs] == \
        [(4, 4 + 1 + 2 + (1 << 30), 0)] + [(0, 0, 3)] * (SWEEP_JOBS - 1)
    logs = "".join(p.read_text() for p in sorted((repo / "multirun/a").glob("*/app.log")))
    assert logs.count(f"hydra-ledger: hashed {data / 'big.bin'} (1073741824 bytes)") == 1
    assert logs.count(f"input data.labels: {data / 'labels.csv'} does not exist — recorded as missing") == SWEEP_JOBS
    entries = sorted((cache / "hydra-ledger" / "hashes").rglob("*"))
    assert [p.suffix for p in entries if p.is_file()] == [".json"] * 5  # 4 files + 1 tree; no lock left


def test_artifacts_are_listed_and_open_refuses_to_escape(notebook):
    repo = notebook["repo"]
    frame = sweep_a(repo)
    for num, (artifacts, refused, path) in enumerate(zip(frame["artifacts"], frame["summary.escape_refused"],
                                                          frame["path"])):
        assert [(a["path"], a["size"], a["hash"]) for a in artifacts] == [
            ("eval/preds.csv", 12, sha(b"id,pred\n0,1\n")),
            ("model.pt", len(b"weights %d" % num), sha(b"weights %d" % num)),
        ]
        assert refused == (f"hydra_ledger.open: 'eval/../../escape.txt' resolves to {repo}/multirun/a/escape.txt, "
                           f"outside the run's output dir {path}; give a path inside it, "
                           "e.g. hydra_ledger.open('model.pt', 'wb')")
    assert not (repo / "multirun/a/escape.txt").exists()


def test_output_is_captured_at_the_fd_level_and_still_reaches_the_terminal(notebook):
    repo = notebook["repo"]
    for num in range(SWEEP_JOBS):
        ledger = repo / "multirun/a" / str(num) / ".ledger"
        assert (ledger / "stdout.log").read_text() == (
            f"python print seed={num}\nc-level write to fd 1\nfrom a subprocess\n")
        assert (ledger / "stderr.log").read_text() == "progress 3/3\n"  # \r redraws collapsed
    out, err = notebook["sweep_stdout"], notebook["sweep_stderr"]
    assert (out.count("c-level write to fd 1\n"), out.count("from a subprocess\n")) == (SWEEP_JOBS, SWEEP_JOBS)
    # the terminal gets every redraw (text mode turned each \r into \n)
    assert (err.count("progress 1/3\n"), err.count("progress 2/3\n")) == (SWEEP_JOBS, SWEEP_JOBS)


def test_debug_runs_are_hidden_unless_asked_for(notebook):
    repo = notebook["repo"]
    assert len(hydra_ledger.load_runs(repo / "multirun")) == SWEEP_JOBS
    assert "debug" not in hydra_ledger.load_runs(repo / "multirun").columns
    both = hydra_ledger.load_runs(repo / "multirun", include_debug=True)
    shown = both[both["sweep"] == str(repo / "multirun/b")]
    assert sorted(shown["job_num"].tolist()) == [0, 1]
    assert shown["debug"].tolist() == [True, True]
    assert both[both["sweep"] == str(repo / "multirun/a")]["debug"].isna().all()


def test_enabled_false_records_nothing(notebook):
    disabled = notebook["repo"] / "outputs" / "disabled"
    assert (disabled / ".hydra" / "config.yaml").is_file()  # the run happened
    assert not (disabled / ".ledger").exists()


def test_latest_links_point_at_the_newest_sweep_and_run(notebook):
    repo = notebook["repo"]
    assert notebook["latest_after_a"] == "a"
    assert os.readlink(repo / "multirun" / "latest") == "b"  # replaced by the later sweep
    single = hydra_ledger.load_runs(repo / "outputs")["path"][0]
    link = repo / "outputs" / "latest"
    assert os.readlink(link) == os.path.relpath(single, repo / "outputs")  # outputs/<date>/<time>
    assert link.resolve() == Path(single)
    assert sorted(p.name for p in (repo / "outputs").iterdir() if p.name.startswith(".")) == []  # no temp links


def test_show_lists_inputs_and_artifacts_and_diff_names_the_changed_input(notebook, capsys, tmp_path):
    repo = notebook["repo"]
    job = repo / "multirun" / "a" / "0"
    assert main(["show", str(job)]) == 0
    shown = capsys.readouterr().out
    assert f"  {'data.labels:':<13} {repo / 'data' / 'labels.csv'}  MISSING\n" in shown
    assert f"  {'data.train:':<13} {repo / 'data' / 'train.csv'}  {sha(b'a,b' + bytes([10]))}  (4 bytes)\n" in shown
    assert "\nartifacts\n" in shown
    # the same job, as if run on another version of the training file
    other = tmp_path / "other"
    shutil.copytree(job, other)
    record = json.loads((other / ".ledger" / "run.json").read_text())
    record["run_id"] = "0ther0ther00"
    record["inputs"]["data.train"]["hash"] = "sha256:changed"
    (other / ".ledger" / "run.json").write_text(json.dumps(record))
    assert main(["diff", str(job), str(other), "--format", "json"]) == 0
    diff = json.loads(capsys.readouterr().out)
    assert diff["inputs"]["changed"] == [{"key": "data.train.hash", "a": sha(b"a,b\n"), "b": "sha256:changed"}]


CAPTURE_LAUNCHERS = {
    "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    "submitit_local": ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5"],
}


@pytest.mark.parametrize("launcher", list(CAPTURE_LAUNCHERS))
def test_output_capture_in_launcher_worker_processes(make_app, run_app, launcher):
    """Jobs run in joblib's workers or under submitit's controller: each job's own output is
    in its ``.ledger/`` logs, and still reaches where the launcher sends it."""
    app = make_app("notebook_app")
    proc = run_app(app, "-m", *CAPTURE_LAUNCHERS[launcher], "seed=0,1", "hydra.sweep.dir=sweep",
                   "hydra.callbacks.ledger.capture_output=true", timeout=300)
    assert proc.returncode == 0, proc.stderr
    sweep = app / "sweep"
    for num in range(2):
        ledger = sweep / str(num) / ".ledger"
        assert (ledger / "stdout.log").read_text() == (
            f"python print seed={num}\nc-level write to fd 1\nfrom a subprocess\n")
        assert (ledger / "stderr.log").read_text() == "progress 3/3\n"
    if launcher == "joblib":  # the workers write to the terminal the sweep was started from
        delivered = proc.stdout
    else:  # submitit_local: to each job's log files in .submitit/
        delivered = "".join(p.read_text() for p in sorted((sweep / ".submitit").glob("*/*_log.out")))
    for num in range(2):
        assert f"python print seed={num}\n" in delivered
    assert delivered.count("from a subprocess\n") == 2


def test_a_job_log_under_another_name_is_a_log_not_an_artifact(make_app, run_app):
    from conftest import first_run, record

    app = make_app("rerun_app")
    job = first_run(app, run_app, "hydra.job_logging.handlers.file.filename=${hydra.runtime.output_dir}/custom.log")
    assert (job / "custom.log").is_file()
    assert "custom.log" not in [a["path"] for a in record(job)["artifacts"]]


@pytest.mark.parametrize("log_dir", ["${hydra.runtime.output_dir}", "{app}/real/first"], ids=["as-named", "resolved"])
def test_a_job_log_reached_through_a_linked_output_dir_is_a_log_not_an_artifact(make_app, run_app, log_dir):
    """The output dir named through a symbolic link: the log is matched whether its name goes
    through the link (as Hydra names the dir) or not."""
    from conftest import record

    app = make_app("rerun_app")
    (app / "real").mkdir()
    (app / "linked").symlink_to(app / "real", target_is_directory=True)
    proc = run_app(app, "hydra.run.dir=linked/first",
                   f"hydra.job_logging.handlers.file.filename={log_dir.replace('{app}', str(app))}/custom.log")
    assert proc.returncode == 0, proc.stderr
    job = app / "real" / "first"
    assert (job / "custom.log").is_file()
    assert [a["path"] for a in record(job)["artifacts"]] == []


def test_a_run_whose_output_dir_is_the_launch_dir_lists_no_artifacts(make_app, run_app):
    """``hydra.run.dir=.``: the files there are the project's, not the run's."""
    from conftest import record

    app = make_app("rerun_app")
    proc = run_app(app, "hydra.run.dir=.")
    assert proc.returncode == 0, proc.stderr
    assert "artifacts" not in record(app)
    assert "the output dir" in proc.stderr + (app / "app.log").read_text()
