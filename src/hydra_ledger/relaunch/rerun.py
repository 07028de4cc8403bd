"""Reproducing a recorded run: same code (or the current one), same overrides, a new output dir.

The default is exact: the recorded commit is checked out into a temporary git worktree,
the recorded patch applied and the saved untracked files restored; the same entry point
runs there with the same python and the recorded overrides. Before launching, the
composed config is checked against the recorded one (see ``config_check``).
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import shlex
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from hydra_ledger.record.flatten import flatten
from hydra_ledger.record.lineage import ENV_RERUN_OF, encode_rerun_of
from hydra_ledger.record.paths import RunPaths
from hydra_ledger.record.redact import REDACTED, Redactor
from hydra_ledger.record.schema import RecordError, read_record
from hydra_ledger.relaunch import launch as _launch
from hydra_ledger.relaunch.config_check import (
    ComposeError,
    ConfigDiff,
    compare,
    compose,
    composed_value,
    override_keys,
    volatile_keys,
)
from hydra_ledger.relaunch.launch import Code, CodeSource, RerunError, hydra_dir, quote_value, read_yaml

log = logging.getLogger(__name__)

ConfigSource = Literal["recompose", "saved"]

# Hydra overrides that belong to where and how the original ran, not to what it computed.
_PLACEMENT_KEYS = ("hydra.mode", "hydra.run.dir", "hydra.sweep.dir", "hydra.sweep.subdir", "hydra.job.id",
                   "hydra.job.num", "hydra/launcher", "hydra.launcher", "hydra/sweeper", "hydra.sweeper")
# Hydra's own hydra.run.dir and hydra.sweep.dir (hydra/conf/hydra/output/default.yaml).
_HYDRA_DEFAULT_DIRS = {"run": "outputs/${now:%Y-%m-%d}/${now:%H-%M-%S}",
                       "sweep": "multirun/${now:%Y-%m-%d}/${now:%H-%M-%S}"}
# hydra.yaml nodes that describe the finished run rather than configure a new one.
_SAVED_HYDRA_DROP = ("runtime", "overrides", "mode")


class ConfigMismatch(RerunError):
    """The newly composed config differs from the recorded one."""

    def __init__(self, message: str, diff: ConfigDiff) -> None:
        super().__init__(message)
        self.diff = diff


# -- finding the run ----------------------------------------------------------------------------
def find_run(run: str | os.PathLike[str], roots: Sequence[str | os.PathLike[str]] = ()) -> Path:
    """The job dir of ``run``: a job dir, its ``.ledger/run.json``, or a run id (or unique prefix)
    searched under ``roots`` (default: ``outputs`` and ``multirun`` in the current dir)."""
    from hydra_ledger.load.runs import SelectError, resolve_run

    try:
        paths, _ = resolve_run(str(run), roots)
    except SelectError as exc:
        raise RerunError(str(exc)) from None
    return paths.job_dir


def recorded_overrides(job_dir: Path, record: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """``(task, hydra)`` overrides of a job, from ``.hydra/`` (which keeps secrets) else the record."""
    hdir = hydra_dir(job_dir)
    if hdir is not None:
        task = read_yaml(hdir / "overrides.yaml") or []
        hydra_cfg = (read_yaml(hdir / "hydra.yaml") or {}).get("hydra", {})
        hydra_overrides = ((hydra_cfg.get("overrides") or {}).get("hydra")) or []
        return [str(o) for o in task], [str(o) for o in hydra_overrides]
    task = [str(o) for o in record.get("overrides") or []]
    hydra_overrides = [str(o) for o in record.get("hydra_overrides") or []]
    secret = [o for o in task + hydra_overrides if o.endswith("=" + REDACTED)]
    if secret:
        raise RerunError(f"{job_dir} has no .hydra/ dir and the record redacted {', '.join(secret)}: "
                         "pass the values as extra overrides after --")
    return task, hydra_overrides


def placement_free(hydra_overrides: Sequence[str]) -> list[str]:
    """Hydra overrides minus those that placed the original run (mode, dirs, launcher, sweeper)."""
    return _launch.without(hydra_overrides, _PLACEMENT_KEYS)


def recorded_dir_template(job_dir: Path, launch_dir: Path, mode: Literal["run", "sweep"]) -> str:
    """Where the app puts a new run (``hydra.run.dir``) or sweep (``hydra.sweep.dir``), unresolved
    as recorded in ``.hydra/hydra.yaml`` (``/data/runs/${now:%Y-%m-%d}/${now:%H-%M-%S}``); Hydra's
    default when nothing is recorded. A plainly relative template is made absolute against the
    recorded launch dir, as Hydra read it there: the rerun starts in a temporary worktree."""
    hdir = hydra_dir(job_dir)
    hydra_cfg = ((read_yaml(hdir / "hydra.yaml", required=False) or {}) if hdir else {}).get("hydra")
    node = hydra_cfg.get(mode) if isinstance(hydra_cfg, dict) else None
    template = node.get("dir") if isinstance(node, dict) else None
    if not isinstance(template, str) or not template.strip():
        template = _HYDRA_DEFAULT_DIRS[mode]
    if template.startswith("${") or os.path.isabs(template):  # an interpolation may well be absolute
        return template
    return os.path.join(launch_dir, template)


def unique_dir(candidate: Path) -> Path:
    """``candidate``, with a suffix ``_1``, ``_2``... when it exists: a rerun never reuses a run's dir."""
    unique, n = candidate, 1
    while unique.exists():
        unique = candidate.with_name(f"{candidate.name}_{n}")
        n += 1
    return unique


def saved_config(hdir: Path) -> dict[str, Any]:
    """The saved task config merged with the saved hydra settings (minus what describes the
    finished run): a primary config that reproduces the run without the app's config files."""
    config = read_yaml(hdir / "config.yaml") or {}
    hydra_cfg = dict((read_yaml(hdir / "hydra.yaml") or {}).get("hydra") or {})
    for key in _SAVED_HYDRA_DROP:
        hydra_cfg.pop(key, None)
    job = dict(hydra_cfg.get("job") or {})
    job.pop("id", None)
    job.pop("num", None)
    hydra_cfg["job"] = job
    return {**config, "hydra": hydra_cfg}


# -- the plan ---------------------------------------------------------------------------------
@dataclass
class RerunPlan:
    """Everything a rerun will do, decided before anything runs (what ``--dry-run`` prints)."""

    job_dir: Path
    record: dict[str, Any]
    source: CodeSource
    config_source: ConfigSource
    task_overrides: list[str]
    hydra_overrides: list[str]
    extra: list[str]
    # The new run's dir (the sweep's with a launcher): given, or decided by execute() from
    # dir_template as the app resolves it when launched, since it may hold ${now:...}.
    output_dir: Path | None
    redactor: Redactor
    dir_template: str = ""
    launch_dir: Path = field(default_factory=Path.cwd)
    launcher: str | None = None
    drop: list[str] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return str(self.record.get("run_id"))

    @property
    def code(self) -> Code:
        return self.source.code

    def working_dir(self, root: Path) -> Path:
        return self.source.working_dir(root)

    def entry_argv(self, root: Path) -> list[str]:
        return self.source.entry_argv(root)

    def overrides(self, config_dir: Path | None, extra: bool = True) -> list[str]:
        """The app's arguments: the config source (recorded overrides or saved config), then the extra ones."""
        if self.config_source == "saved":
            assert config_dir is not None
            args = ["--config-path", str(config_dir), "--config-name", "config"]
        else:
            args = [o for o in self.task_overrides if override_keys([o])[0] not in self.drop]
            args += self.hydra_overrides
        return [*args, *self.extra] if extra else args

    @property
    def dir_key(self) -> str:
        return "hydra.run.dir" if self.launcher is None else "hydra.sweep.dir"

    def placement(self) -> list[str]:
        target = quote_value(str(self.output_dir) if self.output_dir is not None else self.dir_template)
        if self.launcher is None:
            return ["hydra.mode=RUN", f"{self.dir_key}={target}"]
        return ["hydra.mode=MULTIRUN", f"hydra/launcher={self.launcher}", f"{self.dir_key}={target}"]

    @property
    def new_job_dir(self) -> Path:
        if self.output_dir is None:
            raise RerunError("the rerun's dir is decided when it runs (execute)")
        return self.output_dir if self.launcher is None else self.output_dir / "0"

    def env(self) -> dict[str, str]:
        return {**os.environ, ENV_RERUN_OF: encode_rerun_of(self.run_id)}

    def commands(self) -> list[str]:
        """The shell commands of this rerun, as ``--dry-run`` prints them (secret values redacted)."""

        def launch(root: Path) -> list[str]:
            cmds = []
            config_dir = Path("<tmp>/saved-config") if self.config_source == "saved" else None
            if config_dir is not None:
                cmds.append(f"# write {config_dir}/config.yaml: {hydra_dir(self.job_dir)}/config.yaml + hydra settings")
            argv = [*self.entry_argv(root), *self.overrides(config_dir), *self.placement()]
            cmds.append(f"cd {shlex.quote(str(self.working_dir(root)))} && {ENV_RERUN_OF}={self.run_id} "
                        + _launch.shown(argv, self.redactor))
            return cmds

        return self.source.commands(launch)


def plan_rerun(
    run: str | os.PathLike[str],
    *,
    code: Code = "recorded",
    config: ConfigSource = "recompose",
    overrides: Sequence[str] = (),
    output_dir: str | os.PathLike[str] | None = None,
    launcher: str | None = None,
    drop: Sequence[str] = (),
    roots: Sequence[str | os.PathLike[str]] = (),
) -> RerunPlan:
    """Decide how to rerun ``run`` (see :func:`rerun`) without running anything."""
    job_dir = find_run(run, roots).absolute()
    try:
        record = read_record(RunPaths(job_dir).record)
    except RecordError as exc:
        raise RerunError(str(exc)) from None
    launch = record.get("launch") or {}
    if not launch.get("script") and not launch.get("module"):
        raise RerunError(f"{RunPaths(job_dir).record} records no entry point (launch.script/module): cannot rerun")
    task, hydra_overrides = recorded_overrides(job_dir, record)
    hdir = hydra_dir(job_dir)
    if config == "saved" and hdir is None:
        raise RerunError(f"{job_dir} has no .hydra/ dir (hydra.output_subdir=null?): "
                         "--from-saved-config needs .hydra/config.yaml and hydra.yaml")
    source = _launch.code_source(code, job_dir, record, subject=f"the run {job_dir}", verb="rerun")
    launch_cwd = Path(str(launch.get("cwd") or os.getcwd()))
    launch_dir = launch_cwd if launch_cwd.exists() else Path.cwd()
    return RerunPlan(job_dir=job_dir, record=record, source=source, config_source=config, task_overrides=task,
                     hydra_overrides=placement_free(hydra_overrides), extra=list(overrides),
                     output_dir=Path(output_dir).absolute() if output_dir is not None else None,
                     redactor=_launch.redactor_for([hdir / "hydra.yaml"] if hdir else []), launcher=launcher,
                     drop=list(drop), launch_dir=launch_dir,
                     dir_template=recorded_dir_template(job_dir, launch_dir, "run" if launcher is None else "sweep"))



# -- running -----------------------------------------------------------------------------------
@dataclass
class SummaryRow:
    key: str
    old: Any
    new: Any
    same: bool


@dataclass
class RerunResult:
    """The outcome of a rerun: the new run's dir and record, the config check, the summary check."""

    plan: RerunPlan
    returncode: int
    config_diff: ConfigDiff | None
    summary: list[SummaryRow] | None = None

    @property
    def path(self) -> Path:
        return self.plan.new_job_dir

    @property
    def run(self) -> dict[str, Any] | None:
        """The new run's record (None when the app wrote none)."""
        try:
            return read_record(RunPaths(self.path).record)
        except RecordError:
            return None

    @property
    def summary_ok(self) -> bool:
        return self.summary is not None and all(row.same for row in self.summary)


@contextlib.contextmanager
def _config_dir(plan: RerunPlan) -> Iterator[Path | None]:
    if plan.config_source != "saved":
        yield None
        return
    hdir = hydra_dir(plan.job_dir)
    assert hdir is not None
    with tempfile.TemporaryDirectory(prefix="hydra-ledger-saved-config-") as tmp:
        Path(tmp, "config.yaml").write_text(yaml.safe_dump(saved_config(hdir), sort_keys=False))
        yield Path(tmp)


def _compose(plan: RerunPlan, root: Path, args: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Compose with ``args``; with current code, overridden keys that no longer exist are left
    out and returned (Hydra names one per attempt)."""
    removed: list[str] = []
    for _ in range(20):
        try:
            kept = [a for a in args if override_keys([a])[0] not in removed]
            argv = [*plan.entry_argv(root), *kept, "hydra.mode=RUN"]
            return compose(argv, plan.working_dir(root), plan.env()), removed
        except ComposeError as exc:
            fresh = [k for k in exc.removed if k not in removed]
            if plan.code != "current" or not fresh:
                raise RerunError(plan.redactor.text(str(exc))) from None  # the app may print secrets
            removed += fresh
    raise RerunError("too many overridden keys no longer exist: " + ", ".join(removed))


def check_config(plan: RerunPlan, root: Path, config_dir: Path | None) -> ConfigDiff:
    """Compose the rerun's config without running it and compare with the recorded one; the
    extra overrides are composed separately so that everything they change counts as intended.

    Raises ConfigMismatch (exact code) or RerunError (current code: keys that no longer exist)."""
    composed, removed_overrides = _compose(plan, root, plan.overrides(config_dir, extra=False))
    hdir = hydra_dir(plan.job_dir)
    ignore = volatile_keys(hdir / "config.yaml" if hdir else None) | set(plan.record.get("unresolved") or {})
    recorded = plan.record.get("config") or {}
    diff = compare(recorded, composed, ignore, redactor=plan.redactor)
    if plan.extra:
        with_extra, _ = _compose(plan, root, plan.overrides(config_dir))
        changes = compare(composed, with_extra, ignore, redactor=plan.redactor)
        old = flatten(recorded)
        for key, (_, new) in changes.changed.items():
            diff.intended[key] = (old.get(key, "(absent)"), new)
        for key, new in changes.added.items():
            diff.intended[key] = (old.get(key, "(absent)"), new)
        for key in changes.removed:
            diff.intended[key] = (old.get(key, "(absent)"), "(absent)")
    if plan.code == "current":
        gone = sorted(set(removed_overrides) | {k for k in diff.removed if not _dropped(k, plan.drop)})
        if gone:
            raise RerunError(
                "keys of the recorded config no longer exist in the current code: " + ", ".join(gone)
                + "\n" + "\n".join(diff.lines())
                + "\nrerun without them with " + " ".join(f"--drop {k}" for k in gone))
        return diff
    if not diff.same:
        raise ConfigMismatch(
            f"the composed config differs from the recorded one of {plan.job_dir}; refusing to rerun "
            "(were .hydra/overrides.yaml or the record edited? use --current-code to accept changed code):\n"
            + "\n".join(diff.lines()), diff)
    return diff


def _dropped(key: str, drop: Sequence[str]) -> bool:
    return any(key == d or key.startswith(d + ".") for d in drop)


def compare_summaries(
    old: Mapping[str, Any], new: Mapping[str, Any], rtol: float = 1e-9, atol: float = 0.0,
    ignore: Sequence[str] = (),
) -> list[SummaryRow]:
    """Summary values side by side: exact for integers, strings and booleans, ``rtol``/``atol`` for floats."""
    rows = []
    for key in sorted(old.keys() | new.keys()):
        if key in ignore:
            continue
        a, b = old.get(key), new.get(key)
        if isinstance(a, float) or isinstance(b, float):
            same = (isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool)
                    and not isinstance(b, bool) and math.isclose(a, b, rel_tol=rtol, abs_tol=atol))
        else:
            same = key in old and key in new and type(a) is type(b) and a == b
        rows.append(SummaryRow(key, a, b, same))
    return rows


def placed(plan: RerunPlan, root: Path, config_dir: Path | None) -> RerunPlan:
    """``plan`` with its output dir decided: where the app, composed as the rerun will run it,
    resolves its dir template now. Relative means relative to the recorded launch dir, and a dir
    inside the temporary checkout (``${hydra:runtime.cwd}/...``) goes to the same place in the
    repository instead, which outlives the checkout."""
    if plan.output_dir is not None:
        return plan
    argv = [*plan.entry_argv(root), *plan.overrides(config_dir), *plan.placement()]
    try:
        value = composed_value(argv, plan.dir_key, plan.working_dir(root), plan.env())
    except ComposeError as exc:
        raise RerunError(plan.redactor.text(f"cannot tell where the rerun goes: {exc}; pass --output-dir")) from None
    where = Path(value)
    if not where.is_absolute():
        where = plan.launch_dir / where
    snapshot = plan.source.snapshot
    if snapshot is not None:
        for path, top in ((where, root), (where.resolve(), root.resolve())):
            if path.is_relative_to(top):
                where = snapshot.repo / path.relative_to(top)
                break
    return dataclasses.replace(plan, output_dir=unique_dir(Path(os.path.normpath(where))))


def execute(plan: RerunPlan, *, check: bool = False, rtol: float = 1e-9, atol: float = 0.0,
            ignore_summary: Sequence[str] = (), capture: bool = False) -> RerunResult:
    """Run a planned rerun: check out, check the config, decide its dir, launch, optionally compare summaries."""
    with plan.source.checked_out() as root, _config_dir(plan) as config_dir:
        diff = check_config(plan, root, config_dir)
        plan = placed(plan, root, config_dir)
        argv = [*plan.entry_argv(root), *plan.overrides(config_dir), *plan.placement()]
        returncode = _launch.run(argv, plan.working_dir(root), plan.env(), what=f"rerun of {plan.job_dir}",
                                 redactor=plan.redactor, capture=capture)
    result = RerunResult(plan, returncode, diff)
    if check:
        new = result.run
        result.summary = compare_summaries(plan.record.get("summary") or {}, (new or {}).get("summary") or {},
                                           rtol, atol, ignore_summary)
    return result


def rerun(
    run: str | os.PathLike[str],
    *overrides: str,
    code: Code = "recorded",
    config: ConfigSource = "recompose",
    output_dir: str | os.PathLike[str] | None = None,
    launcher: str | None = None,
    drop: Sequence[str] = (),
    check: bool = False,
    rtol: float = 1e-9,
    atol: float = 0.0,
    ignore_summary: Sequence[str] = (),
    roots: Sequence[str | os.PathLike[str]] = (),
    capture: bool = False,
) -> RerunResult:
    """Rerun a recorded job and return the new run.

    Parameters
    ----------
    run : a job dir, its ``.ledger/run.json``, or a run id (prefix) searched under ``roots``.
    *overrides : extra overrides appended to the recorded ones (reported as intended differences).
    code : ``"recorded"`` (the recorded commit + patch + untracked files, in a temporary git
        worktree) or ``"current"`` (the working tree as it is now).
    config : ``"recompose"`` from the recorded overrides, or ``"saved"`` from ``.hydra/config.yaml``.
    output_dir : where the new run goes; default: where the app puts a new run, its recorded
        ``hydra.run.dir`` (``hydra.sweep.dir`` with a launcher) resolved now, a relative one
        against the recorded launch dir; a suffix ``_1`` when that dir exists.
    launcher : a Hydra launcher (e.g. ``submitit_local``) to run through; default: in-process.
    drop : with current code, recorded keys that no longer exist and may be left out.
    check : compare the new summary with the recorded one (see ``RerunResult.summary``): exact
        for integers, strings and booleans, floats within ``rtol``/``atol``.
    ignore_summary : summary keys left out of that comparison, e.g. timings.

    Raises ``hydra_ledger.ConfigMismatch`` (with ``.diff``) when the composed config differs from
    the recorded one, ``hydra_ledger.RerunError`` (its base class) when a rerun is impossible.

    Example
    -------
    >>> result = hydra_ledger.rerun("multirun/2024-05-01/12-00-00/3", check=True)  # doctest: +SKIP
    >>> result.summary_ok, result.run["rerun_of"]  # doctest: +SKIP
    """
    plan = plan_rerun(run, code=code, config=config, overrides=overrides, output_dir=output_dir,
                      launcher=launcher, drop=drop, roots=roots)
    return execute(plan, check=check, rtol=rtol, atol=atol, ignore_summary=ignore_summary, capture=capture)
