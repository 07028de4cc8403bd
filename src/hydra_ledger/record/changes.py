"""Marking a job's record as changed, for the loader's index (see :mod:`hydra_ledger.load.index`).

Rewriting ``.ledger/run.json`` or a sidecar changes the mtime of ``.ledger/`` only; the
index does not stat each job dir (100k stats take about a second). So every write of a
job's ledger files also sets the mtime of the job dir's *parent* (the sweep dir) to now:
the index then re-checks that dir's jobs, and trusts finished sweeps whose dirs did not
change. A metadata update, not a shared file: concurrent jobs of a sweep all just set it
to "now", and nothing is lost if it fails.
"""
from __future__ import annotations

import os
from pathlib import Path


def mark_changed(job_dir: str | os.PathLike[str]) -> None:
    """Set the mtime of ``job_dir``'s parent to now; never raises."""
    try:
        os.utime(Path(job_dir).parent)
    except OSError:  # a read-only or foreign parent: loads check this job when it is RUNNING
        pass
