"""The real source file of code that names a pseudo-file, as code pickled by value does.

joblib and submitit ship an app's task function to their workers with cloudpickle, by value
when it lives in the script run as ``__main__``. Since cloudpickle 3.1.3 such code names
``<dynamic-code>`` as its file (cloudpipe/cloudpickle#560, for deterministic payloads): the
script path, the git dir and the traceback's source lines would all be lost. The function's
globals still carry the script's ``__file__`` (cloudpickle keeps it), which gives them back.
"""
from __future__ import annotations

import inspect
import linecache
import os
import traceback
from types import TracebackType
from typing import Any

# The file name cloudpickle gives the code it pickles by value. Only this one is mapped: other
# pseudo-files (``<string>`` of exec'd code such as a dataclass's __init__) run in the globals
# of a module whose lines they are not.
PICKLED_CODE_FILE = "<dynamic-code>"


def defining_file(function: Any) -> str | None:
    """The file that defines ``function``: its code's file, or for pickled code the ``__file__``
    of its globals when that is a file; None when unknown."""
    try:
        path = inspect.getfile(function) if function is not None else None
    except (TypeError, OSError):
        path = None
    if path is None or path == PICKLED_CODE_FILE:
        real = _globals_file(getattr(function, "__globals__", None))
        if real is not None:
            return real
    return path


def format_exception(exc: BaseException) -> str:
    """Python's traceback of ``exc``, with frames of pickled code shown at their real file and line."""
    real = _pickled_code_source(exc)
    lines = linecache.getlines(real) if real is not None else []
    added = bool(lines) and PICKLED_CODE_FILE not in linecache.cache
    if added:  # mtime None: linecache.checkcache leaves the entry be
        linecache.cache[PICKLED_CODE_FILE] = (sum(map(len, lines)), None, lines, PICKLED_CODE_FILE)
    try:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    finally:
        if added:  # only while formatting: this process may hold pickled code of other files
            linecache.cache.pop(PICKLED_CODE_FILE, None)
    if real is not None:
        text = text.replace(f'File "{PICKLED_CODE_FILE}", line ', f'File "{real}", line ')
    return text


def _pickled_code_source(exc: BaseException) -> str | None:
    """The one real file of the pickled code in ``exc``'s traceback (and its chain), if one."""
    found: set[str] = set()
    seen: set[int] = set()
    pending: list[Any] = [exc]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        tb: TracebackType | None = current.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == PICKLED_CODE_FILE:
                real = _globals_file(tb.tb_frame.f_globals)
                if real is not None:
                    found.add(real)
            tb = tb.tb_next
        group = getattr(current, "exceptions", None)  # an ExceptionGroup's members
        pending += [current.__cause__, current.__context__, *(group if isinstance(group, tuple) else ())]
    return found.pop() if len(found) == 1 else None


def _globals_file(namespace: Any) -> str | None:
    path = namespace.get("__file__") if isinstance(namespace, dict) else None
    if isinstance(path, str) and os.path.isfile(path):  # a script may have no .py suffix
        return os.path.abspath(path)
    return None
