"""Loading records into one typed DataFrame: dtypes, backfill, broken records, filters, moved sweeps."""
from __future__ import annotations

import json
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import APPS, app_env, commit_all, init_repo

import hydra_ledger
from hydra_ledger.load import LedgerLoadWarning
from hydra_ledger.record.schema import STATUSES, RecordError

LEDGER = "hydra/callbacks=ledger"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """A three-job sweep (the second job fails), recorded once for the whole module."""
    app = tmp_path_factory.mktemp("loading") / "repo"
    shutil.copytree(APPS / "ledger_app", app)
    init_repo(app)
    commit_all(app)
    proc = subprocess.run(
        [sys.executable, "app.py", "-m", LEDGER, "hydra.sweep.dir=sweep", "x=1,2,3", "fail_on=[2]", "kind=dict",
         "log_summary=true"],
        cwd=app, env=app_env(), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    return app / "sweep"


@pytest.fixture
def sweep(recorded, tmp_path) -> Path:
    """A private copy of the recorded sweep, free to damage."""
    copy = tmp_path / "sweep"
    shutil.copytree(recorded, copy)
    return copy


def test_typed_columns(recorded):
    frame = hydra_ledger.load_runs(recorded)
    assert list(frame.columns[:9]) == ["run_id", "path", "sweep", "job_num", "status", "started_at", "ended_at",
                                       "duration_s", "overrides"]
    columns = ["job_num", "status", "overrides", "cfg.x", "cfg.fail_on", "cfg.log_summary", "cfg.exit_code",
               "summary.logged", "summary.loss", "summary.nested.acc", "git.dirty", "error.type"]
    expected = pd.DataFrame({
        "job_num": pd.Series([0, 1, 2], dtype="int64"),
        "status": pd.Categorical(["COMPLETED", "FAILED", "COMPLETED"], categories=list(STATUSES)),
        "overrides": pd.Series([[f"x={x}", "fail_on=[2]", "kind=dict", "log_summary=True"] for x in (1, 2, 3)],
                               dtype=object),  # as the sweeper wrote them for each job
        "cfg.x": pd.Series([1, 2, 3], dtype="int64"),
        "cfg.fail_on": pd.Series([[2], [2], [2]], dtype=object),
        "cfg.log_summary": pd.Series([True, True, True], dtype=bool),
        "cfg.exit_code": pd.Series([None, None, None], dtype=object),
        "summary.logged": pd.Series([1, 2, 3], dtype="int64"),
        "summary.loss": pd.Series([1, -1.0, 3], dtype="float64"),
        "summary.nested.acc": pd.Series([0.5, None, 0.5], dtype="float64"),
        "git.dirty": pd.Series([False, False, False], dtype=bool),
        "error.type": pd.Series([None, "ValueError", None], dtype=object),
    })
    pd.testing.assert_frame_equal(frame[columns], expected)
    assert str(frame["started_at"].dtype) == "datetime64[ns, UTC]"
    assert str(frame["ended_at"].dtype) == "datetime64[ns, UTC]"
    assert frame["duration_s"].dtype == "float64"
    assert (frame["ended_at"] >= frame["started_at"]).all()
    assert frame["path"].tolist() == [str(recorded.resolve() / str(n)) for n in range(3)]


def test_missing_config_key_is_na_and_backfill_fills_it(make_app, run_app):
    app = make_app("ledger_app")
    assert run_app(app, LEDGER, "hydra.run.dir=runs/old").returncode == 0
    (app / "config.yaml").write_text((app / "config.yaml").read_text() + "dropout: 0.1\nlayers: 2\nuse_bn: true\n")
    commit_all(app, "add dropout and layers")
    assert run_app(app, LEDGER, "hydra.run.dir=runs/new", "layers=4").returncode == 0
    frame = hydra_ledger.load_runs(app / "runs")
    assert frame["path"].tolist() == [str((app / "runs" / d).resolve()) for d in ("old", "new")]
    pd.testing.assert_series_equal(frame["cfg.dropout"], pd.Series([None, 0.1], dtype="float64", name="cfg.dropout"))
    pd.testing.assert_series_equal(frame["cfg.layers"], pd.Series([pd.NA, 4], dtype="Int64", name="cfg.layers"))
    pd.testing.assert_series_equal(frame["cfg.use_bn"], pd.Series([pd.NA, True], dtype="boolean", name="cfg.use_bn"))
    filled = hydra_ledger.load_runs(app / "runs", backfill={"dropout": 0.0, "cfg.layers": 1, "cfg.absent": "z",
                                                                 "use_bn": False})
    pd.testing.assert_series_equal(filled["cfg.dropout"], pd.Series([0.0, 0.1], name="cfg.dropout"))
    pd.testing.assert_series_equal(filled["cfg.layers"], pd.Series([1, 4], dtype="int64", name="cfg.layers"))
    pd.testing.assert_series_equal(filled["cfg.use_bn"], pd.Series([False, True], name="cfg.use_bn"))
    assert filled["cfg.absent"].tolist() == ["z", "z"]
    assert "RUNNING" in STATUSES and "DIED" in STATUSES


def test_default_paths_are_outputs_and_multirun(make_app, run_app, monkeypatch):
    app = make_app("ledger_app")
    assert run_app(app, LEDGER).returncode == 0
    assert run_app(app, "-m", LEDGER, "x=1,2").returncode == 0
    monkeypatch.chdir(app)
    frame = hydra_ledger.load_runs()
    assert frame["job_num"].tolist() == [pd.NA, 0, 1]
    assert [Path(p).relative_to(app.resolve()).parts[0] for p in frame["path"]] == ["outputs", "multirun", "multirun"]
    monkeypatch.chdir(app.parent)
    with pytest.raises(FileNotFoundError, match=re.escape(
        "hydra-ledger: no runs found from here: no 'outputs' or 'multirun' directory here, no run dirs registered "
        f"for the project {app.parent.resolve()} (its launches register them), and no HYDRA_LEDGER_ROOTS or "
        "[tool.hydra-ledger] roots in a pyproject.toml; pass the paths of runs or sweeps to load"
    )):
        hydra_ledger.load_runs()


def _job(sweep: Path, name: str, content: bytes) -> Path:
    ledger = sweep / name / ".ledger"
    ledger.mkdir(parents=True)
    (ledger / "run.json").write_bytes(content)
    return ledger / "run.json"


def test_broken_records_skipped_with_one_warning_each(sweep):
    good = json.loads((sweep / "0" / ".ledger" / "run.json").read_text())
    whole = (sweep / "0" / ".ledger" / "run.json").read_bytes()
    truncated = _job(sweep, "truncated", whole[: len(whole) // 2])
    empty = _job(sweep, "empty", b"")
    foreign = _job(sweep, "foreign", b'{"hello": "world"}')
    newer = _job(sweep, "newer", json.dumps({**good, "version": 99}).encode())
    binary = _job(sweep, "binary", b"\x80\x81\xff")
    malformed = _job(sweep, "malformed", json.dumps({**good, "job": "j", "config": [1]}).encode())
    dangling = sweep / "dangling" / ".ledger" / "run.json"
    dangling.parent.mkdir(parents=True)
    dangling.symlink_to(sweep / "nowhere.json")

    with pytest.warns(LedgerLoadWarning) as caught:
        frame = hydra_ledger.load_runs(sweep)
    assert frame["job_num"].tolist() == [0, 1, 2]
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == 7
    expected_starts = sorted([
        f"hydra-ledger: cannot read record {truncated}: truncated or corrupt JSON (JSONDecodeError: ",
        f"hydra-ledger: cannot read record {empty}: empty file (the disk was full, or the copy is incomplete?)",
        f"hydra-ledger: cannot read record {foreign}: not a hydra-ledger/run record (foreign file?) — skipped; "
        "move it out of the run tree",
        f"hydra-ledger: cannot read record {newer}: written by a newer hydra-ledger (schema version 99, this one "
        "reads up to 1) — upgrade hydra-ledger: pip install -U hydra-ledger",
        f"hydra-ledger: cannot read record {binary}: truncated or corrupt JSON (UnicodeDecodeError: ",
        f"hydra-ledger: cannot read record {dangling}: unreadable (No such file or directory)",
        f"hydra-ledger: cannot read record {malformed}: malformed record: field 'job' is a string, expected an "
        "object — skipped; was it edited by hand? Restore it from history/ or rerun the job",
    ])
    for message, start in zip(messages, expected_starts):
        assert message.startswith(start), (message, start)

    with pytest.raises(RecordError, match=re.escape(f"cannot read record {truncated}: truncated or corrupt JSON")):
        hydra_ledger.load_runs(sweep / "truncated", sweep / "0", errors="raise")
    quiet = hydra_ledger.load_runs(sweep, errors="ignore")
    assert len(quiet) == 3


def test_nothing_is_executed_or_unpickled(sweep, tmp_path):
    marker = tmp_path / "executed"

    class Boom:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (sweep / "0" / ".hydra" / "config.pickle").write_bytes(pickle.dumps(Boom()))
    (sweep / "0" / ".ledger" / "run.json.pickle").write_bytes(pickle.dumps(Boom()))
    record_file = sweep / "1" / ".ledger" / "run.json"
    rec = json.loads(record_file.read_text())
    rec["config"]["x"] = "!!python/object/apply:os.system ['touch executed']"
    rec["summary"] = {"danger": "${oc.env:HOME}", "call": "__import__('os').system('touch executed')"}
    record_file.write_text(json.dumps(rec))
    frame = hydra_ledger.load_runs(sweep)
    assert frame["cfg.x"].tolist() == [1, "!!python/object/apply:os.system ['touch executed']", 3]
    assert frame["summary.danger"].tolist() == [None, "${oc.env:HOME}", None]
    assert not marker.exists()
    assert not (Path.cwd() / "executed").exists()


def test_only_changed(recorded):
    frame = hydra_ledger.load_runs(recorded)
    cfg = frame[[c for c in frame.columns if c.startswith("cfg.")]]
    assert list(hydra_ledger.only_changed(cfg, keep=()).columns) == ["cfg.x"]
    changed = hydra_ledger.only_changed(frame)
    assert {"run_id", "status", "cfg.x", "summary.logged", "summary.loss", "error.type"} <= set(changed.columns)
    assert not {"cfg.kind", "cfg.fail_on", "git.commit", "sweep", "host.hostname"} & set(changed.columns)


def test_only_changed_tells_values_apart_by_type_and_mappings_by_content():
    frame = pd.DataFrame({
        "int_and_float": pd.Series([1, 1.0], dtype=object),
        "int_and_bool": pd.Series([1, True], dtype=object),
        "text_and_missing": pd.Series(["a", None], dtype=object),
        "same_lists": pd.Series([[1, 2.5], [1, 2.5]], dtype=object),
        "lists_int_and_float": pd.Series([[1], [1.0]], dtype=object),
        "same_mappings": pd.Series([{"a": 1, "b": [2]}, {"b": [2], "a": 1}], dtype=object),
        "missing_alike": pd.Series([None, float("nan")], dtype=object),
        "floats_nan": pd.Series([float("nan"), float("nan")]),
        "ints_nullable": pd.Series([1, pd.NA], dtype="Int64"),
        "same_text": pd.Series(["x", "x"], dtype=object),
    })
    assert list(hydra_ledger.only_changed(frame, keep=()).columns) == [
        "int_and_float", "int_and_bool", "text_and_missing", "lists_int_and_float", "ints_nullable"]


def test_status_filter(recorded):
    assert hydra_ledger.load_runs(recorded, status="FAILED")["job_num"].tolist() == [1]
    assert hydra_ledger.load_runs(recorded, status=["COMPLETED"])["job_num"].tolist() == [0, 2]
    assert hydra_ledger.load_runs(recorded, status=["DIED"]).empty
    with pytest.raises(ValueError, match=re.escape(f"hydra-ledger: unknown status DONE; valid: {', '.join(STATUSES)}")):
        hydra_ledger.load_runs(recorded, status="DONE")


def test_copied_sweep_loads_with_its_new_paths(recorded, tmp_path):
    copy = tmp_path / "elsewhere" / "copied sweep"
    shutil.copytree(recorded, copy)
    frame = hydra_ledger.load_runs(copy)
    assert frame["path"].tolist() == [str(copy / str(n)) for n in range(3)]
    assert frame["sweep"].tolist() == [str(copy)] * 3
    assert frame["status"].tolist() == ["COMPLETED", "FAILED", "COMPLETED"]


def test_several_paths_and_a_job_dir(recorded):
    frame = hydra_ledger.load_runs(recorded / "2", recorded / "0", recorded / "0" / ".ledger" / "run.json")
    assert frame["job_num"].tolist() == [0, 2]
    with pytest.raises(FileNotFoundError, match=re.escape(f"hydra-ledger: no such file or directory: {recorded}/9")):
        hydra_ledger.load_runs(recorded / "9")


def test_json_columns_give_each_row_its_own_values():
    """Rows repeating a list, a dict or nested values are parsed once but share no object: a row's
    value changed in place leaves the others as they were (hydra_ledger.load.frame.decode)."""
    import pyarrow as pa

    from hydra_ledger.load.encode import JSON_TYPE
    from hydra_ledger.load.frame import decode

    texts = ['[1, 2]', '{"a": 1}', '[[1], {"b": 2}]', '{"c": [3]}', '3.5', None, '"text"']
    rows = [texts[i % len(texts)] for i in range(3 * len(texts))]
    values = decode(pa.chunked_array([pa.array(rows, JSON_TYPE)]))
    assert values == [None if t is None else json.loads(t) for t in rows]
    mutable = [v for v in values if isinstance(v, (list, dict))]
    assert len({id(v) for v in mutable}) == len(mutable)  # no two rows share a list or dict
    nested = [v[0] for v in values if isinstance(v, list) and isinstance(v[0], list)]
    nested += [v["c"] for v in values if isinstance(v, dict) and "c" in v]
    assert len({id(v) for v in nested}) == len(nested)  # nor a list inside one
    values[0].append(9)
    assert values[len(texts)] == [1, 2]
