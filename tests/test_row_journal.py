"""A sweep's row journal: each job appends its final row; a first load takes the rows it can trust
from it and reads every other record, giving the very frame it gives without the journal."""
from __future__ import annotations

import json
import math
import os
import shutil
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest

import hydra_ledger
from hydra_ledger.cli import main as cli_main
from hydra_ledger.load import walk
from hydra_ledger.record.row_journal import journal_line, stat_signature
from hydra_ledger.record.rows import record_to_row
from hydra_ledger.record.schema import read_record

LEDGER = "hydra/callbacks=ledger"


@pytest.fixture
def sweep(make_app, run_app, tmp_path, monkeypatch) -> Path:
    """``multirun/a`` of a fresh repo: a recorded three-job sweep whose job 1 fails, its journal as written."""
    app = make_app("ledger_app")
    proc = run_app(app, "-m", LEDGER, "hydra.sweep.dir=multirun/a", "x=1,2,3", "fail_on=[2]", "log_summary=true")
    assert proc.returncode == 1, proc.stderr
    monkeypatch.setenv("HYDRA_LEDGER_CACHE", str(tmp_path / "cache"))
    return app / "multirun" / "a"


def journal(sweep_dir: Path) -> Path:
    return sweep_dir / ".ledger" / "rows.jsonl"


def lines(sweep_dir: Path) -> list[dict]:
    """The journal's lines, each with its row as a mapping (a line holds the row's values, then,
    after a tab, its column names)."""
    found = []
    for raw in journal(sweep_dir).read_bytes().splitlines():
        head, names = raw.split(b"\t")
        line = json.loads(head)
        found.append({**line, "row": dict(zip(json.loads(names), line["row"], strict=True))})
    return found


def line_bytes(line: dict, names: list[str] | None = None) -> bytes:
    """``line`` (as :func:`lines` gives it) as the journal holds it; ``names``: other column names."""
    head = json.dumps({**line, "row": list(line["row"].values())}).encode()
    return head + b"\t" + json.dumps(list(line["row"]) if names is None else names).encode()


def journaled(root: Path) -> list[str]:
    """The job dirs a first walk of ``root`` takes from journals (their records unread)."""
    scan = walk.walk(str(root), {}, {}, set(), time.time_ns())
    return sorted(rel for rel, *_ in scan.journaled)


def cold_load(root: Path, cache: Path) -> pd.DataFrame:
    """A first load (no index yet) of ``root``, failing on any warning."""
    os.environ["HYDRA_LEDGER_CACHE"] = str(cache)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return hydra_ledger.load_runs(root)


def without_journals(root: Path, cache: Path) -> pd.DataFrame:
    """The first load of ``root`` with every journal under it set aside (then put back)."""
    found = list(root.rglob("rows.jsonl")) if root.is_dir() else []
    for path in found:
        path.rename(path.with_suffix(".off"))
    try:
        return cold_load(root, cache)
    finally:
        for path in found:
            path.with_suffix(".off").rename(path)


def test_each_job_of_a_sweep_appends_the_row_of_its_final_record(sweep):
    entries = {line["job"]: line for line in lines(sweep)}
    assert sorted(entries) == ["0", "1", "2"]
    for name, line in entries.items():
        job_dir = sweep / name
        record_file = job_dir / ".ledger" / "run.json"
        assert line["sig"] == stat_signature(os.stat(record_file))
        row = record_to_row(read_record(record_file), str(job_dir))
        assert line["row"] == {**row, "path": None, "sweep": None}  # where the job is now: filled in at load
    assert [entries[n]["row"]["status"] for n in ("0", "1", "2")] == ["COMPLETED", "FAILED", "COMPLETED"]


def test_a_single_run_writes_no_journal(make_app, run_app):
    app = make_app("ledger_app")
    proc = run_app(app, LEDGER, "hydra.run.dir=outputs/one")
    assert proc.returncode == 0, proc.stderr
    assert not list(app.rglob("rows.jsonl"))


def test_a_first_load_takes_the_rows_from_the_journal_and_gives_the_same_frame(sweep, tmp_path):
    assert journaled(sweep) == ["0", "1", "2"]
    assert journaled(sweep.parent) == ["a/0", "a/1", "a/2"]
    for root in (sweep, sweep.parent):
        frame = cold_load(root, tmp_path / f"with-{root.name}")
        pd.testing.assert_frame_equal(frame, without_journals(root, tmp_path / f"without-{root.name}"))
    assert list(frame["status"]) == ["COMPLETED", "FAILED", "COMPLETED"]
    assert list(frame["path"]) == [str(sweep / n) for n in ("0", "1", "2")]


def test_a_record_changed_after_its_line_is_read_instead(sweep, tmp_path):
    record_file = sweep / "2" / ".ledger" / "run.json"
    record = json.loads(record_file.read_text())
    record["summary"]["loss"] = 123.0
    record_file.write_text(json.dumps(record))
    assert journaled(sweep) == ["0", "1"]
    frame = cold_load(sweep, tmp_path / "c1")
    assert frame["summary.loss"].iloc[2] == 123.0
    pd.testing.assert_frame_equal(frame, without_journals(sweep, tmp_path / "c2"))


def test_tags_and_notes_added_after_the_line_are_loaded(sweep, tmp_path, capsys):
    assert cli_main(["tag", str(sweep / "0"), "best"]) == 0
    assert cli_main(["note", str(sweep / "1"), "diverged"]) == 0
    assert journaled(sweep) == ["2"]
    frame = cold_load(sweep, tmp_path / "c1")
    assert list(frame["tags"].iloc[0]) == ["best"] and frame["note"].iloc[1] == "diverged"
    pd.testing.assert_frame_equal(frame, without_journals(sweep, tmp_path / "c2"))


def test_torn_foreign_and_edited_lines_are_skipped_and_their_records_read(sweep, tmp_path):
    entries = lines(sweep)
    edited = {**entries[0], "row": {**entries[0]["row"], "status": "SUCCEEDED"}}  # no status a record gives
    other_format = {**entries[1], "v": 999}
    names = list(entries[2]["row"])
    text = journal(sweep).read_bytes()
    journal(sweep).write_bytes(b"\n".join([
        line_bytes(edited), line_bytes(other_format), b"not json", b"[1, 2]", b"{}", b"{}\t[]",
        line_bytes(entries[2], [names[1], *names[1:]]),  # a name twice: two columns of one name
        line_bytes(entries[2], names[:-1]),  # a value more than names
        line_bytes({**entries[2], "row": {k: v for k, v in entries[2]["row"].items() if k != "status"}}),
        line_bytes({**entries[2], "row": {**entries[2]["row"], "#warn": ["a warning"]}}),  # warned at every load
        line_bytes(entries[2]).partition(b"\t")[0],  # no names
        text.splitlines()[2][:40],  # a torn line: the job was killed while appending
    ]))
    assert journaled(sweep) == []
    pd.testing.assert_frame_equal(cold_load(sweep, tmp_path / "c1"), without_journals(sweep, tmp_path / "c2"))


def test_a_journal_that_is_a_fifo_is_not_read(sweep, tmp_path):
    journal(sweep).unlink()
    os.mkfifo(journal(sweep))  # reading it would block forever
    assert journaled(sweep) == []
    assert len(cold_load(sweep, tmp_path / "c1")) == 3


def test_a_moved_sweep_loads_with_the_paths_where_it_is_now(sweep, tmp_path):
    moved = sweep.parent / "moved"
    sweep.rename(moved)  # the same files (inodes): the lines stand
    assert journaled(moved) == ["0", "1", "2"]
    frame = cold_load(moved, tmp_path / "c1")
    assert list(frame["path"]) == [str(moved / n) for n in ("0", "1", "2")]
    assert set(frame["sweep"]) == {str(moved)}
    pd.testing.assert_frame_equal(frame, without_journals(moved, tmp_path / "c2"))


def test_a_copied_sweep_has_its_records_read(sweep, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(sweep, copy)  # new inodes: a copy may be partial, or edited on the way
    assert journaled(copy) == []
    pd.testing.assert_frame_equal(cold_load(copy, tmp_path / "c1"), without_journals(copy, tmp_path / "c2"))


def test_a_record_below_a_journaled_job_dir_is_found(sweep, tmp_path):
    nested = sweep / "0" / "inner" / "run"
    shutil.copytree(sweep / "1", nested)
    frame = cold_load(sweep, tmp_path / "c1")
    assert str(nested) in set(frame["path"])
    pd.testing.assert_frame_equal(frame, without_journals(sweep, tmp_path / "c2"))


def test_a_job_that_dies_has_no_line_and_loads_as_died(sweep, tmp_path):
    record_file = sweep / "2" / ".ledger" / "run.json"
    record = json.loads(record_file.read_text())
    record.update(status="RUNNING", ended_at=None, duration_s=None)  # as a job killed before its end leaves it
    record_file.write_text(json.dumps(record))
    journal(sweep).write_bytes(b"".join(line for line in journal(sweep).read_bytes().splitlines(keepends=True)
                                        if b'"job":"2"' not in line))
    (sweep / "2" / ".ledger" / "heartbeat").write_text(f"{time.time() - 3600:.3f}\n")  # an hour without a beat
    frame = cold_load(sweep, tmp_path / "c1")
    assert list(frame["status"]) == ["COMPLETED", "FAILED", "DIED"]


def test_a_journal_that_cannot_be_written_never_fails_the_jobs(make_app, run_app):
    app = make_app("ledger_app")
    (app / "multirun" / "a" / ".ledger" / "rows.jsonl").mkdir(parents=True)  # a directory in its place
    proc = run_app(app, "-m", LEDGER, "hydra.sweep.dir=multirun/a", "x=1,2")
    assert proc.returncode == 0, proc.stderr
    assert "rows.jsonl" not in proc.stderr
    for job in ("0", "1"):
        assert read_record(app / "multirun" / "a" / job / ".ledger" / "run.json")["status"] == "COMPLETED"


def test_a_new_sweep_under_an_indexed_root_is_taken_from_its_journal(sweep, run_app, tmp_path):
    runs = sweep.parent
    cold_load(runs, tmp_path / "index")  # the index of multirun/, holding sweep a
    proc = run_app(runs.parent, "-m", LEDGER, "hydra.sweep.dir=multirun/b", "x=4,5")
    assert proc.returncode == 0, proc.stderr
    assert journaled(runs / "b") == ["0", "1"]
    frame = cold_load(runs, tmp_path / "index")  # a load after new jobs: the index, and sweep b's journal
    assert list(frame["cfg.x"]) == [1, 2, 3, 4, 5]
    pd.testing.assert_frame_equal(frame, without_journals(runs, tmp_path / "c2"))


def test_rows_of_any_json_values_come_back_from_the_journal_as_from_the_record(sweep, tmp_path):
    """NaN and infinities, integers beyond 64 bits, -0.0, text in any script, nested lists: the
    journal's row is the record's, value for value and type for type."""
    record_file = sweep / "0" / ".ledger" / "run.json"
    record = json.loads(record_file.read_text())
    record["summary"].update(nan=math.nan, inf=-math.inf, big=2**70, zero=-0.0, text="日本 → 🚀",
                             nested=[[1, {"a": None}]])
    record_file.write_text(json.dumps(record))
    data = record_file.read_bytes()
    journal(sweep).write_bytes(journal_line(str(sweep / "0"), "0", data))  # the line the job would append
    assert journaled(sweep) == ["0"]
    frame = cold_load(sweep, tmp_path / "c1")
    pd.testing.assert_frame_equal(frame, without_journals(sweep, tmp_path / "c2"))
    row = frame.iloc[0]
    assert math.isnan(row["summary.nan"]) and row["summary.inf"] == -math.inf and row["summary.big"] == 2**70
    assert math.copysign(1, row["summary.zero"]) == -1 and row["summary.text"] == "日本 → 🚀"
    assert row["summary.nested"] == [[1, {"a": None}]]
