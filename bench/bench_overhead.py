"""Per-job cost of the ledger: the same 200-job basic-launcher sweep with and without it.

Run: python bench/bench_overhead.py [--jobs 200] [--rounds 5] [--floor] [--explicit] [--defaults-list] [--paired]
                                    [--instructions] [--baseline <source tree>]
The variants run alternately (their order rotates from round to round) in one repo of ~200
tracked files: plain Hydra, Hydra with `hydra/callbacks=ledger` from this source tree, with
--floor a callback that does nothing (the part of the cost any callback has), with --explicit
the same enabled by the explicit node `hydra.callbacks.ledger._target_` in the primary config
(Hydra composes a config group option for every job, twice in a basic sweep, and an explicit
node costs it less), with --defaults-list the same chosen as the README shows, by the line
`override hydra/callbacks: ledger` at the end of the primary config's defaults list (after
`_self_`, which plain Hydra's config, having no defaults list, has implicitly), and with
--baseline the ledger from another source tree (e.g. a `git worktree` of an earlier commit),
each put first on PYTHONPATH. Every round is printed with the load average before it; the figure
is (median sweep time with ledger - median without) / jobs, in wall time and in CPU time (user +
system of the app and the processes it ran, such as git): on a shared machine the CPU time moves
less. With --paired, each variant instead runs at the same time as a plain Hydra sweep (one per
core) and the figure is the median of the paired differences. By default the sweeps' output dirs
are git-ignored, as in most Hydra projects; with --outputs-untracked they are not, and every
job's `git status` then also lists the files of all earlier runs in the repo. With
--instructions (needs valgrind: `apt-get install valgrind`), each variant instead runs under
valgrind's cachegrind, at two sweep sizes, and the figure is the instructions it executes per
job over plain Hydra: the same on a busy machine as on a quiet one (the hash seed is fixed), but
without the time spent in the kernel (file writes, thread switches). It is put in milliseconds
at plain Hydra's time per instruction, timed natively in the same run.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import HERE, git, make_repo, median, run_app, run_app_timed, tree_pythonpath


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--rounds", "--repeats", type=int, default=5, dest="rounds")
    parser.add_argument("--baseline", type=Path, help="another source tree to measure alternately (before)")
    parser.add_argument("--floor", action="store_true",
                        help="also measure a callback that does nothing: what any callback costs Hydra per job")
    parser.add_argument("--paired", action="store_true",
                        help="run each variant at the same time as plain Hydra (one per core) and report the "
                             "median of the paired differences: both see the same slow and fast moments")
    parser.add_argument("--explicit", action="store_true",
                        help="also measure the callbacks enabled by an explicit node in the primary config")
    parser.add_argument("--defaults-list", action="store_true",
                        help="also measure the callbacks chosen in the primary config's defaults list")
    parser.add_argument("--outputs-untracked", action="store_true", help="do not git-ignore the output dirs")
    parser.add_argument("--instructions", action="store_true",
                        help="count the instructions each variant executes per job (valgrind), not its time")
    parser.add_argument("--counted", default="10,30", help="with --instructions: the two sweep sizes counted")
    args = parser.parse_args()
    this_tree = tree_pythonpath(HERE.parent)
    variants: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {"plain": (this_tree, ())}
    if args.floor:
        variants["do-nothing"] = (this_tree, ("hydra/callbacks=do_nothing",))
    if args.baseline is not None:
        variants["before"] = (tree_pythonpath(args.baseline), ("hydra/callbacks=ledger",))
    variants["ledger"] = (this_tree, ("hydra/callbacks=ledger",))
    if args.explicit:
        if args.floor:
            variants["do-nothing-node"] = (this_tree, ("--config-name", "explicit_do_nothing"))
        variants["ledger-node"] = (this_tree, ("--config-name", "explicit_ledger"))
    if args.defaults_list:
        if args.floor:
            variants["do-nothing-defaults"] = (this_tree, ("--config-name", "defaults_do_nothing"))
        variants["ledger-defaults"] = (this_tree, ("--config-name", "defaults_ledger"))
    times: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    where = "untracked, not ignored" if args.outputs_untracked else "git-ignored"
    print(f"jobs per sweep: {args.jobs}, rounds: {args.rounds}, output dirs {where}, cpus: {os.cpu_count()}"
          + (f", before: {args.baseline}" if args.baseline else ""), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(Path(tmp) / "repo")
        if args.explicit or args.defaults_list:
            _add_primary_configs(repo)
        if not args.outputs_untracked:
            (repo / ".git" / "info" / "exclude").write_text("multirun/\n")
        sweep = [f"seed=range(0,{args.jobs})"]
        if args.paired:
            _paired(repo, sweep, variants, args)
            return
        if args.instructions:
            _instructions(repo, sweep, variants, args)
            return
        for i in range(args.rounds):
            load = os.getloadavg()
            order = names[i % len(names):] + names[:i % len(names)]  # each variant leads in turn
            for name in order:
                env, extra = variants[name]
                wall, used = run_app_timed(repo, "-m", *sweep, f"hydra.sweep.dir=multirun/{name}{i}", *extra, env=env)
                times[name].append(wall)
                cpu[name].append(used)
            print(f"round {i + 1}: load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; " + ", ".join(
                f"{name} {times[name][-1] / args.jobs * 1000:.1f} ms/job (cpu {cpu[name][-1] / args.jobs * 1000:.1f})"
                for name in names), flush=True)
        _check_recorded(repo, [n for n in names if n != "plain" and not n.startswith("do-nothing")], args.jobs)
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for kind, values in (("wall", times), ("cpu", cpu)):
        plain = median(values["plain"]) / args.jobs * 1000
        for name in names:
            per_job = median(values[name]) / args.jobs * 1000
            line = f"{kind:>4} {name:>15}: median {median(values[name]):.2f} s ({per_job:.1f} ms/job)"
            if name != "plain":
                line += f"; cost over plain Hydra: {per_job - plain:.1f} ms/job ({(per_job / plain - 1) * 100:.0f}%)"
            floor_name = "do-nothing" + name[len("ledger"):] if name.startswith("ledger") else "do-nothing"
            if floor_name in values and name != "plain" and not name.startswith("do-nothing"):
                floor = median(values[floor_name]) / args.jobs * 1000
                line += f", over a do-nothing callback enabled alike: {per_job - floor:.1f} ms/job"
            print(line)


def _add_primary_configs(repo: Path) -> None:
    """Primary configs that enable a callback: the app's config and an explicit node of the
    callback (``explicit_*``), or a defaults list ending with the option that chooses it
    (``defaults_*``)."""
    app_config = (repo / "config.yaml").read_text()
    for node, target in (("ledger", "hydra_ledger.LedgerCallback"),
                         ("do_nothing", "hydra.experimental.callback.Callback")):
        (repo / f"explicit_{node}.yaml").write_text(
            f"{app_config}hydra:\n  callbacks:\n    {node}:\n      _target_: {target}\n")
        (repo / f"defaults_{node}.yaml").write_text(
            f"defaults:\n  - _self_\n  - override hydra/callbacks: {node}\n\n{app_config}")
    git(repo, "add", "-A")
    git(repo, "-c", "user.email=b@example.com", "-c", "user.name=bench", "commit", "-q", "-m", "primary configs")


def _check_recorded(repo: Path, names: list[str], jobs: int, prefix: str = "") -> None:
    """Each ledger variant recorded every job of its first sweep (a broken tree measures nothing)."""
    for name in names:
        first = f"{prefix}{name}{jobs}" if prefix else f"{name}0"
        recorded = len(list(Path(repo).glob(f"multirun/{first}/*/.ledger/run.json")))
        assert recorded == jobs, f"{name}: expected {jobs} records, found {recorded}"


def _paired(repo: Path, sweep: list[str], variants: dict[str, tuple[dict[str, str], tuple[str, ...]]],
            args: argparse.Namespace) -> None:
    """Each round, each variant runs at the same time as plain Hydra, one per core: a shared
    machine's speed drifts by tens of percent within a minute, and both runs of a pair see the
    same drift. The figure is the median over rounds of (variant - plain) per job."""
    from concurrent.futures import ThreadPoolExecutor

    others = [name for name in variants if name != "plain"]
    diffs: dict[str, list[float]] = {name: [] for name in others}
    cpu_diffs: dict[str, list[float]] = {name: [] for name in others}
    plain_env, _ = variants["plain"]
    for i in range(args.rounds):
        load = os.getloadavg()
        parts = []
        for name in others:
            env, extra = variants[name]
            with ThreadPoolExecutor(2) as pool:
                plain = pool.submit(run_app_timed, repo, "-m", *sweep, f"hydra.sweep.dir=multirun/plain-{name}{i}",
                                    env=plain_env)
                other = pool.submit(run_app_timed, repo, "-m", *sweep, f"hydra.sweep.dir=multirun/{name}{i}", *extra,
                                    env=env)
                (plain_wall, plain_cpu), (wall, used) = plain.result(), other.result()
            diffs[name].append((wall - plain_wall) / args.jobs * 1000)
            cpu_diffs[name].append((used - plain_cpu) / args.jobs * 1000)
            parts.append(f"{name} {wall / args.jobs * 1000:.1f} vs plain {plain_wall / args.jobs * 1000:.1f} ms/job "
                         f"({diffs[name][-1]:+.1f}; cpu {cpu_diffs[name][-1]:+.1f})")
        print(f"round {i + 1}: load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; " + ", ".join(parts), flush=True)
    _check_recorded(repo, [name for name in others if not name.startswith("do-nothing")], args.jobs)
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for name in others:
        print(f"{name:>10}: cost over plain Hydra run beside it, median of {args.rounds} pairs: "
              f"wall {median(diffs[name]):+.1f} ms/job, cpu {median(cpu_diffs[name]):+.1f} ms/job")


def _instructions(repo: Path, sweep: list[str], variants: dict[str, tuple[dict[str, str], tuple[str, ...]]],
                  args: argparse.Namespace) -> None:
    """Instructions executed per job by each variant, from valgrind's cachegrind at two sweep
    sizes (their difference cancels what a sweep costs once: imports, the sweep's record, its
    git state), and plain Hydra's native time per job for the scale (median of ``--rounds`` sweeps).

    Each variant first runs a sweep of 2 jobs natively: the first process to import a source tree
    compiles its bytecode (~300 M instructions), and without this it lands in one of the two
    counted sweeps and moves the figure by ~15 M per job (a ledger cheaper than a do-nothing
    callback, measured)."""
    from concurrent.futures import ThreadPoolExecutor

    if shutil.which("valgrind") is None:
        sys.exit("--instructions needs valgrind on PATH: apt-get install valgrind")
    for name, (env, extra) in variants.items():
        run_app(repo, "-m", "seed=range(0,2)", f"hydra.sweep.dir=multirun/warm-up-{name}", *extra, env=env)
    small, large = sorted(int(size) for size in args.counted.split(","))
    runs = [(name, size) for name in variants for size in (small, large)]
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        counted = dict(zip(runs, pool.map(lambda run: _count(repo, run[1], run[0], *variants[run[0]]), runs)))
    _check_recorded(repo, [n for n in variants if n != "plain" and not n.startswith("do-nothing")], small,
                    prefix="counted-")
    plain_env, _ = variants["plain"]
    plain_s = [run_app_timed(repo, "-m", *sweep, f"hydra.sweep.dir=multirun/timed{i}", env=plain_env)[0]
               for i in range(args.rounds)]
    plain_ms = median(plain_s) / args.jobs * 1000
    per_job = {name: (counted[name, large] - counted[name, small]) / (large - small) for name in variants}
    print(f"instructions (cachegrind, PYTHONHASHSEED=0) of sweeps of {small} and {large} jobs; plain Hydra timed "
          f"natively: {plain_ms:.1f} ms/job (median of {args.rounds} sweeps of {args.jobs} jobs, "
          f"{', '.join(f'{t / args.jobs * 1000:.1f}' for t in plain_s)}); load average at the end "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for name in variants:
        print(f"{name:>15}: {counted[name, small] / 1e9:.3f} G and {counted[name, large] / 1e9:.3f} G instructions; "
              f"{per_job[name] / 1e6:.1f} M per job", end="")
        if name != "plain":
            extra = per_job[name] / per_job["plain"] - 1
            print(f", over plain Hydra {(per_job[name] - per_job['plain']) / 1e6:+.1f} M ({extra * 100:+.2f}%): "
                  f"{extra * plain_ms:+.2f} ms/job at plain Hydra's time per instruction", end="")
        print(flush=True)


def _count(repo: Path, jobs: int, name: str, env: dict[str, str], extra: tuple[str, ...]) -> int:
    """Instructions executed by one sweep of ``jobs`` jobs of variant ``name`` under cachegrind."""
    with tempfile.NamedTemporaryFile("r", suffix=".log") as log:
        subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
                        f"--log-file={log.name}", sys.executable, "app.py", "-m", f"seed=range(0,{jobs})",
                        f"hydra.sweep.dir=multirun/counted-{name}{jobs}", *extra],
                       cwd=repo, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env={**os.environ, "PYTHONHASHSEED": "0", **env})
        found = re.search(r"I\s+refs:\s+([\d,]+)", log.read())
    if found is None:
        raise RuntimeError(f"no instruction count in valgrind's log of {name} ({jobs} jobs)")
    return int(found.group(1).replace(",", ""))


if __name__ == "__main__":
    main()
