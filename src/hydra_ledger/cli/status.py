"""``hydra-ledger status [SWEEP...]``: counts per status per sweep, and what went wrong where."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hydra_ledger.cli._output import (FORMATS, add_format_option, colour, dumps_json, duration, plain, printable, render,
                                      use_colour)
from hydra_ledger.cli._runs import load_frame, relative
from hydra_ledger.record import PROBLEM_STATUSES, STATUSES

EXAMPLE = """\
Examples:
  hydra-ledger status                      # every sweep under outputs/ and multirun/
  hydra-ledger status multirun/2024-05-01/12-00-00 --format json"""

PROBLEMS = PROBLEM_STATUSES
COLUMNS = ["run_id", "path", "sweep", "status", "started_at"]  # all status reads (with the error's)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "status",
        help="counts per status for each sweep; path and error of every failed or died job",
        description="For each sweep: how many jobs are in each status and, for every failed, died, "
                    "interrupted, timed-out or preempted job, its path and the first line of its error. "
                    "While a sweep runs, its progress and the running jobs' ages.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="*", metavar="SWEEP", help="sweeps or roots (default: outputs and multirun)")
    parser.add_argument("--debug", action="store_true", help="include debug runs (hydra.callbacks.ledger.debug=true)")
    add_format_option(parser, FORMATS)
    parser.set_defaults(func=run)


def sweeps(frame: pd.DataFrame, now: float) -> list[dict[str, Any]]:
    """One entry per sweep (single runs grouped by their parent dir), oldest sweep first.

    Counted per column (100k runs in well under a second); only running and problem rows
    are visited one by one.
    """
    if not len(frame):
        return []
    keys = frame["sweep"].to_numpy(dtype=object, copy=True)
    paths = frame["path"].to_numpy(dtype=object)
    for i in [i for i, key in enumerate(keys.tolist()) if not key]:
        keys[i] = str(Path(paths[i]).parent)
    codes, uniques = pd.factorize(keys, sort=False, use_na_sentinel=False)
    statuses = frame["status"].astype(object).map(str).to_numpy(dtype=object)
    status_codes, status_names = pd.factorize(statuses, sort=False, use_na_sentinel=False)
    width = len(status_names)
    grid = np.bincount(codes * width + status_codes, minlength=len(uniques) * width).reshape(len(uniques), width)
    entries = []
    for i, key in enumerate(uniques.tolist()):
        counts = {str(name): int(n) for name, n in zip(status_names, grid[i]) if n}
        entries.append({"sweep": relative(key), "total": int(grid[i].sum()),
                        "counts": {s: counts[s] for s in STATUSES if s in counts}, "running": [], "problems": []})
    visit = np.flatnonzero(np.isin(statuses, ["RUNNING", *PROBLEMS]))
    if len(visit):
        def column(name: str) -> list[Any]:
            return frame[name].take(visit).tolist() if name in frame.columns else [None] * len(visit)

        for code, status, path, run_id, started, message, error_type in zip(
                codes[visit].tolist(), statuses[visit].tolist(), column("path"), column("run_id"),
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
    for entry in entries:
        unfinished = entry["counts"].get("RUNNING", 0) + entry["counts"].get("PENDING", 0)
        entry["finished"] = entry["total"] - unfinished
    return entries


def _no_error(status: str) -> str:
    if status == "DIED":
        return "heartbeat stopped: the process was killed without a chance to write (OOM, SIGKILL, node failure?)"
    return "(no error recorded)"


def run(args: argparse.Namespace) -> int:
    frame = load_frame(args.paths, include_debug=args.debug, columns=COLUMNS, optional=["error.type", "error.message"],
                       show_progress=args.format != "json")
    entries = sweeps(frame, time.time())
    if args.format == "json":
        print(dumps_json(entries, indent=1))
        return 0
    present = [s for s in STATUSES if any(s in e["counts"] for e in entries)]
    table = pd.DataFrame(
        [{"sweep": e["sweep"], "total": e["total"], **{s: e["counts"].get(s, 0) for s in present}} for e in entries],
        columns=["sweep", "total", *present],
    )
    coloured = use_colour(sys.stdout) and args.format == "table"
    print(render(table, args.format), end="")
    if args.format != "table":
        return 0
    for entry in entries:
        if not entry["running"] and not entry["problems"]:
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
    return 0
