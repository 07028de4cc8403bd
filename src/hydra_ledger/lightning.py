"""A PyTorch Lightning logger that writes into the ledger: ``Trainer(logger=LedgerLogger())``.

Inside a Hydra job recorded by the callback, ``log_metrics`` appends to the job's
``.ledger/metrics.jsonl`` (with Lightning's step) and, when training ends, the last value of
each metric becomes the job's summary (``summary.val_loss`` ...). Without the callback (a plain
script), the logger records a run of its own in ``<save_dir>/<name>/version_<n>``, as
Lightning's CSV logger lays out its dirs, with the hyperparameters as the run's config, so that
``load_runs`` and the CLI read it like any other run.

Needs ``lightning`` (or the older ``pytorch_lightning``): ``pip install 'hydra-ledger[lightning]'``.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

try:
    from lightning.pytorch.loggers.logger import Logger, rank_zero_experiment
    from lightning.pytorch.utilities import rank_zero_only
except ImportError:  # pragma: no cover - the package's older name
    try:
        from pytorch_lightning.loggers.logger import Logger, rank_zero_experiment
        from pytorch_lightning.utilities import rank_zero_only
    except ImportError:
        raise ImportError(
            "hydra_ledger.lightning needs PyTorch Lightning: pip install 'hydra-ledger[lightning]' "
            "(or pip install lightning)"
        ) from None

from hydra_ledger.job import runtime, standalone

# Lightning's finalize() statuses, as run statuses. "finished" comes from its Slurm requeue
# handler, before the job is requeued: the run is not over, so it keeps RUNNING.
_STATUSES = {"success": "COMPLETED", "failed": "FAILED"}
_VERSION_DIR = re.compile(r"version_(\d+)$")


class LedgerLogger(Logger):  # type: ignore[misc]
    """Lightning metrics into the ledger: the Hydra job's record, or a run of its own.

    ``save_dir``/``name``/``version``: where a run without Hydra's callback goes
    (``outputs/lightning/version_<n>`` by default: ``outputs`` is where ``hydra-ledger ls``
    looks). Inside a recorded Hydra job they are unused: the job's output dir is the run's.
    """

    def __init__(self, save_dir: str | os.PathLike[str] = "outputs", name: str = "lightning",
                 version: int | str | None = None) -> None:
        super().__init__()
        self._save_dir = str(save_dir)
        self._name = name
        self._version = version
        self._run: runtime.ActiveRun | None = None  # a run of its own, when no Hydra job is recorded
        self._last: dict[str, Any] = {}
        self._hparams: dict[str, Any] = {}

    # -- where ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def version(self) -> int | str:
        if self._version is None:
            self._version = _next_version(Path(self._save_dir, self._name))
        return self._version

    @property
    def save_dir(self) -> str:
        return self._save_dir

    @property
    def root_dir(self) -> str:
        return str(Path(self._save_dir, self._name))

    @property
    def log_dir(self) -> str:
        """The run's dir: the Hydra job's output dir, else ``<save_dir>/<name>/version_<n>``."""
        active = runtime.active_run()
        if active is not None and active is not self._run:
            return str(active.paths.job_dir)
        version = self.version
        return str(Path(self.root_dir, version if isinstance(version, str) else f"version_{version}"))

    @property
    @rank_zero_experiment  # type: ignore[untyped-decorator]
    def experiment(self) -> runtime.ActiveRun:
        """The run written to (opened on first use when no Hydra job is recorded)."""
        return self._active()

    # -- writing -------------------------------------------------------------------------
    @rank_zero_only  # type: ignore[untyped-decorator]
    def log_hyperparams(self, params: Mapping[str, Any] | argparse.Namespace, *args: Any, **kwargs: Any) -> None:
        """The run's config when the logger records its own run; a Hydra job keeps Hydra's config."""
        values = vars(params) if isinstance(params, argparse.Namespace) else dict(params or {})
        self._hparams.update(values)
        run = self._active()
        if run is self._run:
            standalone.set_config(run, self._hparams)

    @rank_zero_only  # type: ignore[untyped-decorator]
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """One line of ``metrics.jsonl`` with Lightning's step; the last values become the summary."""
        self._active()
        values = {k: _number(v) for k, v in metrics.items()}
        self._last.update(values)
        runtime.log_metrics(values, step=step)

    @rank_zero_only  # type: ignore[untyped-decorator]
    def finalize(self, status: str) -> None:
        """End of fit/validate/test: the last metric values into the summary; a run of its own
        also gets its final status (COMPLETED, or FAILED when training raised)."""
        run = self._run if self._run is not None else runtime.active_run()
        if run is None:
            return
        if self._last:
            run.update_summary(self._last)
        final = _STATUSES.get(status)
        if run is self._run and final is not None and not run.finished:
            # Lightning calls finalize("failed") while handling the exception: it is the error
            exc = sys.exc_info()[1] if final == "FAILED" else None
            standalone.end_run(run, final, runtime.error_info(exc) if exc is not None else None)

    # -- the run -------------------------------------------------------------------------
    def _active(self) -> runtime.ActiveRun:
        """The Hydra job being recorded, else this logger's own run (opened once)."""
        active = runtime.active_run()
        if active is not None:
            return active
        if self._run is None or self._run.finished:
            if self._run is not None:  # a second fit after the first ended: a new version
                self._version = None
            self._run = standalone.start_run(self.log_dir, self._name, self._hparams)
        return self._run


def _next_version(root: Path) -> int:
    """One more than the highest ``version_<n>`` under ``root`` (0 when none), as Lightning counts."""
    try:
        found = [int(m.group(1)) for p in root.iterdir() if (m := _VERSION_DIR.match(p.name)) and p.is_dir()]
    except OSError:
        return 0
    return max(found, default=-1) + 1


def _number(value: Any) -> Any:
    """A tensor's value (Lightning usually hands floats; a 0-d tensor has ``item``)."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value
