"""The experiment log and conclusions, on the runs recorded by tests/test_notebook_setup.py."""
from __future__ import annotations

import json
import re
import shutil
import time

import pytest
from test_notebook_setup import SWEEP_JOBS, notebook  # noqa: F401 - the shared fixture

import hydra_ledger
from hydra_ledger.cli import main


@pytest.fixture
def in_repo(notebook, monkeypatch):
    monkeypatch.chdir(notebook["repo"])
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield notebook["repo"]
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def in_copy(notebook, monkeypatch, tmp_path):
    """A copy of the shared repo (git and runs; not the 1 GB input) for a test that adds to it:
    the shared runs stay as recorded for the other tests, whatever their order."""
    repo = tmp_path / "repo"
    shutil.copytree(notebook["repo"], repo, symlinks=True, ignore=shutil.ignore_patterns("big.bin"))
    monkeypatch.chdir(repo)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield repo
    monkeypatch.undo()
    time.tzset()


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def minute(iso: str) -> str:
    return iso[:16].replace("T", " ")  # records are UTC and TZ=UTC here


def refs(text: str) -> list[str]:
    return re.findall(r"^\S+ \S+  (?:TODO|DONE)  (sweep|run) (e[0-9a-f]+)", text, re.M)


def parse_org(text: str) -> list[dict]:
    """Org entries: state, ref, title, tags, closed, properties, body lines."""
    entries: list[dict] = []
    drawer = None
    for line in text.splitlines():
        heading = re.fullmatch(r"\* (TODO|DONE) \[(e[0-9a-f]+)\] (.*?)(?:  :([\w@#%:]+):)?", line)
        if heading:
            state, ref, title, tags = heading.groups()
            entries.append({"state": state, "ref": ref, "title": title, "tags": tags.split(":") if tags else [],
                            "closed": None, "properties": {}, "body": []})
        elif not entries:
            continue
        elif line == ":PROPERTIES:":
            drawer = entries[-1]["properties"]
        elif line == ":END:":
            drawer = None
        elif drawer is not None:
            key, value = re.fullmatch(r":([A-Z_]+): (.*)", line).groups()
            drawer[key] = value
        elif line.startswith("CLOSED: "):
            entries[-1]["closed"] = line[len("CLOSED: "):]
        elif line:
            entries[-1]["body"].append(line)
    return entries


def test_conclude_twice_then_the_log_in_every_format(in_copy, notebook, capsys):
    repo = in_copy
    sweep = json.loads((repo / "multirun/a/.ledger/sweep.json").read_text())
    ref = f"e{sweep['sweep_id']}"
    conclusions = repo / "multirun/a/.ledger/conclusions.jsonl"
    assert cli(capsys, "conclude", "multirun/a", "ABC helps XYZ") == (
        0, f"sweep {ref}: conclusion added ({conclusions.relative_to(repo)})\n", "")
    assert cli(capsys, "conclude", ref[:7], "only with warm-up") == (
        0, f"sweep {ref}: conclusion added ({conclusions})\n", "")
    added = [json.loads(line) for line in conclusions.read_text().splitlines()]
    assert [c["text"] for c in added] == ["ABC helps XYZ", "only with warm-up"]  # appended, the first kept
    t1, t2 = (minute(c["time"]) for c in added)

    best = hydra_ledger.load_runs("multirun/a").set_index("job_num").loc[SWEEP_JOBS - 1, "run_id"]
    start, sha = minute(sweep["started_at"]), notebook["main"][:7]
    seeds = ",".join(str(i) for i in range(SWEEP_JOBS))
    code, out, err = cli(capsys, "log", "--commit", "main", "--best", "summary.val_loss:min")
    assert (code, err) == (0, "")
    assert out == (
        f"{start}  DONE  sweep {ref}  multirun/a\n"
        "  note:     does ABC help XYZ?\n"
        "  tags:     abc, xyz\n"
        f"  commit:   {sha} initial (clean)\n"
        f"  swept:    seed={seeds}\n"
        f"  jobs:     {SWEEP_JOBS} COMPLETED\n"
        f"  best:     summary.val_loss (min) = 0.15, job 19 (seed=19) [e{best}]\n"
        f"  concluded {t1}: ABC helps XYZ\n"
        f"  concluded {t2}: only with warm-up\n"
    )

    code, out, _ = cli(capsys, "log", "--commit", "main", "--format", "markdown", "--best", "val_loss")
    assert out == (
        "# Experiment log\n\n"
        f"## {start} · sweep `{ref}` · DONE\n\n"
        f'<a id="{ref}"></a>\n\n'
        "**does ABC help XYZ?**\n\n"
        "- Path: `multirun/a`\n"
        "- Tags: abc, xyz\n"
        f"- Commit: {sha} initial (clean)\n"
        f"- Swept: seed={seeds}\n"
        f"- Jobs: {SWEEP_JOBS} COMPLETED\n"
        f"- Best: summary.val\\_loss (min) = 0.15, job 19 (seed=19) \\[e{best}\\]\n\n"
        "### Conclusions\n\n"
        f"- {t1} — ABC helps XYZ\n"
        f"- {t2} — only with warm-up\n"
    )

    code, out, _ = cli(capsys, "log", "--commit", "main", "--format", "org", "--best", "val_loss:max")
    assert out.startswith("#+TITLE: Experiment log\n#+TODO: TODO | DONE\n\n")
    (entry,) = parse_org(out)
    day = time.strftime("%a", time.strptime(start[:10], "%Y-%m-%d"))
    assert entry == {
        "state": "DONE", "ref": ref, "title": "does ABC help XYZ?", "tags": ["abc", "xyz"],
        "closed": f"[{t2[:10]} {time.strftime('%a', time.strptime(t2[:10], '%Y-%m-%d'))} {t2[11:]}]",
        "properties": {"ID": ref, "CUSTOM_ID": ref, "KIND": "sweep", "PATH": "multirun/a",
                       "STARTED": f"[{start[:10]} {day} {start[11:]}]", "COMMIT": notebook["main"][:12],
                       "DIRTY": "no", "JOBS": str(SWEEP_JOBS)},
        "body": ["- Note: does ABC help XYZ?", "- Tags: abc, xyz", f"- Commit: {sha} initial (clean)",
                 f"- Swept: seed={seeds}", f"- Jobs: {SWEEP_JOBS} COMPLETED",
                 f"- Best: summary.val_loss (max) = 1.1, job 0 (seed=0) "
                 f"[e{hydra_ledger.load_runs('multirun/a').set_index('job_num').loc[0, 'run_id']}]",
                 "** Conclusions",
                 f"- [{t1[:10]} {time.strftime('%a', time.strptime(t1[:10], '%Y-%m-%d'))} {t1[11:]}] ABC helps XYZ",
                 f"- [{t2[:10]} {time.strftime('%a', time.strptime(t2[:10], '%Y-%m-%d'))} {t2[11:]}] "
                 "only with warm-up"],
    }
    assert not (notebook["repo"] / "multirun/a/.ledger/conclusions.jsonl").exists()  # the shared runs: untouched


def test_log_selects_by_commit_branch_and_debug(in_repo, notebook, capsys):
    repo = in_repo
    ids = {name: "e" + json.loads((repo / f"multirun/{name}/.ledger/sweep.json").read_text())["sweep_id"]
           for name in ("a", "b")}
    ids["single"] = "e" + hydra_ledger.load_runs("outputs")["run_id"][0]
    a, b, single = ("sweep", ids["a"]), ("sweep", ids["b"]), ("run", ids["single"])
    assert refs(cli(capsys, "log")[1]) == [a, single]  # the debug sweep is hidden
    assert refs(cli(capsys, "log", "--debug")[1]) == [a, b, single]
    assert refs(cli(capsys, "log", "--commit", "main", "--debug")[1]) == [a]
    assert refs(cli(capsys, "log", "--commit", "exp", "--debug")[1]) == [a, b, single]  # reachable from exp
    assert refs(cli(capsys, "log", "--commit", notebook["exp"][:8], "--debug")[1]) == [b, single]  # that commit
    assert refs(cli(capsys, "log", "--commit", "main..exp")[1]) == [single]
    out = cli(capsys, "log", "outputs")[1]
    single_path = hydra_ledger.load_runs("outputs")["path"][0][len(str(repo)) + 1:]
    assert out.splitlines()[0].endswith(f"TODO  run {ids['single']}  {single_path}")
    assert f"  commit:   {notebook['exp'][:7]} raise lr (clean)\n" in out
    assert "  overrides: seed=7\n" in out


def test_conclude_names_what_to_type_when_nothing_matches(in_repo, capsys):
    code, out, err = cli(capsys, "conclude", "ffffffff", "text")
    assert (code, out) == (1, "")
    assert err == ("hydra-ledger: no sweep or run with id starting with 'ffffffff' under outputs, multirun; "
                   "'hydra-ledger log' lists the ids ([e...])\n")
