"""``hydra-ledger resume SWEEP_DIR``: relaunch the failed, dead, interrupted, timed-out and missing jobs."""
from __future__ import annotations

import argparse
import sys

from hydra_ledger.cli import CommandError
from hydra_ledger.cli._output import printable
from hydra_ledger.cli.rerun import split_overrides

EXAMPLE = """\
Examples:
  hydra-ledger resume multirun/2024-05-01/12-00-00 --dry-run         # list what would run
  hydra-ledger resume multirun/2024-05-01/12-00-00 --launcher submitit_slurm"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "resume",
        help="relaunch only the failed, dead, interrupted, timed-out or missing jobs of a sweep",
        description="Relaunch the jobs of a sweep that are FAILED, DIED, INTERRUPTED, TIMEOUT (or another "
                    "unfinished final state) or never started, keeping their job numbers and writing into the "
                    "same sweep dir; completed jobs never rerun. The earlier records move to .ledger/history/. "
                    "Runs the recorded commit in a temporary git worktree unless --current-code.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("sweep_dir", metavar="SWEEP_DIR", help="the sweep dir (holding .ledger/sweep.json)")
    parser.add_argument("overrides", nargs=argparse.REMAINDER, metavar="-- OVERRIDE",
                        help="extra overrides for every job, after --")
    _add_options(parser)
    parser.set_defaults(func=run)


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--launcher", metavar="NAME",
                        help="another Hydra launcher, e.g. submitit_slurm (default: the sweep's own)")
    parser.add_argument("--current-code", action="store_true",
                        help="run the current working tree instead of the sweep's recorded commit")
    parser.add_argument("--stale-after", type=float, metavar="SECONDS",
                        help="heartbeat age after which a RUNNING job counts as DIED (default per job)")
    parser.add_argument("--dry-run", action="store_true", help="list the jobs that would run, and the command")


def run(args: argparse.Namespace) -> int:
    split_overrides(args, _add_options)
    from hydra_ledger.relaunch.launch import RerunError
    from hydra_ledger.relaunch.resume import execute_resume, plan_resume
    from hydra_ledger.relaunch.worktree import WorktreeError

    try:
        plan = plan_resume(args.sweep_dir, launcher=args.launcher, code="current" if args.current_code else "recorded",
                           overrides=args.overrides, stale_after=args.stale_after)
    except (RerunError, WorktreeError) as exc:
        raise CommandError(str(exc)) from None
    for note in plan.notes:
        print(f"hydra-ledger: {note}", file=sys.stderr)
    if plan.skipped:
        kept = ", ".join(f"{num} {status}" for num, status in sorted(plan.skipped.items()))
        print(f"left alone: {kept}")
    if not plan.jobs:
        print("nothing to resume: every job of the sweep completed (or is still running)")
        return 0
    print("to relaunch:")
    for job in plan.jobs:
        print(f"  {job.num}  {job.status:<11} {plan.shown_overrides(job)}")
    if args.dry_run:
        for command in plan.commands():
            print(command)
        for problem in plan.source.problems:  # execute_resume() refuses these before running anything
            print(printable(f"hydra-ledger: warning: a resume would refuse this record: {problem}"), file=sys.stderr)
        return 0
    try:
        result = execute_resume(plan)
    except (RerunError, WorktreeError) as exc:
        raise CommandError(str(exc)) from None
    rows = result.runs
    print("after the resume:")
    for _, row in rows.iterrows():
        print(f"  {row['job_num']}  {row['status']}  {row['path']}")
    return 0 if result.returncode == 0 else 1
