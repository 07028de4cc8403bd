"""Export to MLflow through its client API (any tracking URI: a ``sqlite:///`` file, a server).

One MLflow run per ledger run, found again by its ``hydra_ledger.run_id`` tag, so that exporting
the same runs again updates them: new tags, metric points and the final status are added, the
points and parameters already there are left as they are (MLflow refuses to change a parameter).
"""
from __future__ import annotations

import importlib.util
import logging
import math
import posixpath
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from hydra_ledger.export import ExportError, require
from hydra_ledger.export.runs import ExportRun
from hydra_ledger.record.redact import redact_url

log = logging.getLogger(__name__)

RUN_ID_TAG = "hydra_ledger.run_id"
TAGS_TAG = "hydra_ledger.tags"  # the user's tags, comma-separated: which tag keys an update may remove
# The ledger's statuses in MLflow's four: a job ended by a signal or its scheduler was killed; one
# that died without a word (out of memory, a lost node) failed.
STATUS = {"COMPLETED": "FINISHED", "FAILED": "FAILED", "DIED": "FAILED", "RUNNING": "RUNNING",
          "INTERRUPTED": "KILLED", "TIMEOUT": "KILLED", "PREEMPTED": "KILLED"}
# MLflow's limits (mlflow.utils.validation): key length, parameter value, tags and params per batch.
MAX_KEY = 250
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_BATCH = 100
MAX_METRIC_BATCH = 1000
_DATABASES = ("sqlite", "postgresql", "mysql", "mssql")  # the schemes of MLflow's SQLAlchemy store
_BAD_KEY_CHARS = re.compile(r"[^\w./\- ]")  # what MLflow accepts in a key (colons not on Windows)


@dataclass(frozen=True)
class Exported:
    """What became of one ledger run: the MLflow run it went to, created or updated."""

    run: ExportRun
    mlflow_run_id: str
    experiment: str
    action: Literal["created", "updated"]


def key(name: str) -> str:
    """A name as MLflow takes it as a key: other characters as ``_``, no ``.``/``..`` path parts."""
    cleaned = _BAD_KEY_CHARS.sub("_", name)
    normal = posixpath.normpath(cleaned)
    if normal != cleaned or normal.startswith(("..", "/")) or normal == ".":
        cleaned = cleaned.replace("/", "_")
        if cleaned.strip(".") == "":
            cleaned = cleaned.replace(".", "_")
    return cleaned[:MAX_KEY] or "_"


def export_mlflow(runs: Sequence[ExportRun], tracking_uri: str, experiment: str | None = None) -> Iterator[Exported]:
    """Create or update one MLflow run per ledger run at ``tracking_uri``; yields each as it is done.

    ``experiment``: all runs in this experiment; default, the experiment named after each run's
    sweep (see :attr:`ExportRun.experiment`). A run exported before stays where it is.
    """
    tracking = require("mlflow.tracking", "mlflow")
    entities = require("mlflow.entities", "mlflow")
    exceptions = require("mlflow.exceptions", "mlflow")
    try:
        client = tracking.MlflowClient(tracking_uri=tracking_uri)
        existing = _existing(client, entities.ViewType)
    except exceptions.MlflowException as exc:
        hint = ""
        if tracking_uri.split(":", 1)[0].split("+", 1)[0] in _DATABASES and not _importable("sqlalchemy"):
            hint = " — MLflow's database stores need SQLAlchemy and alembic: pip install 'hydra-ledger[mlflow]'"
        raise ExportError(f"cannot open the MLflow tracking store {redact_url(tracking_uri)}: {exc}{hint}") from None
    experiments: dict[str, str] = {}  # name -> id, of those runs are created in
    names: dict[str, str] = {}  # id -> name, of those runs exported before are in
    for run in runs:
        name = experiment or run.experiment
        action: Literal["created", "updated"]
        try:
            found = existing.get(run.run_id)
            if found is None:
                if name not in experiments:
                    experiments[name] = _experiment_id(client, name)
                created = client.create_run(experiments[name], start_time=_ms(run.started_at),
                                            tags=_tags(run), run_name=run.name[:MAX_KEY])
                mlflow_run_id, action = created.info.run_id, "created"
                _write(client, entities, run, mlflow_run_id, None)
            else:
                mlflow_run_id, action = found.info.run_id, "updated"
                if found.info.experiment_id not in names:
                    names[found.info.experiment_id] = client.get_experiment(found.info.experiment_id).name
                name = names[found.info.experiment_id]
                _write(client, entities, run, mlflow_run_id, found)
        except exceptions.MlflowException as exc:
            raise ExportError(f"MLflow refused run {run.run_id} ({run.path}): {exc}") from None
        yield Exported(run, mlflow_run_id, name, action)


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: a module blocked in sys.modules
        return False


def _existing(client: Any, view_type: Any) -> dict[str, Any]:
    """``{ledger run id: MLflow run}`` of the runs exported before, in every active experiment."""
    ids: list[str] = []
    token = None
    while True:
        page = client.search_experiments(view_type=view_type.ACTIVE_ONLY, max_results=1000, page_token=token)
        ids += [e.experiment_id for e in page]
        token = page.token
        if not token:
            break
    found: dict[str, Any] = {}
    for start in range(0, len(ids), 100):  # search_runs takes at most 100 experiments
        token = None
        while True:
            page = client.search_runs(ids[start:start + 100], filter_string=f"tags.`{RUN_ID_TAG}` LIKE '%'",
                                      run_view_type=view_type.ACTIVE_ONLY, max_results=1000, page_token=token)
            for mlflow_run in page:
                found.setdefault(mlflow_run.data.tags[RUN_ID_TAG], mlflow_run)
            token = page.token
            if not token:
                break
    return found


def _experiment_id(client: Any, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is None:
        return str(client.create_experiment(name))
    if found.lifecycle_stage == "deleted":
        raise ExportError(f"the MLflow experiment {name!r} is deleted: restore it (mlflow experiments restore) "
                          "or export with --experiment NAME")
    return str(found.experiment_id)


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def _tags(run: ExportRun) -> dict[str, str]:
    """The MLflow tags of a run: the ledger's facts under ``hydra_ledger.``, MLflow's own where it
    has one (git, user, source, note), and each user tag as a key of its own set to ``true``."""
    tags = {RUN_ID_TAG: run.run_id, "hydra_ledger.status": run.status, "hydra_ledger.path": str(run.path),
            "hydra_ledger.sweep": run.sweep or "", TAGS_TAG: ", ".join(run.tags),
            "mlflow.note.content": _note(run)}
    tags.update({f"hydra_ledger.{k}": v for k, v in run.info.items()})
    for ours, theirs in (("git.commit", "mlflow.source.git.commit"), ("git.branch", "mlflow.source.git.branch"),
                         ("git.remote", "mlflow.source.git.repoURL"), ("user", "mlflow.user"),
                         ("script", "mlflow.source.name")):
        if ours in run.info:
            tags[theirs] = run.info[ours]
    if run.error:
        tags["hydra_ledger.error"] = run.error
    for tag in run.tags:
        name = key(tag)
        if not name.startswith(("mlflow.", "hydra_ledger.")):  # never over a tag of MLflow's or ours
            tags.setdefault(name, "true")
    return {k: v[:MAX_TAG_VALUE] for k, v in tags.items()}


def _note(run: ExportRun) -> str:
    """The run's description in MLflow's UI (Markdown): where its files are, its error and notes."""
    lines = [f"hydra-ledger run `{run.run_id}`: [{run.path}]({run.path.as_uri()})"]
    if run.error:
        lines += ["", f"**{run.status}**: {run.error}"]
    if run.note:
        lines += ["", run.note]
    return "\n".join(lines)


def _write(client: Any, entities: Any, run: ExportRun, mlflow_run_id: str, found: Any) -> None:
    """Tags, parameters, metric points and the final status, leaving out what ``found`` holds."""
    tags = _tags(run)
    old_params: dict[str, str] = found.data.params if found is not None else {}
    if found is not None:
        dropped = [t.strip() for t in found.data.tags.get(TAGS_TAG, "").split(",") if t.strip()]
        for name in {key(t) for t in dropped} - set(tags):  # untagged since the last export
            if name in found.data.tags and not name.startswith(("mlflow.", "hydra_ledger.")):
                client.delete_tag(mlflow_run_id, name)
    params = []
    taken: dict[str, str] = {}
    # names MLflow takes as they are first, so that a renamed one (`a@b` -> `a_b`) never displaces `a_b`
    for name, value in sorted(run.params.items(), key=lambda item: key(item[0]) != item[0]):
        text = _text(value)
        if len(text) > MAX_PARAM_VALUE:
            log.warning("hydra-ledger: run %s: config key %s is %d characters long; MLflow keeps the first %d",
                        run.run_id, name, len(text), MAX_PARAM_VALUE)
            text = text[:MAX_PARAM_VALUE]
        mlflow_key = key(name)
        if mlflow_key in taken:
            log.warning("hydra-ledger: run %s: config keys %s and %s are both %s in MLflow's characters; "
                        "%s is left out", run.run_id, taken[mlflow_key], name, mlflow_key, name)
            continue
        taken[mlflow_key] = name
        if mlflow_key in old_params:
            if old_params[mlflow_key] != text:  # MLflow refuses to change a parameter
                log.warning("hydra-ledger: run %s: parameter %s is %r in MLflow and %r in the record; kept as it "
                            "was", run.run_id, mlflow_key, old_params[mlflow_key], text)
            continue
        params.append(entities.Param(mlflow_key, text))
    metrics = [entities.Metric(key(p.name), p.value, _ms(p.time) or 0, p.step) for p in run.metrics]
    summary_time = _ms(run.ended_at or run.started_at or time.time()) or 0
    metrics += [entities.Metric(key(f"summary.{name}"), value, summary_time, run.last_step)
                for name, value in run.summary.items()]
    if found is not None:
        metrics = _new_points(client, mlflow_run_id, metrics)
    tag_list = [entities.RunTag(k, v) for k, v in tags.items()]
    for start in range(0, max(len(params), len(tag_list)), MAX_BATCH):
        client.log_batch(mlflow_run_id, params=params[start:start + MAX_BATCH], tags=tag_list[start:start + MAX_BATCH])
    for start in range(0, len(metrics), MAX_METRIC_BATCH):
        client.log_batch(mlflow_run_id, metrics=metrics[start:start + MAX_METRIC_BATCH])
    status = STATUS.get(run.status, "FAILED")
    if status == "RUNNING":
        client.update_run(mlflow_run_id, status="RUNNING")
    else:
        client.set_terminated(mlflow_run_id, status, end_time=_ms(run.ended_at))


def _text(value: Any) -> str:
    """A parameter's text as MLflow's own logging writes it (``str``; lists and mappings are JSON already)."""
    return value if isinstance(value, str) else str(value)


def _new_points(client: Any, mlflow_run_id: str, metrics: list[Any]) -> list[Any]:
    """The metric points an earlier export did not log: each (step, time, value) is logged once,
    and a summary value only when it changed."""
    history: dict[str, set[tuple[int, int, Any]]] = {}
    last: dict[str, Any] = {}
    for name in {m.key for m in metrics}:
        points = client.get_metric_history(mlflow_run_id, name)
        history[name] = {(p.step, p.timestamp, _same(p.value)) for p in points}
        if points:
            last[name] = _same(max(points, key=lambda p: (p.step, p.timestamp)).value)
    new = []
    for metric in metrics:
        if metric.key.startswith("summary."):
            if metric.key in last and last[metric.key] == _same(metric.value):
                continue
        elif (metric.step, metric.timestamp, _same(metric.value)) in history[metric.key]:
            continue
        new.append(metric)
    return new


def _same(value: float) -> Any:
    """A value that compares equal to itself, NaN included."""
    return "nan" if isinstance(value, float) and math.isnan(value) else value
