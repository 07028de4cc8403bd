"""``hydra-ledger status [SWEEP...]``: counts per status per sweep, and what went wrong where."""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra_ledger.cli import DEFAULT_ROOTS_HELP
from hydra_ledger.cli._output import (
    FORMATS,
    add_format_option,
    colour,
    dumps_json,
    duration,
    is_missing,
    plain,
    printable,
    render,
    render_rows,
    text,
    use_colour,
)
from hydra_ledger.cli._runs import bar, load_frame_and_missing, relative
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
    import pandas as pd

    if not len(frame):
        return _with_missing([], missing or {})
    keys = frame["sweep"].to_numpy(dtype=object, copy=True)
    paths = frame["path"].to_numpy(dtype=object)
    for i in [i for i, key in enumerate(keys.tolist()) if not key]:
        keys[i] = str(Path(paths[i]).parent)
    codes, uniques = pd.factorize(keys, sort=False, use_na_sentinel=False)
    status_codes, status_names = _status_codes(frame["status"])

    def column(name: str, rows: np.ndarray) -> list[Any]:
        return frame[name].take(rows).tolist() if name in frame.columns else [None] * len(rows)

    return tally(codes, list(uniques), status_codes, status_names, column, now, missing)


def tally(codes: np.ndarray, uniques: list[str], status_codes: np.ndarray, status_names: np.ndarray,
          column: Callable[[str, np.ndarray], list[Any]], now: float,
          missing: dict[str, list[dict[str, Any]]] | None = None) -> list[dict[str, Any]]:
    """:func:`sweeps` of rows given as codes: each row's sweep (a single run: its parent dir) as a
    code into ``uniques`` (numbered in order of first row), its status as a code into ``status_names``;
    ``column(name, rows)`` gives the values of the running and problem rows."""
    import numpy as np

    missing = missing or {}
    if not len(codes):
        return _with_missing([], missing)
    width = len(status_names)
    grid = np.bincount(codes * width + status_codes, minlength=len(uniques) * width).reshape(len(uniques), width)
    entries = []
    for i, key in enumerate(uniques):
        counts = {str(name): int(n) for name, n in zip(status_names, grid[i]) if n}
        entries.append({"sweep": relative(key), "total": int(grid[i].sum()),
                        "counts": {s: counts[s] for s in STATUSES if s in counts}, "running": [], "problems": []})
    looked_at = [i for i, name in enumerate(status_names) if name in ("RUNNING", *PROBLEMS)]
    visit = np.flatnonzero(np.isin(status_codes, looked_at))  # codes: no 100,000-string array to search
    if len(visit):
        for code, status, job_path, run_id, started, message, error_type in zip(
                codes[visit].tolist(), status_names[status_codes[visit]].tolist(), column("path", visit),
                column("run_id", visit), column("started_at", visit), column("error.message", visit),
                column("error.type", visit)):
            entry = entries[code]
            if status == "RUNNING":  # a start time is a datetime (pandas' Timestamp in a frame), or missing
                age = None if is_missing(started) else now - started.timestamp()
                entry["running"].append({"path": relative(job_path), "run_id": run_id,
                                         "age_s": None if age is None else round(age, 1)})
            else:
                message, error_type = plain(message), plain(error_type)
                # the first line: split at newlines only (splitlines also splits at \r, \x1c, \x85 ...)
                first = str(message).strip().split("\n")[0].rstrip() if message and str(message).strip() else ""
                entry["problems"].append({
                    "path": relative(job_path), "run_id": run_id, "status": status,
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


def _counts(header: list[str], rows: list[list[Any]], fmt: str) -> str:
    """The table of counts per sweep in ``fmt``: text formats without pandas, csv through it."""
    if fmt == "csv":
        import pandas as pd

        return render(pd.DataFrame(rows, columns=header), fmt)
    return render_rows([printable(h) for h in header], [[text(v) for v in row] for row in rows],
                       [name != "sweep" for name in header], fmt)


def _no_error(status: str) -> str:
    if status == "DIED":
        return "heartbeat stopped: the process was killed without a chance to write (OOM, SIGKILL, node failure?)"
    return "(no error recorded)"


def indexed_sweeps(paths: list[str], include_debug: bool, show_progress: bool) -> list[dict[str, Any]] | None:
    """:func:`sweeps` of the runs under ``paths`` read straight from their index, without pandas
    (see :mod:`hydra_ledger.load.quick`); None when the frame must be loaded."""
    import numpy as np
    import pyarrow as pa

    from hydra_ledger.load import kernels
    from hydra_ledger.load.quick import settled
    from hydra_ledger.load.tables import from_numpy, start_order, timestamps

    found = settled(paths, include_debug=include_debug, progress=bar(show_progress))
    if found is None:
        return None
    table = found.table
    times = table.column("started_at").type if "started_at" in table.column_names else pa.null()
    if times != pa.null() and not pa.types.is_timestamp(times):
        return None  # times kept as text: the frame parses them
    if "sweep" in table.column_names and not _plain_text(table.column("sweep").type):
        return None
    found.report_broken()
    order = start_order(table)  # the frame's row order

    def column(name: str, rows: np.ndarray) -> list[Any]:
        if name not in table.column_names:
            return [None] * len(rows)
        taken = kernels.take(table.column(name), from_numpy(order[rows], pa.int64()))
        return timestamps(taken) if pa.types.is_timestamp(taken.type) else taken.to_pylist()

    keyed = _sweep_codes(table, order, column)
    names = np.array([*STATUSES, "nan"], dtype=object)  # no status (-1) last: the frame's "nan"
    codes = found.codes[order]
    return tally(*keyed, np.where(codes < 0, len(names) - 1, codes), names, column, time.time(), found.missing())


def _plain_text(kind: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_string(kind) or kind == pa.null())


def _sweep_codes(table: Any, order: np.ndarray, column: Callable[[str, np.ndarray], list[Any]],
                 ) -> tuple[np.ndarray, list[str]]:
    """Each row's sweep (a single run: its job dir's parent) as a code, numbered in order of first
    row (rows in ``order``), and the sweeps; a text at a time, not a row at a time."""
    import numpy as np

    from hydra_ledger.load import kernels
    from hydra_ledger.load.tables import as_numpy

    if "sweep" not in table.column_names:
        texts: list[Any] = []
        indices = np.zeros(table.num_rows, np.int64)
    else:
        encoded = kernels.dictionary_encode(table.column("sweep").combine_chunks())
        texts = encoded.dictionary.to_pylist()
        indices = as_numpy(encoded.indices, missing=len(texts)).astype(np.int64)[order]
    blank = np.isin(indices, [i for i, text in enumerate(texts) if not text] + [len(texts)])
    blank_rows = np.flatnonzero(blank)
    parents = [str(Path(path).parent) for path in column("path", blank_rows)]
    first: dict[str, int] = {}  # each sweep's first row
    named_rows = np.flatnonzero(~blank)
    found, at = np.unique(indices[named_rows], return_index=True)
    for i, row in zip(found.tolist(), named_rows[at].tolist()):
        first[texts[i]] = row
    for row, parent in zip(blank_rows.tolist(), parents):
        if first.get(parent, row) >= row:
            first[parent] = row
    uniques = sorted(first, key=first.__getitem__)
    number = {key: n for n, key in enumerate(uniques)}
    lookup = np.array([number[text] if text else -1 for text in texts] + [-1], np.int64)
    codes = lookup[indices]
    codes[blank_rows] = [number[parent] for parent in parents]
    return codes, uniques


def run(args: argparse.Namespace) -> int:
    entries = indexed_sweeps(args.paths, args.debug, args.format != "json") if args.format != "csv" else None
    if entries is None:
        frame, missing = load_frame_and_missing(args.paths, include_debug=args.debug, columns=COLUMNS,
                                                optional=["error.type", "error.message"],
                                                show_progress=args.format != "json")
        entries = sweeps(frame, time.time(), missing)
    if args.format == "json":
        print(dumps_json(entries, indent=1))
        return 0
    present = [s for s in SHOWN if any(s in e["counts"] for e in entries)]
    header = ["sweep", "total", *present]
    rows = [[e["sweep"], e["total"], *(e["counts"].get(s, 0) for s in present)] for e in entries]
    coloured = use_colour(sys.stdout) and args.format == "table"
    print(_counts(header, rows, args.format), end="")
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
