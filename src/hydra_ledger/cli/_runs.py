"""Loading runs for the commands, through the loader, and naming their columns on the command line."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra_ledger.cli import CommandError
from hydra_ledger.cli._output import progress

if TYPE_CHECKING:  # the loader and pandas are imported when a command loads runs, not to parse its arguments
    import pandas as pd

    from hydra_ledger.load.walk import Progress


def load_frame(paths: Sequence[str], *, include_debug: bool = False, tags: Sequence[str] = (),
               columns: Sequence[str] | None = None, optional: Sequence[str] = (),
               show_progress: bool = False) -> pd.DataFrame:
    """The runs under ``paths``, loaded as ``load_runs`` loads them, with a progress bar on a
    terminal while a long (unindexed) load reads records when ``show_progress``.
    ``columns``: only these (names or globs; None: all), plus those of ``optional`` that exist."""
    from hydra_ledger.load import load_table

    return load_table(paths, include_debug=include_debug, tags=tags or None, columns=columns, optional=optional,
                      progress=bar(show_progress))[0]


def load_frame_and_missing(paths: Sequence[str], *, include_debug: bool = False,
                           columns: Sequence[str] | None = None, optional: Sequence[str] = (),
                           show_progress: bool = False) -> tuple[pd.DataFrame, dict[str, list[dict[str, Any]]]]:
    """:func:`load_frame`, and the jobs that never started (see :func:`hydra_ledger.load.load_runs_and_missing`)."""
    from hydra_ledger.load import load_runs_and_missing

    return load_runs_and_missing(*paths, include_debug=include_debug, columns=columns, optional=optional,
                                 progress=bar(show_progress))


def bar(show: bool) -> Progress | None:
    """A progress bar for the records read in worker processes (a long load worth a bar), or None."""
    if not show:
        return None
    return lambda results, total: progress(results, "reading runs", enabled=True, total=total, min_total=1)


def column_name(name: str, frame: pd.DataFrame, option: str) -> str:
    """A column the user named, with ``cfg.`` implied: ``lr`` -> ``cfg.lr`` (``model`` -> ``choice.model``
    for a config group); unknown raises."""
    from hydra_ledger.load.where import suggest

    for candidate in (name, f"cfg.{name}", f"choice.{name}", f"summary.{name}"):
        if candidate in frame.columns:
            return candidate
    raise CommandError(f"{option}: unknown column {name!r}{suggest(name, list(frame.columns))}")


def relative(path: Any) -> str:
    """A path relative to the cwd when below it: shorter in tables."""
    text = str(path)
    if os.path.isabs(text) and os.path.normpath(text) == text:  # as strings: a Path each cost 50 us, 1,000 sweeps 50 ms
        cwd = os.getcwd()
        if text == cwd:
            return "."
        below = cwd if cwd.endswith("/") else cwd + "/"
        return text[len(below):] if text.startswith(below) else text
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return text
