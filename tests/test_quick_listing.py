"""``ls``'s default view and ``status`` answered from the index without pandas (hydra_ledger.load.quick,
hydra_ledger.load.newest): the same text and counts as the frame gives for the same runs, typed
alike, and the frame whenever a row needs the loader's full judgement (a job number of another type)."""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import APPS, app_env, commit_all, init_repo

from hydra_ledger.cli import main
from hydra_ledger.load.newest import newest
from hydra_ledger.load.tables import as_numpy, from_numpy

# summary values written into the records, job by job: each key a type mix the frame types its own way
ZOO = [
    {"mixed": 1, "flag": True, "count": 3, "listy": [1, 2], "words": "plain", "loss": 0.5, "boolint": True},
    {"mixed": 2.5, "flag": False, "listy": ["a"], "words": "clear\x1b[2J screen\nand a line", "loss": math.nan,
     "boolint": 1},
    {"mixed": 1234567, "count": 5, "words": "2024-05-01T12:00:00+00:00", "loss": 1e-7},
    {"mixed": None, "flag": None, "count": 7, "listy": {"k": 1}, "boolint": None},
]


def _app(repo: Path, *args: str, fails: bool = False) -> None:
    proc = subprocess.run([sys.executable, "app.py", *args], cwd=repo, env=app_env(), capture_output=True, text=True,
                          timeout=300)
    assert (proc.returncode != 0) == fails, proc.stderr


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """multirun/a: lr=0.1,0.2 x seed=0,1 with the ZOO summaries; multirun/b: seed=5,6, and a job 2
    its sweep lists that never started; multirun/c: two failed jobs; outputs/one: a single run;
    outputs/debug: a debug run. Records rewritten before any load."""
    repo = tmp_path_factory.mktemp("quick") / "repo"
    shutil.copytree(APPS / "basic", repo)
    init_repo(repo)
    commit_all(repo, "initial")
    _app(repo, "lr=0.3", "hydra.run.dir=outputs/one")  # the first to start, listed after the sweeps' jobs
    _app(repo, "-m", "lr=0.1,0.2", "seed=0,1", "hydra.sweep.dir=multirun/a")
    _app(repo, "-m", "seed=5,6", "hydra.sweep.dir=multirun/b")
    _app(repo, "-m", "seed=7,8", "fail=true", "hydra.sweep.dir=multirun/c", fails=True)
    _app(repo, "lr=0.4", "hydra.run.dir=outputs/debug", "hydra.callbacks.ledger.debug=true")
    for num, summary in enumerate(ZOO):
        path = repo / "multirun" / "a" / str(num) / ".ledger" / "run.json"
        record = json.loads(path.read_text())
        record["summary"].update({k: v for k, v in summary.items() if v is not None})
        path.write_text(json.dumps(record, allow_nan=True))
    sweep = repo / "multirun" / "b" / ".ledger" / "sweep.json"
    record = json.loads(sweep.read_text())
    record["jobs"].append({"num": 2, "overrides": ["seed=9"]})  # its launcher is gone: MISSING
    sweep.write_text(json.dumps(record))
    return repo


@pytest.fixture
def in_zoo(zoo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(zoo)
    monkeypatch.setenv("HYDRA_LEDGER_CACHE", str(tmp_path / "cache"))
    return zoo


def _ls(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[str, str]:
    assert main(["ls", *argv]) == 0
    out = capsys.readouterr()
    return out.out, out.err


@pytest.mark.parametrize("argv", [
    [], ["-n", "3"], ["-n", "0"], ["-n", "-2"], ["--debug"], ["multirun/a"], ["multirun/a", "outputs"], ["multirun/b"],
    ["--format", "markdown"], ["--format", "latex", "-n", "2"],
])
def test_the_default_view_from_the_index_is_what_the_frame_shows(in_zoo, capsys, argv):
    paths = [a for a in argv if a.startswith(("multirun", "outputs"))]
    assert newest(paths, limit=None, include_debug="--debug" in argv) is not None  # the index answers
    quick = _ls(capsys, *argv)
    # sorting by start time, newest first, is the default order: given explicitly, the frame answers
    full = _ls(capsys, *argv, "--sort=~started_at")
    assert quick == full
    assert quick[0].strip()


def test_values_of_mixed_types_are_typed_as_the_frame_types_them(in_zoo, capsys):
    out, _ = _ls(capsys, "multirun/a", "--format", "markdown")
    header, align, *rows = [line.strip("|").split("|") for line in out.splitlines()]
    header = [h.strip() for h in header]
    cells = {h: [row[i].strip() for row in rows] for i, h in enumerate(header)}
    by_seed = {(lr, seed): i for i, (lr, seed) in enumerate(zip(cells["cfg.lr"], cells["cfg.seed"]))}
    mixed = [cells["summary.mixed"][by_seed[key]] for key in [("0.1", "0"), ("0.1", "1"), ("0.2", "0"), ("0.2", "1")]]
    assert mixed == ["1", "2.5", "1.23457e+06", ""]  # ints and floats: a float column
    assert "clear\\x1b[2J screen ⏎ and a line" in cells["summary.words"]
    assert "2024-05-01 12:00:00" in cells["summary.words"]  # ISO text shown to the second
    numeric = dict(zip(header, (a.strip().endswith(":") for a in align)))
    assert numeric["summary.mixed"] and numeric["summary.count"] and numeric["summary.loss"]
    assert not numeric["summary.flag"] and not numeric["summary.boolint"] and not numeric["summary.listy"]


def _edited(path: Path, **fields: object) -> str:
    """Rewrite a job's record with ``fields`` changed (as an older or foreign writer might have);
    returns the text to put back. Its sweep dir is touched, as every record write does."""
    saved = path.read_text()
    record = json.loads(saved)
    for dotted, value in fields.items():
        target = record
        *parents, key = dotted.split("__")
        for parent in parents:
            target = target[parent]
        target[key] = value
    _put(path, json.dumps(record))
    return saved


def _put(path: Path, text: str) -> None:
    path.write_text(text)
    os.utime(path.parent.parent.parent)


def test_a_running_job_is_listed_with_its_heartbeat_judged(in_zoo, capsys):
    path = in_zoo / "multirun" / "b" / "0" / ".ledger" / "run.json"
    saved = _edited(path, status="RUNNING", heartbeat_s=1)
    try:
        assert newest(["multirun/b"], limit=None) is not None
        out, err = _ls(capsys, "multirun/b")
        assert (out, err) == _ls(capsys, "multirun/b", "--sort=~started_at")
        assert "RUNNING" in out or "DIED" in out
    finally:
        _put(path, saved)


def test_a_job_number_that_is_not_a_number_is_left_to_the_frame(in_zoo, capsys):
    path = in_zoo / "multirun" / "b" / "1" / ".ledger" / "run.json"
    saved = _edited(path, job__num="1")
    try:
        assert newest(["multirun/b"], limit=None) is None
        out, err = _ls(capsys, "multirun/b")
        assert (out, err) == _ls(capsys, "multirun/b", "--sort=~started_at")
        assert len(out.splitlines()) == 4
    finally:
        _put(path, saved)


@pytest.mark.parametrize("argv", [["ls", "-n", "2"], ["status"], ["status", "--format", "json"]], ids=" ".join)
def test_quick_views_of_indexed_runs_import_neither_pandas_nor_pyarrow_compute(in_zoo, argv):
    """pandas costs 0.3-0.5 s; ``pyarrow.compute`` 50-90 ms, wrapping every Arrow function: the
    views call Arrow's functions through hydra_ledger.load.kernels instead."""
    code = (f"import sys; from hydra_ledger.cli import main; main({argv!r}); "
            "print(sorted({'pandas', 'pyarrow.compute'} & set(sys.modules)), file=sys.stderr)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for record in in_zoo.glob("*/**/.ledger/*.json"):  # written a minute ago: none recent enough to read again
        os.utime(record, (record.stat().st_mtime - 60,) * 2)
    outputs = []
    for _ in range(2):  # the first load writes the index (Arrow's conversions import pandas), the second reads it
        proc = subprocess.run([sys.executable, "-c", code], cwd=in_zoo, capture_output=True, text=True, timeout=120,
                              env=env)
        assert proc.returncode == 0, proc.stderr
        outputs.append(proc.stdout)
    assert outputs[0] == outputs[1]
    if argv[0] == "ls":
        assert len(outputs[1].splitlines()) == 4  # header, rule, two runs
    assert proc.stderr.strip().splitlines()[-1] == "[]"


def test_numpy_views_of_arrow_arrays_keep_offsets_and_nulls():
    import numpy as np
    import pyarrow as pa

    ints = pa.chunked_array([pa.array([1, 2, 3]), pa.array([4, None, 6])])
    assert as_numpy(ints, missing=-1).tolist() == [1, 2, 3, 4, -1, 6]
    assert as_numpy(pa.array([10, 11, 12, 13], pa.int32()).slice(1, 2)).tolist() == [11, 12]
    bools = pa.array([True, False, True, True, False, False, True, False, True, False]).slice(3, 6)
    assert as_numpy(bools).tolist() == [True, False, False, True, False, True]
    with pytest.raises(ValueError, match="nulls"):
        as_numpy(pa.array([1, None]))
    assert from_numpy(np.array([True, False, True]), pa.bool_()).to_pylist() == [True, False, True]
    assert from_numpy(np.arange(3), pa.int32()).to_pylist() == [0, 1, 2]


@pytest.mark.parametrize("values", [
    [math.nan, None], [math.nan, 1.0], [None, None], [1.0, 1.0, None], [2, 2], [True, None], [1, 1.0], [1, 1.5],
    [1, "a"], [[1], [1]], [[1], [2]], [True, 1], ["a", None], [math.nan, None, 1], [{"a": 1}, {"a": 1}],
])
def test_a_column_varies_and_folds_as_the_frame_says(values):
    """Columns as the index encodes them (native, or JSON texts for mixed types) against the frame's."""
    import numpy as np
    import pyarrow as pa

    from hydra_ledger.load import _typed, _value_key, _varies
    from hydra_ledger.load.encode import encode_values
    from hydra_ledger.load.newest import _Columns

    columns = _Columns(pa.table({"cfg.x": encode_values(values, "cfg.x")}), np.zeros(len(values), np.int8))
    kinds = {type(v) for v in values if v is not None}
    series = _typed(values, "cfg.x") if kinds <= {int, float, bool} or kinds == {str} else pd_object(values)
    assert columns.varies("cfg.x") == _varies(series)
    frame_keys = [_value_key(v) for v in series.tolist()]
    assert _same_partition(columns.keys("cfg.x"), frame_keys)


def pd_object(values):
    import pandas as pd

    return pd.Series(values, dtype=object)


def _same_partition(a, b):
    """Whether two lists of keys group the rows alike (equal where the other is equal)."""
    return all((a[i] == a[j]) == (b[i] == b[j]) for i in range(len(a)) for j in range(len(a)))


@pytest.mark.parametrize("argv", [[], ["--debug"], ["multirun/b"], ["multirun/c", "outputs"]])
def test_status_from_the_index_counts_what_the_frame_counts(in_zoo, argv):
    import time

    from hydra_ledger.cli._runs import load_frame_and_missing
    from hydra_ledger.cli.status import COLUMNS, indexed_sweeps, sweeps

    paths, debug = [a for a in argv if not a.startswith("-")], "--debug" in argv
    quick = indexed_sweeps(paths, debug, False)
    frame, missing = load_frame_and_missing(paths, include_debug=debug, columns=COLUMNS,
                                            optional=["error.type", "error.message"])
    assert quick == sweeps(frame, time.time(), missing)
    statuses = {status for entry in quick for status in entry["counts"]}
    assert {"COMPLETED", "FAILED", "MISSING"} <= statuses or argv


def test_status_of_a_running_job_from_the_index_is_the_loaders(in_zoo, capsys):
    from hydra_ledger.cli.status import indexed_sweeps

    path = in_zoo / "multirun" / "a" / "1" / ".ledger" / "run.json"
    saved = _edited(path, status="RUNNING", heartbeat_s=3600)  # a heartbeat an hour long: still running
    try:
        entries = indexed_sweeps(["multirun/a"], False, False)
        assert [e["counts"] for e in entries] == [{"RUNNING": 1, "COMPLETED": 3}]
        assert [job["path"] for job in entries[0]["running"]] == ["multirun/a/1"]
        assert main(["status", "multirun/a"]) == 0
        assert "multirun/a: running, 3/4 finished" in capsys.readouterr().out
    finally:
        _put(path, saved)


@pytest.mark.parametrize("argv", [["ls"], ["status"], ["ls", "--format", "markdown"], ["status", "--format", "json"]])
def test_a_root_of_broken_records_is_warned_of_once(tmp_path, monkeypatch, capsys, argv):
    from hydra_ledger.record.schema import LedgerLoadWarning

    record = tmp_path / "multirun" / "x" / "0" / ".ledger" / "run.json"
    record.parent.mkdir(parents=True)
    record.write_text('{"schema": 1, "run_id": "abc", "status": ')  # cut short
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HYDRA_LEDGER_CACHE", str(tmp_path / "cache"))
    for _ in range(2):  # the first load indexes the root, the second reads the index
        with pytest.warns(LedgerLoadWarning) as warned:
            assert main([*argv, "multirun"]) == 0
        assert len(warned) == 1, [str(w.message) for w in warned]
        capsys.readouterr()


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_timestamps_are_read_without_pandas_in_any_unit(unit):
    import datetime as dt

    import pyarrow as pa

    from hydra_ledger.load.tables import timestamps

    when = dt.datetime(2024, 5, 1, 12, 30, 15, 250000 if unit != "s" else 0, tzinfo=dt.timezone.utc)
    column = pa.array([when, None], pa.timestamp(unit, "UTC"))
    assert timestamps(column) == [when, None]


def test_sweeps_below_a_symlinked_root_keep_their_missing_jobs(in_zoo, tmp_path):
    """Sweeps are matched by real path: the dirs walked below a root given through a link resolve
    through the link (hydra_ledger.load.tables.realpath_memo), the sweeps the jobs recorded
    through their own path; either way multirun/b has its never-started job, once."""
    from hydra_ledger.cli._runs import load_frame_and_missing
    from hydra_ledger.cli.status import indexed_sweeps

    link = tmp_path / "link"
    link.symlink_to(in_zoo)
    for root in ("multirun", str(link / "multirun"), str(link / "multirun" / "b")):
        counts = {Path(entry["sweep"]).name: entry["counts"] for entry in indexed_sweeps([root], False, False)}
        assert counts["b"] == {"COMPLETED": 2, "MISSING": 1}, root
        _, missing = load_frame_and_missing([root])
        assert [len(jobs) for jobs in missing.values()] == [1], root


def test_kernels_give_what_pyarrow_compute_gives():
    """Each Arrow function the quick paths call through hydra_ledger.load.kernels, with the
    options they pass, against pyarrow.compute's wrapper of it (defaults included)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from hydra_ledger.load import kernels

    texts = pa.chunked_array([["RUNNING", None, "COMPLETED"], ["RUNNING", "FAILED"]])
    flags = pa.chunked_array([[True, None, False], [False, True]])
    numbers = pa.chunked_array([[3.0, None, float("nan")], [1.0, 3.0]])
    table = pa.table({"t": texts, "f": flags})
    rows = pa.array([4, 0, 2], pa.int64())
    pairs = [
        (kernels.and_(flags, flags), pc.and_(flags, flags)),
        (kernels.and_kleene(flags, flags), pc.and_kleene(flags, flags)),
        (kernels.or_kleene(flags, flags), pc.or_kleene(flags, flags)),
        (kernels.invert(flags), pc.invert(flags)),
        (kernels.is_null(numbers), pc.is_null(numbers)),
        (kernels.is_valid(texts), pc.is_valid(texts)),
        (kernels.is_nan(numbers), pc.is_nan(numbers)),
        (kernels.any(kernels.is_nan(numbers)), pc.any(pc.is_nan(numbers))),
        (kernels.indices_nonzero(flags), pc.indices_nonzero(flags)),
        (kernels.not_equal(texts, texts), pc.not_equal(texts, texts)),
        (kernels.unique(texts), pc.unique(texts)),
        (kernels.dictionary_encode(texts.combine_chunks()), texts.combine_chunks().dictionary_encode()),
        (kernels.take(texts, rows), texts.take(rows)),
        (kernels.cast(flags, pa.int8()), flags.cast(pa.int8())),
        (kernels.filter(table, flags), table.filter(flags)),
        (kernels.drop_null(table), table.drop_null()),
        (kernels.sort_indices(numbers, options=kernels.SortOptions([("", "descending")])),
         pc.sort_indices(numbers, sort_keys=[("", "descending")])),
        (kernels.count_distinct(numbers, options=kernels.CountOptions("all")),
         pc.count_distinct(numbers, mode="all")),
        (kernels.starts_with(texts, options=kernels.MatchSubstringOptions("RUN")),
         pc.starts_with(texts, pattern="RUN")),
        (kernels.match_substring_regex(texts, options=kernels.MatchSubstringOptions("^FAILED$")),
         pc.match_substring_regex(texts, pattern="^FAILED$")),
        (kernels.is_in(texts, options=kernels.SetLookupOptions(pa.array(["FAILED"]))),
         pc.is_in(texts, pa.array(["FAILED"]))),
    ]
    for ours, theirs in pairs:
        assert ours.equals(theirs), (ours, theirs)
    with pytest.raises(pa.ArrowKeyError, match="no_such_function"):
        kernels.no_such_function(texts)
