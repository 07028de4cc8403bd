"""Secrets stay off disk and out of messages, and a rerun never executes what a record says
without checking it first (#12).

Every scenario runs a real Hydra app in a real git repo and the real ``hydra-ledger`` CLI in a
subprocess. Every secret value of the ``secrets_app`` contains the marker ``LIVE``, so that a
leak anywhere is one substring search.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import app_env, first_run, git, record

LIVE = "LIVE"


def ledger(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real CLI, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "hydra_ledger", *args], cwd=cwd, env=app_env(env),
                          capture_output=True, text=True, timeout=300)


def tamper(job_dir: Path, **launch: object) -> None:
    """Edit the record's launch block, as someone who can write a shared output dir could."""
    path = job_dir / ".ledger" / "run.json"
    data = json.loads(path.read_text())
    data["launch"].update(launch)
    path.write_text(json.dumps(data))


def files_holding(root: Path, needle: str) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and needle.encode() in p.read_bytes())


# -- 9: a rerun runs no interpreter or module from a record unchecked ------------------------------
def _sh_named_python(job: Path) -> str:
    fake = job / "bin" / "python3"
    fake.parent.mkdir()
    shutil.copy2("/bin/sh", fake)  # an executable named like an interpreter: the name is not enough
    return str(fake)


@pytest.mark.parametrize(("python", "module", "refused"), [
    pytest.param("/bin/sh", "-c", "python", id="shell-as-python"),
    pytest.param(_sh_named_python, "-c", "python", id="shell-copied-as-python3"),
    pytest.param(None, "-c", "module", id="option-as-module"),
    pytest.param(None, "os; import this", "module", id="not-a-module-name"),
])
def test_rerun_executes_no_unchecked_interpreter_or_module_from_the_record(
        make_app, run_app, tmp_path, python, module, refused):
    app = make_app("secrets_app")
    job = first_run(app, run_app)
    python = python(job) if callable(python) else (python or sys.executable)
    tamper(job, python=python, module=module, script=None)
    marker = tmp_path / "PWNED"
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"touch {marker}"]))

    dry = ledger(app, "rerun", str(job), "--dry-run")
    proc = ledger(app, "rerun", str(job))

    assert not marker.exists(), "a command taken from the record was executed"
    assert proc.returncode == 1, proc.stdout + proc.stderr
    if refused == "python":
        assert f"the recorded python {python} is not a Python interpreter" in proc.stderr
    else:
        assert f"the recorded module {module!r} is not a Python module name" in proc.stderr
    assert str(job / ".ledger" / "run.json") in proc.stderr  # names the file to check
    assert dry.returncode == 0, dry.stderr
    assert "warning: a rerun would refuse this record:" in dry.stderr
    assert ("not a Python interpreter" if refused == "python" else "not a Python module name") in dry.stderr


def test_rerun_checks_the_recorded_script_is_a_file_of_the_checked_out_tree(make_app, run_app, tmp_path):
    app = make_app("secrets_app")
    job = first_run(app, run_app)
    tamper(job, script=str(app / "missing.py"), module=None)

    proc = ledger(app, "rerun", str(job))

    assert proc.returncode == 1
    assert "the recorded script missing.py is not a file of the checked-out code" in proc.stderr


def test_a_genuine_run_still_reruns_with_its_recorded_interpreter(make_app, run_app):
    app = make_app("secrets_app")
    job = first_run(app, run_app)
    assert Path(record(job)["launch"]["python"]).name.startswith("python")

    proc = ledger(app, "rerun", str(job), "--output-dir", str(app / "outputs" / "again"))

    assert proc.returncode == 0, proc.stderr
    assert "config check: same as recorded" in proc.stderr
    assert record(app / "outputs" / "again")["status"] == "COMPLETED"


# -- 10: an exact rerun of an untampered run with URL passwords and Bearer values ---------------
def test_exact_rerun_with_partially_redacted_values_goes_ahead_and_prints_no_secret(make_app, run_app):
    app = make_app("secrets_app")
    job = first_run(app, run_app)
    config = record(job)["config"]
    assert config["db"]["url"] == "postgres://alice:***@db.example/prod"
    assert config["auth_header"] == "Bearer ***"

    proc = ledger(app, "rerun", str(job), "--output-dir", str(app / "outputs" / "exact"), "--",
                  "db.url=postgres://alice:new-LIVE-pw@db.example/prod")

    assert proc.returncode == 0, proc.stderr
    assert "config check: same as recorded, apart from the extra overrides" in proc.stderr
    assert "intended  db.url: 'postgres://alice:***@db.example/prod' -> 'postgres://alice:***@db.example/prod'" \
        in proc.stderr
    assert LIVE not in proc.stdout + proc.stderr


def test_a_refused_rerun_prints_no_secret(make_app, run_app):
    app = make_app("secrets_app")
    job = first_run(app, run_app)
    # the recorded config no longer matches: someone edited the saved config
    path = job / ".ledger" / "run.json"
    data = json.loads(path.read_text())
    data["config"]["db"]["url"] = "postgres://alice:***@elsewhere/prod"
    data["config"]["auth_header"] = "Bearer other"
    path.write_text(json.dumps(data))

    proc = ledger(app, "rerun", str(job))

    assert proc.returncode == 1
    assert "refusing to rerun" in proc.stderr
    assert "changed   db.url: 'postgres://alice:***@elsewhere/prod' -> 'postgres://alice:***@db.example/prod'" \
        in proc.stderr
    assert "changed   auth_header: 'Bearer other' -> 'Bearer ***'" in proc.stderr
    assert LIVE not in proc.stdout + proc.stderr


# -- 11 and 12: summary, metrics and awkward URL passwords are redacted at write time ---------------
def test_summary_metrics_index_and_report_hold_no_secret(make_app, run_app, tmp_path):
    app = make_app("secrets_app")
    job = first_run(app, run_app)
    cache = tmp_path / "cache"

    rec = record(job)
    assert rec["summary"] == {
        "db_password": "***", "dsn": "mysql://bob:***@h/x", "max_tokens": 512,
        "score": 1.0, "api_token": "***", "conn": "redis://:***@h:6379", "header": "Bearer ***"}
    metrics = [json.loads(line) for line in (job / ".ledger" / "metrics.jsonl").read_text().splitlines()]
    assert [m["values"] for m in metrics] == [{"loss": 0.5, "api_token": "***", "auth": "Bearer ***"}]
    assert rec["config"]["db"] == {"url": "postgres://alice:***@db.example/prod",
                                   "at_url": "postgres://u:***@h/db",
                                   "slash_url": "redis://:***@h:6379"}

    listing = ledger(app, "ls", "--format", "json", env={"HYDRA_LEDGER_CACHE": str(cache)})
    report = ledger(app, "report", "-o", str(tmp_path / "report.html"), env={"HYDRA_LEDGER_CACHE": str(cache)})

    assert listing.returncode == 0 and report.returncode == 0, listing.stderr + report.stderr
    assert LIVE not in listing.stdout
    assert list(cache.rglob("*")), "the index was written"
    assert files_holding(cache, LIVE) == []
    assert LIVE not in (tmp_path / "report.html").read_text()
    # Hydra's own files keep every secret: that is what the ledger cannot protect (README)
    assert files_holding(job / ".ledger", LIVE) == []
    assert files_holding(job, LIVE) == [".hydra/config.yaml"]


# -- 13: secret files are not copied with the untracked files ------------------------------------
SECRET_FILES = [".netrc", ".pgpass", ".pypirc", "gcp-service-account-prod.json", "client.p12", "client.pfx",
                "kubeconfig", "local_settings.py", "store.jks", "release.keystore", "credentials", "secrets.yaml",
                "conf/secrets_prod.toml", "mine.vault"]


def test_untracked_secret_files_are_not_saved_and_users_can_add_patterns(make_app, run_app):
    app = make_app("secrets_app")
    for name in [*SECRET_FILES, "notes.txt", "conf/extra.yaml"]:
        (app / name).parent.mkdir(parents=True, exist_ok=True)
        (app / name).write_text(f"{name}: {LIVE if name not in ('notes.txt', 'conf/extra.yaml') else 'plain'}\n")

    job = first_run(app, run_app, "hydra.callbacks.ledger.untracked_exclude=[*.vault]")

    info = record(job)["git"]
    assert sorted(info["untracked_saved"]) == ["conf/extra.yaml", "notes.txt"]
    assert sorted(item["path"] for item in info["untracked_not_saved"]) == sorted(SECRET_FILES)
    assert {item["reason"] for item in info["untracked_not_saved"]} == {"secret-like name"}
    assert files_holding(job / ".ledger", LIVE) == []


# -- save_patch=false: no git.patch, and the record says so -------------------------------------------
def test_save_patch_false_writes_no_patch_and_says_so(make_app, run_app):
    app = make_app("secrets_app")
    config = app / "config.yaml"
    config.write_text(config.read_text().replace("seed: 1", "seed: 2"))  # an uncommitted edit

    job = first_run(app, run_app, "hydra.callbacks.ledger.save_patch=false")
    proc = ledger(app, "rerun", str(job))

    info = record(job)["git"]
    assert info["dirty"] is True
    assert "patch" not in info
    assert info["patch_skipped"] == "not saved: hydra.callbacks.ledger.save_patch=false"
    assert not (job / ".ledger" / "git.patch").exists()
    assert proc.returncode == 1
    assert "its patch is missing" in proc.stderr and "save_patch=false" in proc.stderr
    assert git(app, "status", "--porcelain", "--untracked-files=no").strip() == "M config.yaml"
    assert yaml.safe_load((job / ".hydra" / "config.yaml").read_text())["seed"] == 2


def test_resume_checks_the_recorded_interpreter_and_dry_run_warns(make_app, run_app):
    app = make_app("secrets_app")
    proc = run_app(app, "-m", "seed=1,2", "hydra.sweep.dir=multi")
    assert proc.returncode == 0, proc.stderr
    shutil.rmtree(app / "multi" / "1")  # a job that never ran: resume relaunches it
    tamper(app / "multi" / "0", python="/bin/sh")

    dry = ledger(app, "resume", "multi", "--dry-run")
    real = ledger(app, "resume", "multi")

    assert dry.returncode == 0, dry.stderr
    assert "warning: a resume would refuse this record:" in dry.stderr
    assert "the recorded python /bin/sh is not a Python interpreter" in dry.stderr
    assert real.returncode == 1, real.stdout + real.stderr
    assert "nothing was run" in real.stderr
    assert not (app / "multi" / "1").exists()
