"""Building the self-contained HTML report: the runs' data inlined as JSON into one page.

The page (``template.html`` with ``style.css`` and ``app.js`` inlined) needs no network
and no server: it opens from disk, and can be mailed or attached to a paper's supplement.
Data is columnar (one array per column) to stay small and fast for thousands of runs.
"""
from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from hydra_ledger.record.paths import RunPaths

# Columns carried into the page besides cfg./summary./choice.: enough for the details pane.
_BASE = ["run_id", "status", "started_at", "duration_s", "sweep", "job_num", "path", "overrides", "tags", "note",
         "error.type", "error.message", "git.commit", "git.branch", "git.dirty", "host.hostname", "slurm.job_id"]
_BASE += ["resources.cpu_s", "resources.peak_rss_bytes", "slurm.mem_efficiency", "slurm.cpu_efficiency"]
MAX_POINTS = 200  # per training curve: enough for the shape, small for 5,000 runs
# The importance pane: a forest per metric, for the first few numeric summary values (the first
# alone above MANY_RUNS); fANOVA's cost grows with the runs (seconds per metric at a few hundred,
# a minute at 2,000), so above FANOVA_MAX_RUNS the pane uses mean decrease impurity (a second or two).
IMPORTANCE_METRICS = 4
MANY_RUNS = 1000
FANOVA_MAX_RUNS = 100


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        try:
            return _plain(value.item())
        except (ValueError, AttributeError):
            return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value



def _plain_or_note(value: Any) -> Any:
    """A cell as :func:`_plain` makes it, or the loader's note for a value nested too deeply to walk.

    From Python 3.13, json counts against the C recursion limit (~10,000 levels) rather than
    sys.getrecursionlimit(), so a list nested ~1,000 levels deep loads whole instead of as a note.
    """
    try:
        return _plain(value)
    except RecursionError:
        return f"<{type(value).__name__} nested too deeply to load>"


def report_columns(frame: pd.DataFrame) -> list[str]:
    """The columns shown in the report, in order: base, config, user choices, summary."""
    names = [str(c) for c in frame.columns]
    cfg = [c for c in names if c.startswith("cfg.")]
    choices = [c for c in names if c.startswith("choice.") and not c.startswith("choice.hydra/")]
    summary = [c for c in names if c.startswith("summary.")]
    return [c for c in _BASE if c in names] + cfg + choices + summary


def read_curves(job_dir: str, max_points: int = MAX_POINTS) -> dict[str, list[list[float]]]:
    """``{metric: [[step, value], ...]}`` of one run's metrics.jsonl, downsampled to ``max_points``."""
    from hydra_ledger.record.files import metric_entries

    curves: dict[str, list[list[float]]] = {}
    for index, entry, values in metric_entries(RunPaths(job_dir).metrics):
        step = entry.get("step")
        x = step if isinstance(step, (int, float)) else index
        for name, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                curves.setdefault(name, []).append([x, value])
    for name, points in curves.items():
        if len(points) > max_points:
            stride = len(points) / max_points
            picked = [points[int(i * stride)] for i in range(max_points - 1)] + [points[-1]]
            curves[name] = picked
    return curves


def report_data(frame: pd.DataFrame, curves: Mapping[str, Mapping[str, Any]] | None = None,
                title: str = "hydra-ledger report") -> dict[str, Any]:
    """Everything the page shows, as JSON-ready data: ``swept`` leads the table and the plots,
    ``folded`` (config keys varying with a group choice) is shown on request."""
    from hydra_ledger.load.swept import swept_keys, varying_config

    columns = report_columns(frame)
    swept = swept_keys(frame)
    data = {c: [_plain_or_note(v) for v in frame[c].tolist()] for c in columns}
    kinds = {}
    for c in columns:
        dtype = frame[c].dtype
        if pd.api.types.is_bool_dtype(dtype):
            kinds[c] = "bool"
        elif pd.api.types.is_numeric_dtype(dtype):
            kinds[c] = "number"
        else:
            kinds[c] = "text"
    metrics = [c for c in columns if c.startswith("summary.") and kinds[c] == "number"]
    return {
        "title": title,
        "count": len(frame),
        "columns": columns,
        "kinds": kinds,
        "data": data,
        "swept": [k for k in swept if k in columns],
        "folded": [k for k in varying_config(frame) if k in columns and k not in swept],
        "metrics": metrics,
        "curves": dict(curves or {}),
        "importance": importance_pane(frame, swept, metrics),
    }


def importance_pane(frame: pd.DataFrame, swept: Sequence[str], metrics: Sequence[str]) -> dict[str, Any]:
    """The swept keys' importance for each of the first metrics (or why it failed, per metric), computed
    over all the report's runs; or, in ``note``, the one line saying why the pane is empty. The
    default evaluator for a hundred runs or fewer, mean decrease impurity above (see FANOVA_MAX_RUNS)."""
    from hydra_ledger.load.importance import ImportanceError, available, param_importance

    problem = available()
    if problem:
        return {"note": problem[0].upper() + problem[1:], "metrics": {}}
    if not swept:
        return {"note": "Hyperparameter importance: nothing was swept.", "metrics": {}}
    if not metrics:
        return {"note": "Hyperparameter importance: no numeric summary value to explain.", "metrics": {}}
    out: dict[str, Any] = {}
    evaluator = None if len(frame) <= FANOVA_MAX_RUNS else "mdi"
    for metric in metrics[:IMPORTANCE_METRICS if len(frame) <= MANY_RUNS else 1]:
        try:
            result = param_importance(frame, metric, keys=swept, evaluator=evaluator)
            out[metric] = {**result.to_dict(), "label": result.label}
        except ImportanceError as exc:
            out[metric] = {"error": str(exc)}
    return {"note": None, "metrics": out}


def _asset(name: str) -> str:
    return resources.files("hydra_ledger.report").joinpath(name).read_text(encoding="utf-8")


def render_html(data: Mapping[str, Any]) -> str:
    """The page: template with CSS, JS and data inlined; ``<`` escaped so data cannot end the script."""
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    payload = payload.replace("<", "\\u003c")  # `<` only occurs inside JSON strings
    page = _asset("template.html")
    for marker, value in (("/*STYLE*/", _asset("style.css")), ("/*SCRIPT*/", _asset("app.js")),
                          ("{{TITLE}}", html.escape(str(data.get("title", "")))), ("{{DATA}}", payload)):
        page = page.replace(marker, value, 1)
    return page


def build_report(frame: pd.DataFrame, output: str | Path, *, title: str = "hydra-ledger report",
                 curves: bool = True, progress: Any = None) -> Path:
    """Write the report of ``frame``'s runs to ``output`` (atomically); return its path.

    ``progress`` wraps the per-run iteration (the CLI passes its progress bar).
    """
    from hydra_ledger.record.files import write_atomic

    per_run: dict[str, Any] = {}
    if curves and len(frame):
        rows: Sequence[tuple[Any, Any]] = list(zip(frame["run_id"].tolist(), frame["path"].tolist()))
        iterator = progress(rows) if progress is not None else rows
        for run_id, path in iterator:
            found = read_curves(path)
            if found:
                per_run[str(run_id)] = found
    page = render_html(report_data(frame, per_run, title))
    output = Path(output)
    write_atomic(output, page.encode("utf-8"))
    return output
