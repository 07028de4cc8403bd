"""The resolved config as recorded: interpolations, resolvers, ???, structured configs, secrets."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

import hydra_ledger

LEDGER = "hydra/callbacks=ledger"


def record(job_dir: Path) -> dict:
    return json.loads((job_dir / ".ledger" / "run.json").read_text())


def test_resolved_config(make_app, run_app):
    app = make_app("config_app")
    year_before = time.strftime("%Y")
    proc = run_app(app, "hydra.run.dir=out", env={"LEDGER_TEST_VAR": "from-env"})
    assert proc.returncode == 0, proc.stderr
    rec = record(app / "out")
    assert rec["status"] == "COMPLETED"
    assert rec["summary"] == {"value": 1.0}
    assert rec["config"] == {
        "name": "exp",
        "greeting": "héllo wörld ✓ 日本",
        "model": {"lr": 0.5, "layers": [64, 32], "schedule": {"warmup": 5, "decay": 0.5},
                  "optim": {"name": "adam", "betas": [0.9, 0.999]}},
        "derived": 0.5,
        "label": "exp-64",
        "job_name": "app",
        "out_dir": str((app / "out").resolve()),
        "year": rec["config"]["year"],
        "env_set": "from-env",
        "env_unset": "${oc.env:LEDGER_TEST_UNSET}",
        "env_default": "fallback",
        "todo": "???",
        "empty": {},
        "nothing": None,
        "password": "***",
        "api_key": "***",
        "apiKey": "***",
        "passes": 3,
        "db": {"password": "***", "url": "postgresql://alice:***@db.example.com:5432/app", "host": "localhost"},
    }
    assert rec["config"]["year"] in {year_before, time.strftime("%Y")}
    assert rec["missing"] == ["todo"]
    assert rec["unresolved"] == {
        "env_unset": "InterpolationResolutionError: 'KeyError raised while resolving interpolation: "
                     "\"Environment variable \\'LEDGER_TEST_UNSET\\' not found\"'"
    }
    log_lines = (app / "out" / "app.log").read_text().splitlines()
    assert [line.split(" - ", 1)[1] for line in log_lines if "WARNING" in line] == [
        "hydra-ledger: config values still missing (???), recorded as '???': todo",
        "hydra-ledger: interpolations that failed to resolve, recorded unresolved: env_unset",
    ]
    text = (app / "out" / ".ledger" / "run.json").read_text(encoding="utf-8")
    for secret in ("hunter2", "abc123", "xyz789", "dbsecret", "s3cr3t"):
        assert secret not in text
    assert "héllo wörld ✓ 日本" in text  # readable UTF-8, not \u escapes

    frame = hydra_ledger.load_runs(app / "out")
    assert frame["cfg.model.layers"].tolist() == [[64, 32]]
    assert frame["cfg.model.schedule.warmup"].tolist() == [5]
    assert frame["cfg.greeting"].tolist() == ["héllo wörld ✓ 日本"]
    assert frame["cfg.empty"].tolist() == [{}]


def test_secrets_in_overrides_and_argv(make_app, run_app):
    app = make_app("config_app")
    args = ["password=p4ss", "db.password=d4ss", "+db.api_key=k3y", "+auth.apiKey=k4y",
            "db.url=mysql://bob:pw0rd@host/db", "name=plain", "+creds={user:alice,token:t0k}"]
    proc = run_app(app, "-m", "hydra.sweep.dir=sweep", *args)
    assert proc.returncode == 0, proc.stderr
    rec = record(app / "sweep" / "0")
    redacted = ["password=***", "db.password=***", "+db.api_key=***", "+auth.apiKey=***",
                "db.url=mysql://bob:***@host/db", "name=plain", "+creds={user:alice,token:***}"]
    # the sweeper hands jobs their overrides with ':' escaped
    assert rec["overrides"] == [*redacted[:4], r"db.url=mysql\://bob\:***@host/db", *redacted[5:]]
    assert rec["launch"]["argv"] == ["app.py", "-m", "hydra.sweep.dir=sweep", *redacted]
    assert rec["config"]["db"] == {"password": "***", "url": "mysql://bob:***@host/db", "host": "localhost",
                                   "api_key": "***"}
    assert rec["config"]["auth"] == {"apiKey": "***"}
    assert rec["config"]["creds"] == {"user": "alice", "token": "***"}
    sweep_record = json.loads((app / "sweep" / ".ledger" / "sweep.json").read_text())
    assert sweep_record["overrides"] == redacted
    for path in [app / "sweep" / "0" / ".ledger" / "run.json", app / "sweep" / ".ledger" / "sweep.json"]:
        text = path.read_text()
        for secret in ("p4ss", "d4ss", "k3y", "k4y", "pw0rd", "t0k"):
            assert secret not in text, path


def test_custom_redact_keys(make_app, run_app):
    app = make_app("config_app")
    proc = run_app(app, "hydra.run.dir=out", "hydra.callbacks.ledger.redact_keys=[name,host]")
    assert proc.returncode == 0, proc.stderr
    config = record(app / "out")["config"]
    assert (config["name"], config["password"], config["db"]["host"]) == ("***", "hunter2", "***")
    assert config["db"]["url"] == "postgresql://alice:***@db.example.com:5432/app"  # URLs always


def test_structured_config(make_app, run_app):
    app = make_app("config_app")
    proc = run_app(app, LEDGER, "hydra.run.dir=out", "train.mode=SLOW", "train.data=/other", script="structured.py")
    assert proc.returncode == 0, proc.stderr
    rec = record(app / "out")
    assert rec["config"] == {
        "train": {"epochs": 3, "mode": "SLOW", "data": "/other", "widths": [8, 16]},
        "seed": 0,
        "token": "***",
    }
    assert rec["summary"] == {"value": 3}
    frame = hydra_ledger.load_runs(app / "out")
    expected = pd.DataFrame({"cfg.train.epochs": [3], "cfg.train.mode": ["SLOW"], "cfg.train.data": ["/other"],
                             "cfg.train.widths": [[8, 16]]}, dtype=object).astype({"cfg.train.epochs": "int64"})
    pd.testing.assert_frame_equal(frame[list(expected.columns)], expected)


def test_environment_variables_allow_listed_and_redacted(make_app, run_app):
    app = make_app("config_app")
    env = {"MY_API_KEY": "k3y", "MY_URL": "https://u:pw0rd@example.com/x", "MY_SEED": "7", "OTHER": "o"}
    proc = run_app(app, "hydra.run.dir=out", "hydra.callbacks.ledger.env_vars=[MY_*]", env=env)
    assert proc.returncode == 0, proc.stderr
    assert record(app / "out")["host"]["env"] == {
        "MY_API_KEY": "***", "MY_SEED": "7", "MY_URL": "https://u:***@example.com/x",
    }
