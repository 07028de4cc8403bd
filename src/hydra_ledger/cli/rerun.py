"""``hydra-ledger rerun RUN``: reproduce a recorded run (exact code by default) into a new output dir."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from hydra_ledger.cli import DEFAULT_ROOTS_HELP, CommandError
from hydra_ledger.cli._output import printable

EXAMPLE = """\
Examples:
  hydra-ledger rerun multirun/2024-05-01/12-00-00/3 --check   # same commit + patch, compare the summary
  hydra-ledger rerun 3f2a9c --current-code -- trainer.epochs=1  # today's code, one extra override
  hydra-ledger rerun 3f2a9c --dry-run                           # print the commands only"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "rerun",
        help="reproduce a run: recorded commit, patch and overrides, config checked first",
        description="Rerun a recorded job into a new output dir. By default the recorded commit is checked out "
                    "into a temporary git worktree (your working tree, branch and stash are not touched), the "
                    "recorded patch applied and untracked files restored; the same python runs the same entry "
                    "point with the recorded overrides. The composed config is checked against the recorded "
                    "one before launching: a difference refuses the rerun. Extra overrides go after --.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run", metavar="RUN", help="a job dir, or a prefix of a run id")
    parser.add_argument("overrides", nargs=argparse.REMAINDER, metavar="-- OVERRIDE", help="extra overrides, after --")
    _add_options(parser)
    parser.set_defaults(func=run)


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--in", dest="roots", action="append", default=[], metavar="PATH",
                        help=f"where to look up run ids (default: {DEFAULT_ROOTS_HELP})")
    parser.add_argument("--current-code", action="store_true",
                        help="run the current working tree instead of the recorded commit")
    parser.add_argument("--from-saved-config", action="store_true",
                        help="use the saved .hydra/config.yaml and hydra settings instead of recomposing")
    parser.add_argument("--drop", action="append", default=[], metavar="KEY",
                        help="with --current-code: leave out a recorded key that no longer exists (repeatable)")
    parser.add_argument("--output-dir", metavar="DIR",
                        help="the new run's dir (default: where the app puts a new run: its recorded hydra.run.dir)")
    parser.add_argument("--launcher", metavar="NAME",
                        help="run through this Hydra launcher (e.g. submitit_local); default: locally, in-process")
    parser.add_argument("--dry-run", action="store_true", help="print the commands (worktree, patch, launch) only")
    parser.add_argument("--check", action="store_true",
                        help="compare the new summary with the recorded one; exit 1 when they differ")
    parser.add_argument("--rtol", type=float, default=1e-9, help="relative tolerance for floats (default 1e-9)")
    parser.add_argument("--atol", type=float, default=0.0, help="absolute tolerance for floats (default 0)")
    parser.add_argument("--ignore-summary", action="append", default=[], metavar="KEY",
                        help="a summary key left out of --check, e.g. a timing (repeatable)")


def split_overrides(args: argparse.Namespace,
                    add_options: Callable[[argparse.ArgumentParser], None] = _add_options) -> None:
    """Options given after the positional argument land in the overrides (argparse REMAINDER):
    parse them with ``add_options``' options, keep what follows ``--`` (rerun and resume)."""
    rest = list(args.overrides)
    before, after = (rest[:rest.index("--")], rest[rest.index("--") + 1:]) if "--" in rest else (rest, [])
    options = argparse.ArgumentParser(prog="hydra-ledger " + args.command, add_help=False)
    add_options(options)
    options.add_argument("more", nargs="*")
    options.parse_args(before, namespace=args)
    args.overrides = [*args.more, *after]


def run(args: argparse.Namespace) -> int:
    split_overrides(args)
    from hydra_ledger.relaunch.launch import RerunError
    from hydra_ledger.relaunch.rerun import execute, plan_rerun
    from hydra_ledger.relaunch.worktree import WorktreeError

    try:
        plan = plan_rerun(args.run, code="current" if args.current_code else "recorded",
                          config="saved" if args.from_saved_config else "recompose", overrides=args.overrides,
                          output_dir=args.output_dir, launcher=args.launcher, drop=args.drop, roots=args.roots)
        if args.dry_run:
            for command in plan.commands():
                print(command)
            for problem in plan.source.problems:  # execute() refuses these before running anything
                print(printable(f"hydra-ledger: warning: a rerun would refuse this record: {problem}"), file=sys.stderr)
            return 0
        result = execute(plan, check=args.check, rtol=args.rtol, atol=args.atol, ignore_summary=args.ignore_summary)
    except (RerunError, WorktreeError) as exc:
        raise CommandError(str(exc)) from None
    diff = result.config_diff
    if diff is not None:
        verdict = "same as recorded" if diff.same else "differs from the recorded one (current code)"
        if diff.intended:
            verdict += ", apart from the extra overrides"
        print(f"config check: {verdict}", file=sys.stderr)
        for line in diff.lines():
            print(line, file=sys.stderr)
    record = result.run or {}
    print(f"rerun of {plan.run_id} ({plan.job_dir}): {result.path}  run_id={record.get('run_id')}  "
          f"status={record.get('status', 'no record')}")
    if result.returncode != 0:
        print(f"hydra-ledger: the rerun exited with {result.returncode}", file=sys.stderr)
        return 1
    if result.summary is not None:
        _print_summary(result.summary)
        if not result.summary_ok:
            print("hydra-ledger: the summary differs from the recorded one", file=sys.stderr)
            return 1
    return 0


def _print_summary(rows: list[Any]) -> None:
    table = [("summary", "recorded", "rerun", "")] + [(r.key, repr(r.old), repr(r.new), "ok" if r.same else "DIFFERS")
                                                      for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
