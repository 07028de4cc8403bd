"""Fault injection for the ledger: a seeded plan of short jobs, each process signalled at a random
moment, and a judge that checks every job's record through the public loader.

The plan is a pure function of the seed. Where a signal lands still depends on timing, so the
judge reads the phase each job reached from the markers of ``tests/apps/faults`` rather than
assuming it: a job's expected status follows from what it did, never from the plan's intent.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SEED_ENV = "HYDRA_LEDGER_FAULT_SEED"
DEFAULT_SEED = 20261201

# The status a job's record must end with when the signal reached it while it ran
# (src/hydra_ledger/runtime.py): SIGKILL runs no code, so the record stays RUNNING and the loader
# derives DIED once the heartbeat is stale; SIGINT is a KeyboardInterrupt recorded by the
# excepthook; SIGTERM with Python's default disposition is recorded by ``_on_sigterm`` before
# the process dies by it. (PREEMPTED and TIMEOUT are for submitit's SIGUSR2, not used here.)
SIGNAL_STATUS = {
    signal.SIGKILL: "DIED",
    signal.SIGINT: "INTERRUPTED",
    signal.SIGTERM: "INTERRUPTED",
}
SIGNALS = tuple(SIGNAL_STATUS)

# Phase markers written by tests/apps/faults, in the order a job writes them.
PHASES = ("start", "body", "done", "end")
# Where a signal can land, named by the last marker of the signalled job.
LANDED = {None: "before the job", "start": "ledger start hook", "body": "job body",
          "done": "ledger end hook", "end": "after the job"}

# Seconds to wait for a signalled process to exit before calling it hung.
HANG_S = 10.0
# Seconds a process that is not signalled may take before calling it hung.
RUN_S = 60.0


def seed_from_env() -> int:
    """The plan's seed: ``$HYDRA_LEDGER_FAULT_SEED`` (an integer, or ``random`` for a fresh one), else the default."""
    value = os.environ.get(SEED_ENV, "").strip()
    if not value:
        return DEFAULT_SEED
    if value == "random":
        return random.SystemRandom().randrange(10**9)
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{SEED_ENV}={value!r}: expected an integer seed or 'random'") from None


@dataclass
class Job:
    """One Hydra job of a trial: its output dir and the status it ends with when left alone."""

    dir: Path
    fails: bool

    @property
    def outcome(self) -> str:
        return "FAILED" if self.fails else "COMPLETED"

    def reached(self) -> str | None:
        """Where the job stopped: None when Hydra never started it, else the phase it was in or
        last finished ("end": the ledger's end hook returned). When Hydra >= 1.4 ran the end hooks
        after a KeyboardInterrupt, a job is in "body" if its task did not finish, else in "done"."""
        have = {phase for phase in PHASES if (self.dir / f"phase.{phase}").exists()}
        if "start" not in have:
            return None
        if "body" not in have:
            return "start"
        if "done" not in have:
            return "body"
        return "end" if "end" in have else "done"


@dataclass
class Trial:
    """One process: a single run or a basic-launcher sweep, and the signal it gets."""

    number: int
    argv: list[str]
    jobs: list[Job]
    sig: signal.Signals
    anchor: str  # "launch" or a phase marker of the last job
    delay_s: float
    # filled in by run_trial
    signalled: bool = False
    hung: bool = False
    returncode: int | None = None
    log: Path | None = None

    def describe(self) -> str:
        kind = "single run" if len(self.jobs) == 1 and "-m" not in self.argv else f"sweep of {len(self.jobs)}"
        return (f"trial {self.number} ({kind}, {self.sig.name} {self.delay_s * 1000:.0f} ms after {self.anchor}, "
                f"rc={self.returncode}, argv: {' '.join(self.argv)})")


def make_plan(seed: int, root: Path, n_jobs: int = 106, sweep_size: int = 6, n_sweeps: int = 11) -> list[Trial]:
    """Single runs and sweeps totalling ``n_jobs`` jobs, each process with its signal and moment.

    The moment is a phase marker of the process's last job plus a random delay, or a delay
    after launch (Python start-up, Hydra's composition, the job's start); the delays span each
    phase as measured on a 2-core machine (ledger hooks ~10 ms, bodies 30-150 ms).
    """
    rng = random.Random(seed)
    kinds = ["sweep"] * n_sweeps + ["single"] * (n_jobs - n_sweeps * sweep_size)
    rng.shuffle(kinds)
    trials = []
    for number, kind in enumerate(kinds):
        sleep = round(rng.uniform(0.03, 0.15), 3)
        sig = rng.choice(SIGNALS)
        anchor = rng.choice(("launch", "start", "body", "done", "end") if kind == "single"
                            else ("start", "body", "done", "end"))
        delay = {
            "launch": rng.uniform(0.0, 0.5),
            "start": rng.uniform(0.0, 0.015),
            "body": rng.uniform(0.0, sleep),
            "done": rng.uniform(0.0, 0.012),
            "end": rng.uniform(0.0, 0.02),
        }[anchor]
        if kind == "single":
            fails = rng.random() < 0.3
            out = root / "runs" / f"t{number:03d}"
            argv = [f"hydra.run.dir={out}", f"seed={number}", f"sleep={sleep}", f"fail={str(fails).lower()}"]
            jobs = [Job(out, fails)]
        else:
            fail_on = [i for i in range(sweep_size) if rng.random() < 0.3]
            out = root / "sweeps" / f"t{number:03d}"
            argv = ["-m", f"seed={','.join(map(str, range(sweep_size)))}", f"fail_on=[{','.join(map(str, fail_on))}]",
                    f"sleep={sleep}", f"hydra.sweep.dir={out}"]
            jobs = [Job(out / str(i), i in fail_on) for i in range(sweep_size)]
        trials.append(Trial(number, argv, jobs, sig, anchor, round(delay, 4)))
    return trials


def run_trial(app: Path, trial: Trial, env: Mapping[str, str], logs: Path) -> None:
    """Start the trial's process, signal it at its moment, wait for it (or call it hung and kill it)."""
    trial.log = logs / f"t{trial.number:03d}.log"
    with open(trial.log, "wb") as log:
        proc = subprocess.Popen([sys.executable, "app.py", *trial.argv], cwd=app, env=dict(env),
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _signal_at_moment(proc, trial)
            try:
                proc.wait(timeout=HANG_S if trial.signalled else RUN_S)
            except subprocess.TimeoutExpired:
                trial.hung = True
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        finally:
            if proc.poll() is None:  # the test itself failed: leave nothing running
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    trial.returncode = proc.returncode


def _signal_at_moment(proc: subprocess.Popen[bytes], trial: Trial) -> None:
    if trial.anchor != "launch":
        marker = trial.jobs[-1].dir / f"phase.{trial.anchor}"
        deadline = time.monotonic() + RUN_S
        while not marker.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                return  # the process ended (or stalled) before the moment: judged unsignalled
            time.sleep(0.0005)
    time.sleep(trial.delay_s)
    if proc.poll() is None:
        proc.send_signal(trial.sig)
        trial.signalled = True


@dataclass
class Verdicts:
    """The judge's counts, and a line per problem naming the job and trial."""

    seed: int
    trials: int = 0
    lost: int = 0
    mislabeled: int = 0
    hung: int = 0
    landed: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"fault-injection: seed={self.seed}, {self.trials} trials, {self.lost} lost, "
                f"{self.mislabeled} mislabeled, {self.hung} hung")

    def details(self) -> str:
        landed = ", ".join(f"{LANDED.get(k, k)}: {n}" for k, n in sorted(self.landed.items(), key=str))
        statuses = ", ".join(f"{k}: {n}" for k, n in sorted(self.statuses.items()))
        return f"fault-injection: signals landed ({landed}); statuses ({statuses})"

    def report(self, limit: int = 40) -> str:
        shown = self.problems[:limit]
        more = [f"... and {len(self.problems) - limit} more"] if len(self.problems) > limit else []
        return "\n".join([self.line(), self.details(), *shown, *more])


def judge(seed: int, trials: Sequence[Trial], frame: Any, warned: Sequence[str]) -> Verdicts:
    """Check every job of every trial against the loaded frame (one row per job dir).

    - lost: the job ran its task, or its record is on disk, but it has no row and no loader
      warning names it;
    - mislabeled: its row's status is not what the job did: COMPLETED/FAILED as requested
      when it got through the ledger's end hook, the signal's status when the signal caught it
      before the end hook returned (COMPLETED/FAILED then too if its task had finished), and
      no row at all when Hydra never started it;
    - hung: its process outlived the signal by HANG_S seconds (or ran RUN_S without one).
    """
    verdicts = Verdicts(seed)
    rows: dict[str, str] = {}
    paths, statuses = (frame["path"].tolist(), frame["status"].tolist()) if len(frame) else ([], [])
    for path, status in zip(paths, statuses):
        if path:
            rows[os.path.realpath(path)] = str(status)
    for trial in trials:
        verdicts.hung += trial.hung
        if trial.signalled:
            verdicts.landed[trial.jobs[-1].reached()] += 1
        else:
            verdicts.landed["not signalled (ended first)"] += 1
        for job in trial.jobs:
            verdicts.trials += 1
            reached = job.reached()
            status = rows.get(os.path.realpath(job.dir))
            verdicts.statuses[status or "no row"] += 1
            where = "/".join(job.dir.parts[-3 if job.dir.parent.parent.name == "sweeps" else -2:])
            context = f"{where}: reached {reached or 'nothing'}, {trial.describe()}, log {trial.log}"
            if status is None:
                named = any(str(job.dir) in message for message in warned)
                on_disk = (job.dir / ".ledger" / "run.json").exists()
                if (reached in ("body", "done", "end") or on_disk) and not named:
                    verdicts.lost += 1
                    verdicts.problems.append(f"LOST {context}")
                continue
            allowed = _allowed(job, reached, trial)
            if status not in allowed:
                verdicts.mislabeled += 1
                verdicts.problems.append(f"MISLABELED {status} (expected {' or '.join(sorted(allowed))}) {context}")
    return verdicts


def _allowed(job: Job, reached: str | None, trial: Trial) -> set[str]:
    """The statuses a job's row may have, from the last phase it reached."""
    if reached is None:
        return set()  # never started: a row would be invented
    if reached == "end":
        return {job.outcome}  # the ledger's end hook returned: its record is final
    caught = {SIGNAL_STATUS[trial.sig]} if trial.signalled else set()
    if reached == "done":
        return {job.outcome} | caught  # the task finished; the signal came during the end hook
    return caught
