"""The Hydra callback: thin hooks that capture the job's context and keep its record current.

Where each hook runs: ``on_multirun_*`` in the launching process; ``on_job_*`` in the
process that runs the task (the same one for the basic launcher, a joblib worker, or a
submitit/Slurm job). Every hook is guarded: a ledger failure is one warning, never the
job's failure.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import socket
import sys
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import hydra
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, ListConfig, OmegaConf

from hydra_ledger.job import optuna_study, plugin_lines, runtime, signals, sweep_git, sweep_interrupt
from hydra_ledger.job.capture.config import resolve_task_config
from hydra_ledger.job.capture.environment import capture_host, installed_packages
from hydra_ledger.job.capture.git import capture_git
from hydra_ledger.job.capture.slurm import capture_slurm
from hydra_ledger.job.latest import link_run, link_sweep, template_prefix
from hydra_ledger.job.project_roots import register_launch
from hydra_ledger.job.source_files import defining_file
from hydra_ledger.job.untracked import save_untracked
from hydra_ledger.record import process_identity
from hydra_ledger.record.files import dump_record, remove_stale_temps, temp_name, write_atomic, write_json_atomic
from hydra_ledger.record.flatten import summarize_return
from hydra_ledger.record.lineage import rerun_of, resumed_sweep_record
from hydra_ledger.record.paths import RunPaths, SweepPaths, is_within
from hydra_ledger.record.redact import Redactor
from hydra_ledger.record.schema import (
    RUN_SCHEMA,
    SCHEMA_VERSION,
    SWEEP_SCHEMA,
    RecordError,
    RunRecord,
    SweepRecord,
    read_heartbeat,
    read_record,
)
from hydra_ledger.record.sweep_jobs import basic_sweep_jobs, redact_jobs
from hydra_plugins.hydra_ledger import DEFAULT_ENV_VARS, DEFAULT_REDACT_KEYS, STRICT_OPTIONS_KEY, LedgerConf

log = logging.getLogger(__name__)

_F = TypeVar("_F", bound=Callable[..., None])

# The options and their defaults come from the plugin's schema (LedgerConf), so that the
# explicit `_target_: hydra_ledger.LedgerCallback` form behaves as the plugin's node.
_OPTIONS: dict[str, Any] = {
    f.name: f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    for f in dataclasses.fields(LedgerConf)
    if f.name != "_target_"
}


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError("not a boolean")


def _as_list(value: Any) -> list[str]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ValueError("not a list")
    return [str(v) for v in value]


def _as_seconds(value: Any) -> float:
    seconds = float(value)
    if not seconds > 0:
        raise ValueError("not a positive number")
    return seconds


# How each option's value is checked, and the type it names when it is not one.
_CHECKS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "enabled": (_as_bool, "Boolean"), "git": (_as_bool, "Boolean"), "packages": (_as_bool, "Boolean"),
    "capture_output": (_as_bool, "Boolean"), "debug": (_as_bool, "Boolean"), "save_patch": (_as_bool, "Boolean"),
    "register": (_as_bool, "Boolean"), "untracked_exclude": (_as_list, "List[str]"),
    "heartbeat_s": (_as_seconds, "Float"), "patch_max_bytes": (int, "Integer"),
    "artifact_hash_max_bytes": (int, "Integer"), "untracked_max_bytes": (int, "Integer"),
    "redact_keys": (lambda v: None if v is None else _as_list(v), "Optional[List[str]]"),
    "env_vars": (lambda v: None if v is None else _as_list(v), "Optional[List[str]]"),
    "tags": (_as_list, "List[str]"), "inputs": (_as_list, "List[str]"),
    "note": (lambda v: None if v is None else str(v), "Optional[str]"),
}


def _checked_options(options: dict[str, Any], strict: bool = False) -> dict[str, Any]:
    """The options over their defaults, each checked.

    Two forms reach here. The plugin's ``ledger`` node (``hydra/callbacks=ledger``,
    ``+hydra/ledger=default``) names :class:`StrictLedgerCallback` (``strict``; an explicit node
    or an earlier version's plugin node says ``_strict_: true``): it stands for the ledger's
    schema, so an unknown option or a bad value is an error that stops the app before any job,
    as Hydra's own check of a structured config would (hydra_plugins.hydra_ledger.ledger_node
    says why the node is not one). The explicit ``_target_`` form names only the options it sets:
    there a bad one is a warning and the default, never an app that cannot start. Warnings are
    logged, not ``warnings.warn``: under ``python -W error`` one would raise here, and Hydra does
    not catch a callback's ``__init__`` failing.
    """
    options = dict(options)
    strict = options.pop(STRICT_OPTIONS_KEY, False) is True or strict
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown and strict:
        raise ValueError(f"hydra-ledger: Key '{unknown[0]}' not in 'LedgerConf' (hydra.callbacks.ledger."
                         f"{unknown[0]}); valid options: {', '.join(_OPTIONS)}")
    if unknown:
        log.warning("hydra-ledger: unknown option(s) %s ignored; valid options: %s",
                    ", ".join(unknown), ", ".join(_OPTIONS))
    merged = dict(_OPTIONS)
    for name, value in options.items():
        if name not in _OPTIONS:
            continue
        check, kind = _CHECKS.get(name, (lambda v: v, "any"))
        try:
            merged[name] = check(value)
        except (TypeError, ValueError) as exc:
            if strict:
                raise ValueError(f"hydra-ledger: hydra.callbacks.ledger.{name}: Value '{value}' of type "
                                 f"'{type(value).__name__}' could not be converted to {kind} ({exc})") from None
            log.warning("hydra-ledger: option %s=%r ignored (%s); using the default %r",
                        name, value, exc, _OPTIONS[name])
    return merged


def _guarded(hook: _F) -> _F:
    @functools.wraps(hook)
    def wrapper(self: LedgerCallback, *args: Any, **kwargs: Any) -> None:
        try:
            hook(self, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - never the job's failure
            log.warning("hydra-ledger: %s failed (%s: %s) — the job runs on", hook.__name__, type(exc).__name__, exc)
            runtime.quiet_unrecorded()  # that warning says it all: log_summary() etc. stay silent

    return wrapper  # type: ignore[return-value]


# Slurm facts kept per attempt: a requeued job keeps its ids but may land on another node.
_ATTEMPT_SLURM_KEYS = ("job_id", "array_job_id", "array_task_id", "restart_count", "node", "submitit_job_id")


def new_id() -> str:
    return uuid.uuid4().hex[:12]


class LedgerCallback(Callback):
    """Records every Hydra job into ``<output_dir>/.ledger/``: enable with ``hydra/callbacks=ledger``."""

    strict_options = False  # an unknown option or a bad value is a warning and the default

    def __init__(self, **options: Any) -> None:
        merged = _checked_options(options, self.strict_options)
        self.enabled = bool(merged["enabled"])
        self.heartbeat_s = max(float(merged["heartbeat_s"]), 0.05)
        self.git = bool(merged["git"])
        self.patch_max_bytes = int(merged["patch_max_bytes"])
        self.untracked_max_bytes = int(merged["untracked_max_bytes"])
        self.save_patch = bool(merged["save_patch"])
        self.untracked_exclude = [str(p) for p in merged["untracked_exclude"]]
        # an empty list is a choice (record no environment variables), not "use the defaults"
        redact_keys, env_vars = merged["redact_keys"], merged["env_vars"]
        self.redact_keys = [str(k) for k in (DEFAULT_REDACT_KEYS if redact_keys is None else redact_keys)]
        self.env_vars = [str(k) for k in (DEFAULT_ENV_VARS if env_vars is None else env_vars)]
        self.packages = bool(merged["packages"])
        self.note = None if merged["note"] is None else str(merged["note"])
        self.tags = [str(t) for t in merged["tags"]]
        self.inputs = [str(k) for k in merged["inputs"]]
        self.capture_output = bool(merged["capture_output"])
        self.debug = bool(merged["debug"])
        self.artifact_hash_max_bytes = int(merged["artifact_hash_max_bytes"])
        self.register = bool(merged["register"])
        # Set in the launching process by on_multirun_start; travels to workers by pickling.
        self.sweep_id: str | None = None
        self.sweep_dir: str | None = None
        self.study: dict[str, Any] | None = None  # an Optuna sweep's study (optuna_study), once read
        # The interpreter and import path for which the launching process wrote the sweep's packages.json.
        self.packages_for: list[str] | None = None

    # -- single run (its one process) ------------------------------------------------------
    @_guarded
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        """The process of a single run, before its job: register where the run goes (for a bare ``ls``)."""
        if self.enabled and self.register:
            register_launch(config.hydra, "run")

    # -- sweep (launching process) ------------------------------------------------------
    @_guarded
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Launching process: write the sweep's record; its id travels to every job."""
        if not self.enabled:
            return
        self.sweep_id = new_id()
        hc = config.hydra
        sweep_dir = Path(os.getcwd(), str(hc.sweep.dir))  # a relative sweep dir is relative to the launch cwd
        self.sweep_dir = str(sweep_dir.resolve())
        redactor = Redactor(self.redact_keys)
        record: SweepRecord = {
            "schema": SWEEP_SCHEMA,
            "version": SCHEMA_VERSION,
            "sweep_id": self.sweep_id,
            "sweep_dir": str(sweep_dir.resolve()),
            "started_at": runtime.utc_now(),
            "ended_at": None,
            "config_name": kwargs.get("config_name"),
            "overrides": redactor.overrides(_override_texts(hc.overrides.task)),
            "hydra_overrides": redactor.overrides(_override_texts(hc.overrides.hydra)),
            "launcher": OmegaConf.select(hc, "launcher._target_", throw_on_missing=False),
            "sweeper": OmegaConf.select(hc, "sweeper._target_", throw_on_missing=False),
            "argv": redactor.overrides(sys.argv),
            "cwd": os.getcwd(),
            "note": self.note,
            "tags": self.tags,
            "debug": self.debug,
            "jobs": redact_jobs(basic_sweep_jobs(config), redactor),
            # pending jobs of a dead launcher will never start (hydra_ledger.load.slurm)
            "launcher_pid": os.getpid(),
            "launcher_host": socket.gethostname(),
        }
        if optuna_study.is_optuna(hc):  # before the first trial: the study's trials so far number the jobs
            record["optuna"] = self.study = optuna_study.study_record(hc)
        mixed = plugin_lines.mismatch(hydra.__version__, (record["launcher"], record["sweeper"]))
        if mixed:  # said before the plugin fails, with the way out
            log.warning("%s", mixed)
        paths = SweepPaths(sweep_dir)
        existing = read_record(paths.record, SWEEP_SCHEMA) if paths.record.exists() else None
        write_json_atomic(paths.record, resumed_sweep_record(existing, record, sweep_dir))
        link_sweep(hc, sweep_dir, os.getcwd())
        sweep_interrupt.watch(self.sweep_dir, self.sweep_id)
        if self.register:
            register_launch(hc, "sweep")
        if self.packages:
            try:
                write_atomic(paths.packages, _packages_json())
                self.packages_for = _import_context()
            except OSError as exc:  # each job writes its own
                log.debug("hydra-ledger: no sweep-wide %s (%s)", paths.packages, exc)
        if self.git:  # last: the sweep dir and its links exist, so that they change nothing watched
            self._capture_sweep_git(hc)

    def _capture_sweep_git(self, hc: DictConfig) -> None:
        """Launching process: the git state once for all jobs (hydra_ledger.job.sweep_git); when it
        cannot be, each job captures its own, as before."""
        main = sys.modules.get("__main__")
        script = getattr(main, "__file__", None)
        if not isinstance(script, str) or self.sweep_dir is None or self.sweep_id is None:
            return
        start = os.path.dirname(os.path.abspath(script))
        try:
            sweep_git.capture_sweep_git(self.sweep_dir, self.sweep_id, start, str(hc.runtime.cwd),
                                        _output_roots(hc, Path(self.sweep_dir), start), self.patch_max_bytes,
                                        self.save_patch)
        except Exception as exc:  # noqa: BLE001 - each job runs git, and says so if that fails too
            log.debug("hydra-ledger: no sweep-wide git state (%s: %s)", type(exc).__name__, exc)

    @_guarded
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Launching process, at the end of the sweep (Hydra 1.3 skips it when a job failed or the sweep stopped)."""
        if not self.enabled or self.sweep_id is None:
            return
        paths = SweepPaths(self.sweep_dir or Path(os.getcwd(), str(config.hydra.sweep.dir)))
        record = read_record(paths.record, SWEEP_SCHEMA)
        record["ended_at"] = runtime.utc_now()
        if isinstance(record.get("optuna"), dict):  # the sweeper has written its best trial(s) by now
            record["optuna"].update(optuna_study.results(paths.sweep_dir))
        write_json_atomic(paths.record, record)

    # -- job (job process) -----------------------------------------------------------------
    @_guarded
    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Job process: write the RUNNING record with everything known before the task runs."""
        if not self.enabled:
            runtime.quiet_unrecorded()  # switched off on purpose: log_summary() etc. need not say so
            return
        previous = runtime.active_run()
        if previous is not None:  # a job of this process ended without on_job_end
            runtime.deactivate(previous)
        hc = config.hydra
        job, runtime_node, overrides = hc.job, hc.runtime, hc.overrides  # each read once: a read costs microseconds
        paths = RunPaths(runtime_node.output_dir)
        fresh = _make_ledger_dir(paths.ledger_dir)
        if not fresh:
            remove_stale_temps(paths.ledger_dir)  # left by a process killed mid-write (an earlier attempt)
        optional_files = _room_for_optional_files(paths.ledger_dir)
        redactor = _job_redactor(tuple(self.redact_keys))
        job_id = None if OmegaConf.is_missing(job, "id") else str(job.id)
        job_num = None if OmegaConf.is_missing(job, "num") else int(job.num)
        multirun = str(OmegaConf.select(hc, "mode", default="")).endswith("MULTIRUN")
        sweep_dir = self._sweep_dir(hc) if multirun else None
        started = runtime.utc_now()
        host = capture_host(self.env_vars)
        host["env"] = redactor.tree(host["env"])  # e.g. env_vars=[WANDB_*] must not record WANDB_API_KEY
        slurm = capture_slurm()
        record, attempt_no = (None, 1) if fresh else self._continue_or_archive(paths, job_id)
        if record is None:
            record = {"run_id": new_id(), "attempts": []}
        record["attempts"].append({
            "attempt": attempt_no, "started_at": started, "ended_at": None, "status": "RUNNING",
            "pid": host["pid"], "hostname": host["hostname"],
            **process_identity.identity(),  # tells this very process from a later one with its pid
            **{k: slurm[k] for k in _ATTEMPT_SLURM_KEYS if k in slurm},
        })

        try:
            resolved, missing, unresolved = resolve_task_config(config)
        except Exception as exc:  # noqa: BLE001 - an OmegaConf surprise must not lose the whole record
            resolved, missing, unresolved = {}, [], {"*": f"{type(exc).__name__}: {exc}"}
        if missing:
            log.warning("hydra-ledger: config values still missing (???), recorded as '???': %s", ", ".join(missing))
        if unresolved:
            log.warning("hydra-ledger: interpolations that failed to resolve, recorded unresolved: %s",
                        ", ".join(unresolved))
        task_function = kwargs.get("task_function")
        fields: RunRecord = {
            "schema": RUN_SCHEMA,
            "version": SCHEMA_VERSION,
            "status": "RUNNING",
            "started_at": started,
            "ended_at": None,
            "duration_s": None,
            "heartbeat_s": self.heartbeat_s,
            "job": {
                "name": str(job.name),
                "id": job_id,
                "num": job_num,
                "mode": "MULTIRUN" if multirun else "RUN",
                "output_dir": str(paths.job_dir),
                "sweep_dir": sweep_dir,
                "sweep_id": self.sweep_id,
                "config_name": OmegaConf.select(job, "config_name", default=None),
                "working_dir": os.getcwd(),
            },
            "overrides": redactor.overrides(_override_texts(overrides.task)),
            "hydra_overrides": redactor.overrides(_override_texts(overrides.hydra)),
            "launch": _launch_info(hc, task_function, redactor),
            "config": redactor.tree(resolved),
            "missing": missing,
            "unresolved": unresolved,
            "choices": _choices(runtime_node.choices),
            "host": host,
            "slurm": slurm,
            "note": self.note,
            "tags": self.tags,
            "debug": self.debug,
            "summary": {},
            "error": None,
            "ledger_version": _version(),
            "rerun_of": rerun_of(job_num),
        }
        if multirun and optuna_study.is_optuna(hc):
            fields["optuna"] = {"trial": optuna_study.trial_number(self._study(sweep_dir), job_num)}
        record.update(fields)
        # The sweep's git state, when a quick check shows it still true and no untracked files
        # need copying, goes into the first record: one write fewer per job.
        reused = self._reused_git(paths, hc, task_function, sweep_dir, sweep_git.QUICK_CHECK_PATHS)
        git_known = not self.git or (reused is not None and not reused[0].get("untracked"))
        if git_known:
            record["git"] = self._capture_git(paths, hc, task_function, optional_files, reused=reused)
        # The RUNNING record goes to disk now, before the slow part (git status and diff, copies
        # of untracked files, input hashing, packages: seconds on a big repo or input): a kill or
        # Ctrl-C meanwhile leaves a record (DIED / INTERRUPTED), not nothing.
        run = runtime.ActiveRun(paths, record, self.heartbeat_s)
        run.redactor = redactor
        run.task_code = getattr(task_function, "__code__", None)
        runtime.activate(run, beat_now=not fresh)  # a fresh .ledger/ holds no heartbeat of an earlier run
        # submitit's SIGUSR2 handler (preemption / time-out): record the case, then let it act
        signals.install_usr2_wrapper()
        if not git_known or self.inputs:
            self._record_slow_part(run, config, task_function, optional_files, sweep_dir, not git_known, reused)
        if self.packages and optional_files:
            try:
                self._write_packages(paths, sweep_dir)
            except Exception as exc:  # noqa: BLE001 - one warning per job and kind
                run._warn_once(f"cannot write {paths.packages}: {exc}", "packages", unrecorded=False)
        if self.capture_output and optional_files:
            from hydra_ledger.job import output_capture

            output_capture.start(paths.stdout, paths.stderr)
        if not multirun:
            link_run(hc, paths.job_dir)

    @_guarded
    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        """Job process: final status, the task's return value as summary, or the failure."""
        run = runtime.active_run()
        if not self.enabled or run is None:
            return
        status, error = _outcome(run, job_return)
        try:
            from hydra_ledger.job.artifacts import record_artifacts

            record_artifacts(run.record, run.paths.job_dir, str(config.hydra.job.name), self.artifact_hash_max_bytes)
            if status == "COMPLETED":
                # the return value has the last word over values logged while running
                with run._lock:
                    run.record.setdefault("summary", {}).update(
                        runtime.redacted(run, summarize_return(job_return._return_value)))
        finally:
            # even when listing artifacts or the summary failed (a warning), the job's outcome lands;
            # a SIGTERM or Ctrl-C meanwhile acts once it is on disk and the job's hooks are undone
            with runtime.signals_deferred():
                run.finish(status, error)
                runtime.deactivate(run)
                if self.capture_output:
                    from hydra_ledger.job import output_capture

                    output_capture.stop()

    # -- helpers -----------------------------------------------------------------------------
    def _continue_or_archive(self, paths: RunPaths, job_id: str | None) -> tuple[dict[str, Any] | None, int]:
        """A record already in this output dir is either this job's earlier attempt (a requeue:
        same sweep and job id) or an earlier run, which is kept under ``.ledger/history/``."""
        try:
            old = read_record(paths.record)
        except RecordError as exc:
            if paths.record.exists():
                log.warning("%s; starting a fresh record", exc)
            return None, 1
        old_job = old.get("job") or {}
        same_job = (
            job_id is not None
            and old_job.get("id") == job_id
            and old_job.get("sweep_id") == self.sweep_id
        )
        if same_job:
            attempts = old.setdefault("attempts", [])
            signals.close_previous_attempt(old, read_heartbeat(paths))
            return old, len(attempts) + 1
        old_id = str(old.get("run_id", new_id()))
        write_atomic(paths.archived_record(old_id), paths.record.read_bytes())
        # per-run files go with it: the new run must not inherit metrics, patch, tags or notes
        for name in RunPaths.PER_RUN:
            current = paths.ledger_dir / name
            if os.path.lexists(current):
                os.replace(current, paths.archived_file(old_id, name))
        return None, 1

    def _write_packages(self, paths: RunPaths, sweep_dir: str | None) -> None:
        """The job's packages.json: a hard link to the sweep's when this process imports from the
        same interpreter and path as the launching process did (the same installed packages),
        else written from this process's own listing."""
        if sweep_dir is not None and self.packages_for is not None and self.packages_for == _import_context():
            temp = temp_name(paths.packages)
            try:
                os.link(SweepPaths(sweep_dir).packages, temp)
                os.replace(temp, paths.packages)
                return
            except OSError:  # no hard links on this file system, or the sweep's file is gone
                with contextlib.suppress(OSError):
                    os.unlink(temp)
        write_atomic(paths.packages, _packages_json())

    def _study(self, sweep_dir: str | None) -> dict[str, Any] | None:
        """The sweep's Optuna study as the launching process recorded it (read from its sweep
        record in a job process of another launcher)."""
        if self.study is None and sweep_dir is not None:
            paths = SweepPaths(sweep_dir)
            if paths.record.is_file():
                study = read_record(paths.record, SWEEP_SCHEMA).get("optuna")
                self.study = study if isinstance(study, dict) else None
        return self.study

    def _sweep_dir(self, hc: DictConfig) -> str:
        """The absolute sweep dir, resolved once in the launching process where possible."""
        if self.sweep_dir is not None:
            return self.sweep_dir
        return str(Path(hc.runtime.cwd, str(hc.sweep.dir)).resolve())

    def _record_slow_part(self, run: runtime.ActiveRun, config: DictConfig, task_function: Any,
                          optional_files: bool, sweep_dir: str | None, with_git: bool,
                          reused: tuple[dict[str, Any], bytes | None] | None) -> None:
        """The git state (when ``with_git``: not in the first record) and the inputs'
        fingerprints, into the record. Not judged by the record's keys: a requeued job's record
        still holds the git state of its earlier attempt."""
        hc = config.hydra
        git_info = None
        if with_git:
            if reused is None:
                reused = self._reused_git(run.paths, hc, task_function, sweep_dir)
            # a sweep's jobs keep their untracked files once, by content, in the sweep's object store
            store = SweepPaths(sweep_dir).objects if sweep_dir is not None else None
            git_info = self._capture_git(run.paths, hc, task_function, optional_files, store, reused)
        inputs = None
        if self.inputs:
            from hydra_ledger.job.inputs import record_inputs

            inputs = record_inputs(config, self.inputs)
        with run._lock:
            if git_info is not None:
                run.record["git"] = git_info
            if inputs is not None:
                run.record["inputs"], run.record["input_hashing"] = inputs
            run.save()

    def _reused_git(self, paths: RunPaths, hc: DictConfig, task_function: Any, sweep_dir: str | None,
                    max_paths: int | None = None) -> tuple[dict[str, Any], bytes | None] | None:
        """A job of a sweep: the launching process's git state, if still true (hydra_ledger.job.sweep_git)."""
        if not self.git or sweep_dir is None:
            return None
        start = _script_dir(task_function) or str(hc.runtime.cwd)
        return sweep_git.reuse_sweep_git(sweep_dir, self.sweep_id, start, str(hc.runtime.cwd), str(paths.job_dir),
                                         max_paths)

    def _capture_git(self, paths: RunPaths, hc: DictConfig, task_function: Any, optional_files: bool = True,
                     store: Path | None = None,
                     reused: tuple[dict[str, Any], bytes | None] | None = None) -> dict[str, Any]:
        """The job's git state (``reused`` from the sweep, else from git) with its patch and
        untracked files saved where there is room."""
        if not self.git:
            return {"state": "disabled"}
        start = _script_dir(task_function) or str(hc.runtime.cwd)
        try:
            info, patch = reused or capture_git(start, self.patch_max_bytes, _output_roots(hc, paths.job_dir, start))
        except Exception as exc:  # noqa: BLE001
            log.warning("hydra-ledger: cannot capture git state from %s: %s", start, exc)
            return {"state": "error", "error": str(exc)}
        if reused and not self.save_patch and info.get("dirty") and info["state"] == "ok" \
                and "patch_skipped" not in info:
            patch = b""  # the sweep kept no patch (save_patch=false): said below, as for a job's own
        if not optional_files:  # low disk space: the job's own files come first
            if info.get("untracked"):
                info.update({"untracked_saved": [], "untracked_not_saved": [
                    {"path": p, "reason": _LOW_SPACE_REASON} for p in info["untracked"]]})
            if patch is not None:
                info["patch_skipped"], patch = _LOW_SPACE_REASON, None
        elif info.get("untracked"):
            info.update(save_untracked(info["root"], info["untracked"], paths.untracked, self.untracked_max_bytes,
                                       self.redact_keys, self.untracked_exclude, store))
        if patch is not None and not self.save_patch:  # it would hold uncommitted secrets verbatim
            info["patch_skipped"] = "not saved: hydra.callbacks.ledger.save_patch=false"
        elif patch is not None:
            try:
                write_atomic(paths.patch, patch)
                info["patch"] = RunPaths.PATCH
            except OSError as exc:  # e.g. a disk quota: the record matters more than the patch
                info["patch_skipped"] = f"cannot write {paths.patch}: {exc.strerror or exc}"
                log.warning("hydra-ledger: uncommitted diff not saved: %s", info["patch_skipped"])
        elif "patch_skipped" in info and optional_files:
            log.warning("hydra-ledger: uncommitted diff not saved: %s (raise hydra.callbacks.ledger.patch_max_bytes)",
                        info["patch_skipped"])
        return info

    def __repr__(self) -> str:
        return f"LedgerCallback(enabled={self.enabled}, heartbeat_s={self.heartbeat_s})"


class StrictLedgerCallback(LedgerCallback):
    """The ledger as the plugin's node enables it (``hydra/callbacks=ledger``): an unknown option
    or a bad value stops the app before any job, as a schema would."""

    strict_options = True


def _outcome(run: runtime.ActiveRun, job_return: JobReturn) -> tuple[str, dict[str, Any] | None]:
    """The final status and error of a job from Hydra's JobReturn."""
    if job_return.status == JobStatus.COMPLETED:
        return "COMPLETED", None
    exc = job_return._return_value  # `.return_value` re-raises for FAILED jobs
    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
        # Hydra >= 1.4 reports these as FAILED (hydra-ecosystem/hydra#3262); 1.3 calls no end
        # hook and the runtime's exit hooks record them the same way.
        return runtime.interrupted_outcome(run, exc)
    if isinstance(exc, BaseException):
        # TIMEOUT when submitit gave up after its time-out signal (UncompletedJobError)
        return signals.failure_status(run.record, exc), runtime.error_info(exc)
    return "FAILED", {"type": "Unknown", "message": repr(exc), "traceback": ""}


def _make_ledger_dir(ledger_dir: Path) -> bool:
    """Create the job's ``.ledger/``; True when this call created it, so that nothing of an
    earlier run or attempt (record, temp files) can be in it. Fails early, with one clear
    warning, when nothing can be written (e.g. ``.ledger`` is a file)."""
    try:
        try:
            os.mkdir(ledger_dir)
        except FileNotFoundError:  # the output dir is not there (yet): create it too
            ledger_dir.parent.mkdir(parents=True, exist_ok=True)
            os.mkdir(ledger_dir)
        return True
    except FileExistsError as exc:
        if os.path.isdir(ledger_dir):
            return False
        problem = exc.strerror or str(exc)
    except OSError as exc:
        problem = exc.strerror or str(exc)
    raise OSError(f"cannot create {ledger_dir} ({problem}), nothing recorded")


# Below this much free space where the job writes, the ledger leaves out its optional files
# (git patch, untracked copies, packages, captured output): they must not be what fills the disk.
LOW_SPACE_BYTES = 64 << 20
_LOW_SPACE_REASON = "low disk space"


def _room_for_optional_files(directory: Path) -> bool:
    """Whether ``directory``'s file system has room for the ledger's optional files; says once when not."""
    try:
        st = os.statvfs(directory)
    except (OSError, AttributeError):  # no statvfs (Windows): assume room
        return True
    free = st.f_bavail * st.f_frsize
    if free >= LOW_SPACE_BYTES:
        return True
    runtime.warn_once_per_process(
        "low-space",
        f"hydra-ledger: only {free / (1 << 20):.1f} MiB free in {directory} (< {LOW_SPACE_BYTES >> 20} MiB): "
        "optional files (git patch, untracked copies, packages, captured output) are not saved, "
        "so that the ledger does not fill the disk; the record itself is kept")
    return False


def _output_roots(hc: DictConfig, output_dir: Path, start: str) -> list[Path]:
    """Where runs write, left out of the untracked files: ``output_dir`` (the job's, or the
    sweep's) and the literal prefixes of the run and sweep dir templates (resolving them, with
    ``${now:...}``, would cost milliseconds of interpolation parsing per job); never the app's
    own dir (e.g. ``hydra.run.dir=.``)."""
    outputs = [output_dir]
    for node in (hc.run, hc.sweep):
        prefix = template_prefix(node, "dir")
        if prefix:
            outputs.append(Path(hc.runtime.cwd, prefix))
    launch_dirs = [os.path.realpath(hc.runtime.cwd), os.path.realpath(start)]  # each resolved once
    return [d for d in outputs if not any(is_within(a, os.path.realpath(d)) for a in launch_dirs)]


def _script_dir(task_function: Any) -> str | None:
    script = defining_file(task_function)
    return os.path.dirname(script) if script else None


def _override_texts(overrides: ListConfig) -> list[str]:
    """Hydra's ``hydra.overrides.task`` or ``.hydra`` as typed on the command line.

    Unresolved on purpose: iterating the ListConfig would resolve an override such as
    ``db.password=${oc.env:DB_PASSWORD}`` to the secret itself. Hydra types both as ``List[str]``.
    """
    texts = OmegaConf.to_container(overrides, resolve=False)
    return [str(t) for t in texts] if isinstance(texts, list) else []


def _choices(choices: DictConfig) -> dict[str, Any]:
    """``hydra.runtime.choices`` (config group -> chosen option, None for an unset optional group)."""
    chosen = OmegaConf.to_container(choices, resolve=False)
    return {str(k): v for k, v in chosen.items()} if isinstance(chosen, dict) else {}


# The launch info of each app run in this process: the same for every job of its sweeps.
_launches: dict[tuple[Any, ...], dict[str, Any]] = {}


def _launch_info(hc: DictConfig, task_function: Any, redactor: Redactor) -> dict[str, Any]:
    """What a rerun needs: the command line, cwd, interpreter and the app's entry point.

    Worked out once per task function, command line, cwd and primary config: every job of a
    sweep run by this process shares them.
    """
    cwd = str(hc.runtime.cwd)
    config_name = OmegaConf.select(hc, "job.config_name", default=None)
    key = (task_function, tuple(sys.argv), cwd, config_name, redactor)
    info = _launches.get(key)
    if info is None:
        main = sys.modules.get("__main__")
        spec = getattr(main, "__spec__", None)
        info = {
            "argv": redactor.overrides(sys.argv),
            "cwd": cwd,
            "python": sys.executable,
            "script": defining_file(task_function),
            "module": getattr(spec, "name", None) if spec is not None and spec.name != "__main__" else None,
            "function": getattr(task_function, "__qualname__", None),
            "config_dir": _primary_config_dir(hc),
            "config_name": config_name,
        }
        if len(_launches) < 16:  # a process that runs many apps keeps only its first ones
            _launches[key] = info
    return {**info, "argv": list(info["argv"])}  # each record its own: never shared between jobs


def _primary_config_dir(hc: DictConfig) -> str | None:
    for source in OmegaConf.select(hc, "runtime.config_sources", default=None) or ():
        if source.get("provider") == "main":
            return str(source.get("path"))
    return None


def _import_context() -> list[str]:
    """What the installed packages a process sees depend on: its interpreter and import path."""
    return [sys.executable, *sys.path]


@functools.lru_cache(maxsize=4)
def _job_redactor(secret_keys: tuple[str, ...]) -> Redactor:
    """One per process and list of secret words: its memo of which key names are secret serves
    every job of a sweep (the same config keys, matched once instead of at every job)."""
    return Redactor(secret_keys)


@functools.lru_cache(maxsize=1)
def _packages_json() -> bytes:
    """Serialised once per process: the same for every job a process runs."""
    return dump_record(installed_packages())


@functools.lru_cache(maxsize=1)
def _version() -> str:
    from hydra_ledger._version import __version__

    return __version__
