"""A failed training, as a user reads it: one line, then the user's own frames.

A training fails on the training thread (or a data worker), so Python's
traceback starts with frames of `threading`, nbtrain's loop, Keras and
TensorFlow before (or after) it reaches the user's code.  `report` makes what
the dashboard shows:

1. one line (`headline`): what failed, where (epoch, batch, a Sequence's own
   index such as `MySequence[7]`), and what the user can do next; for a `Run`
   it is `run.failure.line()`, the note `run.wait()`'s exception carries;
2. the traceback from the user's frames only (notebook cells as
   `Cell In[n], line l`, IPython's own names for them) and the exception;
3. the frames of nbtrain, Keras, TensorFlow (and JAX, PyTorch, `threading`,
   `queue`, `concurrent.futures`) folded behind a toggle (an HTML `<details>`),
   or summarised in one line in text.

Terminal escape codes (Keras bolds its messages with them) are removed.  When
every frame is an internal one (an error inside nbtrain) they are all shown.
"""

from __future__ import annotations

import concurrent.futures
import html
import importlib.util
import os
import queue
import re
import threading
import traceback
from typing import Any

from nbtrain.engine.recovery import error_summary, plain

_NBTRAIN = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _package_dir(name: str) -> str | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    locations = list(getattr(spec, "submodule_search_locations", None) or [])
    return os.path.abspath(locations[0]) + os.sep if locations else None


LIBRARIES = ("keras", "tensorflow", "tf_keras", "jax", "jaxlib", "torch", "absl", "optree")
"""Packages whose frames are folded with nbtrain's (found without importing them)."""

INTERNAL = tuple(d for d in [
    _NBTRAIN + os.sep,
    os.path.dirname(os.path.abspath(concurrent.futures.__file__)) + os.sep,
    *(_package_dir(name) for name in LIBRARIES),
] if d)
"""Folders whose frames are folded: nbtrain's, `concurrent.futures`' and `LIBRARIES`'."""

INTERNAL_FILES = frozenset(os.path.abspath(module.__file__) for module in (threading, queue))
"""Single files whose frames are folded: `threading`, `queue`."""

FOLDED = "nbtrain, Keras, TensorFlow and threading"
"""How the folded frames are named."""

FAILED_HINT = "It cannot be resumed: fix the cause, then start a new run (run.exception holds " \
              "the error)."
LOST_WORKER_HINT = "A data worker died: Resume goes on at the next batch with fresh workers."
CELL_HINT = "Fix the cause and run the cell again."


def internal(filename: str) -> bool:
    """True for a frame of nbtrain, Keras, TensorFlow, `concurrent.futures`,
    `threading` or `queue`."""
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


def _exception_only(exc: BaseException, drop: str | None) -> list[str]:
    lines = traceback.format_exception_only(type(exc), exc)
    return [line for line in lines if drop is None or line.strip() != drop.strip()]


def _format(exc: BaseException, seen: set[int], drop: str | None,
            every: bool) -> tuple[list[str], int]:
    """The chain's text (causes first): the user's frames (all with `every`) and
    the number of frames left out."""
    seen.add(id(exc))
    parts: list[str] = []
    hidden_total = 0
    cause, context = exc.__cause__, exc.__context__
    chained = cause if cause is not None else (None if exc.__suppress_context__ else context)
    if chained is not None and id(chained) not in seen:
        parts, hidden_total = _format(chained, seen, drop, every)
        parts.append("\nThe above exception was the direct cause of the following exception:\n\n"
                     if cause is not None else
                     "\nDuring handling of the above exception, another exception occurred:\n\n")
    remote = getattr(exc, "tb", None)
    if not every and type(exc).__name__ == "RemoteTraceback" and isinstance(remote, str):
        text, hidden = _remote(remote)  # a worker process's traceback, as text
        parts.append(text)
        return parts, hidden_total + hidden
    frames = traceback.extract_tb(exc.__traceback__)
    shown = list(frames) if every else (
        [f for f in frames if not internal(f.filename)] or list(frames))
    hidden = len(frames) - len(shown)
    if frames:
        parts.append("Traceback (most recent call last):\n")
        parts.extend(_frame(f) for f in shown)
    parts.extend(_exception_only(exc, drop))
    return parts, hidden_total + hidden


_FRAME_LINE = re.compile(r'^  File "(?P<file>.+)", line (?P<line>\d+), in (?P<name>.+)$')


def _remote(text: str) -> tuple[str, int]:
    """A data worker process's traceback (`RemoteTraceback`'s text) from the user's
    frames (a notebook cell's named as IPython names it), and the frames left out."""
    groups: list[list[str]] = []
    rest: list[str] = []
    for line in text.strip().strip('"').strip().splitlines():
        match = _FRAME_LINE.match(line)
        if match:
            groups.append([line])
        elif groups and line.startswith("    ") and not rest:
            groups[-1].append(line)
        elif line.strip() and not line.startswith("Traceback (most recent call last)"):
            rest.append(line)
    kept: list[str] = []
    for group in groups:
        match = _FRAME_LINE.match(group[0])
        if not internal(match["file"]):
            cell = _cell_name(match["file"])
            if cell:
                group = [f"  {cell}, line {match['line']}, in {match['name']}", *group[1:]]
            kept.extend(group)
    if not kept:  # every frame is nbtrain's: show them all
        return text.strip() + "\n", 0
    body = "\n".join(["Traceback in the data worker process (most recent call last):", *kept,
                      *rest])
    return body + "\n", len(groups) - sum(
        1 for g in groups if not internal(_FRAME_LINE.match(g[0])["file"]))


def _hidden_line(hidden: int) -> str:
    return f"({hidden} frame{'s' if hidden != 1 else ''} of {FOLDED} hidden)"


def user_traceback(exc: BaseException, hint: str | None = FAILED_HINT) -> str:
    """The traceback of `exc` from the user's own frames, then `hint`.

    Args:
        exc: the exception that failed training (with its `__traceback__`).
        hint: one line on what to do next (None: none).

    Returns:
        The text, without a trailing newline or terminal escape codes.

    Example:

    ```python
    print(user_traceback(run.exception))
    ```
    """
    parts, hidden = _format(exc, set(), None, False)
    text = plain("".join(parts)).rstrip()
    if hidden:
        text += "\n" + _hidden_line(hidden)
    if hint:
        text += f"\n{hint}"
    return text


class FailureText(str):
    """The text of a failed run's report (headline, the user's frames, one line
    for the folded ones), carrying its HTML form as `html` (the dashboard's
    message area shows that)."""

    html: str = ""


def report(exc: BaseException, headline: str) -> FailureText:
    """What the dashboard shows of a failed run: `headline` first, the user's frames,
    then the other frames behind a toggle (`<details>`).

    Args:
        exc: the exception.
        headline: the one line (what failed, where, what to do next).

    Returns:
        The text (plain, the folded frames summarised in one line), with `.html`.

    Example:

    ```python
    shown = report(run.exception, run.failure.line())
    ```
    """
    headline = plain(headline)
    parts, hidden = _format(exc, set(), headline, False)
    user = plain("".join(parts)).rstrip()
    text = FailureText(f"{headline}\n{user}" + (f"\n{_hidden_line(hidden)}" if hidden else ""))
    body = (f'<div class="nbtrain-failure-line" style="font-weight:bold;line-height:1.4;'
            f'margin:2px 0">'
            f"{html.escape(headline)}</div>"
            f'<pre class="nbtrain-failure-frames" style="white-space:pre-wrap;margin:2px 0">'
            f"{html.escape(user)}</pre>")
    if hidden:
        every = plain("".join(_format(exc, set(), headline, True)[0])).rstrip()
        body += (f'<details class="nbtrain-failure-details"><summary style="cursor:pointer">'
                 f"{hidden} frame{'s' if hidden != 1 else ''} of {FOLDED}</summary>"
                 f'<pre style="white-space:pre-wrap;margin:2px 0">{html.escape(every)}</pre>'
                 "</details>")
    text.html = f'<div class="nbtrain-failure" style="color:#c62828;margin:4px 0">{body}</div>'
    return text


def headline_for(run: Any) -> str:
    """The one line for the failed `run`: its loop's (`run.failure.line()`), or one
    made from the exception when the loop recorded none."""
    failure = getattr(run, "failure", None)
    if failure is not None and hasattr(failure, "line"):
        return failure.line()
    exc = getattr(run, "exception", None)
    hint = LOST_WORKER_HINT if getattr(run, "lost_worker", False) else FAILED_HINT
    return f"Training failed: {error_summary(exc)}. {hint}" if exc is not None else hint


def cell_headline(exc: BaseException) -> str:
    """The one line for a plain `model.fit` (with a `Dashboard` callback) that raised."""
    return f"Training failed: {error_summary(exc)}. {CELL_HINT}"


def hint_for(run: Any) -> str:
    """What a user can do next about the failed `run` (its one line)."""
    return headline_for(run)


__all__ = ["CELL_HINT", "FAILED_HINT", "FailureText", "LOST_WORKER_HINT", "cell_headline",
           "headline_for",
           "hint_for", "internal", "report", "user_traceback"]
