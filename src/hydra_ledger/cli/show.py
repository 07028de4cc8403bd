"""``hydra-ledger show RUN``: everything recorded about one run, readable."""
from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from pathlib import Path
from typing import Any, TypeGuard

from hydra_ledger.cli import DEFAULT_ROOTS_HELP, CommandError
from hydra_ledger.cli._output import colour, dumps_json, duration, printable, size, text, use_colour

EXAMPLE = """\
Examples:
  hydra-ledger show 3f2a9c              # a run id prefix, looked up in all runs of the project
  hydra-ledger show multirun/2024-05-01/12-00-00/3 --patch"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "show",
        help="everything recorded about one run: status, command, config, git, environment, summary",
        description="Show one run: status (with the traceback of a failure), command, overrides, resolved "
                    "config, choices, git, environment, summary, the last values of its metrics, its files.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_argument(parser, "run")
    parser.add_argument("--patch", action="store_true", help="print the uncommitted diff recorded at launch")
    parser.add_argument("--format", "-f", choices=["text", "json"], default="text",
                        help="text for people (default) or the record as JSON, with tags, notes and metrics")
    parser.set_defaults(func=run)


def add_run_argument(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument(name, metavar=name.upper(), help="a job dir, or a prefix of a run id")
    if not any(a.dest == "roots" for a in parser._actions):
        parser.add_argument("--in", dest="roots", action="append", default=[], metavar="PATH",
                            help=f"where to look up run ids (default: {DEFAULT_ROOTS_HELP})")


def resolve(arg: str, roots: list[str]) -> tuple[Any, dict[str, Any]]:
    """``(RunPaths, record)`` of a RUN argument; a lookup failure becomes a CommandError."""
    from hydra_ledger.load.runs import SelectError, resolve_run

    try:
        return resolve_run(arg, roots)
    except SelectError as exc:
        raise CommandError(str(exc)) from None


def details(paths: Any, record: dict[str, Any]) -> dict[str, Any]:
    """What ``show`` adds to the record: live status, tags, notes, last metric values, file paths."""
    import time

    from hydra_ledger.load.status import derive_status
    from hydra_ledger.record.sidecars import annotate, read_notes

    tags, _ = annotate(record, paths)
    return {
        "status": derive_status(record, paths.job_dir, time.time(), None),
        "tags": tags,
        "notes": read_notes(paths),
        "metrics_last": last_metrics(paths.metrics),
        "packages": _packages(paths.packages),
        "files": files(paths, record),
    }


def last_metrics(metrics_file: Path) -> dict[str, dict[str, Any]]:
    """``{name: {"value": v, "step": s}}``: the last value logged of each metric (lines that are
    not ``{"values": {...}}`` skipped: the loader warns of them)."""
    from hydra_ledger.record.files import metric_entries

    last: dict[str, dict[str, Any]] = {}
    for _, entry, values in metric_entries(metrics_file):
        for name, value in values.items():
            last[name] = {"value": value, "step": entry.get("step")}
    return last


def _packages(path: Path) -> dict[str, str]:
    from hydra_ledger.record.files import MAX_SIDECAR_BYTES, read_regular_file

    try:
        data = json.loads(read_regular_file(path, MAX_SIDECAR_BYTES)[1])
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def files(paths: Any, record: dict[str, Any]) -> dict[str, str]:
    """Paths of the run's record and logs that exist: Hydra's job log, submitit's stdout/stderr."""
    found = {"record": str(paths.record)}
    for name, path in (("metrics", paths.metrics), ("resources", paths.resources), ("patch", paths.patch),
                       ("packages", paths.packages),
                       ("captured stdout", paths.stdout), ("captured stderr", paths.stderr),
                       ("hydra config", paths.hydra_dir / "config.yaml")):
        if path.exists():
            found[name] = str(path)
    for log in sorted(paths.job_dir.glob("*.log")):
        found[f"log {log.name}"] = str(log)
    slurm = record.get("slurm") or {}
    for key in ("stdout", "stderr"):
        if slurm.get(key) and Path(slurm[key]).exists():
            found[key] = str(slurm[key])
    return found


def run(args: argparse.Namespace) -> int:
    paths, record = resolve(args.run, args.roots)
    extra = details(paths, record)
    if args.format == "json":
        try:
            dumped = dumps_json({**record, **extra, "path": str(paths.job_dir)}, indent=1, default=str)
        except RecursionError:
            raise CommandError(f"the record {paths.record} is nested too deeply to print as JSON; "
                               "show it as text (without --format json)") from None
        print(dumped)
        return 0
    print(render_text(paths, record, extra, use_colour(sys.stdout)), end="")
    if args.patch:
        patch = paths.patch
        if patch.exists():
            # a patch is code: its tabs stay, any other control character is escaped
            lines = patch.read_text(errors="replace").split("\n")
            sys.stdout.write("\n" + "\n".join("\t".join(printable(part) for part in line.split("\t"))
                                               for line in lines))
        else:
            print("\n(no patch recorded: the work tree was clean, or git capture was off)")
    return 0


def _number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def resource_lines(resources: dict[str, Any], slurm: dict[str, Any]) -> list[str]:
    """The ``resources`` of a record as lines: CPU and memory used, against what Slurm was asked for."""
    lines: list[str] = []

    def line(name: str, value: str) -> None:
        lines.append(printable(f"  {name + ':':<13} {value}"))

    cpu, wall, cores = resources.get("cpu_s"), resources.get("wall_s"), resources.get("cpu_cores_mean")
    if _number(cpu):
        spread = f" ({cores:.2f} cores on average over {duration(wall)})" if _number(cores) and _number(wall) else ""
        asked = f"; asked {slurm['cpus_per_task']} CPUs" if _number(slurm.get("cpus_per_task")) else ""
        line("cpu", f"{duration(cpu)}{spread}{asked}")
    if _number(resources.get("peak_rss_bytes")):
        asked_mb = slurm.get("mem_per_node_mb")
        asked = f"; asked {size(asked_mb * 1024 * 1024)}" if _number(asked_mb) else ""
        processes = resources.get("peak_processes")
        tree = f", {processes} processes at most" if _number(processes) and processes > 1 else ""
        line("peak memory", f"{size(resources['peak_rss_bytes'])} RSS{tree}{asked}")
    gpus = resources.get("gpu")
    if isinstance(gpus, dict):
        for name, info in gpus.items():
            info = info if isinstance(info, dict) else {}
            util = info.get("mean_utilization_percent")
            peak, total = size(info.get("peak_memory_bytes")), size(info.get("memory_total_bytes"))
            line(f"gpu {name}", f"peak {peak} of {total}, {util if _number(util) else '?'}% busy on average")
    elif gpus is not None:
        line("gpu", f"{gpus}" + (f" ({resources['gpu_reason']})" if resources.get("gpu_reason") else ""))
    return lines


def render_text(paths: Any, record: dict[str, Any], extra: dict[str, Any], coloured: bool) -> str:
    """The ``show`` text; every recorded value goes through :func:`printable` (YAML escapes
    the config's control characters itself, but leaves bidi overrides and the like)."""
    import yaml

    from hydra_ledger.record.rows import sweep_dir_of

    out: list[str] = []

    def section(title: str) -> None:
        out.append("")
        out.append(colour(title, "bold", coloured))

    def field(name: str, value: Any) -> None:
        if value not in (None, "", [], {}):
            out.append(printable(f"  {name + ':':<13} {value}"))

    status = extra["status"]
    out.append(f"{colour('run ' + printable(str(record.get('run_id'))), 'bold', coloured)}  "
               f"{colour(printable(str(status)), str(status), coloured)}")
    job = record.get("job") or {}
    field("path", paths.job_dir)
    number = f" #{job.get('num')}" if job.get("num") is not None else ""  # a single run has none
    field("job", f"{job.get('name')}{number} ({job.get('mode')})" if job.get("name") else None)
    field("sweep", sweep_dir_of(paths.job_dir, job))  # where it is now, also after a move or a copy
    field("started", text(record.get("started_at")))
    field("ended", text(record.get("ended_at")))
    seconds = record.get("duration_s")
    finite = isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and math.isfinite(seconds)
    field("duration", duration(seconds) if finite or seconds is None else f"{seconds!r} (not a duration)")
    field("tags", ", ".join(extra["tags"]))
    if record.get("note"):
        field("note", record["note"])
    for note in extra["notes"]:
        field("note", f"{note['text']}  ({text(note.get('time'))})")
    signals = [s for s in record.get("signals") or () if isinstance(s, dict)]
    field("signals", "; ".join(f"{s.get('signal')} at {text(s.get('at'))}"
                               + (f" ({s['outcome']})" if s.get("outcome") else "") for s in signals))
    attempts = record.get("attempts") or []
    if len(attempts) > 1:
        field("attempts", "; ".join(f"#{a.get('attempt')} {a.get('status')} on {a.get('hostname')}" for a in attempts))
    error = record.get("error")
    if error:
        section("error")
        out.extend("  " + printable(line) for line in f"{error.get('type')}: {error.get('message')}".split("\n"))
        if error.get("traceback"):
            out.extend("  " + printable(line) for line in str(error["traceback"]).rstrip().split("\n"))

    launch = record.get("launch") or {}
    section("command")
    argv = [str(a) for a in launch.get("argv") or []]
    command = shlex.join([launch.get("python") or "python", *argv]) if argv else ""
    out.append(printable(f"  cd {shlex.quote(str(launch.get('cwd')))} && {command}" if launch.get("cwd")
                         else f"  {command}"))
    section("overrides")
    out.append(printable("  " + (" ".join(str(o) for o in record.get("overrides") or []) or "(none)")))
    section("config")
    try:
        dumped = yaml.safe_dump(record.get("config") or {}, sort_keys=False, default_flow_style=False,
                                allow_unicode=True)
    except RecursionError:  # nested too deeply for the YAML writer: as the loader's dotted keys
        from hydra_ledger.record.flatten import flatten

        dumped = "".join(f"{key}: {json.dumps(value)}\n" for key, value in flatten(record.get("config") or {}).items())
    out.extend("  " + printable(line) for line in dumped.rstrip().split("\n"))
    for key in ("missing", "unresolved"):
        if record.get(key):
            field(key, record[key])
    choices = record.get("choices") or {}
    user_choices = {k: v for k, v in choices.items() if not str(k).startswith("hydra/")}
    if user_choices:
        section("choices")
        for key, value in user_choices.items():
            field(key, value)

    git = record.get("git") or {}
    section("git")
    if git.get("state") not in (None, "ok"):
        field("state", git.get("state"))
    field("commit", git.get("commit"))
    field("branch", git.get("branch") or ("(detached)" if git.get("detached") else None))
    field("repo", git.get("root"))
    field("remote", git.get("remote"))
    field("dirty", "yes" if git.get("dirty") else ("no" if "dirty" in git else None))
    if git.get("untracked_count"):
        field("untracked", f"{git['untracked_count']} files")
    if git.get("patch"):
        size = paths.patch.stat().st_size if paths.patch.exists() else 0
        field("patch", f"{paths.patch} ({size} bytes; --patch prints it)")

    host = record.get("host") or {}
    section("environment")
    field("host", host.get("hostname"))
    field("python", f"{host.get('python')} ({host.get('python_executable')})" if host.get("python") else None)
    field("platform", host.get("platform"))
    for name, value in (host.get("env") or {}).items():
        field(name, value)
    slurm = record.get("slurm") or {}
    for key in ("job_id", "partition", "node", "restart_count"):
        field(f"slurm {key}", slurm.get(key))
    if extra["packages"]:
        field("packages", f"{len(extra['packages'])} recorded ({paths.packages})")

    resources = record.get("resources")
    if isinstance(resources, dict) and resources:
        section("resources")
        out.extend(resource_lines(resources, slurm))

    inputs = record.get("inputs") or {}
    if inputs:
        section("inputs")
        for key, info in inputs.items():
            info = info if isinstance(info, dict) else {}
            state = "MISSING" if info.get("kind") == "missing" else f"{info.get('hash')}  ({info.get('size')} bytes)"
            field(key, f"{info.get('path')}  {state}")
    artifacts = record.get("artifacts") or []
    if artifacts:
        section("artifacts")
        for item in artifacts:
            field(str(item.get("path")), f"{item.get('size')} bytes  {item.get('hash') or ''}".rstrip())

    section("summary")
    summary = record.get("summary") or {}
    if not summary:
        out.append("  (none)")
    for key, value in summary.items():
        field(key, text(value, digits=10))
    if extra["metrics_last"]:
        section("metrics (last values)")
        for name, item in extra["metrics_last"].items():
            field(name, f"{text(item['value'], digits=10)}  (step {item['step']})")
    section("files")
    for name, value in extra["files"].items():
        field(name, value)
    return "\n".join(out) + "\n"
