"""The traceback of a failed training, as a user reads it.

A training fails on the training thread (or a data worker), so Python's
traceback starts with frames of `threading`, `concurrent.futures` and
nbtrain's own loop before it reaches the user's code.  `user_traceback`
hides those frames, the way IPython shows a cell's error: the user's frames
(notebook cells as `Cell In[n], line l`, IPython's own names for them), the
exception, the count of frames hidden, and one line saying what to do next.
Only when every frame is an internal one (an error inside nbtrain) are they
all shown.
"""

from __future__ import annotations

import concurrent.futures
import os
import queue
import threading
import traceback
from typing import Any

_NBTRAIN = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

INTERNAL = (_NBTRAIN + os.sep,
            os.path.dirname(os.path.abspath(concurrent.futures.__file__)) + os.sep)
"""Folders whose frames are hidden: nbtrain's and `concurrent.futures`'."""

INTERNAL_FILES = frozenset(os.path.abspath(module.__file__) for module in (threading, queue))
"""Single files whose frames are hidden: `threading`, `queue`."""

FAILED_HINT = ("The run failed and cannot be resumed: fix the cause, then start a new run "
               "(run.exception holds the error).")
LOST_WORKER_HINT = "A data worker died: Resume goes on at the next batch with fresh workers."
CELL_HINT = "Training failed: fix the cause and run the cell again."


def internal(filename: str) -> bool:
    """True for a frame of nbtrain, `concurrent.futures`, `threading` or `queue`."""
    path = os.path.abspath(filename)
    return path in INTERNAL_FILES or path.startswith(INTERNAL)


def _cell_name(filename: str) -> str | None:
    """`Cell In[3]` for a notebook cell's code (None elsewhere, or without IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    compiler = getattr(shell, "compile", None)
    formatter = getattr(compiler, "format_code_name", None)
    if formatter is None:
        return None
    try:
        named = formatter(filename)
    except Exception:
        return None
    return " ".join(named) if named else None


def _frame(frame: traceback.FrameSummary) -> str:
    cell = _cell_name(frame.filename)
    where = f"{cell}, line {frame.lineno}" if cell else (
        f'File "{frame.filename}", line {frame.lineno}')
    text = f"  {where}, in {frame.name}\n"
    if frame.line:
        text += f"    {frame.line.strip()}\n"
    return text


def _format(exc: BaseException, seen: set[int]) -> tuple[list[str], int]:
    seen.add(id(exc))
    parts: list[str] = []
    hidden_total = 0
    cause, context = exc.__cause__, exc.__context__
    chained = cause if cause is not None else (None if exc.__suppress_context__ else context)
    if chained is not None and id(chained) not in seen:
        parts, hidden_total = _format(chained, seen)
        parts.append("\nThe above exception was the direct cause of the following exception:\n\n"
                     if cause is not None else
                     "\nDuring handling of the above exception, another exception occurred:\n\n")
    frames = traceback.extract_tb(exc.__traceback__)
    shown = [f for f in frames if not internal(f.filename)] or list(frames)
    hidden = len(frames) - len(shown)
    if frames:
        parts.append("Traceback (most recent call last):\n")
        parts.extend(_frame(f) for f in shown)
    parts.extend(traceback.format_exception_only(type(exc), exc))
    return parts, hidden_total + hidden


def user_traceback(exc: BaseException, hint: str | None = FAILED_HINT) -> str:
    """The traceback of `exc` from the user's own frames, then `hint`.

    Args:
        exc: the exception that failed training (with its `__traceback__`).
        hint: one line on what to do next (None: none).

    Returns:
        The text, without a trailing newline.

    Example:

    ```python
    print(user_traceback(run.exception))
    ```
    """
    parts, hidden = _format(exc, set())
    text = "".join(parts).rstrip()
    if hidden:
        text += (f"\n({hidden} frame{'s' if hidden != 1 else ''} of nbtrain, threading and "
                 "concurrent.futures hidden)")
    if hint:
        text += f"\n{hint}"
    return text


def hint_for(run: Any) -> str:
    """What a user can do next about the failed `run` (a lost worker can be resumed)."""
    return LOST_WORKER_HINT if getattr(run, "lost_worker", False) else FAILED_HINT


__all__ = ["CELL_HINT", "FAILED_HINT", "LOST_WORKER_HINT", "hint_for", "internal",
           "user_traceback"]
