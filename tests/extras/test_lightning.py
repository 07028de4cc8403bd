"""LedgerLogger in a real (tiny) Lightning training on the CPU, with and without Hydra's callback.

Needs torch and lightning (the ``lightning`` extra): run by scripts/test in its own environment,
left out of the base runs (tests/conftest.py)."""
from __future__ import annotations

import json
from pathlib import Path

from conftest import record

import hydra_ledger


def metric_lines(job: Path) -> list[dict]:
    return [json.loads(line) for line in (job / ".ledger" / "metrics.jsonl").read_text().splitlines()]


def last_values(lines: list[dict]) -> dict[str, float]:
    last: dict[str, float] = {}
    for line in lines:
        last.update(line["values"])
    return last


def test_a_plain_script_records_a_run_with_its_hyperparameters_as_config(make_app, run_app):
    app = make_app("lightning_app")
    proc = run_app(app, "--lr", "0.05", "--hidden", "3", "--epochs", "3", script="plain.py", timeout=300)
    assert proc.returncode == 0, proc.stderr
    job = app / "outputs" / "lightning" / "version_0"
    assert proc.stdout.strip().endswith("outputs/lightning/version_0")  # log_dir, relative as given
    rec = record(job)
    assert rec["status"] == "COMPLETED" and rec["error"] is None
    assert rec["config"] == {"lr": 0.05, "hidden": 3, "fail_at_step": -1}
    assert rec["git"]["state"] == "ok" and rec["git"]["dirty"] is False
    lines = metric_lines(job)
    steps = [line["step"] for line in lines if "train_loss" in line["values"]]
    assert steps == sorted(steps) and len(steps) == 12  # 4 batches x 3 epochs, one line per step
    assert sum("val_loss" in line["values"] for line in lines) == 3  # once per epoch
    assert rec["summary"] == last_values(lines)  # the last value of each metric
    frame = hydra_ledger.load_runs(app / "outputs")
    assert frame["status"].tolist() == ["COMPLETED"]
    assert frame[["cfg.lr", "cfg.hidden"]].iloc[0].tolist() == [0.05, 3]
    assert frame["summary.val_loss"].iloc[0] == rec["summary"]["val_loss"]
    metrics = hydra_ledger.load_metrics(job)
    train = metrics[metrics["name"] == "train_loss"]
    assert train["step"].tolist() == steps and train["value"].tolist() == [
        line["values"]["train_loss"] for line in lines if "train_loss" in line["values"]]

    again = run_app(app, "--epochs", "1", script="plain.py", timeout=300)  # the next version, as Lightning counts
    assert again.returncode == 0, again.stderr
    assert record(app / "outputs" / "lightning" / "version_1")["status"] == "COMPLETED"
    assert len(hydra_ledger.load_runs(app / "outputs")) == 2


def test_a_training_that_raises_is_failed_with_its_error(make_app, run_app):
    app = make_app("lightning_app")
    proc = run_app(app, "--fail-at-step", "5", script="plain.py", timeout=300)
    assert proc.returncode != 0
    rec = record(app / "outputs" / "lightning" / "version_0")
    assert rec["status"] == "FAILED"
    assert rec["error"]["type"] == "ValueError" and rec["error"]["message"] == "diverged at step 5"
    assert "training_step" in rec["error"]["traceback"]
    assert rec["summary"]["train_loss"] == last_values(metric_lines(app / "outputs" / "lightning" / "version_0"))[
        "train_loss"]


def test_inside_a_hydra_job_it_writes_into_the_jobs_record(make_app, run_app):
    app = make_app("lightning_app")
    proc = run_app(app, "-m", "lr=0.1,0.02", "hydra.sweep.dir=sweep", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert not (app / "outputs" / "lightning").exists()  # no run of its own beside the job
    frame = hydra_ledger.load_runs(app / "sweep").sort_values("job_num")
    assert frame["cfg.lr"].tolist() == [0.1, 0.02]  # Hydra's config, not the hyperparameters
    for num in (0, 1):
        job = app / "sweep" / str(num)
        rec = record(job)
        assert rec["status"] == "COMPLETED"
        assert "fail_at_step" not in rec["config"]
        assert rec["summary"] == last_values(metric_lines(job))
        assert [line["step"] for line in metric_lines(job) if "train_loss" in line["values"]] == list(range(8))
