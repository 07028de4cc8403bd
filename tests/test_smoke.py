"""The shortest path through the product: record a sweep, load it."""
from __future__ import annotations

import hydra_ledger


def test_sweep_is_recorded_and_loads(make_app, run_app):
    app = make_app("basic")
    proc = run_app(app, "-m", "seed=0,1")
    assert proc.returncode == 0, proc.stderr
    frame = hydra_ledger.load_runs(app / "multirun")
    assert sorted(frame["cfg.seed"].tolist()) == [0, 1]
    assert set(frame["status"]) == {"COMPLETED"}
    assert sorted(frame["summary.score"].tolist()) == [1.0, 2.0]
