"""Choosing rows and columns by name: ``where`` expressions and column globs, for the loader and the CLI.

Column names hold dots (``cfg.model.lr``), which pandas' expressions read as attribute access:
names are back-quoted before pandas sees them. Unknown names raise QueryError naming close ones;
the command line shows its message as is.
"""
from __future__ import annotations

import difflib
import fnmatch
import io
import keyword
import re
import tokenize
from collections.abc import Sequence

import pandas as pd

from hydra_ledger.errors import LedgerError


class QueryError(LedgerError, ValueError):
    """A ``where`` expression or a column pattern that cannot be used; the message says why and
    names the columns the user may have meant."""


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
    """Backtick-quote the column names in a pandas-style expression; unknown names raise QueryError.

    A dotted name is matched on its longest prefix that is a column, so
    ``cfg.model.name.str.startswith('r')`` keeps pandas' ``.str`` accessor. Names already
    back-quoted, as pandas writes them (`` `cfg.db` == 'mysql' ``), are taken as they are.
    """
    known = set(columns)
    given = expression
    held: dict[str, str] = {}  # placeholder -> a name the user back-quoted

    def hold(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in known:
            raise QueryError(f"--where: unknown column {name!r}{suggest(name, columns)}; "
                             "list the columns with 'hydra-ledger ls --all-columns --format csv | head -1'")
        placeholder = f"__ledger_quoted_{len(held)}__"
        held[placeholder] = name
        return placeholder

    expression = re.sub(r"`([^`]*)`", hold, expression)
    known.update(held)
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(expression).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError) as exc:
        raise QueryError(f"--where {given!r} is not a valid expression: {exc}") from None
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
            raise QueryError(f"--where: unknown column {name!r}{suggest(name, columns)}; "
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
    quoted = "".join(out)
    for placeholder, name in held.items():
        quoted = quoted.replace(f"`{placeholder}`", f"`{name}`")
    return quoted


def apply_where(frame: pd.DataFrame, expression: str) -> pd.DataFrame:
    """Rows of ``frame`` where the pandas-style ``expression`` (on column names) holds."""
    quoted = quote_columns(expression, [str(c) for c in frame.columns])
    if frame.empty:
        return frame
    try:
        mask = frame.eval(quoted, engine="python")
    except Exception as exc:  # noqa: BLE001 - pandas raises many types for a bad expression
        raise QueryError(f"--where {expression!r} failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(mask, pd.Series) or not (pd.api.types.is_bool_dtype(mask.dtype)):
        raise QueryError(f"--where {expression!r} must be a condition (true or false per run), "
                           "e.g. \"cfg.lr > 0.01 and status == 'COMPLETED'\"")
    return frame[mask.fillna(False).astype(bool)].reset_index(drop=True)


def glob_columns(names: Sequence[str], patterns: Sequence[str], option: str = "--columns") -> list[str]:
    """Names matching glob ``patterns`` (``cfg.model.*``; several may be joined by commas), in
    pattern order; a pattern matching none raises QueryError naming ``option`` and close names."""
    chosen: dict[str, None] = {}
    for pattern in patterns:
        for part in pattern.split(","):
            part = part.strip()
            if not part:
                continue
            hits = [name for name in names if fnmatch.fnmatchcase(name, part)]
            if not hits and names:
                raise QueryError(f"{option}: no column matches {part!r}{suggest(part, names)}")
            chosen.update(dict.fromkeys(hits))
    return list(chosen)


def referenced(expression: str, columns: Sequence[str]) -> tuple[str, list[str]]:
    """``expression`` with its column names back-quoted, and those names; unknown names raise QueryError."""
    try:
        quoted = quote_columns(expression, columns)
    except QueryError as exc:
        raise QueryError(f"hydra-ledger: where={expression!r}: {exc}".replace("--where: ", "")) from None
    return quoted, list(dict.fromkeys(re.findall(r"`([^`]*)`", quoted)))


def choose(names: Sequence[str], patterns: Sequence[str]) -> list[str]:
    """Column names matching glob ``patterns``, in the order of ``names``; a pattern matching none raises QueryError."""
    chosen = set(glob_columns(names, patterns, option="hydra-ledger: columns"))
    return [name for name in names if name in chosen]
