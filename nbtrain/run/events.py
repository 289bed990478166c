"""`RunStatus`: a Run's state under its lock, and the listeners told of each change.

Every part of a Run (the controls, the pass runner, the hold, a multi-worker
coordinator) changes the state through `RunStatus.change`, with `lock` held;
the change is queued and delivered by `dispatch`, outside the lock, in order,
one thread at a time, so a listener may call the Run's controls.
"""

from __future__ import annotations

import collections
import threading
import warnings
from typing import Any, Callable

from nbtrain.engine.recovery import add_note, error_summary
from nbtrain.run.state import CONTROLS, CREATED, FAILED, State, check_transition

Listener = Callable[[Any, str, str], Any]
"""`fn(run, old_state, new_state)`."""


class RunStatus:
    """The state of one Run, its lock and condition, its failure and its listeners.

    Args:
        owner: what listeners receive as their first argument (the `Run`).

    Attributes:
        lock: the Run's lock (re-entrant); `cond` is a condition on it,
            notified on every change of state and of what waits depend on.
        state: the current `State` (read it under `lock` to act on it).
        exception: the exception that failed the run, or None.
        traceback: its traceback, kept apart (re-raising must not extend it).
        failure: where it failed and whether the run can resume
            (`nbtrain.engine.recovery.LoopFailure`), or None.

    Example:

    ```python
    status = RunStatus(run)
    with status.lock:
        status.change(State.RUNNING)
    status.dispatch()
    ```
    """

    def __init__(self, owner: Any):
        self.owner = owner
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.state: State = CREATED
        self.exception: BaseException | None = None
        self.traceback: Any = None
        self.failure: Any = None  # the loop's LoopFailure for `exception`
        self._listeners: list[Listener] = []
        self._events: collections.deque = collections.deque()
        self._dispatching = False

    def change(self, new: str) -> None:
        """Change state (`lock` held); `dispatch()` delivers the change.

        Raises:
            ValueError: the change is not one of `state.TRANSITIONS`.
        """
        old = self.state
        if old == new:
            return
        self.state = check_transition(old, new)
        self._events.append((old, self.state))
        self.cond.notify_all()

    def act(self, action: str) -> bool:
        """Make `action`'s change of state if it acts in this one during a pass
        (`state.CONTROLS`, its `in_pass` states), `lock` held; `dispatch()` delivers it.

        Returns:
            True if the state changed; False, nothing changed, if the action does
            not act in this state during a pass.
        """
        control = CONTROLS[action]
        if self.state not in control.in_pass:
            return False
        self.change(control.target)
        return True

    def fail(self, error: BaseException, failure: Any = None) -> None:
        """Record `error` as the run's failure and change to `failed` (`lock` held);
        a run that failed already keeps its first error.

        Args:
            error: the exception.
            failure: the loop's `nbtrain.engine.recovery.LoopFailure` for it
                (where, resumable), if the loop recorded one; its one line is
                added to `error` as a note.
        """
        if self.state == FAILED:
            return
        if failure is not None and failure.exception is not error:
            failure = None  # recorded for another error (e.g. translated by a coordinator)
        self.exception, self.traceback, self.failure = error, error.__traceback__, failure
        add_note(error, failure.line() if failure is not None else
                 f"Training failed: {error_summary(error)}. It cannot be resumed: fix the "
                 "cause and start a new run.")
        self.change(FAILED)

    @property
    def resumable(self) -> bool:
        """True if the run failed and `resume()` goes on at the batch that failed:
        reading a Sequence's data, a callback's epoch or batch hook, validation on a
        Sequence, or a lost data worker process (see `nbtrain.engine.recovery`); fix
        the cause first.  Not in a multi-worker job (a failure there ends the job:
        its passes record no `failure`)."""
        if self.state != FAILED:
            return False
        failure = self.failure
        return self.lost_worker or (failure is not None and failure.resumable)

    @property
    def lost_worker(self) -> bool:
        """True if the run failed because a data worker process died
        (`nbtrain.data.WorkerLost`): `resume()` goes on with fresh workers."""
        from nbtrain.data import WorkerLost

        return isinstance(self.exception, WorkerLost)

    def clear_failure(self) -> None:
        """Forget the failure (`lock` held): a resumable failure resumes."""
        self.exception = self.traceback = self.failure = None

    def add_listener(self, fn: Listener) -> Callable[[], None]:
        """Call `fn(run, old_state, new_state)` on every change of state.

        Listeners are called in the order of the changes, outside the Run's
        lock, on the thread that made the change (or on a thread already
        delivering an earlier change): they may call the Run's controls.  An
        exception in a listener is caught and warned about; it never breaks
        the run.

        Args:
            fn: the listener.

        Returns:
            A function that removes the listener (safe to call twice).

        Example:

        ```python
        remove = run.add_listener(lambda run, old, new: print(old, "->", new))
        remove()
        ```
        """
        if not callable(fn):
            raise TypeError(f"A listener must be callable, got {type(fn).__name__}.")
        with self.lock:
            self._listeners.append(fn)

        def remove() -> None:
            with self.lock:
                if fn in self._listeners:
                    self._listeners.remove(fn)

        return remove

    def dispatch(self) -> None:
        """Deliver queued changes in order, outside the lock, one thread at a time."""
        with self.lock:
            if self._dispatching:
                return  # that thread (maybe this one, re-entered) delivers ours too
            self._dispatching = True
        try:
            while True:
                with self.lock:
                    if not self._events:
                        self._dispatching = False
                        return
                    old, new = self._events.popleft()
                    listeners = list(self._listeners)
                for fn in listeners:
                    try:
                        fn(self.owner, old, new)
                    except Exception as exc:  # noqa: BLE001 - a listener never breaks the run
                        warnings.warn(
                            f"nbtrain.Run listener {fn!r} raised {type(exc).__name__}: {exc} "
                            f"(on {old!r} -> {new!r}); ignored.",
                            RuntimeWarning, stacklevel=2,
                        )
        except BaseException:
            with self.lock:
                self._dispatching = False
            raise


__all__ = ["Listener", "RunStatus"]
