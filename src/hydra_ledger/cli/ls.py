"""``hydra-ledger ls``: a table of runs, newest first: status, start, duration, swept keys, summary."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hydra_ledger.cli import DEFAULT_ROOTS_HELP, CommandError
from hydra_ledger.cli._output import (
    FORMATS,
    add_format_option,
    colour,
    duration,
    plain,
    printable,
    render,
    render_rows,
    text,
    texts,
    use_colour,
)
from hydra_ledger.cli._runs import bar, column_name, load_frame

if TYPE_CHECKING:  # imported when the command runs: parsing the command line needs neither
    import pandas as pd

EXAMPLE = """\
Examples:
  hydra-ledger ls multirun --where "cfg.lr > 0.01 and status == 'COMPLETED'" --sort summary.loss
  hydra-ledger ls --columns 'cfg.model.*' 'summary.*' --format markdown
  hydra-ledger ls multirun --group-by cfg.model.name cfg.lr --format latex"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "ls",
        help="list runs: status, start, duration, swept keys, summary",
        description="List runs newest first: run id, status, start, duration, the keys the listed runs "
                    "swept (choice.<group> for a config group, cfg.<key> for a value), and the summary. "
                    "Config keys that vary only because a group choice changed are folded: --all-columns "
                    "or --columns shows them, and so do --sort and --where when they name them.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="*", help=f"runs, sweeps or roots (default: {DEFAULT_ROOTS_HELP})")
    parser.add_argument("--where", "-w", metavar="EXPR",
                        help="keep runs where this pandas-style expression on column names holds, "
                             "e.g. \"cfg.model.lr > 0.01 and status == 'COMPLETED'\"")
    parser.add_argument("--tag", "-t", action="append", default=[], metavar="TAG",
                        help="keep runs carrying this tag (repeat for all of several)")
    parser.add_argument("--sort", "-s", action="append", default=[], metavar="COLUMN",
                        help="sort by this column; descending with a '~' prefix or --sort=-COLUMN "
                             "(repeatable; default: newest first)")
    parser.add_argument("--columns", "-c", nargs="+", default=[], metavar="GLOB",
                        help="show these columns (glob patterns such as 'cfg.model.*'), after run_id")
    parser.add_argument("--debug", action="store_true", help="include debug runs (hydra.callbacks.ledger.debug=true)")
    parser.add_argument("--all-columns", "-a", action="store_true",
                        help="show every column, the folded config keys included")
    parser.add_argument("--limit", "-n", type=int, metavar="N", help="show at most N runs")
    parser.add_argument("--group-by", "-g", nargs="+", metavar="KEY",
                        help="one row per value of these keys: count, and mean ± std of the summary values")
    add_format_option(parser, (*FORMATS, "latex"))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if _default_view(args) and _print_newest(args):
        return 0
    from hydra_ledger.load.swept import folded
    from hydra_ledger.load.where import apply_where

    frame = load_frame(args.paths, include_debug=args.debug, tags=args.tag,
                       show_progress=args.format != "json")
    if args.where:
        frame = apply_where(frame, args.where)
    if frame.empty:
        print("hydra-ledger: no runs match", file=sys.stderr)
        if args.format in ("json",):
            print("[]")
        return 0
    frame = _sort(frame, args.sort)
    if args.group_by:
        table = group(frame, args.group_by)
        if args.limit is not None:
            table = table.head(args.limit)
        wide = args.format in ("csv", "json")
        print(render(table if wide else _mean_std_text(table), args.format), end="")
        return 0
    columns = _columns(frame, args)  # of all the runs selected: the same columns whatever --limit
    selected = frame
    if args.limit is not None:
        frame = frame.head(args.limit)
    print(render(frame[columns], args.format, display=_display(args)), end="")
    if _fold_note_wanted(args):
        note = fold_note(folded(selected, columns))  # for the reader of the table; never in a pipe
        if note:
            print(printable(note), file=sys.stderr)  # group names are recorded data
    return 0


def _fold_note_wanted(args: argparse.Namespace) -> bool:
    return args.format == "table" and not (args.all_columns or args.columns) and sys.stdout.isatty()


def _default_view(args: argparse.Namespace) -> bool:
    """Only paths, --limit, --debug and a text format: the view the index answers without pandas."""
    return not (args.where or args.tag or args.sort or args.columns or args.all_columns or args.group_by) \
        and args.format in ("table", "markdown", "latex")


def _print_newest(args: argparse.Namespace) -> bool:
    """Print the default view from the index (see :mod:`hydra_ledger.load.newest`); False when
    the runs need the full frame, having printed nothing."""
    from hydra_ledger.load.newest import newest

    listing = newest(args.paths, limit=args.limit, include_debug=args.debug, fold_columns=_fold_note_wanted(args),
                     progress=bar(True))
    if listing is None:
        return False
    if not listing.columns:
        print("hydra-ledger: no runs match", file=sys.stderr)
        return True
    display = _display(args)
    header = [printable(c) for c in listing.columns]
    cells = [list(map(display[c], listing.values[c])) if c in display else texts(listing.values[c], listing.kinds[c])
             for c in listing.columns]
    rows = [list(row) for row in zip(*cells)]
    numeric = [listing.kinds[c] in (int, float) for c in listing.columns]
    print(render_rows(header, rows, numeric, args.format), end="")
    note = fold_note(listing.folded)
    if note:
        print(printable(note), file=sys.stderr)
    return True


def _display(args: argparse.Namespace) -> dict[str, Callable[[Any], str]]:
    """How the cells of some columns are shown: durations as ``1m15s``, statuses in colour on a terminal."""
    display: dict[str, Callable[[Any], str]] = {"duration_s": duration}
    if args.format == "table" and use_colour(sys.stdout):
        display["status"] = lambda v: colour(text(v), text(v), True)
    return display


def _sort(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    if not keys:
        return frame.sort_values("started_at", ascending=False, kind="stable", na_position="last")
    names, ascending = [], []
    for key in keys:
        descending = key.startswith(("-", "~"))
        names.append(column_name(key.lstrip("-~"), frame, "--sort"))
        ascending.append(not descending)
    try:
        return frame.sort_values(names, ascending=ascending, kind="stable", na_position="last")
    except TypeError as exc:
        raise CommandError(f"--sort {' '.join(keys)}: cannot order these values ({exc})") from None


def _columns(frame: pd.DataFrame, args: argparse.Namespace) -> list[str]:
    from hydra_ledger.load.swept import swept_keys
    from hydra_ledger.load.where import glob_columns

    if args.all_columns:
        return list(frame.columns)
    if args.columns:
        chosen = glob_columns([str(c) for c in frame.columns], args.columns)
        return ["run_id", *[c for c in chosen if c != "run_id"]]
    summary = [c for c in frame.columns if str(c).startswith("summary.")]
    extra = [c for c in ("tags",) if c in frame.columns]
    keys = swept_keys(frame)
    asked = [c for c in _asked(frame, args) if c not in keys and c.startswith(("cfg.", "choice."))]
    return ["run_id", "status", "started_at", "duration_s", *keys, *asked, *summary, *extra]


def _asked(frame: pd.DataFrame, args: argparse.Namespace) -> list[str]:
    """The columns named in --sort and --where: shown even when folded."""
    from hydra_ledger.load.where import referenced

    names = [column_name(key.lstrip("-~"), frame, "--sort") for key in args.sort]
    if args.where:
        names += referenced(args.where, [str(c) for c in frame.columns])[1]
    return list(dict.fromkeys(names))


def fold_note(folded: dict[str, list[str]]) -> str | None:
    """``hydra-ledger: 29 varying config keys folded (27 behind choice.model, 2 others); ...``."""
    total = sum(len(columns) for columns in folded.values())
    if not total:
        return None
    parts = [f"{len(columns)} behind {behind}" if behind else f"{len(columns)} other{'s' * (len(columns) > 1)}"
             for behind, columns in folded.items()]
    behind = next(iter(folded))
    how = f"behind {behind}" if len(folded) == 1 and behind else f"({', '.join(parts)})"
    return (f"hydra-ledger: {total} varying config key{'s' * (total > 1)} folded {how}; "
            "--all-columns shows them, --columns picks some")


def group(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per combination of ``keys``: ``count``, then ``<summary>.mean`` and ``<summary>.std`` columns."""
    import pandas as pd

    names = [column_name(k, frame, "--group-by") for k in keys]
    metrics = [c for c in frame.columns if str(c).startswith("summary.")
               and pd.api.types.is_numeric_dtype(frame[c].dtype) and not pd.api.types.is_bool_dtype(frame[c].dtype)]
    # column by column (Series.map): DataFrame.map is pandas >= 2.1 (applymap before), and we support 2.0
    key_frame = pd.DataFrame({n: frame[n].map(lambda v: plain(v) if not isinstance(v, list) else tuple(v))
                              for n in names}, index=frame.index)
    grouped = frame.assign(**{n: key_frame[n] for n in names}).groupby(names, dropna=False, sort=True)
    out = grouped.size().rename("count").to_frame()
    for metric in metrics:
        values = grouped[metric].agg(["mean", "std"]).astype("float64")
        out[f"{metric}.mean"] = values["mean"]
        out[f"{metric}.std"] = values["std"]
    return out.reset_index()


def _mean_std_text(table: pd.DataFrame) -> pd.DataFrame:
    """``x.mean`` and ``x.std`` columns joined into one ``x`` column of ``mean ± std`` text."""
    import pandas as pd

    out = pd.DataFrame(index=table.index)
    for column in table.columns:
        name = str(column)
        if name.endswith(".std"):
            continue
        if name.endswith(".mean"):
            base = name[: -len(".mean")]
            out[base] = [_pm(m, s) for m, s in zip(table[column], table[f"{base}.std"])]
        else:
            out[name] = table[column]
    return out


def _pm(mean: Any, std: Any) -> str:  # floats, or NaN/NA where a group had none
    import pandas as pd

    if pd.isna(mean):
        return ""
    if pd.isna(std):
        return f"{mean:.4g}"
    return f"{mean:.4g} ± {std:.2g}"
