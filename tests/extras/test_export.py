"""``hydra-ledger export``: a real sweep exported into a real MLflow store (sqlite) and into TensorBoard
event files, read back with MLflow's client and TensorBoard's own event reader, then exported again.

Needs the ``mlflow`` and ``tensorboard`` extras: run by scripts/test in the extras environment."""
from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import APPS, app_env, commit_all, git, init_repo, record, start_app, wait_for

import hydra_ledger

JOBS = ("0", "1", "2", "3")  # model=small,large x seed=0,1; large with seed 1 fails
LAYERS = "+layers=[8,16]"  # a list in the config: one parameter, as JSON


def hydra_ledger_cli(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The command line as a user runs it: ``python -m hydra_ledger ...`` in its own process."""
    return subprocess.run([sys.executable, "-m", "hydra_ledger", *args], cwd=cwd, env=app_env(env),
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/apps/cli_sweep swept once in a git repo (each job logs ``loss`` at steps 0, 1, 2)."""
    repo = tmp_path_factory.mktemp("export") / "repo"
    shutil.copytree(APPS / "cli_sweep", repo)
    init_repo(repo)
    commit_all(repo, "initial")
    proc = subprocess.run([sys.executable, "app.py", "-m", "model=small,large", "seed=0,1", LAYERS,
                           "hydra.sweep.dir=multirun/sweep"], cwd=repo, env=app_env(), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr  # the failing job fails the sweep
    return repo


@pytest.fixture
def repo(recorded: Path, tmp_path: Path) -> Path:
    """A private copy of the recorded sweep."""
    copy = tmp_path / "repo"
    shutil.copytree(recorded, copy, symlinks=True)
    return copy


def jobs(repo: Path) -> dict[str, dict]:
    """``{run_id: record}`` of the sweep's jobs, with the job dir under ``"dir"``."""
    out = {}
    for num in JOBS:
        rec = record(repo / "multirun" / "sweep" / num)
        rec["dir"] = repo / "multirun" / "sweep" / num
        out[rec["run_id"]] = rec
    return out


def metric_points(job_dir: Path) -> list[tuple[int, int, float]]:
    """``(step, time in ms, value)`` of the ``loss`` lines of a job's metrics.jsonl."""
    lines = [json.loads(line) for line in (job_dir / ".ledger" / "metrics.jsonl").read_text().splitlines()]
    return [(line["step"], round(line["time"] * 1000), line["values"]["loss"]) for line in lines]


def ms(iso: str) -> int:
    import datetime

    return round(datetime.datetime.fromisoformat(iso).timestamp() * 1000)


def mlflow_runs(uri: str) -> dict[str, object]:
    """``{ledger run id: MLflow run}`` of every run in the store."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, max_results=1000)
    found = {r.data.tags["hydra_ledger.run_id"]: r for r in runs}
    assert len(found) == len(runs), "two MLflow runs of one ledger run"
    return found


def output_lines(proc: subprocess.CompletedProcess[str]) -> list[list[str]]:
    return [line.split("  ") for line in proc.stdout.splitlines()]


# -- MLflow ---------------------------------------------------------------------------------

def test_mlflow_export_holds_params_metrics_tags_status_and_times_and_a_reexport_updates(repo):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{repo / 'mlflow.db'}"
    proc = hydra_ledger_cli(repo, "export", "--to", "mlflow", "--tracking-uri", uri, "multirun/sweep")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines()[-1] == f"hydra-ledger: exported 4 runs to {uri} (4 created, 0 updated)"
    recorded = jobs(repo)
    lines = output_lines(proc)
    assert sorted(line[0] for line in lines) == sorted(recorded)
    assert {(line[1], line[3]) for line in lines} == {("created", "multirun/sweep")}
    client = MlflowClient(tracking_uri=uri)
    assert [e.name for e in client.search_experiments() if e.name != "Default"] == ["multirun/sweep"]

    runs = mlflow_runs(uri)
    assert sorted(runs) == sorted(recorded)
    commit = git(repo, "rev-parse", "HEAD").strip()
    for run_id, rec in recorded.items():
        run = runs[run_id]
        model = rec["config"]["model"]
        assert run.info.run_name == " ".join(rec["overrides"])
        assert run.data.params == {"model.name": model["name"], "model.width": str(model["width"]),
                                   "model.unstable": str(model["unstable"]), "lr": "0.1",
                                   "seed": str(rec["config"]["seed"]), "sleep": "0", "layers": "[8, 16]"}
        history = client.get_metric_history(run.info.run_id, "loss")
        assert [(m.step, m.timestamp, m.value) for m in history] == metric_points(rec["dir"])
        summary = {f"summary.{k}": v for k, v in rec["summary"].items()}
        assert run.data.metrics == {"loss": history[-1].value, **summary}
        failed = rec["status"] == "FAILED"
        assert run.info.status == ("FAILED" if failed else "FINISHED")
        assert (run.info.start_time, run.info.end_time) == (ms(rec["started_at"]), ms(rec["ended_at"]))
        tags = run.data.tags
        assert tags["hydra_ledger.status"] == rec["status"]
        assert tags["hydra_ledger.path"] == str(rec["dir"])
        assert tags["hydra_ledger.sweep"] == str(repo / "multirun" / "sweep")
        assert tags["hydra_ledger.job_num"] == str(rec["job"]["num"])
        assert tags["mlflow.source.git.commit"] == tags["hydra_ledger.git.commit"] == commit
        assert tags["mlflow.source.git.branch"] == tags["hydra_ledger.git.branch"] == "main"
        assert tags["hydra_ledger.git.dirty"] == "false"
        assert tags["hydra_ledger.host"] == rec["host"]["hostname"]
        assert tags["hydra_ledger.tags"] == ""
        assert tags["mlflow.note.content"].startswith(
            f"hydra-ledger run `{run_id}`: [{rec['dir']}]({rec['dir'].as_uri()})")
        if failed:
            assert summary == {}
            assert tags["hydra_ledger.error"] == "FloatingPointError: loss diverged (width=40, seed=1)\nsecond line"
            assert "**FAILED**: FloatingPointError: loss diverged" in tags["mlflow.note.content"]
        else:
            assert "hydra_ledger.error" not in tags
    first_ids = {k: r.info.run_id for k, r in runs.items()}

    # a tag and a note added since: exporting again updates the same runs and adds nothing twice
    best = next(k for k, rec in recorded.items() if rec["job"]["num"] == 0)
    assert hydra_ledger_cli(repo, "tag", best, "best", "paper table").returncode == 0
    assert hydra_ledger_cli(repo, "note", best, "the one in the paper").returncode == 0
    again = hydra_ledger_cli(repo, "export", "--to", "mlflow", "--tracking-uri", uri, "multirun")
    assert again.returncode == 0, again.stderr
    assert again.stderr.splitlines()[-1] == f"hydra-ledger: exported 4 runs to {uri} (0 created, 4 updated)"
    assert {(line[0], line[1], line[2]) for line in output_lines(again)} == {
        (k, "updated", v) for k, v in first_ids.items()}
    runs = mlflow_runs(uri)
    assert {k: r.info.run_id for k, r in runs.items()} == first_ids
    tags = runs[best].data.tags
    assert (tags["best"], tags["paper table"], tags["hydra_ledger.tags"]) == ("true", "true", "best, paper table")
    assert tags["mlflow.note.content"].endswith("\n\nthe one in the paper")
    for run_id, run in runs.items():
        assert len(client.get_metric_history(run.info.run_id, "loss")) == 3
        for name in run.data.metrics:
            if name.startswith("summary."):
                assert len(client.get_metric_history(run.info.run_id, name)) == 1
        if run_id != best:
            assert "best" not in run.data.tags

    # untagged: the tag leaves the MLflow run too
    assert hydra_ledger_cli(repo, "untag", best, "paper table").returncode == 0
    assert hydra_ledger_cli(repo, "export", "--to", "mlflow", "--tracking-uri", uri, best[:6]).returncode == 0
    tags = mlflow_runs(uri)[best].data.tags
    assert (tags["best"], tags["hydra_ledger.tags"]) == ("true", "best")
    assert "paper table" not in tags


def test_a_run_exported_while_running_gets_its_end_from_the_next_export(repo):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{repo / 'live.db'}"
    job = repo / "outputs" / "live"
    proc = start_app(repo, "sleep=600", "hydra.run.dir=outputs/live")
    try:
        wait_for(job / ".ledger" / "metrics.jsonl", proc)
        first = hydra_ledger_cli(repo, "export", "--to", "mlflow", "--tracking-uri", uri, "--experiment", "live",
                                 "outputs/live")
        assert first.returncode == 0, first.stderr
        (run,) = mlflow_runs(uri).values()
        assert (run.info.status, run.info.end_time) == ("RUNNING", None)
        assert run.data.tags["hydra_ledger.status"] == "RUNNING"
        assert len(MlflowClient(tracking_uri=uri).get_metric_history(run.info.run_id, "loss")) == 3
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C: the job records itself INTERRUPTED
        proc.communicate(timeout=120)
    rec = record(job)
    assert rec["status"] == "INTERRUPTED"

    second = hydra_ledger_cli(repo, "export", "--to", "mlflow", "--tracking-uri", uri, "outputs/live")
    assert second.returncode == 0, second.stderr
    assert second.stderr.splitlines()[-1] == f"hydra-ledger: exported 1 run to {uri} (0 created, 1 updated)"
    (after,) = mlflow_runs(uri).values()
    assert after.info.run_id == run.info.run_id
    assert MlflowClient(tracking_uri=uri).get_experiment(after.info.experiment_id).name == "live"
    assert (after.info.status, after.info.end_time) == ("KILLED", ms(rec["ended_at"]))
    assert after.data.tags["hydra_ledger.status"] == "INTERRUPTED"
    assert len(MlflowClient(tracking_uri=uri).get_metric_history(after.info.run_id, "loss")) == 3


# -- TensorBoard ----------------------------------------------------------------------------

def event_reader(path: Path):
    from tensorboard.backend.event_processing import event_accumulator

    reader = event_accumulator.EventAccumulator(str(path), size_guidance={event_accumulator.TENSORS: 0})
    reader.Reload()
    return reader


def hparams_data(reader, tag: str):
    from tensorboard.plugins.hparams import plugin_data_pb2

    return plugin_data_pb2.HParamsPluginData.FromString(reader.PluginTagToContent("hparams")[tag])


def scalars(reader, tag: str) -> list[tuple[int, float]]:
    from tensorboard.util import tensor_util

    return [(e.step, tensor_util.make_ndarray(e.tensor_proto).item()) for e in reader.Tensors(tag)]


def test_tensorboard_export_is_an_hparams_experiment_and_a_reexport_rewrites_it(repo):
    from tensorboard.plugins.hparams import api_pb2

    proc = hydra_ledger_cli(repo, "export", "--to", "tensorboard", "tb", "multirun/sweep")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines()[-1] == "hydra-ledger: exported 4 runs to tb (4 created, 0 updated)"
    recorded = jobs(repo)
    dirs = {line[0]: line[2] for line in output_lines(proc)}
    assert sorted(dirs) == sorted(recorded)
    logdir = repo / "tb"
    names = ["model=small,seed=0,+layers=_8,16", "model=small,seed=1,+layers=_8,16",
             "model=large,seed=0,+layers=_8,16", "model=large,seed=1,+layers=_8,16"]  # readable in run lists
    for run_id, rec in recorded.items():
        assert dirs[run_id] == f"tb/{names[rec['job']['num']]}-{run_id}"
    assert sorted(p.name for p in logdir.iterdir() if p.is_dir()) == sorted(Path(d).name for d in dirs.values())

    for run_id, rec in recorded.items():
        reader = event_reader(repo / dirs[run_id])
        start = hparams_data(reader, "_hparams_/session_start_info").session_start_info
        model = rec["config"]["model"]
        assert {k: getattr(v, v.WhichOneof("kind")) for k, v in start.hparams.items()} == {
            "model.name": model["name"], "model.width": model["width"], "model.unstable": model["unstable"],
            "lr": 0.1, "seed": rec["config"]["seed"], "sleep": 0, "layers": "[8, 16]"}
        assert start.group_name == run_id
        assert start.start_time_secs == pytest.approx(ms(rec["started_at"]) / 1000, abs=1e-3)
        assert scalars(reader, "loss") == [(step, value) for step, _, value in metric_points(rec["dir"])]
        assert {k: scalars(reader, f"summary.{k}") for k in rec["summary"]} == {
            k: [(2, v)] for k, v in rec["summary"].items()}
        end = hparams_data(reader, "_hparams_/session_end_info").session_end_info
        failed = rec["status"] == "FAILED"
        assert end.status == (api_pb2.STATUS_FAILURE if failed else api_pb2.STATUS_SUCCESS)
        assert end.end_time_secs == pytest.approx(ms(rec["ended_at"]) / 1000, abs=1e-3)

    experiment = hparams_data(event_reader(logdir), "_hparams_/experiment").experiment
    infos = {info.name: info for info in experiment.hparam_infos}
    assert sorted(infos) == ["layers", "lr", "model.name", "model.unstable", "model.width", "seed", "sleep"]
    assert [v.string_value for v in infos["model.name"].domain_discrete.values] == ["large", "small"]
    assert (infos["model.width"].domain_interval.min_value, infos["model.width"].domain_interval.max_value) == (10, 40)
    assert infos["model.unstable"].type == api_pb2.DATA_TYPE_BOOL
    assert sorted(m.name.tag for m in experiment.metric_infos) == ["loss", "summary.acc", "summary.loss"]

    again = hydra_ledger_cli(repo, "export", "--to", "tensorboard", "tb", "multirun/sweep")
    assert again.returncode == 0, again.stderr
    assert again.stderr.splitlines()[-1] == "hydra-ledger: exported 4 runs to tb (0 created, 4 updated)"
    assert {line[0]: line[2] for line in output_lines(again)} == dirs
    for run_id in recorded:
        files = list((repo / dirs[run_id]).iterdir())
        assert len(files) == 1 and "tfevents" in files[0].name, files
        assert len(scalars(event_reader(repo / dirs[run_id]), "loss")) == 3
    assert len(list(logdir.glob("events.out.tfevents.*"))) == 1

    # a run exported later joins the experiment that the earlier ones are in
    single = subprocess.run([sys.executable, "app.py", "lr=0.5", "hydra.run.dir=outputs/single"], cwd=repo,
                            env=app_env(), capture_output=True, text=True, timeout=120)
    assert single.returncode == 0, single.stderr
    later = hydra_ledger_cli(repo, "export", "--to", "tensorboard", "tb", "outputs/single")
    assert later.returncode == 0, later.stderr
    experiment = hparams_data(event_reader(logdir), "_hparams_/experiment").experiment
    lr = next(info for info in experiment.hparam_infos if info.name == "lr").domain_interval
    assert (lr.min_value, lr.max_value) == (0.1, 0.5)
    assert len([p for p in logdir.iterdir() if p.is_dir()]) == 5


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_tensorboards_hparams_tab_compares_the_exported_sweep(repo):
    """A real TensorBoard server on the loopback, asked what its HParams tab shows."""
    proc = hydra_ledger_cli(repo, "export", "--to", "tensorboard", "tb", "multirun/sweep")
    assert proc.returncode == 0, proc.stderr
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", "tb", "--host", "127.0.0.1",
                               "--port", str(port), "--load_fast=false", "--reload_interval", "1"],
                              cwd=repo, env=app_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    request = {"experimentName": "", "startIndex": 0, "sliceSize": 100,
               "allowedStatuses": ["STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING", "STATUS_UNKNOWN"]}
    groups: list = []
    try:
        deadline = time.monotonic() + 90
        while len(groups) < 4:  # the server loads the runs a few seconds after it starts
            assert server.poll() is None, server.stderr.read()
            assert time.monotonic() < deadline, f"TensorBoard showed {len(groups)} of 4 runs within 90 s"
            time.sleep(1)
            post = urllib.request.Request(f"http://127.0.0.1:{port}/data/plugin/hparams/session_groups",
                                          data=json.dumps(request).encode(), method="POST",
                                          headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(post, timeout=10) as answer:
                    groups = json.loads(answer.read())["sessionGroups"]
            except OSError:  # not listening yet
                continue
    finally:
        server.terminate()
        server.communicate(timeout=60)
    recorded = jobs(repo)
    shown = {group["name"]: group for group in groups}
    assert sorted(shown) == sorted(recorded)
    for run_id, rec in recorded.items():
        group = shown[run_id]
        assert group["hparams"]["model.name"] == rec["config"]["model"]["name"]
        assert group["hparams"]["seed"] == rec["config"]["seed"]
        metrics = {m["name"]["tag"]: (m["trainingStep"], m["value"]) for m in group["metricValues"]}
        assert metrics["loss"] == (2, metric_points(rec["dir"])[-1][2])
        assert {k: v for k, v in metrics.items() if k.startswith("summary.")} == {
            f"summary.{k}": (2, v) for k, v in rec["summary"].items()}
        (session,) = group["sessions"]
        assert session["status"] == ("STATUS_FAILURE" if rec["status"] == "FAILED" else "STATUS_SUCCESS")


def test_awkward_names_and_values_reach_both_tools_as_they_can_take_them(make_app, run_app):
    app = make_app("export_app")
    long = "x" * 7000
    proc = run_app(app, f"long={long}", "hydra.run.dir='outputs/with space/ü'")
    assert proc.returncode == 0, proc.stderr
    job = app / "outputs" / "with space" / "ü"
    rec = record(job)
    uri = f"sqlite:///{app / 'mlflow.db'}"
    warnings = [f"hydra-ledger: run {rec['run_id']}: config key long is 7000 characters long; MLflow keeps the "
                "first 6000",
                f"hydra-ledger: run {rec['run_id']}: config keys odd_key and odd@key are both odd_key in MLflow's "
                "characters; odd@key is left out"]
    for action in ("created", "updated"):
        exported = hydra_ledger_cli(app, "export", "--to", "mlflow", "--tracking-uri", uri, "outputs")
        assert exported.returncode == 0, exported.stderr
        assert exported.stderr.splitlines()[:-1] == warnings
        assert [line[1:2] + line[3:] for line in output_lines(exported)] == [[action, "app"]]  # the job's name
    (run,) = mlflow_runs(uri).values()
    assert run.data.params == {"lr": "0.01", "odd_key": "2", "colon_key": "3", "größe": "4",
                               "nested.list_of_maps": '[{"a": 1}, {"b": 2}]', "nested.nothing": "null",
                               "long": "x" * 6000}
    assert run.data.metrics == {"val/acc_1": 0.2, "loss": 1 / 21, "summary.best.acc": 0.2,
                                "summary.best.epoch": 2.0}  # text and booleans are no metrics
    from mlflow.tracking import MlflowClient

    history = MlflowClient(tracking_uri=uri).get_metric_history(run.info.run_id, "val/acc_1")
    assert [(m.step, m.value) for m in history] == [(0, 0.0), (10, 0.1), (20, 0.2)]
    assert run.data.tags["hydra_ledger.path"] == str(job)
    assert f"({job.as_uri()})" in run.data.tags["mlflow.note.content"]
    assert "%20" in job.as_uri()

    assert hydra_ledger_cli(app, "export", "--to", "tensorboard", "tb", "outputs").returncode == 0
    (run_dir,) = [p for p in (app / "tb").iterdir() if p.is_dir()]
    assert run_dir.name == f"long={'x' * 75}-{rec['run_id']}"  # cut to a readable length
    reader = event_reader(run_dir)
    start = hparams_data(reader, "_hparams_/session_start_info").session_start_info
    assert {k: getattr(v, v.WhichOneof("kind")) for k, v in start.hparams.items()} == {
        "lr": 0.01, "odd@key": 1, "odd_key": 2, "colon:key": 3, "größe": 4,
        "nested.list_of_maps": '[{"a": 1}, {"b": 2}]', "nested.nothing": "null", "long": long}
    assert scalars(reader, "val/acc@1") == [(0, 0.0), (10, 0.1), (20, 0.2)]
    assert scalars(reader, "summary.best.epoch") == [(20, 2.0)]


# -- errors and costs -----------------------------------------------------------------------

def test_an_unknown_target_is_a_usage_error_naming_the_targets(repo):
    proc = hydra_ledger_cli(repo, "export", "--to", "wandb", "multirun")
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1] == (
        "hydra-ledger export: error: argument --to: invalid choice: 'wandb' (choose from 'mlflow', 'tensorboard')")


@pytest.mark.parametrize("blocked, target, args, message", [
    ("mlflow", "mlflow", ["--tracking-uri", "sqlite:///mlflow.db"],
     r"hydra-ledger: exporting to mlflow needs the mlflow extra \(.*mlflow.*\): pip install 'hydra-ledger\[mlflow\]'"),
    ("tensorboard", "tensorboard", ["tb"], r"hydra-ledger: exporting to tensorboard needs the tensorboard extra "
                                           r"\(.*tensorboard.*\): pip install 'hydra-ledger\[tensorboard\]'"),
    # mlflow-skinny alone has no database store
    ("sqlalchemy", "mlflow", ["--tracking-uri", "sqlite:///mlflow.db"],
     r"hydra-ledger: cannot open the MLflow tracking store sqlite:///mlflow.db: .* — MLflow's database stores "
     r"need SQLAlchemy and alembic: pip install 'hydra-ledger\[mlflow\]'"),
], ids=["mlflow", "tensorboard", "sqlalchemy"])
def test_a_missing_library_names_the_extra_to_install(repo, blocked, target, args, message):
    # the library made unimportable as Python's import system documents it (a None entry in sys.modules)
    code = (f"import sys; sys.modules[{blocked!r}] = None; from hydra_ledger.cli import main; "
            f"sys.exit(main(['export', '--to', {target!r}, *{args!r}, 'multirun']))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=repo, env=app_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1
    assert re.fullmatch(message + "\n", proc.stderr, re.S), proc.stderr
    assert not (repo / "tb").exists() and not (repo / "mlflow.db").exists()


def test_mlflow_needs_a_tracking_uri_and_a_run_id_must_match(repo):
    proc = hydra_ledger_cli(repo, "export", "--to", "mlflow", "multirun", env={"MLFLOW_TRACKING_URI": ""})
    assert (proc.returncode, proc.stderr) == (1, "hydra-ledger: export --to mlflow: give the tracking store with "
                                              "--tracking-uri, e.g. --tracking-uri sqlite:///mlflow.db (or set "
                                              "MLFLOW_TRACKING_URI)\n")
    proc = hydra_ledger_cli(repo, "export", "--to", "tensorboard", "tb", "zzzz")
    assert proc.returncode == 1
    assert proc.stderr.startswith("hydra-ledger: no run with id starting with 'zzzz' under ")
    assert not (repo / "tb").exists()


def test_the_command_module_imports_neither_pandas_nor_the_exported_tools():
    code = ("import sys, hydra_ledger.cli.export; "
            "print(sorted(m for m in ('pandas', 'pyarrow', 'mlflow', 'tensorboard') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], env=app_env(), capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout) == (0, "[]\n"), proc.stderr


def test_the_loader_and_the_export_agree_on_the_runs(repo):
    """The runs exported are the runs load_runs finds (the selection goes through the same index)."""
    from hydra_ledger.export.runs import select

    frame = hydra_ledger.load_runs(repo / "multirun")
    runs = select([str(repo / "multirun")])
    assert sorted(r.run_id for r in runs) == sorted(frame["run_id"])
    assert {r.run_id: r.status for r in runs} == dict(zip(frame["run_id"], frame["status"].astype(str)))
