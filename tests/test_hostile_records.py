"""Hostile records in real run dirs: bad fields, deep and wide configs, FIFOs and devices, clashing keys.

A sweep is recorded once by a real Hydra app; each test damages a private copy and loads it
through the public API (load_runs, load_metrics) and the command line (ls, show, status,
report). One hostile record must never hide the others, hang or exhaust the loader.
"""
from __future__ import annotations

import json
import math
import os
import resource
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import APPS, app_env, commit_all, init_repo

import hydra_ledger
from hydra_ledger.cli import main
from hydra_ledger.load import LedgerLoadWarning

LEDGER = "hydra/callbacks=ledger"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A three-job sweep, all completed, recorded once for the module."""
    app = tmp_path_factory.mktemp("hostile") / "repo"
    shutil.copytree(APPS / "ledger_app", app)
    init_repo(app)
    commit_all(app)
    proc = subprocess.run([sys.executable, "app.py", "-m", LEDGER, "hydra.sweep.dir=sweep", "x=1,2,3"],
                          cwd=app, env=app_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return app / "sweep"


@pytest.fixture
def sweep(recorded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the recorded sweep, free to damage; the index kept in tmp_path."""
    copy = tmp_path / "sweep"
    shutil.copytree(recorded, copy)
    monkeypatch.setenv("HYDRA_LEDGER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NO_COLOR", "1")
    return copy


def record_of(sweep: Path, job: str) -> Path:
    return sweep / job / ".ledger" / "run.json"


def edit(sweep: Path, job: str, text: str | None = None, **fields: object) -> Path:
    """Rewrite a job's record with ``fields`` changed (NaN and Infinity kept), or as ``text``."""
    path = record_of(sweep, job)
    if text is None:
        record = json.loads(path.read_text())
        record.update(fields)
        text = json.dumps(record, allow_nan=True)
    path.write_text(text)
    return path


def messages(caught: pytest.WarningsRecorder) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, LedgerLoadWarning)]


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def run_ids(sweep: Path) -> list[str]:
    return [json.loads(record_of(sweep, j).read_text())["run_id"] for j in ("0", "1", "2")]


# -- a bad field nulls that field of that record, with one warning ---------------------------


def test_started_at_not_a_date_is_left_empty_with_one_warning_and_hides_nothing(sweep, capsys):
    ids = run_ids(sweep)
    bad = edit(sweep, "1", started_at="yesterday")
    for attempt in ("cold", "warm"):  # the index remembers the problem: the warning comes again
        with pytest.warns(LedgerLoadWarning) as caught:
            frame = hydra_ledger.load_runs(sweep)
        assert messages(caught) == [
            f"hydra-ledger: record {bad}: field 'started_at' is not a date ('yesterday') — loaded as empty; "
            "was it edited by hand? Restore it from history/ or rerun the job"], attempt
        assert sorted(frame["run_id"]) == sorted(ids)
        assert frame["run_id"].iloc[-1] == ids[1]  # no start time: sorted last
        assert frame["started_at"].isna().tolist() == [False, False, True]
        assert str(frame["started_at"].dtype) == "datetime64[ns, UTC]"
    with pytest.warns(LedgerLoadWarning):
        code, out = cli(capsys, "ls", str(sweep), "--format", "csv")
    assert code == 0 and all(i in out for i in ids)
    with pytest.warns(LedgerLoadWarning):
        code, out = cli(capsys, "status", str(sweep), "--format", "json")
    assert code == 0 and json.loads(out)[0]["counts"] == {"COMPLETED": 3}
    with pytest.warns(LedgerLoadWarning):
        code, _ = cli(capsys, "report", str(sweep), "-o", str(sweep.parent / "report.html"))
    assert code == 0
    code, out = cli(capsys, "show", str(sweep / "1"))
    assert code == 0 and "yesterday" in out


def test_signals_not_a_list_skips_that_record_with_one_warning(sweep):
    """``signals`` is a list of mappings (the status rules read its entries): a record holding
    anything else is malformed, one skipped record with a warning, like any other bad field."""
    ids = run_ids(sweep)
    bad = edit(sweep, "1", status="RUNNING", ended_at=None, signals="SIGUSR2")
    old = time.time() - 3600
    for path in (bad, *bad.parent.iterdir()):
        os.utime(path, (old, old))
    with pytest.warns(LedgerLoadWarning) as caught:
        frame = hydra_ledger.load_runs(sweep)
    assert messages(caught) == [f"hydra-ledger: cannot read record {bad}: malformed record: field 'signals' is "
                                "a string, expected a list — skipped; was it edited by hand? "
                                "Restore it from history/ or rerun the job"]
    assert sorted(frame["run_id"]) == sorted([ids[0], ids[2]])


def test_started_at_out_of_the_timestamp_range_is_left_empty(sweep):
    bad = edit(sweep, "2", started_at="9999-01-01T00:00:00+00:00")
    with pytest.warns(LedgerLoadWarning) as caught:
        frame = hydra_ledger.load_runs(sweep)
    assert messages(caught) == [
        f"hydra-ledger: record {bad}: field 'started_at' is not a date ('9999-01-01T00:00:00+00:00') — loaded "
        "as empty; was it edited by hand? Restore it from history/ or rerun the job"]
    assert frame["started_at"].isna().sum() == 1 and len(frame) == 3


def test_infinite_duration_is_left_empty_with_one_warning(sweep, capsys):
    ids = run_ids(sweep)
    bad = edit(sweep, "1", duration_s=math.inf)
    with pytest.warns(LedgerLoadWarning) as caught:
        frame = hydra_ledger.load_runs(sweep)
    assert messages(caught) == [
        f"hydra-ledger: record {bad}: field 'duration_s' is not a finite number (inf) — loaded as empty; "
        "was it edited by hand? Restore it from history/ or rerun the job"]
    assert frame["duration_s"].dtype == "float64"
    assert frame.set_index("run_id")["duration_s"].isna().to_dict() == {ids[0]: False, ids[1]: True, ids[2]: False}
    with pytest.warns(LedgerLoadWarning):
        code, out = cli(capsys, "ls", str(sweep))
    assert code == 0 and all(i in out for i in ids)
    with pytest.warns(LedgerLoadWarning):
        assert cli(capsys, "status", str(sweep))[0] == 0
    code, out = cli(capsys, "show", str(sweep / "1"))
    assert code == 0 and f"run {ids[1]}" in out


def test_metrics_line_whose_values_is_a_list_is_skipped_with_one_warning(sweep, capsys):
    ids = run_ids(sweep)
    metrics = sweep / "1" / ".ledger" / "metrics.jsonl"
    metrics.write_text('{"step": 0, "time": 1.0, "values": [1, 2]}\n'
                       '{"step": 1, "time": 2.0, "values": {"loss": 0.5}}\n'
                       '{"step": 2, "time": 3.0, "values": "loss"}\n')
    with pytest.warns(LedgerLoadWarning) as caught:
        frame = hydra_ledger.load_metrics(sweep)
    assert messages(caught) == [
        f"hydra-ledger: cannot read record {metrics}: line 1: 'values' is a list, expected an object — line skipped",
        f"hydra-ledger: cannot read record {metrics}: line 3: 'values' is a string, expected an object "
        "— line skipped",
    ]
    assert frame[["run_id", "step", "name", "value"]].to_dict("list") == {
        "run_id": [ids[1]], "step": [1], "name": ["loss"], "value": [0.5]}
    code, out = cli(capsys, "ls", str(sweep))
    assert code == 0 and all(i in out for i in ids)
    code, out = cli(capsys, "show", str(sweep / "1"))
    assert code == 0 and "loss:" in out and "(step 1)" in out
    report = sweep.parent / "report.html"
    code, _ = cli(capsys, "report", str(sweep), "-o", str(report))
    assert code == 0 and '"loss":[[1,0.5]]' in report.read_text()


# -- deep configs --------------------------------------------------------------------------------


def deep_config(sweep: Path, job: str, levels: int) -> Path:
    record = json.loads(record_of(sweep, job).read_text())
    record["config"]["deep"] = "@DEEP@"  # json.dumps itself cannot write 1,000 levels
    text = json.dumps(record).replace('"@DEEP@"', '{"a": ' * levels + "1" + "}" * levels)
    return edit(sweep, job, text=text)


def test_config_nested_1000_levels_deep_loads(sweep, capsys):
    ids = run_ids(sweep)
    deep_config(sweep, "1", 1000)
    deep_list = record_of(sweep, "2")
    edit(sweep, "2", text=deep_list.read_text().replace('"config":{', '"config":{"lists":' + "[" * 1000 + "]" * 1000
                                                                 + ",", 1))
    frame = hydra_ledger.load_runs(sweep)
    column = "cfg.deep" + ".a" * 1000
    assert frame[column].tolist() == [pd.NA, 1, pd.NA]
    # a list too deep for the column's JSON writer becomes a note; from Python 3.13 on, json's C code
    # counts against the C recursion limit (~10,000 levels), not sys.getrecursionlimit(): it loads whole
    deep = json.loads("[" * 1000 + "]" * 1000) if sys.version_info >= (3, 13) else "<list nested too deeply to load>"
    assert frame["cfg.lists"].tolist() == [None, None, deep]
    assert hydra_ledger.load_runs(sweep)[column].tolist() == [pd.NA, 1, pd.NA]  # warm, from the index
    code, out = cli(capsys, "ls", str(sweep))
    assert code == 0 and all(i in out for i in ids)
    code, out = cli(capsys, "status", str(sweep), "--format", "json")
    assert code == 0 and json.loads(out)[0]["counts"] == {"COMPLETED": 3}
    code, out = cli(capsys, "show", str(sweep / "1"))
    assert code == 0 and f"run {ids[1]}" in out and f"{column[4:]}: 1" in out
    code, _ = cli(capsys, "report", str(sweep), "-o", str(sweep.parent / "report.html"))
    assert code == 0


def test_config_nested_beyond_the_parsers_limit_is_skipped_with_one_warning(sweep):
    bad = deep_config(sweep, "1", 20_000)  # beyond Python 3.13's json too (~10,000 levels, the C recursion limit)
    with pytest.warns(LedgerLoadWarning) as caught:
        frame = hydra_ledger.load_runs(sweep)
    assert messages(caught) == [
        f"hydra-ledger: cannot read record {bad}: nested too deeply (more than 1,000 levels) — skipped; "
        "was it edited by hand? Restore it from history/ or rerun the job"]
    assert frame["job_num"].tolist() == [0, 2]


# -- wide configs ----------------------------------------------------------------------------


def test_config_of_10000_keys_loads_in_seconds_not_minutes(sweep):
    record = json.loads(record_of(sweep, "1").read_text())
    record["config"].update({f"k{i:05d}": i for i in range(10_000)})
    edit(sweep, "1", text=json.dumps(record))
    frame = hydra_ledger.load_runs(sweep)  # cold: builds the index
    assert frame.shape[1] > 10_000
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        frame = hydra_ledger.load_runs(sweep)
        timings.append(time.perf_counter() - start)
    assert frame["cfg.k09999"].tolist() == [pd.NA, 9999, pd.NA]
    # bench/bench_width.py measures it (well under a second); this only guards against the
    # quadratic lookups coming back (42-134 s before), with room for a loaded 2-core CI machine
    assert sorted(timings)[1] < 10.0, timings


# -- clashing dotted keys --------------------------------------------------------------------


def test_dotted_key_clashing_with_a_nested_one_keeps_the_nested_value_with_a_warning(sweep):
    """``{"a.b": 1, "a": {"b": 2}}`` flatten to the same column: in either key order, the nested
    value (Hydra's own structure) is kept and the run and the key are named."""
    ids = run_ids(sweep)
    first = record_of(sweep, "1")
    text = first.read_text()
    edit(sweep, "1", text=text.replace('"config":{', '"config":{"a.b": 1, "a": {"b": 2}, ', 1))
    second = record_of(sweep, "2")
    edit(sweep, "2", text=second.read_text().replace('"config":{', '"config":{"a": {"b": 2}, "a.b": 1, ', 1))
    for attempt in ("cold", "warm"):
        with pytest.warns(LedgerLoadWarning) as caught:
            frame = hydra_ledger.load_runs(sweep)
        assert messages(caught) == [
            f"hydra-ledger: record {path}: config key 'a.b' is given twice, as 'a.b' (1) and as 'a' → 'b' (2) "
            "— column cfg.a.b holds 2; rename one of them" for path in (first, second)], attempt
        values = frame.set_index("run_id")["cfg.a.b"]
        assert values.dtype == "Int64" and values[[ids[1], ids[2]]].tolist() == [2, 2] and pd.isna(values[ids[0]])


# -- files that are not regular files -----------------------------------------------------------

# Loads the sweep and runs ls and status in a fresh process: a hang is a time-out there, not here.
_PROBE = textwrap.dedent("""
    import contextlib, io, json, sys, warnings
    import hydra_ledger
    from hydra_ledger.cli import main
    sweep = sys.argv[1]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = hydra_ledger.load_runs(sweep)
        outputs = {}
        for command in (["ls", sweep, "--format", "csv"], ["status", sweep, "--format", "json"]):
            with contextlib.redirect_stdout(io.StringIO()) as out:
                code = main(command)
            outputs[command[0]] = [code, out.getvalue()]
    frame = frame.sort_values("path")
    print(json.dumps({"jobs": [p.rsplit("/", 1)[1] for p in frame["path"]], "status": frame["status"].tolist(),
                      "tags": frame["tags"].tolist() if "tags" in frame else None,
                      "warnings": sorted({str(w.message) for w in caught}), "cli": outputs}))
""")


def _limit_memory() -> None:
    """1 GiB of address space: a loader reading /dev/zero fails fast instead of eating the machine."""
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def _release(fifo: Path) -> None:
    """Give a reader blocked on ``fifo`` (a hung loader's worker) its end of file."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
@pytest.mark.parametrize("name", ["run.json", "heartbeat", "tags.json"])
def test_fifo_or_device_file_is_skipped_with_one_warning(sweep, name, kind):
    ledger = sweep / "1" / ".ledger"
    target = ledger / name
    if name == "heartbeat":  # read only for a running job's status
        edit(sweep, "1", status="RUNNING", ended_at=None, duration_s=None, started_at="2020-01-01T00:00:00+00:00")
    if name == "tags.json":
        (sweep / "0" / ".ledger" / "tags.json").write_text('{"added": ["kept"], "removed": []}')
    if target.exists():
        target.unlink()
    if kind == "fifo":
        os.mkfifo(target)
        what = "a FIFO (named pipe)"
    else:
        target.symlink_to("/dev/zero")
        what = "a character device"
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE, str(sweep)], capture_output=True, text=True,
                              timeout=60, env=app_env(), preexec_fn=_limit_memory)
    finally:
        if kind == "fifo":
            _release(target)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    if name == "run.json":
        assert result["jobs"] == ["0", "2"]
        warning = (f"hydra-ledger: cannot read record {target}: not a regular file but {what} — skipped; "
                   "reading it could block or never end: replace it with the job's real record")
    else:
        assert result["jobs"] == ["0", "1", "2"]
        warning = (f"hydra-ledger: record {target}: not a regular file but {what} — ignored; reading it could "
                   "block or never end: delete it")
    assert result["warnings"] == [warning]
    if name == "heartbeat":  # no heartbeat to read: the start time tells, long ago
        assert result["status"] == ["COMPLETED", "DIED", "COMPLETED"]
    if name == "tags.json":
        assert result["tags"] == [["kept"], None, None]
    assert result["cli"]["ls"][0] == 0 and len(result["cli"]["ls"][1].splitlines()) == len(result["jobs"]) + 1
    assert result["cli"]["status"][0] == 0


def test_record_larger_than_the_cap_is_skipped_unread(sweep, monkeypatch):
    from hydra_ledger.record import files as record_files

    bad = edit(sweep, "1", summary={"pad": "x" * 5000})
    cap = max(record_of(sweep, j).stat().st_size for j in ("0", "2")) + 100
    monkeypatch.setattr(record_files, "MAX_RECORD_BYTES", cap)  # the real cap is 64 MiB: not worth writing
    with pytest.warns(LedgerLoadWarning) as caught:
        frame = hydra_ledger.load_runs(sweep)
    assert messages(caught) == [
        f"hydra-ledger: cannot read record {bad}: larger than a record can be ({bad.stat().st_size:,} bytes, "
        f"the cap is {cap:,}) — skipped; is it a job's record? Move it out of the run tree"]
    assert frame["job_num"].tolist() == [0, 2]


def test_the_shape_check_agrees_with_the_documented_record_fields():
    """The loader checks the JSON types of a record's fields: the same types RunRecord declares."""
    import types
    import typing

    from hydra_ledger.record.schema import _FIELD_TYPES, RunRecord

    declared = typing.get_type_hints(RunRecord)

    def json_kinds(annotation):
        kinds = set()
        union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
        for part in typing.get_args(annotation) if union else [annotation]:
            if part is type(None):
                continue
            origin = typing.get_origin(part) or part
            kinds |= {dict} if origin is dict or typing.is_typeddict(origin) else {int, float} if origin is float \
                else {origin}
        return kinds

    for name, checked in _FIELD_TYPES.items():
        assert name in declared, f"RunRecord does not declare {name!r}, which the loader checks"
        assert json_kinds(declared[name]) == set(checked), (name, declared[name], checked)
