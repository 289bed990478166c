"""`Run`: the public facade of a background training, built from the parts it holds.

A Run holds one part for each role, each in its own module of `nbtrain.run`
(its docstring is the map), and gives each the others it works with:

- `status` (`events.RunStatus`): the state under the Run's lock, the failure,
  the state listeners;
- `coordinator` (`coordinator.Coordinator`): the job it is part of, if any;
- `passes` (`passes.PassRunner`): the threads that run the loop, one a pass;
- `hold` (`hold.Hold`): the loop's pause gate and `with run.paused():`;
- `actions` (`actions.RunActions`): start, pause, resume, stop, close, by the
  table of `state.CONTROLS`, and what the run allows now;
- `steering` (`steering.RunSteering`): hyperparameters changed while it trains;
- `history` (`history.RunHistory`): one History across every pass.

`Run` answers what may be read (state, position, history) and `wait()`; its
other public methods are its parts' (`_part`), with their signatures and docs.
"""

from __future__ import annotations

import functools
from typing import Any

import keras

from nbtrain.engine import FitLoop
from nbtrain.engine.arguments import RUN
from nbtrain.engine.config import fit_config
from nbtrain.run import registry
from nbtrain.run.actions import RunActions
from nbtrain.run.coordinator import make_coordinator, multi_worker_strategy_of
from nbtrain.run.events import RunStatus
from nbtrain.run.history import RunHistory
from nbtrain.run.hold import Hold
from nbtrain.run.passes import PassRunner
from nbtrain.run.state import ENDED, FAILED, STATES, State
from nbtrain.run.steering import RunSteering, SteeringLog
from nbtrain.run.waiting import Deadline, join, wait_until
from nbtrain.text import batch_fraction, epoch_fraction


def _part(part: str, member: Any) -> Any:
    """`member` of a Run's part (the attribute `part`), as a member of the Run: a
    property read from the part, or a method called on it, with its name and docs."""
    if isinstance(member, property):
        return property(lambda run: member.fget(getattr(run, part)), doc=member.__doc__)

    @functools.wraps(member)
    def method(run: Any, *args: Any, **kwargs: Any) -> Any:
        return member(getattr(run, part), *args, **kwargs)

    method.__qualname__ = f"Run.{member.__name__}"
    return method


class Run:
    """Training in a background thread, with pause / resume / stop and one History.

    The constructor checks every argument in the calling thread (the same clear
    `ValueError`/`TypeError` as `fit_generator`) and does not start: call
    `start()` (or use `nbtrain.fit`, which also shows a display).  Every control
    may be called from any thread, any number of times, in any order.

    States: `'created'` (not started), `'running'`, `'pausing'` (asked to
    pause; the batch in progress finishes), `'paused'` (the loop holds between
    two batches: no callback batch event until `resume()`), `'stopping'`,
    `'stopped'` (the pass has ended), `'finished'`, `'failed'`.  Controls
    return at once; `with run.paused():` or a listener waits for a hold.

    For the callbacks the run is one training across every pause, stop,
    resume and continue: `on_train_begin` once, `on_epoch_begin` /
    `on_epoch_end` once per epoch with the whole epoch's logs, `on_train_end`
    when the last epoch is done, a callback stops training, or at `close()`.
    A stop is an interruption.  Training on after the end (`resume(epochs=N)`
    of a finished run) is a new segment: `CSVLogger` appends, `TensorBoard`'s
    steps continue.

    For a model built under a `MultiWorkerMirroredStrategy` with several
    workers, every worker runs the same program and builds the same Run.  The
    chief's `pause()`, `stop()`, `resume()` take effect on every worker at the
    same batch (one batch after the call); the other workers' Runs follow
    (their state shows the chief's; their controls raise), and their `wait()`
    returns when the chief's `close()` (or exit) ends the job.  `paused()` is
    refused there, and only the chief runs the file-writing callbacks.

    Args: those of `nbtrain.fit` (all of `model.fit`'s, with Keras's meaning,
        and `workers`, `use_multiprocessing`, `max_queue_size`), without
        `verbose` and `display`; their docs are `nbtrain.engine.arguments.TABLE`.

    Raises:
        TypeError, ValueError: bad input (nothing has started; see
            `nbtrain.engine.config.fit_config`).
        RuntimeError: the model is already training in another Run.

    Example:

    ```python
    run = nbtrain.Run(model, x_train, y_train, batch_size=64, epochs=10)
    run.start()
    run.pause(); run.resume()
    with run.paused():
        model.evaluate(x_test, y_test)
    run.stop(); run.wait()
    run.resume(epochs=20)            # go on from the exact next batch
    history = run.wait()
    ```
    """

    __module__ = "nbtrain.run"  # its public home (the notebook display is registered by it)

    @RUN.takes
    def __init__(self, model: Any, x: Any, y: Any = None, **arguments: Any):
        registry.check_free(model)
        strategy = multi_worker_strategy_of(model)
        callbacks = arguments.pop("callbacks")
        if strategy is not None:
            from nbtrain.run.multiworker import is_chief, worker_callbacks

            callbacks = worker_callbacks(callbacks, is_chief(strategy))
        config = fit_config(model, x, y, api="fit", verbose=0,
                            callbacks=SteeringLog.before(callbacks, log := SteeringLog()),
                            **arguments)
        history = RunHistory()
        loop = FitLoop.from_config(config, history=history)
        self._model, self._loop, self._history = model, loop, history
        self._status = status = RunStatus(self)
        self._coordinator = coordinator = make_coordinator(strategy, status, loop, self)
        self._passes = passes = PassRunner(status, loop, self, coordinator)
        self._hold = hold = Hold(status, loop, passes, coordinator, self)
        self._actions = actions = RunActions(status, loop, passes, coordinator, self)
        self._steering = steering = RunSteering(status, loop, self, log, actions.require_trainable)
        loop.set_gate(coordinator.gate(hold.gate, steering))
        loop.set_wait_check(coordinator.wait_check(hold.check_stop))

    # -- the controls (`RunActions`, `Hold`, `RunSteering`) -------------------------------

    start = _part("_actions", RunActions.start)
    pause = _part("_actions", RunActions.pause)
    stop = _part("_actions", RunActions.stop)
    resume = _part("_actions", RunActions.resume)
    close = _part("_actions", RunActions.close)
    allowed_actions = _part("_actions", RunActions.allowed_actions)
    resumable = _part("_status", RunStatus.resumable)
    lost_worker = _part("_status", RunStatus.lost_worker)
    paused = _part("_hold", Hold.paused)
    set_learning_rate = _part("_steering", RunSteering.set_learning_rate)
    set_hyperparameters = _part("_steering", RunSteering.set_hyperparameters)
    learning_rate = _part("_steering", RunSteering.learning_rate)
    hyperparameter_changes = _part("_steering", RunSteering.hyperparameter_changes)
    add_steering_listener = _part("_steering", RunSteering.add_steering_listener)
    add_listener = _part("_status", RunStatus.add_listener)

    # -- what may be read ---------------------------------------------------------------

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

    @property
    def failure(self) -> Any:
        """Where and how the run failed (`nbtrain.engine.recovery.LoopFailure`:
        `kind`, `epoch`, `batch`, `source` such as `MySequence[7]`, `resumable`,
        and `line()`, the one line also added to `run.exception` as a note), or
        None (not failed, or failed outside the loop)."""
        return self._status.failure

    def __repr__(self) -> str:
        epoch, epochs = self.epoch, self.epochs
        batch = batch_fraction(self.batch, self.steps, epoch, epochs)
        return f"<nbtrain.Run {self.state} epoch {epoch_fraction(epoch, epochs)} batch {batch}>"

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
        self._actions.require_started("wait")
        self._actions.require_caller_thread("wait()")
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
            self._actions.stop_on_interrupt()
            raise
        if status.state == FAILED and status.exception is not None:
            raise status.exception.with_traceback(status.traceback)
        return self._history

    def _waited_for(self) -> bool:
        """What `wait()` waits for: no pass in progress, and on a worker of a
        multi-worker job other than the chief, the end of the job."""
        return self._status.state in ENDED and self._coordinator.job_ended()


__all__ = ["ENDED", "STATES", "Run", "RunHistory"]
