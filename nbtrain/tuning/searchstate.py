"""`SearchControl`: a search's state and its user's wishes under one lock.

```
created --start--> running --pause--> pausing --(the trial's Run holds)--> paused
pausing/paused --resume--> running
running/pausing/paused --stop--> stopping --(the trial's Run stopped)--> stopped
stopped --resume--> running                 (the trial goes on at its exact next batch)
running/pausing/paused/stopping/stopped --(tuner.search returns)--> finished
any --(tuner.search raises)--> failed
stopped --close()--> stopped, for good (the search thread has ended)
```

The controls (`Search.pause()`, ...) change `want` and the state here, in
the caller's thread, and act on the trial's `Run` at once (exact: after its
current batch).  Between two trials there is no Run: the search thread holds
at `hold()` before the next trial's first batch while `want` is not `'run'`,
and the state says so (`paused` or `stopped`).  A skip marks the trial's Run
in `skipping` and stops it; the search thread sees the mark and ends the trial.

Listeners are called with `(search, event, detail)` in the order of the
events, outside the lock, on the thread that made the change (or on one
already delivering): `'state'` with `(old, new)`, `'trial_begin'` and
`'trial_end'` with the `TrialRecord`, `'run'` with a trial's new `Run` before
it starts (add callbacks to it then).
"""

from __future__ import annotations

import collections
import threading
import warnings
from typing import Any, Callable

from nbtrain.run.state import (
    CREATED,
    FAILED,
    FINISHED,
    PAUSED,
    PAUSING,
    RUNNING,
    STOPPED,
    STOPPING,
)

RUN, PAUSE, STOP = "run", "pause", "stop"
"""What the user wants of the search (`SearchControl.want`)."""

DONE = (STOPPED, FINISHED, FAILED)
"""The states in which `Search.wait()` returns."""

CONTROLS: dict[str, frozenset[str]] = {
    RUNNING: frozenset({"pause", "stop"}),
    PAUSING: frozenset({"resume", "stop"}),
    PAUSED: frozenset({"resume", "stop"}),
    STOPPED: frozenset({"resume"}),
}
"""The controls that act in each state of a search (`Search.allowed_actions`), and
`skip` whenever a trial is current and not already being skipped; none once it closes."""

Listener = Callable[[Any, str, Any], None]


class SearchClosed(BaseException):
    """Raised on the search thread by `Search.close()` to end `tuner.search` for good.

    A `BaseException`, so that Keras Tuner's `except Exception` around a trial
    does not record it as the trial's failure: the trial stays ongoing in the
    oracle, as after an interrupted kernel (Keras Tuner retries it when the
    project is loaded again with `overwrite=False`).
    """


class SearchControl:
    """The state of a search, what its user wants, and its listeners."""

    def __init__(self, owner: Any):
        self.owner = owner
        self.cond = threading.Condition(threading.RLock())
        self.state = CREATED
        self.want = RUN
        self.current: Any = None  # the Run of the trial in progress, once started
        self.skipping: Any = None  # the Run a skip ends
        self.closing = False
        self.exception: BaseException | None = None
        self._listeners: list[Listener] = []
        self._pending: collections.deque = collections.deque()
        self._delivering = False

    # -- state (with `cond` held) ---------------------------------------------------------

    def change(self, new: str) -> None:
        """Set the state (with `cond` held) and queue the event for `dispatch()`."""
        old = self.state
        if old == new:
            return
        self.state = new
        self._pending.append(("state", (old, new)))
        self.cond.notify_all()

    def emit(self, event: str, detail: Any) -> None:
        """Queue an event for the listeners (delivered by `dispatch()`)."""
        with self.cond:
            self._pending.append((event, detail))

    def refused(self, what: str, why: str | None = None) -> bool:
        """Warn that `what` does nothing (`why`, or the current state); return False."""
        why = why or f"the search is {self.state}"
        warnings.warn(f"search.{what}() does nothing: {why}.", RuntimeWarning, stacklevel=3)
        return False

    # -- the search thread ----------------------------------------------------------------

    def hold(self, released: Callable[[], bool]) -> None:
        """On the search thread: wait until `released()` (or a close), showing
        `paused` or `stopped` meanwhile as the user asked.

        Raises:
            SearchClosed: `Search.close()` ends the search.
        """
        while True:
            with self.cond:
                if self.closing:
                    raise SearchClosed()
                if released():
                    return
                self.change(PAUSED if self.want == PAUSE else STOPPED)
            self.dispatch()
            with self.cond:
                if not (self.closing or released()):
                    self.cond.wait()

    def on_run_change(self, run: Any, old: str, new: str) -> None:
        """A listener on each trial's Run: its hold makes a pausing search paused."""
        with self.cond:
            if run is self.current and new == PAUSED and self.state == PAUSING:
                self.change(PAUSED)
            self.cond.notify_all()
        self.dispatch()

    # -- listeners ------------------------------------------------------------------------

    def add_listener(self, fn: Listener) -> Callable[[], None]:
        """Add `fn(search, event, detail)`; returns a function that removes it."""
        with self.cond:
            self._listeners.append(fn)

        def remove() -> None:
            with self.cond:
                if fn in self._listeners:
                    self._listeners.remove(fn)

        return remove

    def dispatch(self) -> None:
        """Deliver the queued events in order, outside the lock (one thread at a time)."""
        with self.cond:
            if self._delivering:
                return
            self._delivering = True
        while True:
            with self.cond:
                if not self._pending:
                    self._delivering = False
                    return
                event, detail = self._pending.popleft()
                listeners = list(self._listeners)
            for fn in listeners:
                try:
                    fn(self.owner, event, detail)
                except Exception as error:  # a listener never breaks the search
                    warnings.warn(f"A search listener raised {error!r}.", RuntimeWarning,
                                  stacklevel=2)


__all__ = ["DONE", "PAUSE", "RUN", "STOP", "SearchClosed", "SearchControl", "CREATED",
           "FAILED", "FINISHED", "PAUSED", "PAUSING", "RUNNING", "STOPPED", "STOPPING"]
