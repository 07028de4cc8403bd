"""Export to TensorBoard: event files that its HParams tab reads as one experiment of sessions.

``LOGDIR/`` holds the experiment (every hyperparameter and metric of the runs exported there);
``LOGDIR/<name>-<run id>/`` one run: its session start (the flattened config as hyperparameters),
its metrics as scalars with their steps, the summary's values at the last step, and its session
end (the status). Written with tensorboard's own protobufs and record writer, so TensorFlow is
not needed. Exporting a run again replaces its event file: nothing is duplicated.
"""
from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hydra_ledger.export import ExportError, require
from hydra_ledger.export.runs import ExportRun, Scalar
from hydra_ledger.record.files import write_atomic

# Beside the runs in LOGDIR: what each exported run holds (hyperparameters, metric names), so that
# the experiment can list the runs of earlier exports too.
MANIFEST = ".hydra-ledger-export.json"
# Our event files: the name holds "tfevents" (what TensorBoard reads) and our suffix (what we replace).
SUFFIX = ".hydra-ledger"
_UNSAFE = re.compile(r"[^\w.=,+-]+")
_MAX_NAME = 80


@dataclass(frozen=True)
class Written:
    """What became of one ledger run: its run dir under LOGDIR, created or rewritten."""

    run: ExportRun
    directory: Path
    action: Literal["created", "updated"]


def run_dir_name(run: ExportRun) -> str:
    """``model=small,seed=0-3f2a9c81be07``: readable in TensorBoard's run list, unique by the run id."""
    readable = _UNSAFE.sub("_", run.name.replace(" ", ",")).strip("._")[:_MAX_NAME]
    return f"{readable}-{run.run_id}" if readable else run.run_id


def export_tensorboard(runs: Sequence[ExportRun], logdir: str | os.PathLike[str]) -> Iterator[Written]:
    """Write each run's event file under ``logdir``, then the experiment of every run there."""
    pb = _Protobufs()
    root = Path(logdir)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create the TensorBoard log dir {root}: {exc.strerror or exc}") from None
    manifest = _read_manifest(root)
    for run in runs:
        name = run_dir_name(run)
        earlier = str(manifest.get(run.run_id, {}).get("dir") or name)  # as named when first exported
        action: Literal["created", "updated"] = "updated" if (root / earlier).is_dir() else "created"
        directory = root / earlier
        hparams = dict(run.params)
        metrics = sorted({p.name for p in run.metrics} | {f"summary.{k}" for k in run.summary})
        _write_events(pb, directory, run.run_id, _run_events(pb, run, hparams))
        manifest[run.run_id] = {"dir": directory.name, "hparams": hparams, "metrics": metrics}
        yield Written(run, directory, action)
    manifest = {k: v for k, v in manifest.items() if (root / v["dir"]).is_dir()}
    _write_events(pb, root, "experiment", [_experiment(pb, manifest)])
    write_atomic(root / MANIFEST, json.dumps({"runs": manifest}, indent=1, sort_keys=True).encode())


class _Protobufs:
    """The parts of tensorboard used here, imported once (the extra may be missing)."""

    def __init__(self) -> None:
        self.event_pb2 = require("tensorboard.compat.proto.event_pb2", "tensorboard")
        self.summary_pb2 = require("tensorboard.compat.proto.summary_pb2", "tensorboard")
        self.tensor_pb2 = require("tensorboard.compat.proto.tensor_pb2", "tensorboard")
        self.types_pb2 = require("tensorboard.compat.proto.types_pb2", "tensorboard")
        self.hp = require("tensorboard.plugins.hparams.summary_v2", "tensorboard")
        self.hp_metadata = require("tensorboard.plugins.hparams.metadata", "tensorboard")
        self.hp_data = require("tensorboard.plugins.hparams.plugin_data_pb2", "tensorboard")
        self.hp_api = require("tensorboard.plugins.hparams.api_pb2", "tensorboard")
        self.scalar_metadata = require("tensorboard.plugins.scalar.metadata", "tensorboard")
        self.record_writer = require("tensorboard.summary.writer.record_writer", "tensorboard")


# The ledger's statuses as the HParams plugin's: a run that did not complete failed.
_SESSION_STATUS = {"COMPLETED": "STATUS_SUCCESS", "RUNNING": "STATUS_RUNNING"}


def _run_events(pb: _Protobufs, run: ExportRun, hparams: Mapping[str, Scalar]) -> list[Any]:
    """Session start, the scalars in step order, the summary at the last step, the session end."""
    start = run.started_at or time.time()
    events = [pb.event_pb2.Event(wall_time=start, step=0,
                                 summary=pb.hp.hparams_pb(dict(hparams), trial_id=run.run_id,
                                                          start_time_secs=start))]
    for point in sorted(run.metrics, key=lambda p: (p.step, p.time)):
        events.append(pb.event_pb2.Event(wall_time=point.time or start, step=point.step,
                                         summary=_scalar(pb, point.name, point.value)))
    end = run.ended_at or max([start, *(p.time for p in run.metrics)])
    for name, value in run.summary.items():
        events.append(pb.event_pb2.Event(wall_time=end, step=run.last_step,
                                         summary=_scalar(pb, f"summary.{name}", value)))
    if run.status != "RUNNING":
        status = pb.hp_api.Status.Value(_SESSION_STATUS.get(run.status, "STATUS_FAILURE"))
        info = pb.hp_data.HParamsPluginData(session_end_info=pb.hp_data.SessionEndInfo(status=status,
                                                                                       end_time_secs=end))
        events.append(pb.event_pb2.Event(wall_time=end, step=run.last_step,
                                         summary=_plugin_summary(pb, pb.hp_metadata.SESSION_END_INFO_TAG, info)))
    return events


def _scalar(pb: _Protobufs, tag: str, value: float) -> Any:
    """A scalar as TensorFlow 2 writes one (a tensor with the scalars plugin's metadata), in double
    precision: the value logged, not a float32 rounding of it."""
    tensor = pb.tensor_pb2.TensorProto(dtype=pb.types_pb2.DT_DOUBLE, double_val=[value])
    metadata = pb.scalar_metadata.create_summary_metadata(display_name=tag, description="")
    return pb.summary_pb2.Summary(value=[pb.summary_pb2.Summary.Value(tag=tag, tensor=tensor, metadata=metadata)])


def _plugin_summary(pb: _Protobufs, tag: str, data: Any) -> Any:
    metadata = pb.hp_metadata.create_summary_metadata(data)
    return pb.summary_pb2.Summary(value=[pb.summary_pb2.Summary.Value(tag=tag, metadata=metadata,
                                                                      tensor=pb.hp_metadata.NULL_TENSOR)])


def _experiment(pb: _Protobufs, manifest: Mapping[str, Mapping[str, Any]]) -> Any:
    """The experiment of every run in LOGDIR: each hyperparameter with its domain (the values seen,
    or the range of numbers), each metric."""
    values: dict[str, list[Scalar]] = {}
    metrics: set[str] = set()
    for entry in manifest.values():
        for name, value in entry["hparams"].items():
            values.setdefault(name, []).append(value)
        metrics.update(entry["metrics"])
    hparams = [pb.hp.HParam(name, _domain(pb, seen)) for name, seen in sorted(values.items())]
    summary = pb.hp.hparams_config_pb(hparams, [pb.hp.Metric(tag) for tag in sorted(metrics)],
                                      time_created_secs=time.time())
    return pb.event_pb2.Event(wall_time=time.time(), step=0, summary=summary)


def _domain(pb: _Protobufs, seen: list[Scalar]) -> Any:
    kinds = {bool if isinstance(v, bool) else float if isinstance(v, (int, float)) else str for v in seen}
    if kinds == {bool}:
        return pb.hp.Discrete(sorted(set(seen)))
    if kinds == {str}:
        return pb.hp.Discrete(sorted({str(v) for v in seen}))
    if kinds == {float}:
        numbers = [float(v) for v in seen if math.isfinite(float(v))]
        return pb.hp.RealInterval(min(numbers), max(numbers)) if numbers else None
    return None  # a key of different kinds across runs: listed without a domain


def _write_events(pb: _Protobufs, directory: Path, name: str, events: Sequence[Any]) -> None:
    """One event file holding ``events``, replacing the one an earlier export wrote there. Written
    under a name TensorBoard skips, then renamed: a reader never sees half a file."""
    directory.mkdir(parents=True, exist_ok=True)
    old = sorted(directory.glob(f"events.out.tfevents.*{SUFFIX}"))
    # a new name at each export: a running TensorBoard reads a file it knows only from where it stopped
    final = directory / f"events.out.tfevents.{time.time():.6f}.{name}{SUFFIX}"
    temporary = directory / f".{name}.partial"
    with open(temporary, "wb") as stream:
        writer = pb.record_writer.RecordWriter(stream)
        first = pb.event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2")
        for event in (first, *events):
            writer.write(event.SerializeToString())
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, final)
    for path in old:
        if path != final:
            path.unlink(missing_ok=True)


def _read_manifest(root: Path) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ExportError(f"cannot read {root / MANIFEST} ({exc}): remove it and export every run of "
                          f"{root} again") from None
    runs = data.get("runs") if isinstance(data, dict) else None
    return {str(k): v for k, v in runs.items() if isinstance(v, dict) and "dir" in v} if isinstance(runs, dict) else {}
