"""What a job records: identity, statuses, summary, metrics, under every launcher and sweeper."""
from __future__ import annotations

import importlib.metadata
import json
import math
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import hydra
import pandas as pd
import pytest
from conftest import git
from omegaconf import OmegaConf

import hydra_ledger
from hydra_ledger.load import LedgerLoadWarning

LEDGER = "hydra/callbacks=ledger"
HYDRA_13 = hydra.__version__.startswith("1.3")
# Hydra 1.3 lists the RUN mode among the hydra overrides; 1.4 only MULTIRUN
RUN_MODE = ["hydra.mode=RUN"] if HYDRA_13 else []


def record(job_dir: Path) -> dict:
    return json.loads((job_dir / ".ledger" / "run.json").read_text())


def probe(job_dir: Path) -> dict:
    """What a user's own callback saw of the job (status and return value)."""
    return json.loads((job_dir / "probe.json").read_text())


@pytest.fixture
def app(make_app):
    return make_app("ledger_app")


def test_single_run_record(app, run_app):
    proc = run_app(app, LEDGER, "hydra.run.dir=out", "x=3", "kind=dict")
    assert proc.returncode == 0, proc.stderr
    rec = record(app / "out")
    job_dir = str((app / "out").resolve())
    assert rec["schema"] == "hydra-ledger/run"
    assert rec["version"] == 1
    assert re.fullmatch(r"[0-9a-f]{12}", rec["run_id"])
    assert rec["status"] == "COMPLETED"
    assert rec["error"] is None
    assert rec["job"] == {
        "name": "app", "id": None, "num": None, "mode": "RUN", "output_dir": job_dir, "sweep_dir": None,
        "sweep_id": None, "config_name": "config", "working_dir": str(app.resolve()),
    }
    assert rec["overrides"] == ["x=3", "kind=dict"]
    assert rec["hydra_overrides"] == ["hydra/callbacks=ledger", "hydra.run.dir=out", *RUN_MODE]
    assert rec["launch"] == {
        "argv": ["app.py", LEDGER, "hydra.run.dir=out", "x=3", "kind=dict"],
        "cwd": str(app.resolve()),
        "python": sys.executable,
        "script": str((app / "app.py").resolve()),
        "module": None,
        "function": "main",
        "config_dir": str(app.resolve()),
        "config_name": "config",
    }
    assert rec["config"] == {"x": 3, "kind": "dict", "steps": 0, "log_summary": False, "sleep": 0,
                             "fail_on": [], "exit_code": None}
    assert rec["choices"]["hydra/callbacks"] == "ledger"
    assert rec["choices"]["hydra/launcher"] == "basic"
    assert rec["summary"] == {"loss": 3, "nested.acc": 0.5}
    assert rec["attempts"] == [{
        "attempt": 1, "started_at": rec["started_at"], "ended_at": rec["ended_at"], "status": "COMPLETED",
        "pid": rec["host"]["pid"], "hostname": rec["host"]["hostname"],
        # the process's start time and boot: a live process with this pid is this job (#12)
        "pid_start": rec["attempts"][0]["pid_start"], "boot_id": rec["attempts"][0]["boot_id"],
    }]
    assert isinstance(rec["attempts"][0]["pid_start"], int)
    started, ended = pd.Timestamp(rec["started_at"]), pd.Timestamp(rec["ended_at"])
    assert started.tzname() == "UTC"
    assert rec["duration_s"] == pytest.approx((ended - started).total_seconds(), abs=1e-6)
    assert rec["host"]["python_executable"] == sys.executable
    assert not (app / "out" / ".ledger" / "heartbeat").exists()  # shorter than one heartbeat interval
    packages = json.loads((app / "out" / ".ledger" / "packages.json").read_text())
    assert packages["hydra-core"] == "1.3.8" or packages["hydra-core"].startswith("1.4")
    assert packages["pandas"] == pd.__version__


LAUNCHERS = {
    "basic": ([], ["0", "1", "2"]),
    "joblib": (["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], ["app_0", "app_1", "app_2"]),
}


@pytest.mark.parametrize("launcher", list(LAUNCHERS), ids=list(LAUNCHERS))
def test_sweep_with_failing_job(app, run_app, launcher):
    """The failing job carries its error; the others are COMPLETED; the exit code is Hydra's."""
    extra, job_ids = LAUNCHERS[launcher]
    proc = run_app(app, "-m", LEDGER, "hydra.sweep.dir=sweep", *extra, "x=1,2,3", "fail_on=[2]")
    assert proc.returncode == 1
    assert "ValueError: x=2 is bad" in proc.stderr
    sweep = (app / "sweep").resolve()
    records = [record(sweep / str(n)) for n in range(3)]
    assert [r["status"] for r in records] == ["COMPLETED", "FAILED", "COMPLETED"]
    assert [r["job"]["id"] for r in records] == job_ids
    assert [r["job"]["num"] for r in records] == [0, 1, 2]
    assert {r["job"]["sweep_dir"] for r in records} == {str(sweep)}
    sweep_record = json.loads((sweep / ".ledger" / "sweep.json").read_text())
    assert {r["job"]["sweep_id"] for r in records} == {sweep_record["sweep_id"]}
    assert sweep_record["overrides"] == ["x=1,2,3", "fail_on=[2]"]
    if HYDRA_13:  # Hydra 1.3 skips on_multirun_end after a failure; 1.4 calls it
        assert sweep_record["ended_at"] is None
    else:
        assert pd.Timestamp(sweep_record["ended_at"]) > pd.Timestamp(sweep_record["started_at"])
    error = records[1]["error"]
    assert (error["type"], error["message"]) == ("ValueError", "x=2 is bad")
    assert error["traceback"].startswith("Traceback (most recent call last):\n")
    assert 'raise ValueError(f"x={cfg.x} is bad")' in error["traceback"]
    assert error["traceback"].endswith("ValueError: x=2 is bad\n")
    # joblib pickles the task by value and names its file '<dynamic-code>' (cloudpickle >= 3.1.3)
    script = str((app / "app.py").resolve())
    assert f'File "{script}", line ' in error["traceback"]
    assert "<dynamic-code>" not in error["traceback"]
    assert {r["launch"]["script"] for r in records} == {script}
    assert [r["summary"] for r in records] == [{"value": 2}, {}, {"value": 6}]

    frame = hydra_ledger.load_runs(app / "sweep").sort_values("job_num")  # joblib: any start order
    assert frame["status"].tolist() == ["COMPLETED", "FAILED", "COMPLETED"]
    assert frame["error.type"].tolist() == [None, "ValueError", None]
    assert frame["summary.value"].tolist() == [2, pd.NA, 6]
    assert frame["sweep"].tolist() == [str(sweep)] * 3


def test_non_finite_returns_keep_their_values(app, run_app):
    """NaN and infinities stay numbers (JSON's NaN/Infinity, as Python writes them), not nulls
    (as orjson would write them): the record means what the task returned."""
    proc = run_app(app, "-m", LEDGER, "hydra.sweep.dir=sweep", "kind=nonfinite,dict")
    assert proc.returncode == 0, proc.stderr
    text = (app / "sweep" / "0" / ".ledger" / "run.json").read_text()
    assert '"loss":NaN' in text and '"best":Infinity' in text and '"worst":-Infinity' in text
    frame = hydra_ledger.load_runs(app / "sweep").set_index("job_num")
    assert math.isnan(frame.loc[0, "summary.loss"])
    assert (frame.loc[0, "summary.best"], frame.loc[0, "summary.worst"]) == (math.inf, -math.inf)
    assert (frame.loc[0, "summary.acc"], frame.loc[1, "summary.loss"], frame.loc[1, "summary.nested.acc"]) == (
        0.5, 1, 0.5)


def test_compact_records_read_back_as_the_indented_ones():
    """run.json is written compact, by orjson where that means the same; what a reader gets back
    is what the indented ``json`` record gave, for every kind of value a record can hold."""
    import enum
    import pathlib

    from hydra_ledger.record.files import dump_json, dump_record, loads

    class Color(enum.Enum):
        RED = 7

    deep: list = []
    for _ in range(300):
        deep = [deep]
    values = [
        {"a": 1, "b": [1.5, None, True, "x\u00e9\u2603\n"], "c": {"d": {}}},
        {"loss": math.nan, "best": math.inf, "nested": [-math.inf]},
        {"color": Color.RED, "path": pathlib.Path("/x y"), "set": {3, 1}, "raw": b"\xff", "when": (1, 2)},
        {"big": 1 << 70, "neg": -(1 << 63) - 1, "edge": (1 << 64) - 1, 1: "int key", None: "none key"},
        {"deep": deep},
    ]
    for value in values:
        assert json.dumps(loads(dump_record(value))) == json.dumps(loads(dump_json(value)))


def test_sweep_lists_the_installed_packages_once(app, run_app):
    """The launching process writes the sweep's packages.json; a job of the same interpreter and
    import path gets it as a hard link of its own (its job dir still holds it when copied alone)."""
    proc = run_app(app, "-m", LEDGER, "hydra.sweep.dir=sweep", "x=1,2")
    assert proc.returncode == 0, proc.stderr
    listed = app / "sweep" / ".ledger" / "packages.json"
    packages = json.loads(listed.read_text())
    assert packages["hydra-core"] == hydra.__version__
    for n in ("0", "1"):
        own = app / "sweep" / n / ".ledger" / "packages.json"
        assert own.stat().st_ino == listed.stat().st_ino
        assert json.loads(own.read_text()) == packages


def test_completed_sweep_record(app, run_app):
    proc = run_app(app, "-m", LEDGER, "hydra.sweep.dir=sweep", "x=1,2")
    assert proc.returncode == 0, proc.stderr
    sweep_record = json.loads((app / "sweep" / ".ledger" / "sweep.json").read_text())
    assert sweep_record["schema"] == "hydra-ledger/sweep"
    assert sweep_record["sweep_dir"] == str((app / "sweep").resolve())
    assert sweep_record["launcher"] == "hydra._internal.core_plugins.basic_launcher.BasicLauncher"
    assert sweep_record["sweeper"] == "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
    assert sweep_record["hydra_overrides"] == [LEDGER, "hydra.sweep.dir=sweep", "hydra.mode=MULTIRUN"]
    assert pd.Timestamp(sweep_record["ended_at"]) >= pd.Timestamp(sweep_record["started_at"])
    assert record(app / "sweep" / "1")["job"]["mode"] == "MULTIRUN"


def test_optuna_sweeper_return_value_is_summary_value(app, run_app):
    proc = run_app(
        app, "-m", LEDGER, "hydra.sweep.dir=sweep", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=3",
        "hydra.sweeper.n_jobs=1", "hydra.sweeper.sampler.seed=0", "x=range(1,4)",
    )
    assert proc.returncode == 0, proc.stderr
    frame = hydra_ledger.load_runs(app / "sweep")
    assert frame["job_num"].tolist() == [0, 1, 2]
    assert frame["status"].tolist() == ["COMPLETED"] * 3
    assert frame["summary.value"].tolist() == [2 * x for x in frame["cfg.x"]]
    assert frame["overrides"].tolist() == [[f"x={x}"] for x in frame["cfg.x"]]
    best = (app / "sweep" / "optimization_results.yaml").read_text()
    assert f"best_value: {frame['summary.value'].min()}" in best
    assert json.loads((app / "sweep" / ".ledger" / "sweep.json").read_text())["sweeper"] == (
        "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    )
    assert "belongs to the Hydra" not in proc.stdout + proc.stderr  # one line: no word about plugin lines
    study = json.loads((app / "sweep" / ".ledger" / "sweep.json").read_text())["optuna"]
    assert study == {"study_name": None, "storage": None, "directions": ["minimize"], "sampler": "TPESampler",
                     "sampler_seed": 0, "n_trials": 3, "n_jobs": 1, "trial_offset": 0,
                     "best_params": {"x": int(frame.loc[frame["summary.value"].idxmin(), "cfg.x"])},
                     "best_value": frame["summary.value"].min()}
    assert frame["optuna.trial"].tolist() == [0, 1, 2]  # an in-memory study: the trials are the jobs


def test_optuna_trials_of_a_stored_study_continue_across_sweeps(app, run_app, tmp_path):
    """A study kept in SQLite and resumed by name: the second sweep's jobs are trials 2 and 3,
    and its record's best trial is the study's best over both sweeps."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    for n, x in (("a", "choice(1,2,3)"), ("b", "choice(1,2,3)")):
        proc = run_app(app, "-m", LEDGER, f"hydra.sweep.dir=sweep_{n}", "hydra/sweeper=optuna",
                       "hydra.sweeper.n_trials=2", "hydra.sweeper.n_jobs=1", "hydra.sweeper.sampler.seed=1",
                       "hydra.sweeper.study_name=shared", f"hydra.sweeper.storage={storage}", f"x={x}")
        assert proc.returncode == 0, proc.stderr
    first, second = (hydra_ledger.load_runs(app / f"sweep_{n}").sort_values("job_num") for n in ("a", "b"))
    assert first["optuna.trial"].tolist() == [0, 1]
    assert second["optuna.trial"].tolist() == [2, 3]
    study = json.loads((app / "sweep_b" / ".ledger" / "sweep.json").read_text())["optuna"]
    assert study["study_name"] == "shared" and study["storage"] == storage and study["trial_offset"] == 2
    assert study["best_value"] == min([*first["summary.value"], *second["summary.value"]])


# pip's mix: hydra-core of the other line, as `pip install hydra-ledger hydra-optuna-sweeper` gets it
OTHER_LINE = {
    "1.3": ["hydra-core==1.4.0rc3", "omegaconf==2.4.1rc1"],
    "1.4": ["hydra-core==1.3.2", "omegaconf==2.3.0", "antlr4-python3-runtime==4.9.3"],
}


def test_a_sweeper_of_another_hydra_line_is_named_with_the_pins_that_work(app, run_app, tmp_path):
    """pip installs hydra-core 1.4.0rc3 beside the 1.3-line Optuna sweeper, which then crashes
    inside Optuna: the ledger names the mix and the pins of both lines before the sweep starts.
    The other line's hydra-core is put first on the app's path, as that mixed install has it."""
    from hydra_ledger.job.plugin_lines import line_of

    target = tmp_path / "other-line"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                          *OTHER_LINE[line_of(hydra.__version__)]], capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr
    path = os.pathsep.join(p for p in (str(target), os.environ.get("PYTHONPATH")) if p)
    proc = run_app(app, "-m", LEDGER, "hydra.sweep.dir=sweep", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2",
                   "hydra.sweeper.n_jobs=1", "x=range(1,3)", env={"PYTHONPATH": path})
    said = proc.stdout + proc.stderr  # Hydra's console log goes to stdout
    core = "1.4.0rc3" if line_of(hydra.__version__) == "1.3" else "1.3.2"
    sweeper = importlib.metadata.version("hydra-optuna-sweeper")
    assert (f"hydra-ledger: hydra-optuna-sweeper {sweeper} belongs to the Hydra {line_of(sweeper)} line but "
            f"hydra-core is {core}; Hydra's plugins do not work across lines") in said
    assert "'hydra-core>=1.3.2,<1.4' and the plugins' 1.3-line releases (hydra-optuna-sweeper==1.3.0" in said
    assert "'hydra-core==1.4.0rc3' with the plugins of the same version" in said


RETURNS = {
    "float": {"value": 2},
    "dict": {"loss": 1, "nested.acc": 0.5},
    "list": {"value.0": 1, "value.1": "b"},
    "long": {"value": "[0, 1, 2, 3, 4, 5, ...]"},  # not 1000 columns
    "numpy": {"value": 0.5},
    "path": {"value": "/data/x.txt"},
    "enum": {"value": "RED"},
    "bytes": {"value": "raw\x00"},
    "object": {"value": "Opaque(42)"},
    "unrepresentable": {"value": "<Unrepresentable object: repr() failed>"},
    "unrepresentable-in-dict": {"ok": 1, "bad": "<Unrepresentable object: repr() failed>"},
    "none": {},
}


@pytest.mark.parametrize("kind", list(RETURNS), ids=list(RETURNS))
def test_return_value_becomes_summary(app, run_app, kind):
    proc = run_app(app, "--config-name=explicit", "hydra.run.dir=out", f"kind={kind}")
    assert proc.returncode == 0, proc.stderr
    assert record(app / "out")["summary"] == RETURNS[kind]
    assert probe(app / "out")["status"] == "COMPLETED"  # Hydra and other callbacks see the same job


def test_log_summary_merges_with_return_value(app, run_app):
    """Values logged while running stay; the return value has the last word on shared keys."""
    proc = run_app(app, LEDGER, "hydra.run.dir=out", "kind=dict", "x=7", "log_summary=true")
    assert proc.returncode == 0, proc.stderr
    assert record(app / "out")["summary"] == {"logged": 7, "loss": 7, "nested.acc": 0.5}


def test_log_metrics_and_load_metrics(app, run_app):
    proc = run_app(app, "-m", LEDGER, "hydra.sweep.dir=sweep", "steps=3", "x=1,2")
    assert proc.returncode == 0, proc.stderr
    runs = hydra_ledger.load_runs(app / "sweep")
    metrics = hydra_ledger.load_metrics(app / "sweep")
    assert list(metrics.columns) == ["run_id", "step", "name", "value", "time"]
    assert str(metrics["time"].dtype) == "datetime64[ns, UTC]"
    expected = pd.DataFrame({
        "run_id": pd.Series([runs["run_id"][i] for i in (0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1)], dtype=object),
        "step": pd.Series([0, 0, 1, 1, 2, 2] * 2, dtype="int64"),
        "name": pd.Series(["loss", "x"] * 6, dtype=object),
        "value": [1.0, 1, 0.5, 1, 1 / 3, 1, 1.0, 2, 0.5, 2, 1 / 3, 2],
    })
    got = metrics.drop(columns="time").sort_values(["run_id", "step", "name"], key=_run_order(runs))
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected)
    only_loss = hydra_ledger.load_metrics(app / "sweep", names=["loss"])
    assert only_loss["name"].unique().tolist() == ["loss"]

    # a line cut short by a killed job is skipped with one warning naming the file
    metrics_file = app / "sweep" / "1" / ".ledger" / "metrics.jsonl"
    with open(metrics_file, "a") as f:
        f.write('[1, 2]\n{"step": 3, "values": [1]}\n{"step": 3, "time": 1.0, "val')
    with pytest.warns(LedgerLoadWarning) as caught:
        again = hydra_ledger.load_metrics(app / "sweep")
    assert [str(w.message) for w in caught] == [
        f"hydra-ledger: cannot read record {metrics_file}: line {n} — line skipped"
        for n in ("4 is corrupt or truncated", "5: 'values' is a list, expected an object", "6 is corrupt or truncated")
    ]
    assert len(again) == 12


def _run_order(runs: pd.DataFrame):
    order = {run_id: i for i, run_id in enumerate(runs["run_id"])}

    def key(column: pd.Series) -> pd.Series:
        return column.map(order) if column.name == "run_id" else column

    return key


# -- enabling -------------------------------------------------------------------------------------

ENABLING = {
    "defaults-override": (["--config-name=enabled"], False),
    "cli-group": ([LEDGER], False),
    "explicit-target-cli": (
        ["hydra/callbacks=probe", "+hydra.callbacks.ledger._target_=hydra_ledger.LedgerCallback"], True),
    "explicit-target-config": (["--config-name=explicit"], True),
    "additive-group": (["--config-name=own_group", "+hydra/ledger=default"], True),
}


@pytest.mark.parametrize("form", list(ENABLING), ids=list(ENABLING))
def test_enabling_forms(app, run_app, form):
    args, keeps_probe = ENABLING[form]
    proc = run_app(app, *args, "hydra.run.dir=out", "x=4")
    assert proc.returncode == 0, proc.stderr
    assert record(app / "out")["summary"] == {"value": 8}
    assert (app / "out" / "probe.json").exists() == keeps_probe
    assert "Warning" not in proc.stderr, proc.stderr


def test_unknown_option_in_explicit_form_warns_and_job_runs(app, run_app):
    proc = run_app(app, "+hydra.callbacks.ledger._target_=hydra_ledger.LedgerCallback",
                   "+hydra.callbacks.ledger.heartbeet_s=1", "hydra.run.dir=out")
    assert proc.returncode == 0, proc.stderr
    # a log line, not a Python warning: `python -W error` must not turn it into an app that cannot start
    from hydra_ledger.job.callback import _OPTIONS

    assert (f"hydra-ledger: unknown option(s) heartbeet_s ignored; valid options: {', '.join(_OPTIONS)}\n"
            in proc.stdout + proc.stderr)
    assert record(app / "out")["status"] == "COMPLETED"


def test_an_explicit_node_marked_strict_checks_its_options_as_the_plugins_node_does(app, run_app):
    """``_strict_: true`` beside an explicit ``_target_`` (documented; and the plugin's node of
    earlier versions, which a rerun composes from their records) stops the app on a bad option."""
    proc = run_app(app, "+hydra.callbacks.ledger._target_=hydra_ledger.LedgerCallback",
                   "+hydra.callbacks.ledger._strict_=true", "+hydra.callbacks.ledger.nokey=1", "hydra.run.dir=out")
    assert proc.returncode == 1
    assert "Key 'nokey' not in 'LedgerConf'" in proc.stderr
    assert not (app / "out").exists()


@pytest.mark.parametrize(
    ("override", "warning"),
    [
        ("heartbeat_s=abc", "option heartbeat_s='abc' ignored (could not convert string to float: 'abc'); "
                            "using the default 10.0"),
        ("heartbeat_s=0", "option heartbeat_s=0 ignored (not a positive number); using the default 10.0"),
        ("git=maybe", "option git='maybe' ignored (not a boolean); using the default True"),
        ("tags=5", "option tags=5 ignored (not a list); using the default []"),
    ],
    ids=["heartbeat-not-a-number", "heartbeat-zero", "git-not-a-bool", "tags-not-a-list"],
)
def test_bad_option_value_in_explicit_form_warns_and_job_runs(app, run_app, override, warning):
    """Without the structured config nothing checks the options before the callback starts:
    a bad value must not stop the app (Hydra does not catch a callback's __init__ failing)."""
    proc = run_app(app, "+hydra.callbacks.ledger._target_=hydra_ledger.LedgerCallback",
                   f"+hydra.callbacks.ledger.{override}", "hydra.run.dir=out")
    assert proc.returncode == 0, proc.stderr
    assert f"hydra-ledger: {warning}" in proc.stdout + proc.stderr
    rec = record(app / "out")
    assert (rec["status"], rec["heartbeat_s"], rec["tags"], rec["git"]["state"]) == ("COMPLETED", 10.0, [], "ok")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("hydra.callbacks.ledger.heartbeat_s=abc", "Value 'abc' of type 'str' could not be converted to Float"),
        ("hydra.callbacks.ledger.nokey=1", "Key 'nokey' not in 'LedgerConf'"),
        ("+hydra.callbacks.ledger.nokey=1", "Key 'nokey' not in 'LedgerConf'"),
        ("hydra.callbacks.ledger.git=maybe", "Value 'maybe' of type 'str' could not be converted to Boolean"),
        ("hydra.callbacks.ledger.tags=5", "Value '5' of type 'int' could not be converted to List[str]"),
    ],
    ids=["bad-type", "unknown-key", "unknown-key-added", "bad-bool", "bad-list"],
)
def test_structured_config_rejects_bad_options(app, run_app, override, message):
    """The plugin's node is the ledger's schema: a bad option stops the app before any job (the
    callback checks it, as Hydra would check a structured config), naming the valid options."""
    proc = run_app(app, LEDGER, override, "hydra.run.dir=out")
    assert proc.returncode == 1
    assert message in proc.stderr
    assert not (app / "out").exists()


def test_plugin_node_holds_only_what_is_set(app, run_app):
    """Hydra copies the node into every job's compose and hydra.yaml: the defaults stay in code,
    an option set without ``+`` joins the node and takes effect, the others keep their defaults."""
    proc = run_app(app, LEDGER, "hydra.callbacks.ledger.note=baseline", "hydra.run.dir=out")
    assert proc.returncode == 0, proc.stderr
    saved = OmegaConf.load(app / "out" / ".hydra" / "hydra.yaml").hydra.callbacks.ledger
    assert OmegaConf.to_container(saved) == {
        "_target_": "hydra_ledger.StrictLedgerCallback", "note": "baseline"}
    rec = record(app / "out")
    assert (rec["note"], rec["heartbeat_s"], rec["tags"]) == ("baseline", 10.0, [])


def test_disabled_records_nothing(app, run_app):
    proc = run_app(app, LEDGER, "hydra.callbacks.ledger.enabled=false", "hydra.run.dir=out", "steps=1",
                   "log_summary=true")
    assert proc.returncode == 0, proc.stderr
    assert not (app / "out" / ".ledger").exists()
    assert "WARNING" not in (app / "out" / "app.log").read_text()  # log_metrics()/log_summary() stay quiet


# -- never in the way -------------------------------------------------------------------------------


@pytest.mark.parametrize("ledger", [False, True], ids=["without-ledger", "with-broken-ledger"])
def test_ledger_failure_leaves_job_unchanged(app, run_app, ledger):
    """A `.ledger` that is a file makes every ledger write fail: one warning, same result and exit code."""
    (app / "out").mkdir()
    (app / "out" / ".ledger").write_text("in the way\n")
    (app / "app.py").write_text((app / "app.py").read_text() + "\n")  # dirty: the ledger tries a patch
    args = ["hydra/callbacks=probe"] + (["+hydra.callbacks.ledger._target_=hydra_ledger.LedgerCallback"] * ledger)
    proc = run_app(app, *args, "hydra.run.dir=out", "kind=dict", "steps=2", "log_summary=true")
    assert proc.returncode == 0, proc.stderr
    assert probe(app / "out") == {"status": "COMPLETED", "return": "{'loss': 1, 'nested': {'acc': 0.5}}"}
    assert (app / "out" / ".ledger").read_text() == "in the way\n"
    warnings = [line.split(" - ", 1)[1] for line in (app / "out" / "app.log").read_text().splitlines()
                if "WARNING" in line]
    if ledger:
        assert warnings == [f"hydra-ledger: on_job_start failed (OSError: cannot create {app / 'out' / '.ledger'} "
                            "(File exists), nothing recorded) — the job runs on"]
    else:  # the app's own calls to log_metrics() say once that nothing is recorded
        assert len(warnings) == 1
        assert warnings[0].startswith("hydra-ledger: log_metrics() called outside a recorded Hydra job")


@pytest.mark.parametrize("ledger", [False, True], ids=["without-ledger", "with-ledger"])
def test_exit_code_of_sys_exit_unchanged(app, run_app, ledger):
    args = [LEDGER] if ledger else []
    proc = run_app(app, *args, "hydra.run.dir=out", "exit_code=3")
    assert proc.returncode == 3
    if ledger:
        rec = record(app / "out")
        assert rec["status"] == "INTERRUPTED"
        assert rec["error"]["type"] == "SystemExit"


def test_callback_is_picklable_after_multirun_start(tmp_path, monkeypatch):
    from hydra import compose, initialize_config_dir

    monkeypatch.chdir(tmp_path)
    version = {"version_base": "1.3"} if HYDRA_13 else {}  # 1.4 deprecates the argument
    with initialize_config_dir(str(Path(__file__).parent / "apps" / "ledger_app"), **version):
        cfg = compose("config", overrides=["hydra.sweep.dir=sweep"], return_hydra_config=True)
    callback = hydra_ledger.LedgerCallback(heartbeat_s=2)
    callback.on_multirun_start(cfg, config_name="config")
    clone = pickle.loads(pickle.dumps(callback))
    assert clone.sweep_id == callback.sweep_id
    assert clone.heartbeat_s == 2.0
    assert (tmp_path / "sweep" / ".ledger" / "sweep.json").is_file()


def test_rerun_into_the_same_dir_keeps_the_earlier_record(app, run_app):
    (app / "app.py").write_text((app / "app.py").read_text() + "# dirty\n")
    assert run_app(app, LEDGER, "hydra.run.dir=out", "x=1", "steps=2").returncode == 0
    first = record(app / "out")
    first_metrics = (app / "out" / ".ledger" / "metrics.jsonl").read_text()
    first_patch = (app / "out" / ".ledger" / "git.patch").read_text()
    git(app, "checkout", "app.py")
    assert run_app(app, LEDGER, "hydra.run.dir=out", "x=2", "steps=1").returncode == 0
    second = record(app / "out")
    history = app / "out" / ".ledger" / "history"
    assert (history / f"{first['run_id']}.metrics.jsonl").read_text() == first_metrics
    assert (history / f"{first['run_id']}.git.patch").read_text() == first_patch
    assert not (app / "out" / ".ledger" / "git.patch").exists()  # the second run's tree is clean
    assert hydra_ledger.load_metrics(app / "out")["value"].tolist() == [1.0, 2]  # only the second run's
    assert second["git"]["dirty"] is False
    assert second["run_id"] != first["run_id"]
    assert (second["summary"], len(second["attempts"])) == ({"value": 4}, 1)
    archived = json.loads((app / "out" / ".ledger" / "history" / f"{first['run_id']}.json").read_text())
    assert archived == first
    assert hydra_ledger.load_runs(app / "out")["run_id"].tolist() == [second["run_id"]]


def test_launch_as_module(app, run_app):
    proc = run_app(app, "app", LEDGER, "hydra.run.dir=out", script="-m")
    assert proc.returncode == 0, proc.stderr
    launch = record(app / "out")["launch"]
    assert (launch["module"], launch["script"], launch["function"]) == ("app", str((app / "app.py").resolve()), "main")
    assert launch["argv"] == [str((app / "app.py").resolve()), LEDGER, "hydra.run.dir=out"]


def test_exception_whose_str_raises_is_recorded(app, run_app):
    proc = run_app(app, LEDGER, "hydra.run.dir=out", "fail_on=[1]", "kind=unprintable")
    assert proc.returncode == 1
    rec = record(app / "out")
    assert rec["status"] == "FAILED"
    assert (rec["error"]["type"], rec["error"]["message"]) == ("Unprintable", "<exception str() failed: Unprintable>")
    # the traceback is Python's own text, which names such an exception differently before 3.11
    shown = "<exception str() failed>" if sys.version_info >= (3, 11) else "<unprintable Unprintable object>"
    assert rec["error"]["traceback"].endswith(f"Unprintable: {shown}\n")


def test_failure_in_the_end_hook_still_records_the_outcome(app, run_app):
    """Summarising the return value raises inside on_job_end: one warning, the job still COMPLETED."""
    proc = run_app(app, "--config-name=explicit", "hydra.run.dir=out", "kind=broken-mapping")
    assert proc.returncode == 0, proc.stderr
    rec = record(app / "out")
    assert (rec["status"], rec["attempts"][-1]["status"]) == ("COMPLETED", "COMPLETED")
    assert rec["ended_at"] is not None
    logged = (proc.stdout + proc.stderr).count("hydra-ledger: on_job_end failed (RuntimeError: unreadable)")
    assert logged == 1


def test_empty_env_vars_and_redact_keys_are_choices_not_defaults(app, run_app):
    proc = run_app(app, LEDGER, "hydra.run.dir=out", "hydra.callbacks.ledger.env_vars=[]",
                   "hydra.callbacks.ledger.redact_keys=[]", "+password=visible",
                   env={"SLURM_JOB_ID": "42"})
    assert proc.returncode == 0, proc.stderr
    rec = record(app / "out")
    assert (rec["host"]["env"], rec["config"]["password"]) == ({}, "visible")


def test_secret_like_names_redact_text_but_keep_numbers(app, run_app):
    proc = run_app(app, LEDGER, "hydra.run.dir=out", "+max_tokens=512", "+api_tokens=abc123",
                   "+db_pwd=hunter2", "+headers={Authorization:'Bearer abcdefghijkl'}",
                   "+auth_header='Token qwertyuiop123'")
    assert proc.returncode == 0, proc.stderr
    rec = record(app / "out")
    assert {k: rec["config"][k] for k in ("max_tokens", "api_tokens", "db_pwd", "headers", "auth_header")} == {
        "max_tokens": 512, "api_tokens": "***", "db_pwd": "***", "headers": {"Authorization": "***"},
        "auth_header": "Token ***"}
    assert "+max_tokens=512" in rec["overrides"] and "+db_pwd=***" in rec["overrides"]
    assert "hunter2" not in (app / "out" / ".ledger" / "run.json").read_text()


def test_a_new_run_in_a_reused_dir_does_not_inherit_tags_or_notes(app, run_app):
    from hydra_ledger.cli import main

    assert run_app(app, LEDGER, "hydra.run.dir=out").returncode == 0
    first = record(app / "out")
    assert main(["tag", str(app / "out"), "best"]) == 0
    assert main(["note", str(app / "out"), "looked good"]) == 0
    assert run_app(app, LEDGER, "hydra.run.dir=out", "x=2").returncode == 0
    frame = hydra_ledger.load_runs(app / "out")
    assert "tags" not in frame.columns and "note" not in frame.columns
    history = app / "out" / ".ledger" / "history"
    assert json.loads((history / f"{first['run_id']}.tags.json").read_text())["added"] == ["best"]
    assert "looked good" in (history / f"{first['run_id']}.notes.jsonl").read_text()
