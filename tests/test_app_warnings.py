"""App processes started by the tests turn hydra-ledger's own warnings into errors."""
from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

WARN = """\
import warnings

from hydra_ledger.errors import LedgerWarning


class SomeLedgerWarning(LedgerWarning):
    pass


warnings.warn("hydra-ledger: {text}", {category})
print("still running")
"""


RunApp = Callable[..., subprocess.CompletedProcess[str]]


def test_a_ledger_warning_fails_an_app(tmp_path: Path, run_app: RunApp) -> None:
    (tmp_path / "warn.py").write_text(WARN.format(text="skipped a record", category="SomeLedgerWarning"))
    proc = run_app(tmp_path, script="warn.py")
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.rstrip().endswith("SomeLedgerWarning: hydra-ledger: skipped a record"), proc.stderr


def test_other_warnings_only_show(tmp_path: Path, run_app: RunApp) -> None:
    (tmp_path / "warn.py").write_text(WARN.format(text="not ours", category="UserWarning"))
    proc = run_app(tmp_path, script="warn.py")
    assert (proc.returncode, proc.stdout) == (0, "still running\n"), proc.stderr
    assert "UserWarning: hydra-ledger: not ours" in proc.stderr
