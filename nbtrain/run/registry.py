"""Which model is training in which Run: one pass per model at a time.

A Run *claims* its model when a pass begins and *releases* it when the pass
ends; a second Run of the same model is refused with a clear error.  At
interpreter exit every Run still training is stopped, so its data workers (and
their shared memory) are cleaned up by the loop's own exit path.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import threading
from typing import Any

from nbtrain.run.waiting import Deadline

# Models with a pass in progress: id(model) -> (run, its PassRunner).  A Run holds its
# model, so ids are unique while the entry lasts.
_ACTIVE: dict[int, tuple[Any, Any]] = {}
_LOCK = threading.Lock()


def check_free(model: Any, run: Any = None) -> None:
    """Raise if `model` is training in a Run other than `run`.

    Raises:
        RuntimeError: it is.
    """
    with _LOCK:
        _raise_if_busy(model, run)


def claim(model: Any, run: Any, passes: Any) -> None:
    """`run` (whose passes `passes` runs) trains `model` now.

    Raises:
        RuntimeError: another Run trains it.
    """
    with _LOCK:
        _raise_if_busy(model, run)
        _ACTIVE[id(model)] = (run, passes)


def release(model: Any, run: Any) -> None:
    """`run`'s pass on `model` ended."""
    with _LOCK:
        entry = _ACTIVE.get(id(model))
        if entry is not None and entry[0] is run:
            del _ACTIVE[id(model)]


def _raise_if_busy(model: Any, run: Any) -> None:
    """(Under `_LOCK`.)"""
    entry = _ACTIVE.get(id(model))
    if entry is not None and entry[0] is not run:
        raise RuntimeError(
            f"This model is already training in {entry[0]!r}: stop it first "
            "(run.stop(); run.wait()), or steer that run instead."
        )


def stop_all_at_exit(timeout: float = 10.0) -> None:
    """At interpreter exit, stop every run still training and join its pass thread
    (at most `timeout` s in all).

    Registered with `threading`'s exit hooks where they exist: those run before
    `concurrent.futures` refuses new work, so the loop can end cleanly.
    """
    with _LOCK:
        entries = list(_ACTIVE.values())
    for run, _passes in entries:
        with contextlib.suppress(Exception):
            if "stop" in run.allowed_actions():  # not one stopping already: no warning
                run.stop()
    deadline = Deadline(timeout)
    for _run, passes in entries:
        thread = passes.thread
        if thread is not None and thread.ident is not None:
            thread.join(deadline.remaining())


# Exit hooks run last-registered first: importing concurrent.futures.thread before
# registering makes this hook run before thread pools stop taking work.
importlib.import_module("concurrent.futures.thread")
getattr(threading, "_register_atexit", atexit.register)(stop_all_at_exit)


__all__ = ["check_free", "claim", "release", "stop_all_at_exit"]
