"""Resolving a RUN argument of the command line: a job dir (or its record file), or a run id prefix."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra_ledger.errors import LedgerError
from hydra_ledger.load import roots as _roots
from hydra_ledger.record.paths import LEDGER_DIR, RunPaths
from hydra_ledger.record.schema import RecordError, read_record


class SelectError(LedgerError, LookupError):
    """No run, or more than one, matches what the user typed; the message lists what to type instead."""


def resolve_run(arg: str, roots: Sequence[str | os.PathLike[str]] = ()) -> tuple[RunPaths, dict[str, Any]]:
    """The run ``arg`` names: a job dir, its ``.ledger`` dir or ``run.json``, else a run id prefix under ``roots``.

    Raises SelectError when nothing or several runs match (the message lists the matches).
    """
    path = Path(arg)
    direct = _as_job_dir(path)
    if direct is not None:
        try:
            return direct, read_record(direct.record)
        except RecordError as exc:
            raise SelectError(str(exc).removeprefix("hydra-ledger: ")) from None
    from hydra_ledger.load import read_records

    found = None if roots else _roots.find_roots()
    search = [Path(r) for r in (roots if found is None else found.roots)]
    if found is not None and not search:
        raise SelectError(_roots.nothing_found(found, f"{arg!r} is not a run directory either; pass the job dir, "
                                               "or --in PATH to look up a run id in").removeprefix("hydra-ledger: "))
    matches: dict[str, tuple[RunPaths, dict[str, Any]]] = {}
    for record_file, record in read_records(search, errors="ignore", run_id_prefix=arg):
        run_id = str(record.get("run_id") or "")
        if run_id.startswith(arg):
            paths = RunPaths.from_record_file(record_file)
            matches.setdefault(f"{run_id}  {paths.job_dir}", (paths, record))
    where = ", ".join(str(r) for r in search)
    if not matches:
        raise SelectError(f"no run with id starting with {arg!r} under {where}, and no such run directory")
    if len(matches) > 1:
        listing = "\n".join(f"  {m}" for m in sorted(matches))
        raise SelectError(
            f"run id prefix {arg!r} matches {len(matches)} runs under {where}:\n{listing}\n"
            "type more characters of the id, or the job dir"
        )
    return next(iter(matches.values()))


def _as_job_dir(path: Path) -> RunPaths | None:
    if path.name == RunPaths.RECORD and path.parent.name == LEDGER_DIR and path.is_file():
        return RunPaths.from_record_file(path)
    if path.name == LEDGER_DIR and (path / RunPaths.RECORD).is_file():
        return RunPaths(path.parent)
    if path.is_dir() and RunPaths(path).record.is_file():
        return RunPaths(path)
    if path.is_dir():
        raise SelectError(f"{path} holds no run record ({LEDGER_DIR}/{RunPaths.RECORD}); is it a sweep dir? "
                          "pass one of its job dirs, or a run id")
    return None
