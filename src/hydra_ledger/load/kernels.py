"""Arrow's compute functions, called without importing ``pyarrow.compute``.

Importing ``pyarrow.compute`` wraps each of Arrow's ~290 functions and parses its docstring:
50-90 ms, a fifth of a quick command. The functions and their options live in pyarrow's
compiled ``_compute`` module, which costs next to nothing to import. Array and table methods
such as ``cast``, ``take``, ``filter``, ``drop_null``, ``is_null`` and ``dictionary_encode``
import ``pyarrow.compute`` as well, so the command line's quick paths call those through here too:
``kernels.invert(mask)`` is ``pc.invert(mask)``; options go as ``options=``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa

try:
    from pyarrow import _compute as _arrow
except ImportError:  # a pyarrow that moved it: its public module has all these too
    from pyarrow import compute as _arrow

call_function = _arrow.call_function
CastOptions = _arrow.CastOptions
CountOptions = _arrow.CountOptions
MatchSubstringOptions = _arrow.MatchSubstringOptions
SetLookupOptions = _arrow.SetLookupOptions
SortOptions = _arrow.SortOptions

__all__ = ["CountOptions", "MatchSubstringOptions", "SetLookupOptions", "SortOptions", "cast"]


def cast(values: Any, target: pa.DataType) -> Any:
    """``values.cast(target)``: a safe cast, failing on values that do not fit."""
    return call_function("cast", [values], CastOptions.safe(target))


def __getattr__(name: str) -> Callable[..., Any]:
    """``kernels.NAME(*args, options=None)``: Arrow's function NAME, as ``pyarrow.compute.NAME`` calls it
    (``and_``, ``or_``: Arrow's ``and``, ``or``, named as pyarrow names them)."""
    if name.startswith("__"):
        raise AttributeError(name)
    arrow_name = name.removesuffix("_")

    def function(*args: Any, options: Any = None) -> Any:
        return call_function(arrow_name, list(args), options)

    function.__name__ = name
    return function
