"""Loading runs for the commands (through the index, as load_runs) and selecting them: ``--where``, ``--columns``."""
from __future__ import annotations

import difflib
import fnmatch
import io
import keyword
import os
import time
import tokenize
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from hydra_ledger.cli import CommandError
from hydra_ledger.cli._output import progress


def load_frame(paths: Sequence[str], *, include_debug: bool = False, tags: Sequence[str] = (),
               columns: Sequence[str] | None = None, optional: Sequence[str] = (),
               show_progress: bool = False) -> pd.DataFrame:
    """The runs under ``paths`` exactly as ``load_runs`` sees them (the same index, fast on 100k
    runs): sacct's verdict on jobs that died on Slurm, PENDING rows for jobs not started yet.

    ``columns``: only these (names or globs; None: all), plus those of ``optional`` that exist.
    ``show_progress`` draws a bar on a terminal while a long (unindexed) load reads records."""
    return _load(paths, include_debug=include_debug, tags=tags, columns=columns, optional=optional,
                 show_progress=show_progress, missing=False)[0]


def load_frame_and_missing(paths: Sequence[str], *, include_debug: bool = False,
                           columns: Sequence[str] | None = None, optional: Sequence[str] = (),
                           show_progress: bool = False) -> tuple[pd.DataFrame, dict[str, list[dict[str, Any]]]]:
    """:func:`load_frame`, and ``{sweep dir (real path): [{"num", "overrides"}, ...]}`` of the
    jobs of known sweep job lists that never started and never will (MISSING): no record, and no
    PENDING row because their launcher is gone. The frame has a ``job_num`` column."""
    return _load(paths, include_debug=include_debug, tags=(), columns=columns,
                 optional=[*optional, "job_num"], show_progress=show_progress, missing=True)


def _load(paths: Sequence[str], *, include_debug: bool, tags: Sequence[str], columns: Sequence[str] | None,
          optional: Sequence[str], show_progress: bool,
          missing: bool) -> tuple[pd.DataFrame, dict[str, list[dict[str, Any]]]]:
    from hydra_ledger.load import index, walk
    from hydra_ledger.load.frame import build, report_broken
    from hydra_ledger.load import _default_paths

    roots = list(paths) or _default_paths()
    now = time.time()
    if show_progress:
        # called only when records are read in worker processes: a long load worth a bar
        walk.progress = lambda results, total: progress(results, "reading runs", enabled=True, total=total,
                                                            min_total=1)
    try:
        indexes = index.load_roots(roots, now)
    finally:
        walk.progress = None
    report_broken(indexes, "warn")
    frame = build(indexes, now=now, stale_after=None, include_debug=include_debug, status=None,
                        columns=columns, where=None, needed=optional)
    never_started = _missing(indexes, frame, include_debug) if missing else {}
    if tags:
        if "tags" not in frame.columns:
            return frame.iloc[0:0], never_started
        frame = frame[frame["tags"].map(lambda t: isinstance(t, list) and all(x in t for x in tags))]
    return frame.reset_index(drop=True), never_started


def _missing(indexes: Sequence[Any], frame: pd.DataFrame, include_debug: bool) -> dict[str, list[dict[str, Any]]]:
    """The MISSING jobs of each sweep: listed in its record, but neither recorded nor PENDING in ``frame``.

    The sweep records come from :func:`hydra_ledger.load.frame.sweep_candidates`, which the loader
    reads for PENDING rows: only sweeps with jobs not loaded yet (none once all have run)."""
    from hydra_ledger.load.frame import sweep_candidates
    from hydra_ledger.record.sweep_jobs import missing_jobs

    memo: dict[str, str] = {}
    seen: dict[str, set[int]] = {}
    if len(frame) and "sweep" in frame.columns and "job_num" in frame.columns:
        for sweep, num in zip(frame["sweep"].tolist(), frame["job_num"].tolist()):
            if isinstance(sweep, str) and sweep and not pd.isna(num):
                seen.setdefault(os.path.realpath(sweep), set()).add(int(num))
    out: dict[str, list[dict[str, Any]]] = {}
    for sweep_dir, record in sweep_candidates(indexes, seen, memo):
        if record.get("debug") and not include_debug:
            continue  # its jobs are hidden too
        key = os.path.realpath(sweep_dir)
        jobs = missing_jobs(record.get("jobs"), seen.get(key, set()))
        if jobs:
            out[key] = jobs
    return out


def suggest(name: str, columns: Sequence[str]) -> str:
    """`` (close names: a, b)`` or ``""``: what the user may have meant."""
    if "*" in name or "?" in name:  # a glob: suggest the globs of columns whose names start alike
        stem = name.split("*")[0].split("?")[0]
        prefixes = sorted({str(c)[: len(stem)] for c in columns})
        close = [p + name[len(stem):] for p in difflib.get_close_matches(stem, prefixes, n=3, cutoff=0.8)]
        return f" (close names: {', '.join(close)})" if close else ""
    close = difflib.get_close_matches(name, list(columns), n=3, cutoff=0.8)
    if not close:
        tail = name.rsplit(".", 1)[-1]
        close = [c for c in columns if c.rsplit(".", 1)[-1] == tail][:5]
    return f" (close names: {', '.join(close)})" if close else ""


# Names an expression may use that are not columns: pandas.eval's functions and literals.
_FUNCTIONS = frozenset({"sin", "cos", "exp", "log", "expm1", "log1p", "sqrt", "sinh", "cosh", "tanh", "arcsin",
                        "arccos", "arctan", "arccosh", "arcsinh", "arctanh", "abs", "arctan2", "where"})
_LITERALS = frozenset({"True", "False", "None", "inf", "nan", "NaN"})


def quote_columns(expression: str, columns: Sequence[str]) -> str:
    """Backtick-quote the column names in a pandas-style expression; unknown names raise CommandError.

    A dotted name is matched on its longest prefix that is a column, so
    ``cfg.model.name.str.startswith('r')`` keeps pandas' ``.str`` accessor.
    """
    known = set(columns)
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(expression).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError) as exc:
        raise CommandError(f"--where {expression!r} is not a valid expression: {exc}") from None
    out: list[str] = []
    pos = 0  # character offset in expression already copied
    lines = expression.splitlines(keepends=True) or [""]
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def offset(rc: tuple[int, int]) -> int:
        return offsets[rc[0] - 1] + rc[1]

    i = 0
    while i < len(tokens):
        tok = tokens[i]
        prev = tokens[i - 1] if i else None
        after_dot = prev is not None and prev.type == tokenize.OP and prev.string == "."
        if tok.type != tokenize.NAME or keyword.iskeyword(tok.string) or after_dot:
            i += 1
            continue
        # gather the dotted chain written without spaces: a.b.c, summary.value.0
        parts, end, j = [tok.string], tok.end, i + 1
        while j < len(tokens):
            t = tokens[j]
            if t.type == tokenize.OP and t.string == "." and t.start == end and j + 1 < len(tokens) \
                    and tokens[j + 1].type in (tokenize.NAME, tokenize.NUMBER) and tokens[j + 1].start == t.end:
                parts.append(tokens[j + 1].string)
                end = tokens[j + 1].end
                j += 2
            elif t.type == tokenize.NUMBER and t.string.startswith(".") and t.start == end \
                    and t.string[1:].isdigit():
                parts.append(t.string[1:])
                end = t.end
                j += 1
            else:
                break
        nxt = tokens[j] if j < len(tokens) else None
        called = nxt is not None and nxt.type == tokenize.OP and nxt.string == "("
        match = None
        for k in range(len(parts), 0, -1):
            if ".".join(parts[:k]) in known:
                match = k
                break
        if match is None:
            if len(parts) == 1 and (tok.string in _LITERALS or (called and tok.string in _FUNCTIONS)):
                i = j
                continue
            name = ".".join(parts)
            raise CommandError(f"--where: unknown column {name!r}{suggest(name, columns)}; "
                               "list the columns with 'hydra-ledger ls --all-columns --format csv | head -1'")
        name = ".".join(parts[:match])
        start = offset(tok.start)
        # end of the matched prefix: recompute from the chain's text
        stop = start + len(name)
        out.append(expression[pos:start])
        out.append(f"`{name}`")
        pos = stop
        i = j
    out.append(expression[pos:])
    return "".join(out)


def apply_where(frame: pd.DataFrame, expression: str) -> pd.DataFrame:
    """Rows of ``frame`` where the pandas-style ``expression`` (on column names) holds."""
    quoted = quote_columns(expression, [str(c) for c in frame.columns])
    if frame.empty:
        return frame
    try:
        mask = frame.eval(quoted, engine="python")
    except Exception as exc:  # noqa: BLE001 - pandas raises many types for a bad expression
        raise CommandError(f"--where {expression!r} failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(mask, pd.Series) or not (pd.api.types.is_bool_dtype(mask.dtype)):
        raise CommandError(f"--where {expression!r} must be a condition (true or false per run), "
                           "e.g. \"cfg.lr > 0.01 and status == 'COMPLETED'\"")
    return frame[mask.fillna(False).astype(bool)].reset_index(drop=True)


def select_columns(frame: pd.DataFrame, patterns: Sequence[str]) -> list[str]:
    """Columns matching glob ``patterns`` (``cfg.model.*``), in pattern order; a pattern matching none raises."""
    chosen: dict[str, None] = {}
    for pattern in patterns:
        for part in pattern.split(","):
            part = part.strip()
            if not part:
                continue
            hits = [c for c in frame.columns if fnmatch.fnmatchcase(str(c), part)]
            if not hits:
                raise CommandError(f"--columns: no column matches {part!r}{suggest(part, list(frame.columns))}")
            chosen.update(dict.fromkeys(hits))
    return list(chosen)


def column_name(name: str, frame: pd.DataFrame, option: str) -> str:
    """A column the user named, with ``cfg.`` implied: ``lr`` -> ``cfg.lr``; unknown raises."""
    for candidate in (name, f"cfg.{name}", f"summary.{name}"):
        if candidate in frame.columns:
            return candidate
    raise CommandError(f"{option}: unknown column {name!r}{suggest(name, list(frame.columns))}")


def varying_config(frame: pd.DataFrame) -> list[str]:
    """The ``cfg.`` columns whose values differ across the rows (all of them for one row: none)."""
    from hydra_ledger.load import only_changed

    config = [c for c in frame.columns if str(c).startswith("cfg.")]
    return list(only_changed(frame[config], keep=()).columns)


def relative(path: Any) -> str:
    """A path relative to the cwd when below it: shorter in tables."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)
