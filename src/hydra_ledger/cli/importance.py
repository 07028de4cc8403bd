"""``hydra-ledger importance [SWEEP...] --metric summary.X``: which swept keys a metric depends on.

pandas and optuna are imported inside the command only: the command line starts without them.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

from hydra_ledger.cli import DEFAULT_ROOTS_HELP, CommandError

EXAMPLE = """\
Examples:
  hydra-ledger importance multirun/2024-05-01/12-00-00 --metric summary.loss
  hydra-ledger importance multirun/2024-05-01/12-00-00 --metric accuracy --direction maximize --format json"""

BAR_WIDTH = 30


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "importance",
        help="hyperparameter importance: how much of a metric's variation each swept key explains",
        description="Rank the keys a sweep swept (config values and group choices) by how much of a summary "
                    "metric's variation each explains, with Optuna's importance evaluators, for any sweep: a grid "
                    "of the basic, joblib or submitit launcher as well as an Optuna sweep. Uses the runs that "
                    "completed with a finite metric; the importances sum to 1. Needs optuna and scikit-learn "
                    "(pip install 'hydra-ledger[importance]'). Without SWEEP, the latest sweep.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="*", metavar="SWEEP",
                        help="sweeps whose runs are ranked together (default: the latest sweep under "
                             f"{DEFAULT_ROOTS_HELP})")
    parser.add_argument("--metric", "-m", required=True, metavar="COLUMN",
                        help="the summary value to explain: summary.loss (or loss)")
    parser.add_argument("--direction", choices=["minimize", "maximize"],
                        help="whether a lower or a higher metric is better (default: the Optuna study's for "
                             "its objective, summary.value; else minimize); only ped-anova, which compares the "
                             "best runs with all, depends on it")
    parser.add_argument("--evaluator", "-e", choices=["fanova", "mdi", "ped-anova"],
                        help="fanova (the default, as Optuna's; about a minute at 2,000 runs), mdi (mean "
                             "decrease impurity: seconds; the default on optuna 2.x, whose fANOVA fails with "
                             "numpy 1.24 and later), ped-anova (in optuna releases that have it)")
    parser.add_argument("--where", "-w", metavar="EXPR", help="only runs where this expression holds (as in ls)")
    parser.add_argument("--format", "-f", choices=["text", "json"], default="text",
                        help="text for people (default) or JSON for scripts")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hydra_ledger.cli._output import dumps_json, printable, printable_lines
    from hydra_ledger.cli._runs import load_frame, relative
    from hydra_ledger.load import importance

    problem = importance.available()
    if problem:  # before loading thousands of runs
        raise CommandError(problem)
    frame = load_frame(args.paths, show_progress=True)
    if args.where:
        from hydra_ledger.load.where import apply_where

        frame = apply_where(frame, args.where)
    if not len(frame):
        raise CommandError(f"no runs under {', '.join(args.paths) or DEFAULT_ROOTS_HELP}")
    sweeps = _sweeps(frame)
    if not args.paths and len(sweeps) > 1:
        latest = _latest_sweep(frame)
        frame = frame[frame["sweep"].astype(object) == latest]
        print(printable(f"hydra-ledger: the latest sweep, {relative(latest)} (name sweeps to rank their runs "
                        f"together)"), file=sys.stderr)
        sweeps = [latest]
    try:
        column = importance.metric_column(frame, args.metric)
        direction = args.direction or importance.study_direction(frame, column) or "minimize"
        result = importance.param_importance(frame, column, direction=direction, evaluator=args.evaluator)
    except importance.ImportanceError as exc:
        raise CommandError(str(exc)) from None
    if args.format == "json":
        print(dumps_json({**result.to_dict(), "sweeps": [relative(s) for s in sweeps]}, indent=1))
        return 0
    print(printable_lines(render_text(result.to_dict(), result.label, [relative(s) for s in sweeps])), end="")
    for line in ([result.note] if result.note else []) + (
            [f"constant in these runs, left out: {', '.join(result.constant)}"] if result.constant else []):
        print(printable(f"hydra-ledger: {line}"), file=sys.stderr)
    return 0


def render_text(result: dict[str, Any], label: str, sweeps: list[str]) -> str:
    """A heading with the runs used, then one line per key: name, importance, a bar."""
    where = f" of {sweeps[0]}" if len(sweeps) == 1 else f" of {len(sweeps)} sweeps" if sweeps else ""
    how = f"{label} importance" if label else "importance"
    lines = [f"{result['metric']} ({result['direction']}): {how} over {result['runs']} of {result['total']} "
             f"runs{where} (completed, with a finite {result['metric']})"]
    rows = result["importances"]
    width = max([len("key"), *(len(r["key"]) for r in rows)])
    lines.append(f"{'key':<{width}}  importance")
    for row in rows:
        value = row["importance"]
        bar = "█" * round(max(0.0, min(1.0, value)) * BAR_WIDTH)
        lines.append(f"{row['key']:<{width}}  {value:10.4f}  {bar}".rstrip())
    return "\n".join(lines) + "\n"


def _sweeps(frame: Any) -> list[str]:
    """The sweep dirs of the runs, oldest first (single runs: none)."""
    if "sweep" not in frame.columns:
        return []
    return [s for s in dict.fromkeys(frame.sort_values("started_at")["sweep"].tolist()) if isinstance(s, str) and s]


def _latest_sweep(frame: Any) -> str:
    with_sweep = frame[frame["sweep"].map(lambda s: isinstance(s, str) and bool(s)).astype(bool)]
    return str(with_sweep.sort_values("started_at")["sweep"].iloc[-1])
