"""``hydra-ledger status [SWEEP...]``: counts per status per sweep, and what went wrong where."""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra_ledger.cli import DEFAULT_ROOTS_HELP
from hydra_ledger.cli._output import (
    FORMATS,
    add_format_option,
    colour,
    dumps_json,
    duration,
    plain,
    printable,
    render,
    use_colour,
)
from hydra_ledger.cli._runs import load_frame_and_missing, relative
from hydra_ledger.record.paths import SweepPaths
from hydra_ledger.record.schema import PROBLEM_STATUSES, STATUSES
from hydra_ledger.record.sweep_jobs import MISSING

if TYPE_CHECKING:  # imported when the command runs: parsing the command line needs none of it
    import numpy as np
    import pandas as pd

EXAMPLE = """\
Examples:
  hydra-ledger status                      # every sweep of the project (outputs/, multirun/, registered dirs)
  hydra-ledger status multirun/2024-05-01/12-00-00 --format json"""

PROBLEMS = PROBLEM_STATUSES
COLUMNS = ["run_id", "path", "sweep", "job_num", "status", "started_at"]  # all status reads (with the error's)
SHOWN = (*STATUSES, MISSING)  # MISSING: listed in the sweep's job list, never started, and never will


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "status",
        help="counts per status for each sweep; path and error of every failed or died job",
        description="For each sweep: how many jobs are in each status and, for every failed, died, "
                    "interrupted, timed-out or preempted job, its path and the first line of its error. "
                    "While a sweep runs, its progress and the running jobs' ages.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="*", metavar="SWEEP", help=f"sweeps or roots (default: {DEFAULT_ROOTS_HELP})")
    parser.add_argument("--debug", action="store_true", help="include debug runs (hydra.callbacks.ledger.debug=true)")
    add_format_option(parser, FORMATS)
    parser.set_defaults(func=run)


def sweeps(frame: pd.DataFrame, now: float, missing: dict[str, list[dict[str, Any]]] | None = None,
           ) -> list[dict[str, Any]]:
    """One entry per sweep (single runs grouped by their parent dir), oldest sweep first.

    Counted per column (100k runs in well under a second); only running and problem rows
    are visited one by one. ``missing``: sweep dir (real path) -> its MISSING jobs, counted in
    ``total`` and ``counts`` and listed under ``missing``.
    """
    import numpy as np
    import pandas as pd

    missing = missing or {}
    if not len(frame):
        return _with_missing([], missing)
    keys = frame["sweep"].to_numpy(dtype=object, copy=True)
    paths = frame["path"].to_numpy(dtype=object)
    for i in [i for i, key in enumerate(keys.tolist()) if not key]:
        keys[i] = str(Path(paths[i]).parent)
    codes, uniques = pd.factorize(keys, sort=False, use_na_sentinel=False)
    status_codes, status_names = _status_codes(frame["status"])
    width = len(status_names)
    grid = np.bincount(codes * width + status_codes, minlength=len(uniques) * width).reshape(len(uniques), width)
    entries = []
    for i, key in enumerate(uniques.tolist()):
        counts = {str(name): int(n) for name, n in zip(status_names, grid[i]) if n}
        entries.append({"sweep": relative(key), "total": int(grid[i].sum()),
                        "counts": {s: counts[s] for s in STATUSES if s in counts}, "running": [], "problems": []})
    looked_at = [i for i, name in enumerate(status_names) if name in ("RUNNING", *PROBLEMS)]
    visit = np.flatnonzero(np.isin(status_codes, looked_at))  # codes: no 100,000-string array to search
    if len(visit):
        def column(name: str) -> list[Any]:
            return frame[name].take(visit).tolist() if name in frame.columns else [None] * len(visit)

        for code, status, path, run_id, started, message, error_type in zip(
                codes[visit].tolist(), status_names[status_codes[visit]].tolist(), column("path"), column("run_id"),
                column("started_at"), column("error.message"), column("error.type")):
            entry = entries[code]
            if status == "RUNNING":
                started = plain(started)
                age = now - pd.Timestamp(started).timestamp() if started else None
                entry["running"].append({"path": relative(path), "run_id": run_id,
                                         "age_s": None if age is None else round(age, 1)})
            else:
                message, error_type = plain(message), plain(error_type)
                # the first line: split at newlines only (splitlines also splits at \r, \x1c, \x85 ...)
                first = str(message).strip().split("\n")[0].rstrip() if message and str(message).strip() else ""
                entry["problems"].append({
                    "path": relative(path), "run_id": run_id, "status": status,
                    "error": f"{error_type}: {first}" if error_type else first or _no_error(status),
                })
    return _with_missing(entries, missing)


def _status_codes(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Each row's status as a code, and the names the codes stand for (a missing status is "nan")."""
    import numpy as np
    import pandas as pd

    if isinstance(column.dtype, pd.CategoricalDtype):  # as loaded: the codes are there (-1: missing)
        names = np.array([*map(str, column.cat.categories), "nan"], dtype=object)
        codes = column.cat.codes.to_numpy().astype(np.intp)
        return np.where(codes < 0, len(names) - 1, codes), names
    return pd.factorize(column.astype(object).map(str).to_numpy(dtype=object), sort=False, use_na_sentinel=False)


def _with_missing(entries: list[dict[str, Any]], missing: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Add each sweep's MISSING jobs (a sweep with no loaded job gets an entry of its own), and ``finished``."""
    by_key = {os.path.realpath(e["sweep"]): e for e in entries} if missing else {}  # 1,000 sweeps: 40 ms
    for key, jobs in missing.items():
        entry = by_key.get(key)
        if entry is None:
            entry = {"sweep": relative(key), "total": 0, "counts": {}, "running": [], "problems": []}
            entries.append(entry)
        entry["total"] += len(jobs)
        entry["counts"] = {**entry["counts"], MISSING: len(jobs)}
        entry["missing"] = jobs
    for entry in entries:
        counts = entry["counts"]
        entry["finished"] = entry["total"] - sum(counts.get(s, 0) for s in ("RUNNING", "PENDING", MISSING))
    return entries


def _no_error(status: str) -> str:
    if status == "DIED":
        return "heartbeat stopped: the process was killed without a chance to write (OOM, SIGKILL, node failure?)"
    return "(no error recorded)"


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    frame, missing = load_frame_and_missing(args.paths, include_debug=args.debug, columns=COLUMNS,
                                            optional=["error.type", "error.message"],
                                            show_progress=args.format != "json")
    entries = sweeps(frame, time.time(), missing)
    if args.format == "json":
        print(dumps_json(entries, indent=1))
        return 0
    present = [s for s in SHOWN if any(s in e["counts"] for e in entries)]
    table = pd.DataFrame(
        [{"sweep": e["sweep"], "total": e["total"], **{s: e["counts"].get(s, 0) for s in present}} for e in entries],
        columns=["sweep", "total", *present],
    )
    coloured = use_colour(sys.stdout) and args.format == "table"
    print(render(table, args.format), end="")
    if args.format != "table":
        return 0
    for entry in entries:
        if not entry["running"] and not entry["problems"] and not entry.get("missing"):
            continue
        print()
        head = entry["sweep"]
        if entry["running"]:
            head += f": running, {entry['finished']}/{entry['total']} finished"
        print(colour(printable(head), "bold", coloured))
        for job in entry["running"]:
            print(f"  {colour('RUNNING', 'RUNNING', coloured)}  {printable(job['path'])}  for {duration(job['age_s'])}")
        for job in entry["problems"]:
            print(f"  {colour(job['status'], job['status'], coloured)}  {printable(job['path'])}  "
                  f"{printable(job['error'])}")
        if entry.get("missing"):
            nums = ", ".join(str(job["num"]) for job in entry["missing"])
            # resume needs one recorded job (its entry point); with none, the sweep's command is the way
            argv_file = printable(relative(SweepPaths(entry["sweep"]).record))
            fix = (printable("hydra-ledger resume " + shlex.quote(entry["sweep"]))
                   if entry["total"] > len(entry["missing"])
                   else f"run the sweep's command again (argv in {argv_file})")
            print(f"  {colour(MISSING, 'red', coloured)}  job{'s' if len(entry['missing']) > 1 else ''} {nums} never "
                  f"started and never will (the sweep's launcher is gone): {fix}")
    return 0
