r"""Shared output of the commands: frames as table/csv/json/markdown/latex, colour, progress bar.

Colour and progress go to a terminal only: never into pipes, files or ``--format json``,
and never with ``NO_COLOR`` set (https://no-color.org).

Recorded data (config values, overrides, tags, notes, error messages, paths) may hold
terminal control sequences: ``\x1b[2J`` clears the screen, ``\x1b]0;...\x07`` retitles the
window, ``\r`` overwrites a line, U+202E reverses it. Text for people goes through
:func:`printable`, which writes every non-printable character as ``repr`` does. Machine
formats keep the exact data: JSON as ``\uXXXX`` escapes, CSV raw but quoted where a
character could end a row.
"""
from __future__ import annotations

import argparse
import csv
import datetime as _dt
import io
import json
import math
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

if TYPE_CHECKING:  # pandas is imported by the commands that make frames: --help and show start without it
    import pandas as pd

FORMATS = ("table", "csv", "json", "markdown")
_T = TypeVar("_T")


def add_format_option(parser: argparse.ArgumentParser, formats: Sequence[str] = FORMATS) -> None:
    parser.add_argument(
        "--format", "-f", choices=list(formats), default=formats[0],
        help=f"output format (default: {formats[0]})",
    )


# -- values -----------------------------------------------------------------------------------

def printable(value: str) -> str:
    r"""``value`` safe on a terminal: each non-printable character (C0 and C1 controls, DEL, bidi
    and other format characters, line separators) written as ``repr`` writes it: ``\x1b``, ``\r``, ``\u202e``."""
    if value.isprintable():  # nearly always: one C-speed pass
        return value
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in value)


def printable_lines(value: str) -> str:
    """:func:`printable` of each line: the newlines of a text block stay newlines."""
    return "\n".join(printable(line) for line in value.split("\n"))


def _json_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code > 0xFFFF:  # a surrogate pair, as JSON writes characters outside the BMP
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


_NON_ASCII = re.compile(r"[^\x20-\x7e\n]")


def dumps_json(value: Any, **kwargs: Any) -> str:
    """JSON text that keeps unicode readable but escapes what a terminal would act on.

    ``json.dumps`` escapes C0 controls only; C1 controls (U+0080-U+009F, e.g. U+009B, a CSI),
    DEL and bidi overrides would reach the terminal raw. Outside strings JSON is printable
    ASCII, so escaping them anywhere in the text leaves the data exactly as it was.
    """
    text = json.dumps(value, ensure_ascii=False, **kwargs)
    if text.replace("\n", "").isprintable():  # nearly always: C-speed passes
        return text
    return _NON_ASCII.sub(lambda m: m.group() if m.group().isprintable() else _json_escape(m), text)


def is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    pandas = sys.modules.get("pandas")  # pandas' own missing values exist only once it is imported
    return pandas is not None and (value is pandas.NA or value is pandas.NaT)


def plain(value: Any) -> Any:
    """A JSON-ready Python value from a DataFrame cell (timestamps as ISO text, missing as None)."""
    if is_missing(value):
        return None
    if isinstance(value, _dt.datetime):  # pandas' Timestamp too
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        try:
            return value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, float) and math.isinf(value):
        return str(value)
    return value


def text(value: Any, *, digits: int = 6) -> str:
    """A cell as people read it: short floats, ISO times to the second, lists comma-joined."""
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    if isinstance(value, (list, tuple)):
        return ",".join(text(v, digits=digits) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == "T":
        return printable(value[:19].replace("T", " "))  # an ISO timestamp: to the second, in UTC
    return printable(str(value).replace("\n", " ⏎ "))


def texts(values: list[Any], kind: type | None) -> list[str]:
    """:func:`text` of each value of a column of one ``kind`` (bool, int or float; None: any type),
    a typed column in one pass of its own (a 100k-run ``ls`` formats millions of cells)."""
    if kind is float:
        return ["" if v is None or v != v else f"{v:.6g}" for v in values]  # NaN is the one value unequal to itself
    if kind is int:
        return ["" if v is None else str(v) for v in values]
    if kind is bool:
        return ["" if v is None else ("true" if v else "false") for v in values]
    return [text(v) for v in values]


def size(value: Any) -> str:
    """Bytes for people, in powers of 1024 as Slurm writes them: ``3.2G``, ``512M``; ``?`` if not a number."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return "?"
    amount = float(value)
    for unit in ("B", "K", "M", "G", "T"):
        if abs(amount) < 1024 or unit == "T":
            return f"{amount:.0f}{unit}" if unit == "B" else f"{amount:.1f}{unit}"
        amount /= 1024
    return f"{amount:.1f}T"


def duration(seconds: Any) -> str:
    """``75.2`` -> ``1m15s``: durations in a table."""
    seconds = plain(seconds)
    if seconds is None:
        return ""
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(float(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


# -- frames -----------------------------------------------------------------------------------

def render(frame: pd.DataFrame, fmt: str, *, display: dict[str, Any] | None = None) -> str:
    """``frame`` in ``fmt``; ``display`` maps column -> function giving a cell's text (table, markdown, latex)."""
    import pandas as pd

    if fmt == "json":
        names = [str(c) for c in frame.columns]
        columns = [_plain_cells(frame.iloc[:, i]) for i in range(frame.shape[1])]
        records = [dict(zip(names, row)) for row in zip(*columns)] if columns else [{} for _ in range(len(frame))]
        return dumps_json(records, indent=1, default=str) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        cells = pd.DataFrame({c: pd.Series([_csv_cell(v) for v in _plain_cells(frame.iloc[:, i])], dtype=object)
                              for i, c in enumerate(frame.columns)}, columns=list(frame.columns))
        if any(cells[c].map(lambda v: isinstance(v, str) and "\r" in v).any() for c in cells.columns):
            return _csv_rows(cells)
        cells.to_csv(out, index=False, lineterminator="\n")
        return out.getvalue()
    display = display or {}
    header = [printable(str(c)) for c in frame.columns]
    columns = [_cells(frame.iloc[:, i], display.get(c, text)) for i, c in enumerate(frame.columns)]
    rows = [list(row) for row in zip(*columns)] if columns else [[] for _ in range(len(frame))]
    numeric = [pd.api.types.is_numeric_dtype(frame[c].dtype) and not pd.api.types.is_bool_dtype(frame[c].dtype)
               for c in frame.columns]
    return render_rows(header, rows, numeric, fmt)


def render_rows(header: list[str], rows: list[list[str]], numeric: list[bool], fmt: str) -> str:
    """Cells already made text as a table, markdown or latex; ``numeric`` columns right-aligned."""
    if fmt == "table":
        return _table(header, rows, numeric)
    if fmt == "markdown":
        return _markdown(header, rows, numeric)
    if fmt == "latex":
        return _latex(header, rows, numeric)
    raise ValueError(f"unknown format {fmt!r}; valid: table, markdown, latex")


def _cells(column: pd.Series, show: Any) -> list[str]:
    """The texts of a column's cells, as ``show`` gives them; :func:`text` of a typed column in
    one pass of its own (a 100k-run ``ls`` formats millions of cells)."""
    import pandas as pd

    if show is not text or column.dtype == object:
        return [show(v) for v in column.tolist()]
    if pd.api.types.is_bool_dtype(column.dtype):
        return ["" if is_missing(v) else ("true" if v else "false") for v in column.tolist()]
    if pd.api.types.is_float_dtype(column.dtype):
        return ["" if v != v else f"{v:.6g}" for v in column.tolist()]  # NaN is the one value unequal to itself
    if pd.api.types.is_integer_dtype(column.dtype):
        return ["" if v is pd.NA else str(v) for v in column.tolist()]
    if isinstance(column.dtype, pd.DatetimeTZDtype) and str(column.dtype.tz) == "UTC":
        return [str(v) for v in column.dt.strftime("%Y-%m-%d %H:%M:%S").fillna("").tolist()]
    return [show(v) for v in column.tolist()]


def _plain_cells(column: pd.Series) -> list[Any]:
    """:func:`plain` of each cell, typed columns in one pass of their own."""
    import pandas as pd

    dtype = column.dtype
    if pd.api.types.is_object_dtype(dtype):
        return [plain(v) for v in column.tolist()]
    if pd.api.types.is_float_dtype(dtype):
        return [None if v != v else (str(v) if v in (math.inf, -math.inf) else v) for v in column.tolist()]
    if pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        return [None if v is pd.NA else v for v in column.tolist()]
    if isinstance(dtype, pd.DatetimeTZDtype):
        return [None if v is pd.NaT else v.isoformat() for v in column.tolist()]
    return [plain(v) for v in column.tolist()]


def _csv_cell(value: Any) -> Any:
    value = plain(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value


def _csv_rows(cells: pd.DataFrame) -> str:
    r"""CSV of ``cells`` when a value holds a carriage return: the csv module quotes only values
    with a character of the line terminator, so a bare ``\r`` (a row end to most readers) went
    out unquoted; each such row is written with ``\r\n`` as terminator, then ended with ``\n``."""
    out = io.StringIO()
    plain_writer = csv.writer(out, lineterminator="\n")
    plain_writer.writerow([str(c) for c in cells.columns])
    for row in cells.itertuples(index=False):
        values = ["" if v is None else v for v in row]
        if any(isinstance(v, str) and "\r" in v for v in values):
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="\r\n").writerow(values)
            out.write(buffer.getvalue()[:-2] + "\n")
        else:
            plain_writer.writerow(values)
    return out.getvalue()


def _table(header: list[str], rows: list[list[str]], numeric: list[bool]) -> str:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric)]
        return "  ".join(parts).rstrip()

    out = [line(header), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    return "\n".join(out) + "\n"


def _markdown(header: list[str], rows: list[list[str]], numeric: list[bool]) -> str:
    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    out = ["| " + " | ".join(esc(h) for h in header) + " |",
           "|" + "|".join("---:" if num else "---" for num in numeric) + "|"]
    out += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


_LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                  "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def latex_escape(cell: str) -> str:
    escaped = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in cell)
    return escaped.replace("±", r"$\pm$")


def _latex(header: list[str], rows: list[list[str]], numeric: list[bool]) -> str:
    spec = "".join("r" if num else "l" for num in numeric)
    out = [f"\\begin{{tabular}}{{{spec}}}", r"\toprule",
           " & ".join(latex_escape(h) for h in header) + r" \\", r"\midrule"]
    out += [" & ".join(latex_escape(c) for c in r) + r" \\" for r in rows]
    out += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(out) + "\n"


# -- terminal ---------------------------------------------------------------------------------

def is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def use_colour(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stdout
    return is_tty(stream) and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


_COLOURS = {"COMPLETED": "32", "RUNNING": "36", "PENDING": "2", "FAILED": "31", "DIED": "31",
            "CANCELLED": "31", "OUT_OF_MEMORY": "31", "NODE_FAIL": "31", "INTERRUPTED": "33",
            "TIMEOUT": "33", "PREEMPTED": "33", "bold": "1", "dim": "2", "red": "31", "green": "32"}


def colour(value: str, style: str, enabled: bool) -> str:
    code = _COLOURS.get(style)
    return f"\033[{code}m{value}\033[0m" if enabled and code else value


def progress(items: Iterable[_T], label: str, *, enabled: bool, stream: TextIO | None = None,
             total: int | None = None, min_total: int = 200) -> Iterator[_T]:
    """Yield ``items`` while drawing a bar on ``stream`` (stderr) when ``enabled`` and it is a terminal
    (never in a pipe); ``total`` counts an iterator's items; fewer than ``min_total`` draw nothing."""
    stream = stream or sys.stderr
    total = len(items) if total is None else total  # type: ignore[arg-type]
    if not enabled or not is_tty(stream) or total < min_total:
        yield from items
        return
    last = 0.0
    try:
        for done, item in enumerate(items, 1):
            now = time.monotonic()
            if now - last > 0.1 or done == total:
                last = now
                filled = int(30 * done / total)
                stream.write(f"\r{label} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}")
                stream.flush()
            yield item
    finally:
        stream.write("\r\033[K")
        stream.flush()
