"""``hydra-ledger watch [SWEEP...]``: a live view of running sweeps in the terminal, read from the
files only (no server, no port): progress, ETA, each job's status, heartbeat, latest metric and
its trend, CPU and memory."""
from __future__ import annotations

import argparse
import json
import math
import os
import select
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra_ledger.cli import DEFAULT_ROOTS_HELP, CommandError
from hydra_ledger.cli._output import duration, plain, printable, size
from hydra_ledger.cli._runs import relative
from hydra_ledger.record.paths import RunPaths
from hydra_ledger.record.schema import FINAL_STATUSES, PROBLEM_STATUSES, read_heartbeat

if TYPE_CHECKING:  # imported when the command runs: parsing the command line needs neither
    import pandas as pd

EXAMPLE = """\
Examples:
  hydra-ledger watch                                   # the running sweeps under outputs/ and multirun/
  hydra-ledger watch multirun/2024-05-01/12-00-00 --metric loss
  hydra-ledger watch --once | tail                     # one frame, for scripts and pipes"""

COLUMNS = ["run_id", "path", "sweep", "job_num", "status", "started_at", "ended_at", "duration_s"]
OPTIONAL = ["error.type", "error.message", "resources.cpu_s", "resources.peak_rss_bytes", "resources.gpu"]
TAIL_BYTES = 65_536  # read from the end of metrics.jsonl: enough for the trend, cheap on big files
SPARK_POINTS = 24
_BARS = "▁▂▃▄▅▆▇█"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "watch",
        help="a live view of running sweeps: progress, ETA, per job heartbeat, metric trend, CPU and memory",
        description="Refresh in place a view of the running sweeps, read from their files only: per sweep "
                    "the progress and an ETA from the finished jobs' durations; per job its status, age, "
                    "heartbeat age, the latest value and trend of a metric (metrics.jsonl), CPU, memory "
                    "and GPU (resources.jsonl), and the first line of a failed job's error. "
                    "Quit with q or Ctrl-C. On a pipe, or with --once, one frame is printed.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="*", metavar="SWEEP",
                        help="sweeps or roots (default: the sweeps with running or pending jobs found in "
                             f"{DEFAULT_ROOTS_HELP}; else the latest)")
    parser.add_argument("--metric", "-m", metavar="NAME",
                        help="the metric shown (default: the first one the jobs log)")
    parser.add_argument("--interval", "-n", type=float, default=2.0, metavar="S", help="seconds between refreshes")
    parser.add_argument("--once", action="store_true", help="print one frame and exit (for scripts and pipes)")
    parser.add_argument("--jobs", type=int, default=25, metavar="N",
                        help="at most this many jobs per sweep: running and failed first (default 25)")
    parser.set_defaults(func=run)


# -- what is shown -----------------------------------------------------------------------------


@dataclass
class JobView:
    num: Any
    path: str | None
    status: str
    age_s: float | None = None
    beat_age_s: float | None = None
    metric: float | None = None
    trend: list[float] = field(default_factory=list)
    cpu_s: float | None = None
    rss_bytes: float | None = None
    gpu: str = ""
    error: str = ""


@dataclass
class SweepView:
    sweep: str
    total: int
    counts: dict[str, int]
    eta_s: float | None
    jobs: list[JobView]
    hidden: int


def snapshot(paths: list[str], metric: str | None, max_jobs: int, now: float) -> tuple[list[SweepView], str | None]:
    """The sweeps to show, and the metric shown (the given one, else the first found)."""
    from hydra_ledger.load import load_table

    with warnings.catch_warnings():  # a broken record warns at every refresh: `ls` names it
        warnings.simplefilter("ignore")
        # no sacct for efficiency at every refresh: a cluster's accounting is not to be polled
        frame = load_table(paths, columns=COLUMNS, optional=OPTIONAL, slurm_usage=False)[0]
    if not len(frame):
        return [], metric
    keys = [s if isinstance(s, str) and s else str(Path(str(p)).parent)
            for s, p in zip(frame["sweep"].tolist(), frame["path"].tolist())]
    frame = frame.assign(_key=keys)
    groups = list(frame.groupby("_key", sort=False))
    if not paths or all(os.path.realpath(p) in (os.path.realpath("outputs"), os.path.realpath("multirun"))
                        for p in paths):
        live = [(k, g) for k, g in groups if g["status"].isin(["RUNNING", "PENDING"]).any()]
        groups = live or groups[-1:]  # nothing running: the latest sweep
    views = []
    for key, group in groups:
        view = _sweep_view(key, group, max_jobs, now)
        views.append(view)
    if metric is None:
        metric = _first_metric(job.path for view in views for job in view.jobs)
    for view in views:
        for job in view.jobs:
            if job.path and metric:
                job.trend = _metric_tail(RunPaths(job.path).metrics, metric)
                job.metric = job.trend[-1] if job.trend else None
    return views, metric


def _column(group: pd.DataFrame, name: str) -> list[Any]:
    return [plain(v) for v in group[name].tolist()] if name in group.columns else [None] * len(group)


def _sweep_view(key: str, group: pd.DataFrame, max_jobs: int, now: float) -> SweepView:
    import pandas as pd

    statuses = [str(s) for s in group["status"].tolist()]
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    jobs = []
    for num, path, status, started, dur, cpu, peak, gpu, etype, message in zip(
            _column(group, "job_num"), _column(group, "path"), statuses, _column(group, "started_at"),
            _column(group, "duration_s"), _column(group, "resources.cpu_s"),
            _column(group, "resources.peak_rss_bytes"), _column(group, "resources.gpu"),
            _column(group, "error.type"), _column(group, "error.message")):
        job = JobView(num=num, path=path, status=status)
        if started is not None:
            job.age_s = dur if status in FINAL_STATUSES and _finite(dur) else now - pd.Timestamp(started).timestamp()
        job.cpu_s, job.rss_bytes = (cpu if _finite(cpu) else None), (peak if _finite(peak) else None)
        if gpu == "unavailable":
            job.gpu = "-"
        if status == "RUNNING" and path:
            beat = read_heartbeat(RunPaths(path))
            if beat is None and started is not None:  # before its first heartbeat: its start stands for it
                beat = pd.Timestamp(started).timestamp()
            job.beat_age_s = None if beat is None else max(0.0, now - beat)
            _live_resources(job, RunPaths(path).resources)
        if status in PROBLEM_STATUSES:
            first = str(message).strip().split("\n")[0].rstrip() if message else ""
            job.error = f"{etype}: {first}" if etype else first or _SILENT.get(status, "")
        jobs.append(job)
    shown = _chosen(jobs, max_jobs)
    return SweepView(sweep=relative(key), total=len(jobs), counts=counts, eta_s=_eta(jobs),
                     jobs=shown, hidden=len(jobs) - len(shown))


# Why a job that wrote no error ended, as far as the files tell.
_SILENT = {"DIED": "heartbeat stopped: killed without a word (OOM, SIGKILL, node lost?)"}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _chosen(jobs: list[JobView], limit: int) -> list[JobView]:
    """Running and failed jobs first, then the latest finished, then pending; shown in job order."""
    rank = {"RUNNING": 0, **dict.fromkeys(PROBLEM_STATUSES, 1), "COMPLETED": 2, "PENDING": 3}
    order = sorted(range(len(jobs)), key=lambda i: (rank.get(jobs[i].status, 2),
                                                    -i if jobs[i].status == "COMPLETED" else i))
    keep = sorted(order[:max(limit, 0)])
    return [jobs[i] for i in keep]


def _eta(jobs: list[JobView]) -> float | None:
    """Seconds until the sweep ends, from the mean duration of its completed jobs and how many run at once."""
    done = [j.age_s for j in jobs if j.status == "COMPLETED" and j.age_s is not None]
    running = [j.age_s or 0.0 for j in jobs if j.status == "RUNNING"]
    pending = sum(j.status == "PENDING" for j in jobs)
    if not done or not (running or pending):
        return None
    mean = sum(done) / len(done)
    left = max((max(0.0, mean - age) for age in running), default=0.0)
    return left + mean * math.ceil(pending / max(len(running), 1))


def _tail_lines(path: Path, limit: int = TAIL_BYTES) -> list[str]:
    """The whole lines at the end of a file (at most ``limit`` bytes read)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            end = f.tell()
            f.seek(max(0, end - limit))
            data = f.read(limit)
    except OSError:
        return []
    lines = data.decode("utf-8", "replace").split("\n")
    if end > limit:
        lines = lines[1:]  # the first one is cut
    return [line for line in lines if line.strip()]


def _live_resources(job: JobView, path: Path) -> None:
    """A running job's latest sample of resources.jsonl."""
    for line in reversed(_tail_lines(path, 4096)):
        try:
            point = json.loads(line)
        except ValueError:
            continue
        if not isinstance(point, dict):
            continue
        job.cpu_s = point.get("cpu_s") if _finite(point.get("cpu_s")) else None
        job.rss_bytes = point.get("rss_bytes") if _finite(point.get("rss_bytes")) else None
        gpus = point.get("gpu")
        if isinstance(gpus, dict) and gpus:
            job.gpu = " ".join(f"{name}:{size(g.get('memory_bytes'))} {g.get('utilization_percent', '?'):.0f}%"
                               if isinstance(g, dict) and _finite(g.get("utilization_percent")) else f"{name}:?"
                               for name, g in gpus.items())
        return


def _metric_tail(path: Path, name: str) -> list[float]:
    """The last values of metric ``name`` in a metrics.jsonl (numbers only)."""
    values: list[float] = []
    for line in _tail_lines(path):
        try:
            value = json.loads(line)["values"][name]
        except (ValueError, KeyError, TypeError):
            continue
        if _finite(value):
            values.append(float(value))
    return values[-SPARK_POINTS:]


def _first_metric(paths: Iterator[str | None]) -> str | None:
    for path in paths:
        if not path:
            continue
        for line in reversed(_tail_lines(RunPaths(path).metrics, 4096)):
            try:
                values = json.loads(line)["values"]
            except (ValueError, KeyError, TypeError):
                continue
            numeric = [k for k, v in values.items() if _finite(v)] if isinstance(values, dict) else []
            if numeric:
                return str(numeric[0])
    return None


def sparkline(values: list[float]) -> str:
    if not values:
        return ""
    low, high = min(values), max(values)
    if high == low:
        return _BARS[3] * len(values)
    return "".join(_BARS[min(len(_BARS) - 1, int((v - low) / (high - low) * len(_BARS)))] for v in values)


# -- drawing -----------------------------------------------------------------------------------

_STYLES = {"RUNNING": "cyan", "COMPLETED": "green", "PENDING": "dim", **dict.fromkeys(PROBLEM_STATUSES, "red")}


def render(views: list[SweepView], metric: str | None, now: float, live: bool) -> Any:
    """The frame: one table per sweep, and a footer line."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts: list[Any] = []
    if not views:
        parts.append(Text("no runs found"))
    for view in views:
        done = sum(n for s, n in view.counts.items() if s in FINAL_STATUSES)
        problems = sum(n for s, n in view.counts.items() if s in PROBLEM_STATUSES)
        head = Text(printable(view.sweep), style="bold")
        head.append(f"  {done}/{view.total} done")
        if problems:
            head.append(f", {problems} failed", style="red")
        for status in ("RUNNING", "PENDING"):
            if view.counts.get(status):
                head.append(f", {view.counts[status]} {status.lower()}")
        if view.eta_s is not None:
            head.append(f", ETA {duration(round(view.eta_s))}")
        table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
        for name, justify in (("job", "right"), ("status", "left"), ("age", "right"), ("beat", "right"),
                              (printable(metric or "metric"), "right"), ("trend", "left"), ("cpu", "right"),
                              ("rss", "right"), ("gpu", "left"), ("error", "left")):
            table.add_column(name, justify=justify, no_wrap=name != "error",  # type: ignore[arg-type]
                             overflow="ellipsis")
        for job in view.jobs:
            table.add_row(
                "" if job.num is None else str(job.num),
                Text(job.status, style=_STYLES.get(job.status, "")),
                duration(round(job.age_s)) if job.age_s is not None else "",
                duration(round(job.beat_age_s)) if job.beat_age_s is not None else "",
                f"{job.metric:.4g}" if job.metric is not None else "",
                sparkline(job.trend),
                duration(round(job.cpu_s, 1)) if job.cpu_s is not None else "",
                size(job.rss_bytes) if job.rss_bytes is not None else "",
                printable(job.gpu),
                Text(printable(job.error), style="red"),
            )
        parts += [head, table]
        if view.hidden:
            parts.append(Text(f"  ... {view.hidden} more jobs (--jobs N shows more)", style="dim"))
        parts.append(Text(""))
    stamp = time.strftime("%H:%M:%S", time.localtime(now))
    parts.append(Text(f"{stamp}" + ("  q or Ctrl-C quits" if live else ""), style="dim"))
    return Group(*parts)


@contextmanager
def _keys() -> Iterator[int | None]:
    """stdin in cbreak mode (keys without Enter, Ctrl-C still a signal) when it is a terminal,
    restored on the way out; yields its fd, or None."""
    if not sys.stdin.isatty():
        yield None
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield fd
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _quit_within(fd: int | None, seconds: float) -> bool:
    """Wait up to ``seconds``; True when q was pressed."""
    if fd is None:
        time.sleep(seconds)
        return False
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            typed = os.read(fd, 64)
            if not typed or b"q" in typed.lower():
                return True
    return False


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    if args.interval <= 0:
        raise CommandError(f"--interval must be above 0 seconds, got {args.interval:g}")
    paths = list(args.paths)
    terminal = sys.stdout.isatty()
    console = Console(highlight=False, width=None if terminal else 160)

    def frame(live: bool) -> Any:
        now = time.time()
        views, metric = snapshot(paths, args.metric, args.jobs, now)
        return render(views, metric, now, live)

    if args.once or not terminal:
        console.print(frame(False))
        return 0
    from rich.live import Live

    try:
        with _keys() as fd, Live(frame(True), console=console, auto_refresh=False,
                                 vertical_overflow="ellipsis") as live:
            while not _quit_within(fd, args.interval):
                live.update(frame(True), refresh=True)
    except KeyboardInterrupt:
        pass
    return 0
