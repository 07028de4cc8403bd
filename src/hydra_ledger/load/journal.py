"""The experiment log: a chronological journal of sweeps and runs, and their conclusions.

One entry per sweep (all its jobs) or single run: when, the note, the commit, the swept
keys, counts per status, the best value of a chosen summary key, and conclusions.
Conclusions (``hydra-ledger conclude``) are appended, timestamped, to
``.ledger/conclusions.jsonl`` of the sweep or run: never rewritten, never lost. The log
renders as text, Markdown, or Org-mode (TODO/DONE per entry, property drawers with ids).
Read-only on records; only ``add_conclusion`` writes.
"""
from __future__ import annotations

import datetime as _dt
import getpass
import json
import math
import os
import re
import subprocess
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hydra_ledger.errors import LedgerError
from hydra_ledger.load import roots as _roots
from hydra_ledger.record.files import append_line
from hydra_ledger.record.paths import RunPaths, SweepPaths
from hydra_ledger.record.schema import SWEEP_SCHEMA, RecordError, read_record

Format = Literal["text", "markdown", "org"]
UNFINISHED = frozenset({"RUNNING", "PENDING"})


@dataclass
class Job:
    paths: RunPaths
    record: dict[str, Any]
    status: str


@dataclass
class Entry:
    """A sweep or a single run, as the log shows it."""

    id: str
    kind: Literal["sweep", "run"]
    path: Path
    started_at: str | None = None
    note: str | None = None
    tags: list[str] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    pending: int = 0
    missing: int = 0  # listed jobs that never started and never will (hydra_ledger.record.sweep_jobs.missing_jobs)
    job_list: Any = None  # ``jobs`` of the sweep's record
    overrides: list[str] = field(default_factory=list)
    conclusions: list[dict[str, Any]] = field(default_factory=list)
    debug: bool = False

    @property
    def ref(self) -> str:
        """How the log and ``conclude`` name it: ``e<id>``."""
        return f"e{self.id}"

    @property
    def statuses(self) -> Counter[str]:
        counts = Counter(job.status for job in self.jobs)
        if self.pending:
            counts["PENDING"] += self.pending
        if self.missing:
            counts["MISSING"] += self.missing
        return counts

    @property
    def state(self) -> Literal["TODO", "DONE"]:
        """DONE once concluded and nothing is left running; TODO otherwise."""
        if self.conclusions and not (set(self.statuses) & UNFINISHED):
            return "DONE"
        return "TODO"

    @property
    def commits(self) -> list[str]:
        return list(dict.fromkeys(c for c in (_git(j).get("commit") for j in self.jobs) if c))

    @property
    def dirty(self) -> bool | None:
        flags = [_git(j).get("dirty") for j in self.jobs if _git(j).get("dirty") is not None]
        return any(flags) if flags else None

    def swept(self) -> dict[str, list[str]]:
        """Override keys whose values differ across the jobs, with their values in job order."""
        from hydra_ledger.load.swept import swept_overrides

        return swept_overrides(job.record.get("overrides") or [] for job in self.jobs)

    def best(self, key: str, mode: Literal["min", "max"]) -> tuple[Any, Job] | None:
        """The job with the lowest (``min``) or highest (``max``) numeric ``summary.<key>``."""
        name = key.removeprefix("summary.")
        scored = []
        for job in self.jobs:
            value = (job.record.get("summary") or {}).get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
                scored.append((value, job))
        if not scored:
            return None
        pick = min if mode == "min" else max
        return pick(scored, key=lambda item: item[0])


def _git(job: Job) -> dict[str, Any]:
    return job.record.get("git") or {}


# -- collecting ---------------------------------------------------------------------------------

def collect(roots: Sequence[str | os.PathLike[str]], include_debug: bool = False) -> list[Entry]:
    """The log's entries for every record under ``roots``, oldest first."""
    import time

    from hydra_ledger.load import read_records, slurm
    from hydra_ledger.load.status import derive_status
    from hydra_ledger.record import sidecars
    from hydra_ledger.record.rows import sweep_dir_of
    from hydra_ledger.record.sweep_jobs import missing_jobs

    now = time.time()
    sweeps: dict[str, Entry] = {}
    entries: list[Entry] = []
    for record_file, record in read_records(roots, errors="warn"):
        paths = RunPaths.from_record_file(record_file)
        job_dir = Path(os.path.abspath(paths.job_dir))
        job = Job(paths, record, derive_status(record, job_dir, now, None))
        sweep = sweep_dir_of(job_dir, record.get("job") or {})
        if sweep is None:
            tags, note = sidecars.annotate(record, paths)
            single = Entry(id=str(record.get("run_id")), kind="run", path=job_dir, started_at=record.get("started_at"),
                          note=note, tags=tags, jobs=[job], overrides=list(record.get("overrides") or []),
                          conclusions=read_conclusions(paths.conclusions), debug=bool(record.get("debug")))
            entries.append(single)
            continue
        key = os.path.realpath(sweep)
        entry = sweeps.get(key)
        if entry is None:
            entry = sweeps[key] = _sweep_entry(Path(sweep), record)
            entries.append(entry)
        entry.jobs.append(job)
        for tag in sidecars.effective_tags(record.get("tags") or (), paths):
            if tag not in entry.tags:
                entry.tags.append(tag)
        for conclusion in read_conclusions(paths.conclusions):
            num = (record.get("job") or {}).get("num")
            entry.conclusions.append({**conclusion, "job": num})
        started = record.get("started_at")
        if started and (entry.started_at is None or started < entry.started_at):
            entry.started_at = started
    rows = [{"sweep": str(e.path), "job_num": (j.record.get("job") or {}).get("num")}
            for e in sweeps.values() for j in e.jobs]
    pending = slurm.pending_rows(rows, roots)
    seen: dict[str, set[Any]] = {}  # per sweep: the nums of its recorded and its PENDING jobs
    for row in [*rows, *pending]:
        seen.setdefault(os.path.realpath(row["sweep"]), set()).add(row["job_num"])
    for row in pending:
        swept = sweeps.get(os.path.realpath(row["sweep"]))
        if swept is not None:
            swept.pending += 1
    for key, entry in sweeps.items():
        entry.missing = len(missing_jobs(entry.job_list, seen.get(key, set())))
    for entry in sweeps.values():
        entry.jobs.sort(key=lambda j: ((j.record.get("job") or {}).get("num") is None,
                                       (j.record.get("job") or {}).get("num") or 0))
        entry.conclusions.sort(key=lambda c: str(c.get("time")))
        entry.debug = entry.debug or all(bool(j.record.get("debug")) for j in entry.jobs)
    if not include_debug:
        entries = [e for e in entries if not e.debug]
    entries.sort(key=lambda e: (e.started_at is None, e.started_at or ""))
    return entries


def _sweep_entry(sweep_dir: Path, first_job: dict[str, Any]) -> Entry:
    sweep_paths = SweepPaths(sweep_dir)
    try:
        sweep = read_record(sweep_paths.record, SWEEP_SCHEMA)
    except RecordError:
        sweep = {}
    job = first_job.get("job") or {}
    return Entry(
        id=str(sweep.get("sweep_id") or job.get("sweep_id") or first_job.get("run_id")),
        kind="sweep",
        path=sweep_dir,
        started_at=sweep.get("started_at"),
        note=sweep.get("note") if "note" in sweep else first_job.get("note"),
        tags=[],
        overrides=list(sweep.get("overrides") or []),
        conclusions=read_conclusions(sweep_paths.conclusions),
        debug=bool(sweep.get("debug")),
        job_list=sweep.get("jobs"),
    )


# -- conclusions ------------------------------------------------------------------------------------

def read_conclusions(path: Path) -> list[dict[str, Any]]:
    """``[{"time", "text", "user"}]`` oldest first; a torn last line (interrupted append) is skipped."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and isinstance(item.get("text"), str):
            out.append(item)
    return out


def add_conclusion(ledger_file: Path, text: str) -> dict[str, Any]:
    """Append one timestamped conclusion (a single ``O_APPEND`` write: earlier ones are never touched)."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        user = None
    item = {"time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "text": text, "user": user}
    append_line(ledger_file, item)
    return item


class TargetError(LedgerError, LookupError):
    """No sweep or run, or several, match what the user typed; the message says what to type."""


def resolve_target(arg: str, roots: Sequence[str | os.PathLike[str]]) -> tuple[str, str, Path]:
    """``(kind, ref, conclusions file)`` of a sweep dir, job dir, or an id prefix (``e`` optional)."""
    path = Path(arg)
    if path.is_dir():
        if SweepPaths(path).record.is_file():
            sweep = read_record(SweepPaths(path).record, SWEEP_SCHEMA)
            return "sweep", f"e{sweep.get('sweep_id')}", SweepPaths(path).conclusions
        if RunPaths(path).record.is_file():
            record = read_record(RunPaths(path).record)
            return "run", f"e{record.get('run_id')}", RunPaths(path).conclusions
        raise TargetError(f"{path} holds neither a sweep record (.ledger/sweep.json) nor a run record "
                          "(.ledger/run.json); pass a sweep dir, a job dir, or an id from 'hydra-ledger log'")
    found = None if roots else _roots.find_roots()
    search = list(roots) if found is None else list(found.roots)
    if found is not None and not search:
        raise TargetError(_roots.nothing_found(found, f"{arg!r} is not a directory either; pass the sweep or job "
                                               "dir, or --in PATH to look up an id in").removeprefix("hydra-ledger: "))
    wanted = [arg] + ([arg[1:]] if arg.startswith("e") and len(arg) > 1 else [])
    matches: dict[str, tuple[str, str, Path]] = {}
    for entry in collect(search, include_debug=True):
        candidates = [(entry.kind, entry.id, _conclusions_file(entry))]
        if entry.kind == "sweep":
            candidates += [("run", str(j.record.get("run_id")), j.paths.conclusions) for j in entry.jobs]
        for kind, ident, file in candidates:
            if any(ident.startswith(w) for w in wanted):
                matches[str(file)] = (kind, f"e{ident}", file)
    where = ", ".join(str(s) for s in search)
    if not matches:
        raise TargetError(f"no sweep or run with id starting with {arg!r} under {where}; "
                          "'hydra-ledger log' lists the ids ([e...])")
    if len(matches) > 1:
        listing = "\n".join(f"  {kind} {ref}  {file.parent.parent}" for kind, ref, file in sorted(matches.values()))
        raise TargetError(f"{arg!r} matches {len(matches)} sweeps or runs under {where}:\n{listing}\n"
                          "type more characters of the id, or the dir")
    return next(iter(matches.values()))


def _conclusions_file(entry: Entry) -> Path:
    return SweepPaths(entry.path).conclusions if entry.kind == "sweep" else RunPaths(entry.path).conclusions


# -- selecting by commit ----------------------------------------------------------------------------

def select_commit(entries: list[Entry], spec: str, repo: str | os.PathLike[str] | None = None) -> list[Entry]:
    """Entries run at commit ``spec`` (a sha or its prefix), or at any commit reachable from
    ``spec`` when it names a branch or tag (``main``), or in a range (``v1..main``)."""
    shas = _reachable(spec, repo, entries)
    if shas is None:  # git cannot tell (no repo here): a plain prefix match on the recorded shas
        return [e for e in entries if any(c.startswith(spec) for c in e.commits)]
    return [e for e in entries if any(c in shas for c in e.commits)]


def _reachable(spec: str, repo: str | os.PathLike[str] | None, entries: Iterable[Entry]) -> set[str] | None:
    places = [str(repo)] if repo else ["."]
    places += list(dict.fromkeys(str(_git(j).get("root")) for e in entries for j in e.jobs if _git(j).get("root")))
    for place in places:
        if not os.path.isdir(place):
            continue
        if ".." in spec:
            out = _run_git(place, "rev-list", spec, "--")
            if out is not None:
                return set(out.split())
            continue
        full = _run_git(place, "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}")
        if full is None:
            continue
        full = full.strip()
        if re.fullmatch(r"[0-9a-f]{4,40}", spec) and full.startswith(spec):
            return {full}  # a commit: exactly that one
        out = _run_git(place, "rev-list", full, "--")  # a branch or tag: its whole history
        if out is not None:
            return set(out.split())
    return None


def _run_git(cwd: str, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", cwd, *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


_subjects: dict[str, str | None] = {}


def commit_subject(entry: Entry) -> str | None:
    """The first line of the message of the entry's (first) commit, from its repository, if still there."""
    commits = entry.commits
    if not commits:
        return None
    sha = commits[0]
    if sha not in _subjects:
        roots = [str(_git(j).get("root")) for j in entry.jobs if _git(j).get("root")]
        subject = None
        for root in dict.fromkeys(roots):
            if os.path.isdir(root):
                out = _run_git(root, "log", "-1", "--format=%s", sha, "--")
                if out is not None:
                    subject = out.strip()
                    break
        _subjects[sha] = subject
    return _subjects[sha]


# -- rendering --------------------------------------------------------------------------------------

def parse_best(spec: str | None) -> tuple[str, Literal["min", "max"]] | None:
    """``summary.val_loss:max`` -> ``("summary.val_loss", "max")``; the mode defaults to ``min``."""
    if not spec:
        return None
    key, _, mode = spec.partition(":")
    mode = mode or "min"
    if mode not in ("min", "max"):
        raise ValueError(f"--best {spec!r}: the mode after ':' is min or max")
    if not key.startswith("summary."):
        key = f"summary.{key}"
    return key, mode  # type: ignore[return-value]


def _local(iso: str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if not iso:
        return "?"
    try:
        return _dt.datetime.fromisoformat(iso).astimezone().strftime(fmt)
    except ValueError:
        return iso


def _shown_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _value(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def facts(entry: Entry, best: tuple[str, Literal["min", "max"]] | None) -> dict[str, str]:
    """The entry's lines as ``label -> text``, shared by the three formats."""
    from hydra_ledger.load.swept import override_key

    out: dict[str, str] = {}
    if entry.debug:
        out["debug"] = "yes (hidden unless --debug)"
    if entry.note:
        out["note"] = entry.note.replace("\n", " / ")
    if entry.tags:
        out["tags"] = ", ".join(entry.tags)
    commits = entry.commits
    if commits:
        subject = commit_subject(entry)
        dirty = {True: "dirty", False: "clean", None: "dirty?"}[entry.dirty]
        text = commits[0][:7] + (f" {subject}" if subject else "") + f" ({dirty})"
        if len(commits) > 1:
            text += f" and {len(commits) - 1} other commit(s)"
        out["commit"] = text
    swept = entry.swept()
    if swept:
        out["swept"] = "  ".join(_swept_values(k, v) for k, v in swept.items())
    elif entry.kind == "run" and entry.overrides:
        out["overrides"] = " ".join(entry.overrides)
    counts = entry.statuses
    total = sum(counts.values())
    by_status = ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=_status_order))
    out["jobs"] = by_status if len(counts) == 1 else f"{total}: {by_status}"
    if best is not None:
        key, mode = best
        found = entry.best(key, mode)
        if found is not None:
            value, job = found
            num = (job.record.get("job") or {}).get("num")
            where = f"job {num}" if num is not None and entry.kind == "sweep" else "this run"
            picked = [o for o in job.record.get("overrides") or [] if override_key(o) in swept]
            out["best"] = f"{key} ({mode}) = {_value(value)}, {where}" + (f" ({' '.join(picked)})" if picked else "") \
                + f" [e{job.record.get('run_id')}]"
        else:
            out["best"] = f"{key} ({mode}): no job has a numeric value"
    return out


# More floats than this (a search's sampled values) read as a count and a range.
_LISTED_FLOATS = 6


def _swept_values(key: str, values: list[str]) -> str:
    """``model=svm,forest``, ``seed=0,1,2``; ``lr: 24 values in [0.000123, 0.0982]`` for many
    floats (sampled by Optuna, say), which listed would fill lines with digits."""
    if len(values) > _LISTED_FLOATS:
        numbers = [_number(v) for v in values]
        present = [n for n in numbers if n is not None]
        if len(present) == len(values) and not all(n.is_integer() for n in present):
            return f"{key}: {len(values)} values in [{min(present):.3g}, {max(present):.3g}]"
    return f"{key}={','.join(values)}"


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _status_order(item: tuple[str, int]) -> tuple[int, str]:
    from hydra_ledger.record.schema import STATUSES

    order = ("COMPLETED", "RUNNING", "PENDING", *STATUSES, "MISSING")
    return (order.index(item[0]) if item[0] in order else len(order), item[0])


def _title(entry: Entry) -> str:
    if entry.note:
        return entry.note.splitlines()[0]
    return f"{entry.kind} {_shown_path(entry.path)}"


def _conclusion_label(c: dict[str, Any]) -> str:
    return f" (job {c['job']})" if c.get("job") is not None else ""


def render(entries: Sequence[Entry], fmt: Format, best: tuple[str, Literal["min", "max"]] | None = None) -> str:
    if fmt == "text":
        return _render_text(entries, best)
    if fmt == "markdown":
        return _render_markdown(entries, best)
    if fmt == "org":
        return _render_org(entries, best)
    raise ValueError(f"unknown format {fmt!r}; valid: text, markdown, org")


def _render_text(entries: Sequence[Entry], best: Any) -> str:
    blocks = []
    for e in entries:
        lines = [f"{_local(e.started_at)}  {e.state}  {e.kind} {e.ref}  {_shown_path(e.path)}"]
        lines += [f"  {label + ':':<9} {text}" for label, text in facts(e, best).items()]
        lines += [f"  concluded {_local(c.get('time'))}{_conclusion_label(c)}: {c['text']}" for c in e.conclusions]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def _md(text: str) -> str:
    return re.sub(r"([\\`*_\[\]<>|])", r"\\\1", text)


def _render_markdown(entries: Sequence[Entry], best: Any) -> str:
    out = ["# Experiment log", ""]
    for e in entries:
        out += [f"## {_local(e.started_at)} · {e.kind} `{e.ref}` · {e.state}", "", f'<a id="{e.ref}"></a>', ""]
        if e.note:
            out += [f"**{_md(e.note.splitlines()[0])}**", ""]
        out.append(f"- Path: `{_shown_path(e.path)}`")
        for label, text in facts(e, best).items():
            if label == "note":
                continue
            out.append(f"- {label.capitalize()}: {_md(text)}")
        if e.conclusions:
            out += ["", "### Conclusions", ""]
            out += [f"- {_local(c.get('time'))}{_conclusion_label(c)} — {_md(c['text'])}" for c in e.conclusions]
        out.append("")
    return "\n".join(out)


def _org_time(iso: str | None) -> str:
    return f"[{_local(iso, '%Y-%m-%d %a %H:%M')}]" if iso else ""


def _org_tag(tag: str) -> str:
    return re.sub(r"[^\w@#%]", "_", tag)


def _render_org(entries: Sequence[Entry], best: Any) -> str:
    out = ["#+TITLE: Experiment log", "#+TODO: TODO | DONE", ""]
    for e in entries:
        heading = f"* {e.state} [{e.ref}] {_title(e)}"
        if e.tags:
            heading += "  :" + ":".join(_org_tag(t) for t in e.tags) + ":"
        out.append(heading)
        if e.state == "DONE" and e.conclusions:
            out.append(f"CLOSED: {_org_time(e.conclusions[-1].get('time'))}")
        props = {"ID": e.ref, "CUSTOM_ID": e.ref, "KIND": e.kind, "PATH": _shown_path(e.path),
                 "STARTED": _org_time(e.started_at), "COMMIT": (e.commits or [""])[0][:12],
                 "DIRTY": {True: "yes", False: "no", None: ""}[e.dirty], "JOBS": str(sum(e.statuses.values()))}
        out.append(":PROPERTIES:")
        out += [f":{k}: {v}".rstrip() for k, v in props.items() if v != ""]
        out.append(":END:")
        out += [f"- {label.capitalize()}: {text}" for label, text in facts(e, best).items()]
        if e.conclusions:
            out.append("** Conclusions")
            out += [f"- {_org_time(c.get('time'))}{_conclusion_label(c)} {c['text']}" for c in e.conclusions]
        out.append("")
    return "\n".join(out)
