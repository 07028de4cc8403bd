"""The CLI under hostile conditions: many commands on one run at once, config values, tags,
notes and errors full of terminal control sequences, a sweep whose launcher was SIGKILLed.

Every command runs as a real ``python -m hydra_ledger`` process on runs recorded by a real
Hydra app (tests/apps/hostile_app).
"""
from __future__ import annotations

import csv
import fcntl
import io
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import APPS, all_at_once, app_env, commit_all, init_repo, start_app

# The app's config value `evil`: ESC colour, an OSC title ended by BEL, CR, a C1 CSI, DEL, a bidi override.
EVIL = "\x1b[31mred\x1b]0;title\x07\rover\x9b2J\x7f\u202eend"
EVIL_SHOWN = r"\x1b[31mred\x1b]0;title\x07\rover\x9b2J\x7f\u202eend"  # as people see it: escaped like repr()
EVIL_TAG = "\x1b[31mtag\x1b[0m\x85"
EVIL_TAG_SHOWN = r"\x1b[31mtag\x1b[0m\x85"


def raw_controls(text: str) -> list[str]:
    """The characters of ``text`` that a terminal may act on: all non-printable ones but the newline."""
    return sorted({ch for ch in text if not ch.isprintable() and ch != "\n"})


def _python(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "app.py", *args], cwd=cwd, env=app_env(), capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two single runs whose `evil` differs (outputs/one has the control characters), and a run
    that fails with them in its error message (outputs/bad)."""
    repo = tmp_path_factory.mktemp("hostile") / "repo"
    shutil.copytree(APPS / "hostile_app", repo)
    init_repo(repo)
    commit_all(repo, "initial")
    assert _python(repo, "hydra.run.dir=outputs/one").returncode == 0
    assert _python(repo, "evil=plain", "seed=1", "hydra.run.dir=outputs/two").returncode == 0
    assert _python(repo, "fail=true", "seed=2", "hydra.run.dir=outputs/bad").returncode == 1
    return repo


@pytest.fixture
def runs(recorded: Path, tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(recorded, repo, symlinks=True)
    return repo


def cli_env(repo: Path, **extra: str) -> dict[str, str]:
    return app_env({"HYDRA_LEDGER_CACHE": str(repo.parent / "index-cache"), "NO_COLOR": "1", **extra})


def cli(repo: Path, *argv: str, **env: str) -> tuple[int, str, str]:
    """Run ``hydra-ledger ARGV`` as its own process in ``repo``."""
    proc = subprocess.run([sys.executable, "-m", "hydra_ledger", *argv], cwd=repo, env=cli_env(repo, **env),
                          capture_output=True, timeout=120)  # bytes: text mode would turn each \r into \n
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def run_id(repo: Path, name: str) -> str:
    return json.loads((repo / "outputs" / name / ".ledger" / "run.json").read_text())["run_id"]


# -- many commands on one run at once ------------------------------------------------------------

def _parallel(repo: Path, argvs: list[list[str]]) -> list[subprocess.CompletedProcess[str]]:
    return all_at_once([[sys.executable, "-m", "hydra_ledger", *argv] for argv in argvs], repo, cli_env(repo))


def test_twenty_parallel_tags_keep_every_tag(runs):
    tags = [f"t{i}" for i in range(20)]
    results = _parallel(runs, [["tag", "outputs/one", tag] for tag in tags])
    assert [(r.returncode, r.stderr) for r in results] == [(0, "")] * 20
    # tags.json keeps the format older versions read and write
    edits = json.loads((runs / "outputs" / "one" / ".ledger" / "tags.json").read_text())
    assert sorted(edits) == ["added", "removed"]
    assert sorted(edits["added"]) == sorted(tags)
    assert edits["removed"] == []
    code, out, err = cli(runs, "ls", "outputs/one", "--format", "json", "--columns", "tags")
    assert (code, err) == (0, "")
    assert sorted(json.loads(out)[0]["tags"]) == sorted(tags)


def test_twenty_parallel_notes_keep_every_note(runs):
    texts = [f"note {i}: " + "x" * 3000 for i in range(20)]  # longer than a pipe's atomic write
    results = _parallel(runs, [["note", "outputs/one", text] for text in texts])
    assert [(r.returncode, r.stderr) for r in results] == [(0, "")] * 20
    lines = (runs / "outputs" / "one" / ".ledger" / "notes.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["text"] for line in lines) == sorted(texts)


def test_a_tag_waits_for_the_lock_then_fails_naming_it(runs):
    lock = runs / "outputs" / "one" / ".ledger" / "sidecars.lock"
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        started = time.monotonic()
        code, out, err = cli(runs, "tag", "outputs/one", "best", HYDRA_LEDGER_LOCK_TIMEOUT_S="1")
        waited = time.monotonic() - started
    assert (code, out) == (1, "")
    assert err == ("hydra-ledger: cannot lock outputs/one/.ledger/sidecars.lock: another 'hydra-ledger tag', 'untag' "
                   "or 'note' on this run held it for 1 s; try again once it is done "
                   "(the lock is released when its process ends)\n")
    assert waited >= 1.0
    assert not (lock.parent / "tags.json").exists()
    assert cli(runs, "tag", "outputs/one", "best") == (0, f"{run_id(runs, 'one')}: tags best\n", "")


# -- control characters in what the commands print ---------------------------------------------

def _clean(out: str) -> str:
    assert raw_controls(out) == [], out
    return out


def test_ls_table_and_markdown_escape_control_characters(runs):
    for fmt in ("table", "markdown"):
        code, out, err = cli(runs, "ls", "outputs/one", "outputs/two", "--format", fmt, "--columns", "cfg.evil")
        assert (code, err) == (0, "")
        assert EVIL_SHOWN in _clean(out)
    code, out, _ = cli(runs, "ls", "outputs/one", "outputs/two")  # the default columns: evil varies
    assert EVIL_SHOWN in _clean(out)


def test_ls_json_and_csv_keep_the_exact_values_unbroken(runs):
    code, out, err = cli(runs, "ls", "outputs/one", "--format", "json", "--columns", "cfg.evil")
    assert (code, err) == (0, "")
    assert json.loads(_clean(out)) == [{"run_id": run_id(runs, "one"), "cfg.evil": EVIL}]  # \u escapes in JSON
    code, out, err = cli(runs, "ls", "outputs/one", "outputs/two", "--format", "csv", "--columns", "cfg.evil",
                         "--sort", "cfg.seed")
    assert (code, err) == (0, "")
    # CSV has no escapes: the exact value, quoted so that its carriage return cannot end the row
    assert list(csv.reader(io.StringIO(out, newline=""))) == [
        ["run_id", "cfg.evil"], [run_id(runs, "one"), EVIL], [run_id(runs, "two"), "plain"]]
    assert out.count("\n") == 3


def test_tags_and_notes_are_escaped_where_people_read_them(runs):
    one = run_id(runs, "one")
    code, out, err = cli(runs, "tag", "outputs/one", EVIL_TAG)
    assert (code, err) == (0, "")
    assert _clean(out) == f"{one}: tags {EVIL_TAG_SHOWN}\n"
    code, out, err = cli(runs, "note", "outputs/one", EVIL)
    assert (code, err) == (0, "")
    code, out, _ = cli(runs, "ls", "outputs/one", "--columns", "tags", "note")
    assert EVIL_TAG_SHOWN in _clean(out)
    assert EVIL_SHOWN in out
    code, out, _ = cli(runs, "show", "outputs/one")
    assert code == 0
    assert f"tags:         {EVIL_TAG_SHOWN}" in _clean(out)
    assert f"note:         {EVIL_SHOWN}" in out
    code, out, _ = cli(runs, "log", "outputs")
    assert code == 0
    assert EVIL_TAG_SHOWN in _clean(out)
    assert EVIL_SHOWN in out
    code, out, _ = cli(runs, "untag", "outputs/one", EVIL_TAG)
    assert _clean(out) == f"{one}: tags (none)\n"


def test_diff_escapes_control_characters(runs):
    code, out, err = cli(runs, "diff", "outputs/one", "outputs/two")
    assert (code, err) == (0, "")
    assert f"  ~ evil: {EVIL_SHOWN} -> plain" in _clean(out).splitlines()
    code, out, _ = cli(runs, "diff", "outputs/one", "outputs/two", "--format", "json")
    assert json.loads(_clean(out))["config"]["changed"][1] == {"key": "evil", "a": EVIL, "b": "plain"}


def test_status_escapes_an_error_message(runs):
    code, out, err = cli(runs, "status", "outputs")
    assert (code, err) == (0, "")
    assert f"  FAILED  outputs/bad  ValueError: {EVIL_SHOWN}" in _clean(out).splitlines()
    code, out, _ = cli(runs, "status", "outputs", "--format", "json")
    assert json.loads(_clean(out))[0]["problems"][0]["error"] == f"ValueError: {EVIL}"


def test_error_text_is_escaped(runs):
    code, out, err = cli(runs, "ls", "no\x1b[2Jpe")
    assert (code, out, err) == (1, "", "hydra-ledger: no such file or directory: no\\x1b[2Jpe\n")
    code, out, err = cli(runs, "show", EVIL)
    assert (code, out) == (1, "")
    assert _clean(err).startswith("hydra-ledger: ")
    code, out, err = cli(runs, "tag", "outputs/one", "a,\x1b[2J")
    assert (code, out) == (1, "")
    assert _clean(err) == "hydra-ledger: invalid tag 'a,\\x1b[2J': tags are non-empty and contain no comma\n"


# -- a sweep whose launcher was SIGKILLed ---------------------------------------------------------

def test_status_and_log_count_the_jobs_a_killed_launcher_never_started(runs):
    marker = runs / "stopped"
    proc = start_app(runs, "-m", "seed=0,1,2,3", "hydra.sweep.dir=multirun/killed",
                     env={"HOSTILE_STOP_AT_JOB": "2", "HOSTILE_MARKER": str(marker)})
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)  # the basic launcher: jobs 0 and 1 done, 2 and 3 never started
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    sweep = runs / "multirun" / "killed"
    assert sorted(p.parent.parent.name for p in sweep.glob("*/.ledger/run.json")) == ["0", "1"]

    code, out, err = cli(runs, "status", "multirun")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "sweep            total  COMPLETED  MISSING",
        "---------------  -----  ---------  -------",
        "multirun/killed      4          2        2",
        "",
        "multirun/killed",
        "  MISSING  jobs 2, 3 never started and never will (the sweep's launcher is gone): "
        "hydra-ledger resume multirun/killed",
    ]
    code, out, err = cli(runs, "status", "multirun", "--format", "json")
    entry = json.loads(out)[0]
    assert (entry["total"], entry["counts"], entry["finished"]) == (4, {"COMPLETED": 2, "MISSING": 2}, 2)
    assert entry["missing"] == [{"num": 2, "overrides": ["seed=2"]}, {"num": 3, "overrides": ["seed=3"]}]

    code, out, err = cli(runs, "log", "multirun")
    assert (code, err) == (0, "")
    assert "  jobs:     4: 2 COMPLETED, 2 MISSING" in out.splitlines()
