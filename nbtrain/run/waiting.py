"""Blocking in the caller's thread: the one place a `Run` waits for something.

Every wait (`run.wait()`, `run.close()`, `with run.paused():` reaching the
gate, a follower's `close()` waiting for the chief) waits on a condition in
slices of `POLL` seconds, so a Ctrl-C reaches the caller's thread at once and
a `Deadline` is honoured; `join` does the same for a thread.  A change to how
the caller's thread waits (e.g. handling kernel messages meanwhile) is a
change to `wait_slice` alone.
"""

from __future__ import annotations

import math
import numbers
import threading
import time
from collections.abc import Callable
from typing import Any

from nbtrain import kernel_events as kernel_events

POLL = 0.1
"""Seconds between checks while blocking in the caller's thread (keeps Ctrl-C live)."""

STOP_TIMEOUT = 5.0
"""Seconds within which a stopping run's pass ends once its current batch is
trained, even while a batch read hangs: the loop stops waiting for the batch
at once, and its data workers get `nbtrain.engine.stream.STOP_GRACE` (2 s)
to finish what they read.  Then a worker process is terminated (`resume()`
starts fresh ones) and a worker thread, which cannot be, is abandoned with a
`RuntimeWarning` naming the index it reads (its batch is ignored when the read
returns).  With `workers=0` the read runs on the training thread itself, and a
stop waits for it."""

INTERRUPT_WAIT = 0.5
"""Seconds a Ctrl-C in `run.wait()` waits for the stop it asks for before it
returns control (the run is then stopped, or still stopping)."""


def checked_timeout(timeout: Any, name: str = "timeout") -> float | None:
    """`timeout` as seconds (a real number >= 0) or None, else an error naming it.

    Raises:
        TypeError: not a number (e.g. the string "5").
        ValueError: negative or not a number (NaN).

    Example:

    ```python
    checked_timeout(5)      # 5
    checked_timeout("5")    # TypeError: `timeout` must be a number of seconds or None, got '5' (str).
    ```
    """
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real):
        raise TypeError(f"`{name}` must be a number of seconds or None, got {timeout!r} "
                        f"({type(timeout).__name__}).")
    if math.isnan(timeout) or timeout < 0:
        raise ValueError(f"`{name}` must be a number of seconds >= 0 or None, got {timeout!r}.")
    return timeout


class Deadline:
    """A point in time `timeout` seconds from now (None: never).

    Raises:
        TypeError, ValueError: `timeout` is not a number of seconds >= 0 or None
            (`checked_timeout`).

    Example:

    ```python
    deadline = Deadline(5.0)
    deadline.remaining()   # about 5.0, then less, then 0.0
    ```
    """

    def __init__(self, timeout: float | None):
        self.timeout = checked_timeout(timeout)
        self.at = None if timeout is None else time.monotonic() + timeout

    def remaining(self) -> float | None:
        """Seconds left (0.0 once passed), None without a limit."""
        if self.at is None:
            return None
        return max(0.0, self.at - time.monotonic())


def wait_slice(cond: threading.Condition, seconds: float) -> None:
    """Wait on `cond` (held) for at most `seconds`: one slice of a longer wait.

    In a Jupyter kernel's busy cell the wait handles the kernel's widget
    messages meanwhile, so the dashboard's buttons work (`nbtrain.kernel_events`).
    """
    kernel_events.wait(cond, seconds)


def wait_until(cond: threading.Condition, predicate: Callable[[], bool],
               deadline: Deadline | None = None,
               timeout_message: Callable[[], str] | None = None) -> None:
    """Block (with `cond` held) until `predicate()` is true.

    Args:
        cond: the condition whose lock guards what `predicate` reads; it must
            be notified when that changes.
        predicate: what to wait for.
        deadline: when to give up (None: never).
        timeout_message: the `TimeoutError`'s message, made when it is raised.

    Raises:
        TimeoutError: the deadline passed first.
    """
    while not predicate():
        remaining = None if deadline is None else deadline.remaining()
        if remaining == 0:
            message = timeout_message() if timeout_message is not None else "Timed out."
            raise TimeoutError(message)
        wait_slice(cond, POLL if remaining is None else min(POLL, remaining))


def join(thread: threading.Thread, deadline: Deadline | None = None) -> None:
    """Join `thread` in short slices (so Ctrl-C is seen), honouring `deadline`.

    Raises:
        TimeoutError: the thread was still alive at the deadline.
    """
    while thread.is_alive():
        remaining = None if deadline is None else deadline.remaining()
        if remaining == 0:
            raise TimeoutError(f"The run's thread is still ending after {deadline.timeout} s.")
        thread.join(POLL if remaining is None else min(POLL, remaining))


__all__ = ["INTERRUPT_WAIT", "POLL", "STOP_TIMEOUT", "Deadline", "checked_timeout", "join",
           "wait_slice", "wait_until"]
