"""Reruns of recorded runs: exact (recorded commit + patch + untracked files), current code, saved config.

Every scenario runs the real app in a real git repo; the user's working tree, branch, stash
and worktree list must be the same after each rerun.
"""
from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
import yaml
from conftest import commit_all, first_run, git, record

import hydra_ledger
from hydra_ledger.cli import main as cli_main
from hydra_ledger.relaunch.rerun import ConfigMismatch, RerunError
from hydra_ledger.relaunch.worktree import WorktreeError


def repo_state(repo: Path) -> dict[str, str]:
    return {
        "status": git(repo, "status", "--porcelain", "--untracked-files=all"),
        "head": git(repo, "rev-parse", "HEAD"),
        "branch": git(repo, "symbolic-ref", "HEAD"),
        "stash": git(repo, "stash", "list"),
        "worktrees": git(repo, "worktree", "list", "--porcelain"),
    }


def expected_score(seed: int, n: int = 4, scale: float = 1.0) -> float:
    rng = random.Random(seed)
    return round(sum(rng.random() for _ in range(n)) * scale, 9)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def with_stash(app: Path) -> None:
    """Leave an entry in the stash, so that 'stash unchanged' means something."""
    (app / "config.yaml").write_text((app / "config.yaml").read_text() + "# stashed edit\n")
    git(app, "stash", "push", "-q", "-m", "user work")


def test_exact_rerun_reproduces_after_code_moved_on_and_current_code_takes_new_defaults(make_app, run_app):
    app = make_app("rerun_app")
    commit1 = git(app, "rev-parse", "HEAD").strip()
    job = first_run(app, run_app, "seed=3", "scale=2.0")
    assert record(job)["summary"] == {"score": expected_score(3, scale=2.0), "n": 4, "tag": "base"}
    # commit 2 changes the computation, commit 3 adds a config key used in it
    edit(app / "app.py", '"score": score(cfg)', '"score": score(cfg) + 100')
    commit_all(app, "shift the score")
    edit(app / "config.yaml", "tag: base\n", "tag: base\nbonus: 5\n")
    edit(app / "app.py", "score(cfg) + 100", "score(cfg) + 100 + cfg.bonus")
    commit_all(app, "add a bonus")
    with_stash(app)
    before = repo_state(app)

    exact = hydra_ledger.rerun(job, check=True, output_dir=app / "outputs" / "exact", capture=True)

    assert exact.returncode == 0
    assert exact.config_diff.same and exact.config_diff.ignored == ["out", "stamp"]
    assert [(r.key, r.old, r.new, r.same) for r in exact.summary] == [
        ("n", 4, 4, True), ("score", expected_score(3, scale=2.0), expected_score(3, scale=2.0), True),
        ("tag", "base", "base", True)]
    new = exact.run
    assert new["rerun_of"] == record(job)["run_id"]
    assert new["git"]["commit"] == commit1
    assert "bonus" not in new["config"]
    assert new["config"]["out"] == str(app / "outputs" / "exact")
    assert repo_state(app) == before

    current = hydra_ledger.rerun(job, code="current", output_dir=app / "outputs" / "current", capture=True)

    assert current.returncode == 0
    assert current.config_diff.added == {"bonus": 5}
    assert current.run["config"]["bonus"] == 5
    assert current.run["summary"]["score"] == expected_score(3, scale=2.0) + 105
    assert repo_state(app) == before


def test_current_code_names_keys_that_no_longer_exist_and_drops_them_on_request(make_app, run_app):
    app = make_app("rerun_app")
    job = first_run(app, run_app, "seed=1", "scale=3.0")
    edit(app / "config.yaml", "scale: 1.0\n", "")
    edit(app / "app.py", "* cfg.scale", "* 1.0")
    commit_all(app, "remove scale")
    before = repo_state(app)

    with pytest.raises(RerunError, match=re.escape(
            "keys of the recorded config no longer exist in the current code: scale\n"
            "  removed   scale: 3.0 -> (absent)\n")) as raised:
        hydra_ledger.rerun(job, code="current", capture=True)
    assert str(raised.value).endswith("rerun without them with --drop scale")

    dropped = hydra_ledger.rerun(job, code="current", drop=["scale"], output_dir=app / "outputs" / "dropped",
                                 capture=True)
    assert dropped.returncode == 0
    assert dropped.run["summary"]["score"] == expected_score(1)
    assert "scale" not in dropped.run["config"]
    assert repo_state(app) == before


def test_run_from_dirty_tree_with_untracked_helper_reproduces_exactly(make_app, run_app):
    app = make_app("rerun_app")
    (app / "helper.py").write_text("OFFSET = 0.25\n")
    edit(app / "app.py", '"score": score(cfg)', '"score": score(cfg) + __import__("helper").OFFSET')
    job = first_run(app, run_app, "seed=2")
    recorded = record(job)
    assert recorded["git"]["dirty"] is True and recorded["git"]["untracked_saved"] == ["helper.py"]
    assert recorded["summary"]["score"] == expected_score(2) + 0.25
    # the user moves on: the edit is reverted and the helper deleted
    git(app, "checkout", "-q", "--", "app.py")
    (app / "helper.py").unlink()
    before = repo_state(app)

    result = hydra_ledger.rerun(job, check=True, output_dir=app / "outputs" / "again", capture=True)

    assert result.returncode == 0, result
    assert result.summary_ok
    assert result.run["summary"]["score"] == expected_score(2) + 0.25
    assert repo_state(app) == before
    assert not (app / "helper.py").exists()


@pytest.mark.parametrize("where", ["overrides.yaml", "record"])
def test_config_check_refuses_a_tampered_run(make_app, run_app, where):
    app = make_app("rerun_app")
    job = first_run(app, run_app, "seed=3")
    if where == "overrides.yaml":
        edit(job / ".hydra" / "overrides.yaml", "seed=3", "seed=4")
        expected = "  changed   seed: 3 -> 4\n"
    else:
        rec = record(job)
        rec["config"]["n"] = 9
        (job / ".ledger" / "run.json").write_text(json.dumps(rec))
        expected = "  changed   n: 9 -> 4\n"
    before = repo_state(app)

    with pytest.raises(hydra_ledger.ConfigMismatch, match=re.escape(expected)) as raised:
        hydra_ledger.rerun(job, output_dir=app / "outputs" / "refused", capture=True)

    assert "refusing to rerun" in str(raised.value)
    assert not (app / "outputs" / "refused").exists()
    assert repo_state(app) == before


def test_without_output_dir_a_rerun_goes_where_the_app_puts_a_new_run(make_app, run_app):
    app = make_app("rerun_app")
    job = first_run(app, run_app, "seed=3")  # hydra.run.dir=outputs/first: a fixed dir, never reused
    assert hydra_ledger.rerun(job, capture=True).path == app / "outputs" / "first_1"

    assert run_app(app, "seed=4").returncode == 0  # Hydra's own outputs/${now:%Y-%m-%d}/${now:%H-%M-%S}
    (default,) = (app / "outputs").glob("[0-9]*/[0-9]*")
    again = hydra_ledger.rerun(default, capture=True)

    assert again.returncode == 0
    assert again.path.parent.parent == app / "outputs" and again.path != default  # beside it, at the rerun's time
    assert again.run["rerun_of"] == record(default)["run_id"]
    assert not (app / "outputs" / "rerun").exists()


def test_cli_dry_run_prints_the_commands_and_runs_nothing(make_app, run_app, capsys):
    app = make_app("rerun_app")
    job = first_run(app, run_app, "seed=3")
    commit = git(app, "rev-parse", "HEAD").strip()
    run_id = record(job)["run_id"]
    before = repo_state(app)

    code = cli_main(["rerun", str(job), "--dry-run", "--output-dir", str(app / "outputs" / "new"), "--", "n=2"])

    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out == [
        f"git -C {app} worktree add --detach '<tmp>/worktree' {commit}",
        f"cd '<tmp>/worktree' && HYDRA_LEDGER_RERUN_OF={run_id} {record(job)['launch']['python']} "
        f"'<tmp>/worktree/app.py' seed=3 n=2 hydra.mode=RUN hydra.run.dir={app}/outputs/new",
        f"git -C {app} worktree remove --force <tmp>/worktree",
    ]
    assert not (app / "outputs" / "new").exists()
    assert repo_state(app) == before


def test_cli_check_reports_extra_overrides_as_intended_and_fails_on_a_different_summary(make_app, run_app, capfd):
    app = make_app("rerun_app")
    job = first_run(app, run_app, "seed=3")

    code = cli_main(["rerun", str(job), "--check", "--output-dir", str(app / "outputs" / "n2"), "--", "n=2"])

    out, err = capfd.readouterr()
    assert code == 1
    assert "  intended  n: 4 -> 2  (extra override)\n" in err
    assert "hydra-ledger: the summary differs from the recorded one" in err
    score_line = next(line for line in out.splitlines() if line.startswith("score"))
    assert score_line.split() == ["score", repr(expected_score(3)), repr(expected_score(3, n=2)), "DIFFERS"]
    assert record(app / "outputs" / "n2")["config"]["n"] == 2


def test_from_saved_config_after_the_config_files_moved(make_app, run_app):
    app = make_app("rerun_app")
    job = first_run(app, run_app, "seed=5", "tag=saved")
    (app / "conf").mkdir()
    git(app, "mv", "config.yaml", "conf/main.yaml")
    edit(app / "app.py", 'config_path=".", config_name="config"', 'config_path="conf", config_name="main"')
    commit_all(app, "move the config")
    before = repo_state(app)

    result = hydra_ledger.rerun(job, code="current", config="saved", check=True,
                                output_dir=app / "outputs" / "saved", capture=True)

    assert result.returncode == 0
    assert result.config_diff.same
    assert result.summary_ok and result.run["summary"]["tag"] == "saved"
    # the hydra settings came along: the ledger callback with its heartbeat option
    saved_hydra = yaml.safe_load((app / "outputs" / "saved" / ".hydra" / "hydra.yaml").read_text())["hydra"]
    assert saved_hydra["callbacks"]["ledger"]["heartbeat_s"] == 0.2
    assert repo_state(app) == before


def test_a_submitit_job_reruns_locally(make_app, run_app):
    app = make_app("rerun_app")
    proc = run_app(app, "-m", "seed=6", "hydra/launcher=submitit_local", "hydra.sweep.dir=multirun/sub")
    assert proc.returncode == 0, proc.stderr
    job = app / "multirun" / "sub" / "0"
    assert record(job)["job"]["mode"] == "MULTIRUN"

    result = hydra_ledger.rerun(job, check=True, output_dir=app / "outputs" / "local", capture=True)

    assert result.returncode == 0
    assert result.summary_ok
    assert result.run["job"]["mode"] == "RUN"
    assert result.run["job"]["id"] is None  # not a submitit job id: it ran in-process
    assert not any(k.startswith("SUBMITIT_") for k in result.run["host"].get("env", {}))

    through = hydra_ledger.rerun(job, launcher="submitit_local", check=True,
                                 output_dir=app / "outputs" / "through", capture=True)

    assert through.returncode == 0
    assert through.path == app / "outputs" / "through" / "0"
    assert through.summary_ok
    assert through.run["host"]["env"]["SUBMITIT_EXECUTOR"] == "local"


def test_dry_run_and_log_redact_secret_overrides_but_the_rerun_gets_the_real_value(make_app, run_app, capsys, caplog):
    app = make_app("rerun_app")
    job = first_run(app, run_app, "seed=3", "+db.password=hunter2")
    assert yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()) == ["seed=3", "+db.password=hunter2"]

    assert cli_main(["rerun", str(job), "--dry-run", "--", "+api_token=s3cr3t"]) == 0

    out = capsys.readouterr().out
    assert "seed=3 '+db.password=***' '+api_token=***' hydra.mode=RUN" in out  # quoted for the shell
    assert "hunter2" not in out and "s3cr3t" not in out

    caplog.set_level("INFO", logger="hydra_ledger")
    result = hydra_ledger.rerun(job, output_dir=app / "outputs" / "secret", check=True, ignore_summary=["tag"],
                                capture=True)

    assert result.returncode == 0
    assert [(r.key, r.same) for r in result.summary] == [("n", True), ("score", True)]
    launched = [r.getMessage() for r in caplog.records if r.getMessage().startswith("hydra-ledger: rerun of")]
    assert len(launched) == 1 and "+db.password=***" in launched[0]
    assert "hunter2" not in caplog.text
    assert yaml.safe_load((app / "outputs" / "secret" / ".hydra" / "overrides.yaml").read_text()) == [
        "seed=3", "+db.password=hunter2"]
    assert result.run["config"]["db"] == {"password": "***"}


def test_a_dry_run_redacts_with_the_secret_words_the_run_was_recorded_with(make_app, run_app, capsys):
    """The run's own ``redact_keys`` (read back from its .hydra/hydra.yaml, where the plugin's
    node names the strict callback) hide its overrides in the printed command too."""
    app = make_app("rerun_app")
    job = first_run(app, run_app, "+db.host=db.internal", "hydra.callbacks.ledger.redact_keys=[host]")

    assert cli_main(["rerun", str(job), "--dry-run"]) == 0

    out = capsys.readouterr().out
    assert "'+db.host=***'" in out and "db.internal" not in out


def test_exact_rerun_names_a_missing_commit_and_a_patch_that_no_longer_applies(make_app, run_app):
    app = make_app("rerun_app")
    edit(app / "app.py", '"score": score(cfg)', '"score": score(cfg) + 1')
    job = first_run(app, run_app, "seed=1")
    rec = record(job)
    assert rec["git"]["dirty"] is True and rec["git"]["patch"] == "git.patch"
    before = repo_state(app)
    good_commit = rec["git"]["commit"]

    rec["git"]["commit"] = "0" * 40
    (job / ".ledger" / "run.json").write_text(json.dumps(rec))
    with pytest.raises(WorktreeError, match=re.escape(
            f"commit {'0' * 40} is not in the repository {app} (fetch it, e.g. 'git fetch --all', "
            "or rerun with --current-code)")):
        hydra_ledger.rerun(job, capture=True)

    rec["git"]["commit"] = good_commit
    (job / ".ledger" / "run.json").write_text(json.dumps(rec))
    patch = job / ".ledger" / "git.patch"
    patch.write_text(patch.read_text().replace('"score": score(cfg)', '"score": score(config)'))
    with pytest.raises(WorktreeError, match=r"^git apply --binary --whitespace=nowarn \S+/git\.patch failed in "
                                            r"\S+/worktree: error: patch failed: app\.py"):
        hydra_ledger.rerun(job, capture=True)
    assert repo_state(app) == before


def test_the_exceptions_a_rerun_raises_are_exported():
    assert hydra_ledger.ConfigMismatch is ConfigMismatch and hydra_ledger.RerunError is RerunError
    assert issubclass(ConfigMismatch, RerunError)
    assert {"ConfigMismatch", "RerunError"} <= set(hydra_ledger.__all__)


def test_untracked_secret_files_and_files_over_their_own_budget_are_not_saved(make_app, run_app):
    app = make_app("rerun_app")
    secrets = [".env", ".env.local", "deploy.pem", "server.key", "id_ed25519", "id_rsa.pub", "credentials-prod.json",
               "secrets.yaml", "db_password.txt", "conf/api_token"]
    (app / "conf").mkdir()
    for name in secrets:
        (app / name).write_text("hunter2\n")
    (app / "helper.py").write_text("OFFSET = 0\n")
    (app / "id_map.py").write_text("IDS = {}\n")
    (app / "big.bin").write_bytes(b"x" * 200)
    # a 300-byte patch: within patch_max_bytes, while the untracked files have their own budget
    edit(app / "app.py", "import os\n", "import os\n" + "# padding\n" * 20)

    job = first_run(app, run_app, "hydra.callbacks.ledger.untracked_max_bytes=100")

    rec = record(job)["git"]
    assert rec["patch"] == "git.patch"
    assert rec["untracked_saved"] == ["helper.py", "id_map.py"]
    assert rec["untracked_not_saved"] == sorted(
        [{"path": name, "reason": "secret-like name"} for name in secrets]
        + [{"path": "big.bin", "reason": "too large: 200 bytes, 100 left of untracked_max_bytes=100"}],
        key=lambda item: item["path"])
    saved = sorted(str(p.relative_to(job / ".ledger" / "untracked"))
                   for p in (job / ".ledger" / "untracked").rglob("*") if p.is_file())
    assert saved == ["helper.py", "id_map.py"]
    log_text = (job / "app.log").read_text()
    assert log_text.count("untracked file(s) not saved for reruns") == 1
    assert "11 untracked file(s) not saved for reruns: .env (secret-like name)" in log_text
    assert hydra_ledger.load_runs(job)["git.untracked_saved"].tolist() == [["helper.py", "id_map.py"]]


def test_untracked_files_not_saved_are_warned_about_once_per_process_not_per_job(make_app, run_app):
    """A sweep's jobs share the untracked files: its log says once which are not saved; each
    job's record still lists them."""
    app = make_app("rerun_app")
    (app / ".env").write_text("TOKEN=hunter2\n")
    proc = run_app(app, "-m", "seed=0,1,2", "hydra.sweep.dir=multirun/envs")
    assert proc.returncode == 0, proc.stderr
    assert (proc.stdout + proc.stderr).count("untracked file(s) not saved for reruns: .env") == 1
    for num in range(3):
        assert record(app / "multirun" / "envs" / str(num))["git"]["untracked_not_saved"] == [
            {"path": ".env", "reason": "secret-like name"}]


def test_a_sweeps_untracked_files_are_stored_once_by_content_and_reruns_restore_them(make_app, run_app, tmp_path):
    """Four jobs in two joblib workers, racing on the same store: each untracked file is stored
    once per sweep under its SHA-256, the jobs' records point at it, and an exact rerun of one
    job restores it. A job dir copied without its sweep is refused, naming the store and the fix."""
    import hashlib
    import shutil

    app = make_app("rerun_app")
    helper = "OFFSET = 0.25\n" + "# padding\n" * 300  # 3 kB
    (app / "helper.py").write_text(helper)
    (app / "notes").mkdir()
    (app / "notes" / "todo.txt").write_text("try a larger n\n")
    edit(app / "app.py", '"score": score(cfg)', '"score": score(cfg) + __import__("helper").OFFSET')
    proc = run_app(app, "-m", "seed=0,1,2,3", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                   "hydra.sweep.dir=multirun/untracked")
    assert proc.returncode == 0, proc.stderr
    sweep = app / "multirun" / "untracked"
    digests = {rel: hashlib.sha256((app / rel).read_bytes()).hexdigest() for rel in ("helper.py", "notes/todo.txt")}
    stored = sorted(p for p in (sweep / ".ledger" / "objects").rglob("*") if p.is_file())
    assert [p.name for p in stored] == sorted(digests.values())  # once each, no temp file left
    assert {p.name: p.read_bytes() for p in stored}[digests["helper.py"]] == helper.encode()
    for num in range(4):
        git_state = record(sweep / str(num))["git"]
        assert git_state["untracked_objects"] == digests
        assert git_state["untracked_saved"] == ["helper.py", "notes/todo.txt"]
        assert not (sweep / str(num) / ".ledger" / "untracked").exists()
    frame = hydra_ledger.load_runs(sweep)
    assert not [c for c in frame.columns if c.startswith("git.untracked_objects")]  # in the record, not columns

    git(app, "checkout", "-q", "--", "app.py")
    (app / "helper.py").unlink()
    before = repo_state(app)
    result = hydra_ledger.rerun(sweep / "2", check=True, output_dir=app / "outputs" / "again", capture=True)
    assert result.returncode == 0, result
    assert result.run["summary"]["score"] == expected_score(2) + 0.25
    assert repo_state(app) == before

    alone = tmp_path / "copied" / "2"
    shutil.copytree(sweep / "2", alone)
    with pytest.raises(RerunError) as refused:
        hydra_ledger.rerun(alone, output_dir=app / "outputs" / "alone")
    message = str(refused.value)
    assert "2 untracked file(s) it ran with (helper.py, notes/todo.txt) are not in its sweep's store" in message
    assert "Copy the sweep's .ledger/objects along, or rerun with --current-code" in message


def test_a_file_that_cannot_be_copied_is_listed_and_the_others_are_saved(tmp_path):
    from hydra_ledger.job.untracked import save_untracked

    root, dest = tmp_path / "repo", tmp_path / "saved"
    (root / "data").mkdir(parents=True)
    (root / "data" / "a.txt").write_text("a")
    (root / "b.txt").write_text("bb")
    dest.mkdir()
    (dest / "data").write_text("a file where the copy needs a dir")  # mkdir data/ fails: FileExistsError

    result = save_untracked(root, ["data/a.txt", "gone.txt", "b.txt"], dest, 1000)

    assert result == {"untracked_saved": ["b.txt"], "untracked_not_saved": [
        {"path": "data/a.txt", "reason": "cannot copy: File exists"},
        {"path": "gone.txt", "reason": "not a regular file"}]}
    assert (dest / "b.txt").read_text() == "bb"
