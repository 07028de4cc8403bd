"""Fault injection: random signals at random moments, a disk that fills mid-run, concurrent
tag/note commands, and loaders racing writers. Real processes, real signals, a real tmpfs.

Replay a plan with ``HYDRA_LEDGER_FAULT_SEED=<seed>`` (``random`` draws a fresh seed); the seed
is printed with the counts line.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from _faults import SEED_ENV, judge, make_plan, run_trial, seed_from_env
from conftest import all_at_once, app_env

import hydra_ledger

RUN_STATUSES = {"RUNNING", "COMPLETED", "FAILED"}


def _say(capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest, text: str) -> None:
    """Show ``text`` past pytest's capture (plain runs and -s) and keep it in the test's report (-rA, xdist)."""
    with capsys.disabled():
        sys.stdout.write(f"\n{text}\n")
        sys.stdout.flush()
    request.node.add_report_section("call", "fault-injection", text)


def _load(*paths: Path, **kwargs: object) -> tuple[object, list[str]]:
    """``load_runs`` with its warnings collected instead of raised (the suite turns warnings into errors)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = hydra_ledger.load_runs(*paths, **kwargs)
    return frame, [str(w.message) for w in caught]


def _cli(*args: str) -> list[str]:
    """The CLI as users run it, with this interpreter."""
    return [sys.executable, "-m", "hydra_ledger", *args]


# -- 1. random signals at random moments ---------------------------------------------------------


def test_random_signals_lose_and_mislabel_no_job(make_app, tmp_path, capsys, request, record_property):
    """~106 short jobs (single runs and basic-launcher sweeps), each process SIGKILLed, SIGINTed or
    SIGTERMed during start-up, the ledger's start hook, the task, the end hook or after the job.
    Every job that ran its task has a row or a warning naming it, with the status matching what
    happened to it, and no process hangs."""
    seed = seed_from_env()
    app = make_app("faults")
    logs = tmp_path / "logs"
    logs.mkdir()
    trials = make_plan(seed, app)
    env = app_env()
    started = time.monotonic()
    # two at a time: each trial's moment is relative to its own markers, so overlap only adds load
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda trial: run_trial(app, trial, env, logs), trials))
    ran_s = time.monotonic() - started
    roots = [p for p in (app / "runs", app / "sweeps") if p.exists()]
    # every process is gone: a RUNNING record is stale at once (SIGKILL leaves one; DIED is expected)
    frame, warned = _load(*roots, stale_after=0.0)
    verdicts = judge(seed, trials, frame, warned)
    record_property("fault_injection", verdicts.line())
    _say(capsys, request, f"{verdicts.line()}\n{verdicts.details()} ({ran_s:.0f} s of jobs)")
    assert verdicts.trials >= 100
    assert (verdicts.lost, verdicts.mislabeled, verdicts.hung) == (0, 0, 0), (
        verdicts.report() + ("\nloader warnings:\n" + "\n".join(warned) if warned else "")
        + f"\nreplay with {SEED_ENV}={seed}"
    )


# -- 2. a small tmpfs that fills mid-run ----------------------------------------------------------

TMPFS_SIZE = "2m"
LEFT_FREE = 512 * 1024  # room for Hydra's .hydra/ files and the ledger's first record; the job fills the rest


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A fresh 2 MiB tmpfs, filled but for LEFT_FREE bytes; skipped where mounting is not allowed."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a full disk needs a tmpfs mount: run as root where `mount -t tmpfs` is allowed")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() or mounted.returncode})")
    try:
        free = shutil.disk_usage(disk).free
        with open(disk / "prefill.bin", "wb") as sink:
            sink.write(b"\0" * (free - LEFT_FREE))
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True, check=False)


@pytest.mark.parametrize(("fail", "status", "returncode"), [(False, "COMPLETED", 0), (True, "FAILED", 1)],
                         ids=["returns", "raises"])
def test_disk_full_mid_run_keeps_the_outcome(make_app, run_app, small_disk, fail, status, returncode):
    """The task fills the disk its output dir is on, then returns or raises: the app's exit code
    is unchanged, the ledger warns, and the job loads as COMPLETED / FAILED, not DIED."""
    app = make_app("faults")
    out = small_disk / "job"
    result = run_app(app, f"hydra.run.dir={out}", "fill_disk=true", "sleep=0", f"fail={str(fail).lower()}")
    assert shutil.disk_usage(small_disk).free < 64 * 1024, "the job did not fill the disk"
    assert result.returncode == returncode, result.stderr
    output = result.stdout + result.stderr  # Hydra's job log goes to stdout
    assert "hydra-ledger" in output, f"no warning from the ledger:\n{output}"
    # cache="off": the job's record is under test here, not the loader's index on a full disk
    frame, warned = _load(out, stale_after=0.0, cache="off")
    assert frame["status"].tolist() == [status], (warned, result.stderr)


# -- 3, 4. concurrent tag and note commands on one run --------------------------------------------

PARALLEL = 20


@pytest.fixture
def one_run(make_app, run_app) -> Path:
    app = make_app("faults")
    result = run_app(app, "hydra.run.dir=outputs/one", "sleep=0")
    assert result.returncode == 0, result.stderr
    return app / "outputs" / "one"


def test_parallel_tags_are_all_kept(one_run):
    results = all_at_once([_cli("tag", str(one_run), f"tag{i}") for i in range(PARALLEL)], one_run)
    assert [r.returncode for r in results] == [0] * PARALLEL, [r.stderr for r in results if r.returncode]
    frame, warned = _load(one_run)
    assert not warned
    assert sorted(frame["tags"][0]) == sorted(f"tag{i}" for i in range(PARALLEL))


def test_parallel_notes_are_all_kept(one_run):
    results = all_at_once([_cli("note", str(one_run), f"note {i}") for i in range(PARALLEL)], one_run)
    assert [r.returncode for r in results] == [0] * PARALLEL, [r.stderr for r in results if r.returncode]
    frame, warned = _load(one_run)
    assert not warned
    assert sorted(str(frame["note"][0]).splitlines()) == sorted(f"note {i}" for i in range(PARALLEL))


# -- 5. loaders while sweeps write --------------------------------------------------------------

SWEEPS = {"a": (16, [3, 11]), "b": (10, [5])}  # name: (jobs, failing seeds)


def _check_row(row: dict[str, object], where: str) -> list[str]:
    """What is wrong with one loaded row of a job of SWEEPS (empty: a whole record)."""
    status = row.get("status")
    if status == "PENDING":  # a sweep job not started yet, from the sweep's job list
        return []
    problems = []
    if status not in RUN_STATUSES:
        problems.append(f"status {status!r}")
    if not row.get("run_id") or row.get("started_at") in (None, "") or row.get("cfg.seed") is None:
        problems.append("run_id, started_at or cfg.seed missing")
    if status == "COMPLETED" and row.get("summary.score") != float(row.get("cfg.seed", -1)):  # type: ignore[arg-type]
        problems.append(f"summary.score {row.get('summary.score')!r} for seed {row.get('cfg.seed')!r}")
    if status == "FAILED" and "error.type" in row and row.get("error.type") != "ValueError":
        problems.append(f"error.type {row.get('error.type')!r}")
    return [f"{where}: {p} in {row}" for p in problems]


def test_loaders_never_see_half_written_records(make_app):
    """``load_runs`` and ``hydra-ledger ls`` in a loop while two sweeps write: they never raise,
    never warn, and every row is a whole record (a status the job can have, its config, and for
    a completed job its summary)."""
    app = make_app("faults")
    root = app / "multirun"
    writers = [
        subprocess.Popen([sys.executable, "app.py", "-m", f"seed={','.join(map(str, range(n)))}",
                          f"fail_on=[{','.join(map(str, fails))}]", "sleep=0.02", f"hydra.sweep.dir={root / name}"],
                         cwd=app, env=app_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for name, (n, fails) in SWEEPS.items()
    ]
    problems: list[str] = []
    loads = cli_loads = 0
    cli: subprocess.Popen[str] | None = None
    deadline = time.monotonic() + 90
    try:
        while any(w.poll() is None for w in writers) and time.monotonic() < deadline:
            if cli is None and root.exists():
                cli = subprocess.Popen(_cli("ls", str(root), "--format", "json", "--all-columns"), cwd=app,
                                       env=app_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if root.exists():
                try:
                    frame, warned = _load(root, errors="raise")
                except Exception as exc:  # noqa: BLE001 - the failure under test
                    problems.append(f"load_runs raised {type(exc).__name__}: {exc}")
                else:
                    problems += [f"load_runs warned: {w}" for w in warned]
                    for row in frame.to_dict("records"):
                        problems += _check_row(row, "load_runs")
                loads += 1
            if cli is not None and cli.poll() is not None:
                out, err = cli.communicate()
                if cli.returncode != 0 or err.strip():
                    problems.append(f"hydra-ledger ls: rc={cli.returncode}, stderr: {err.strip()}")
                else:
                    for row in json.loads(out or "[]"):
                        problems += _check_row(row, "hydra-ledger ls")
                cli_loads += 1
                cli = None
            time.sleep(0.01)
    finally:
        for proc in [*writers, *([cli] if cli is not None else [])]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.communicate()
    assert [w.returncode for w in writers] == [1, 1], [w.stderr for w in writers]  # each sweep has a failing job
    assert loads >= 3 and cli_loads >= 1, f"only {loads} loads and {cli_loads} listings ran while the sweeps wrote"
    assert not problems, "\n".join(problems[:20])
    frame, warned = _load(root)
    assert not warned
    assert sorted(Counter(frame["status"].astype(str)).items()) == [("COMPLETED", 23), ("FAILED", 3)]


# Run in its own process: an audit hook cannot be removed once added.
_APPEARING_RECORD = """
import os, shutil, sys, time
from hydra_ledger.load import walk

job_dir, recorded = sys.argv[1], sys.argv[2]
record_file = os.path.join(job_dir, ".ledger", "run.json")
target = os.path.join(job_dir, "later.json")
os.symlink(target, record_file)  # run.json there, its content not yet: an open fails, lexists is true
opens = []

def written_after_the_first_open(event, args):
    if event == "open" and args and args[0] == record_file:
        opens.append(1)
        if len(opens) == 2:  # a second look finds the record: the job's first write has landed
            shutil.copyfile(recorded, target)

sys.addaudithook(written_after_the_first_open)
result = walk.read_job(job_dir, "", [".ledger", "run.json"], time.time())[2]
print(type(result).__name__, result.get("status") if isinstance(result, dict) else result)
"""


def test_a_record_that_appears_as_it_is_opened_is_read_not_reported_unreadable(one_run, tmp_path):
    """A job's first write can land between the loader's failed open of its run.json and its
    check whether the file exists: the record is read then, not reported as unreadable."""
    job_dir = tmp_path / "job"
    (job_dir / ".ledger").mkdir(parents=True)
    proc = subprocess.run([sys.executable, "-c", _APPEARING_RECORD, str(job_dir),
                           str(one_run / ".ledger" / "run.json")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "dict COMPLETED"
