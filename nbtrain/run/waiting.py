"""Blocking in the caller's thread: the one place a `Run` waits for something.

Every wait (`run.wait()`, `run.close()`, `with run.paused():` reaching the
gate, a follower's `close()` waiting for the chief) waits on a condition in
slices of `POLL` seconds, so a Ctrl-C reaches the caller's thread at once and
a `Deadline` is honoured; `join` does the same for a thread.  A change to how
the caller's thread waits (e.g. handling kernel messages meanwhile) is a
change to `wait_slice` alone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from nbtrain import kernel_events as kernel_events

POLL = 0.1
"""Seconds between checks while blocking in the caller's thread (keeps Ctrl-C live)."""


class Deadline:
    """A point in time `timeout` seconds from now (None: never).

    Example:

    ```python
    deadline = Deadline(5.0)
    deadline.remaining()   # about 5.0, then less, then 0.0
    ```
    """

    def __init__(self, timeout: float | None):
        self.timeout = timeout
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


__all__ = ["POLL", "Deadline", "join", "wait_slice", "wait_until"]
