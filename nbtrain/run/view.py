"""`RunView`: the parts of a Run, and what may be read of it (state, position, history).

`RunView` builds a Run's parts, each in its own module of `nbtrain.run`: the
state and its listeners (`events.RunStatus`), the coordinator of the job it is
part of (`coordinator`), the pass threads (`passes.PassRunner`) and the pause
gate with its `paused()` blocks (`hold.Hold`).  It answers what a display
reads and `wait()`; `nbtrain.run.Run` adds the controls.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable

import keras

from nbtrain.run.coordinator import LocalCoordinator, make_coordinator
from nbtrain.run.events import Listener, RunStatus
from nbtrain.run.history import RunHistory
from nbtrain.run.hold import Hold
from nbtrain.run.passes import PassRunner
from nbtrain.run.state import (
    CREATED,
    ENDED,
    FAILED,
    FINISHED,
    PAUSED,
    PAUSING,
    RUNNING,
    STOPPED,
    State,
)
from nbtrain.run.steering import RunSteering, SteeringLog
from nbtrain.run.waiting import INTERRUPT_WAIT, Deadline, join, wait_until
from nbtrain.text import batch_fraction, epoch_fraction

_ALLOWED = {
    RUNNING: frozenset({"pause", "stop"}),
    PAUSING: frozenset({"resume", "stop"}),
    PAUSED: frozenset({"resume", "stop"}),
    STOPPED: frozenset({"resume", "continue"}),
    FINISHED: frozenset({"continue"}),
}


class RunView:
    """A Run's parts and its read-only side (the base of `nbtrain.Run`).

    Args:
        model: the model.
        loop: its `FitLoop` (built, not run yet).
        history: the loop's `RunHistory`.
        strategy: the model's multi-worker strategy, or None.
        log: the `SteeringLog` among the loop's callbacks (None: steered values
            are not written into the epoch logs).
    """

    def __init__(self, model: Any, loop: Any, history: RunHistory, strategy: Any,
                 log: SteeringLog | None = None):
        self._model = model
        self._loop = loop
        self._history = history
        self._status = RunStatus(self)
        self._coordinator = make_coordinator(strategy, self._status, loop, self)
        self._passes = PassRunner(self._status, loop, self, self._coordinator)
        self._hold = Hold(self._status, loop, self._passes)
        self._steering = RunSteering(self._status, loop, self, log or SteeringLog())
        loop.set_gate(self._coordinator.gate(self._hold.gate, self._steering))
        loop.set_wait_check(self._coordinator.wait_check(self._hold.check_stop))
        self._closed = False

    # -- what the dashboard reads -------------------------------------------------------

    @property
    def state(self) -> State:
        """One of `'created'`, `'running'`, `'paused'`, `'stopping'`, `'stopped'`,
        `'finished'`, `'failed'`."""
        return self._status.state

    @property
    def loop(self) -> Any:
        """The `FitLoop` the run drives: its position, data streams and callbacks
        (read it; steer the run through its controls)."""
        return self._loop

    @property
    def model(self) -> Any:
        """The model being trained."""
        return self._model

    @property
    def history(self) -> RunHistory:
        """The one History of the run, across every pause, stop and resume."""
        return self._history

    @property
    def exception(self) -> BaseException | None:
        """The exception that failed the run (with its `__traceback__`), or None."""
        return self._status.exception

    @property
    def epoch(self) -> int:
        """0-based index of the epoch in progress (or the next to start); equals
        `epochs` once every epoch is done."""
        return self._loop.position().epoch

    @property
    def batch(self) -> int:
        """Batches trained in the current epoch."""
        return self._loop.position().batch

    @property
    def epochs(self) -> int:
        """The final epoch: training ends when `epoch` reaches it."""
        return self._loop.epochs

    @property
    def steps(self) -> int | None:
        """Batches in the current epoch, when known."""
        return self._loop.epoch_steps()

    @property
    def is_chief(self) -> bool:
        """False on the workers of a multi-worker job other than the chief: they
        follow the chief's controls and cannot be steered themselves."""
        return self._coordinator.is_chief

    def allowed_actions(self) -> set[str]:
        """The controls that do something now, for enabling buttons.

        A subset of `{'pause', 'resume', 'stop', 'continue'}`, where `'continue'`
        means `resume(epochs=N)` (train further after a stop or the end).

        Example:

        ```python
        pause_button.disabled = "pause" not in run.allowed_actions()
        ```
        """
        if not self.is_chief or self._closed:
            return set()
        if self._status.state == FAILED and self.resumable:
            return {"resume"}
        return set(_ALLOWED.get(self._status.state, ()))

    @property
    def failure(self) -> Any:
        """Where and how the run failed (`nbtrain.engine.recovery.LoopFailure`:
        `kind`, `epoch`, `batch`, `source` such as `MySequence[7]`, `resumable`,
        and `line()`, the one line also added to `run.exception` as a note), or
        None (not failed, or failed outside the loop)."""
        return self._status.failure

    @property
    def resumable(self) -> bool:
        """True if the run failed and `resume()` goes on at the batch that failed:
        reading a Sequence's data, a callback's epoch or batch hook, validation on a
        Sequence, or a lost data worker process (see `nbtrain.engine.recovery`); fix
        the cause first.  Not in a multi-worker job (a failure there ends the job)."""
        if self._status.state != FAILED:
            return False
        failure = self._status.failure
        local = isinstance(self._coordinator, LocalCoordinator)  # a job's failure ends the job
        return self.lost_worker or (local and failure is not None and failure.resumable)

    @property
    def lost_worker(self) -> bool:
        """True if the run failed because a data worker process died
        (`nbtrain.data.WorkerLost`): `resume()` goes on with fresh workers."""
        from nbtrain.data import WorkerLost

        return isinstance(self._status.exception, WorkerLost)

    def __repr__(self) -> str:
        epoch, epochs = self.epoch, self.epochs
        batch = batch_fraction(self.batch, self.steps, epoch, epochs)
        return f"<nbtrain.Run {self.state} epoch {epoch_fraction(epoch, epochs)} batch {batch}>"

    # -- listeners and callbacks --------------------------------------------------------

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
        return self._status.add_listener(fn)

    @property
    def callbacks(self) -> list:
        """The Keras callbacks the loop calls (the steering log first, the user's, the
        History, any display)."""
        return list(self._loop.callbacks.callbacks)

    def add_callback(self, callback: keras.callbacks.Callback) -> None:
        """Add a Keras callback to the loop (before `start()`, or between passes).

        Args:
            callback: a `keras.callbacks.Callback`; it runs on the training thread.

        Raises:
            TypeError: not a Keras callback.
            RuntimeError: a pass is in progress.

        Example:

        ```python
        run = nbtrain.Run(model, sequence, epochs=3)
        run.add_callback(keras.callbacks.CSVLogger("log.csv"))
        run.start()
        ```
        """
        if not isinstance(callback, keras.callbacks.Callback):
            raise TypeError(
                f"add_callback needs a keras.callbacks.Callback, got {type(callback).__name__}."
            )
        with self._status.lock:
            if self._passes.active:
                raise RuntimeError(
                    "Callbacks can only be added before start() or while no pass is in "
                    f"progress (the run is {self.state})."
                )
            self._loop.callbacks.append(callback)

    def _require_started(self, what: str) -> None:
        if self._status.state == CREATED:
            raise RuntimeError(f"This run has not started: call run.start() before run.{what}().")

    def _require_chief(self, what: str) -> None:
        self._require_started(what)
        if not self.is_chief:
            raise RuntimeError(
                f"run.{what}() on {self._coordinator.task}: in a multi-worker job only "
                "the chief's Run is steered; its controls reach every worker at the same batch."
            )

    def _require_caller_thread(self, what: str) -> None:
        if self._passes.on_training_thread():
            raise RuntimeError(f"run.{what} cannot be called from the training thread.")

    # -- waiting ------------------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> keras.callbacks.History:
        """Block until the run is stopped, finished or failed; return the History.

        A Ctrl-C (KeyboardInterrupt) while waiting stops the run and is raised
        again within about a second (`INTERRUPT_WAIT`): the run is then stopped
        (history kept, data workers ended, thread joined) or, if a batch read
        hangs, still stopping (it stops within `STOP_TIMEOUT`, 5 s).

        On a worker of a multi-worker job other than the chief it returns when
        the chief ends the job (`run.close()` on the chief, or the chief's
        program exiting): the chief may resume after a stop.

        Args:
            timeout: seconds to wait at most, a number >= 0 (None: no limit).

        Returns:
            `run.history`.

        Raises:
            Exception: the exception that failed training, with its traceback.
            TimeoutError: `timeout` passed first.
            RuntimeError: not started, or called from the training thread or
                inside `run.paused()` (it would never return).

        Example:

        ```python
        history = nbtrain.fit(model, x, y, epochs=5, display=False).wait()
        ```
        """
        self._require_started("wait")
        self._require_caller_thread("wait()")
        if self._hold.held_by_this_thread():
            raise RuntimeError("run.wait() inside `with run.paused():` would never return.")
        status, passes, deadline = self._status, self._passes, Deadline(timeout)
        try:
            with status.cond:
                wait_until(status.cond, self._waited_for, deadline,
                           lambda: f"The run is still {status.state} after {timeout} s.")
                ended = passes.ended_threads()
            for thread in ended:
                join(thread, deadline)
        except KeyboardInterrupt:  # stop, and give control back within about a second
            if self.is_chief and status.state in (RUNNING, PAUSING, PAUSED):
                self.stop()
                with contextlib.suppress(TimeoutError):
                    passes.wait_idle(Deadline(INTERRUPT_WAIT))
            raise
        if status.state == FAILED and status.exception is not None:
            raise status.exception.with_traceback(status.traceback)
        return self._history

    def _waited_for(self) -> bool:
        """What `wait()` waits for: no pass in progress, and on a worker of a
        multi-worker job other than the chief, the end of the job."""
        return self._status.state in ENDED and self._coordinator.job_ended()


__all__ = ["RunView"]
