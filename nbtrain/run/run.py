"""`Run`: the public facade of a background training, with its controls.

A Run's parts each live in their own module of `nbtrain.run` (its docstring
is the map); `RunView` builds them and answers what may be read, and `Run`
adds the controls: each checks what its caller asks, in the caller's thread,
and hands it to them.

One rule for `pause()`, `resume()` and `stop()` (`nbtrain.run.refusal`): a
call that the run's state makes a no-op (pausing a paused run, resuming a
running one, stopping a stopped one) does nothing, warns (`RuntimeWarning`,
naming the state and what would act) and returns False; a call that can never
act on this run (not started, closed, failed for good, a follower of a
multi-worker job) raises `RuntimeError`.
"""

from __future__ import annotations

import contextlib
import operator
import warnings
from typing import Any, Iterator

from nbtrain.engine import FitLoop
from nbtrain.engine.config import fit_config
from nbtrain.run import registry
from nbtrain.run.coordinator import multi_worker_strategy_of
from nbtrain.run.history import RunHistory
from nbtrain.run.refusal import refused
from nbtrain.run.state import (
    CREATED,
    ENDED,
    FAILED,
    FINISHED,
    HOLDING,
    PAUSED,
    PAUSING,
    RUNNING,
    STATES,
    STOPPED,
    STOPPING,
    State,
)
from nbtrain.run.steering import SteerableRun, SteeringLog
from nbtrain.run.view import RunView
from nbtrain.run.waiting import Deadline


class Run(RunView, SteerableRun):
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
        `verbose` and `display`; their docs are `nbtrain.engine.config.ARGUMENTS`.

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

    def __init__(self, model: Any, x: Any, y: Any = None, *, batch_size: int | None = None,
                 epochs: int = 1, steps_per_epoch: int | None = None, validation_data: Any = None,
                 validation_steps: int | None = None, validation_freq: Any = 1,
                 callbacks: Any = None, class_weight: dict | None = None, workers: int = 1,
                 use_multiprocessing: bool = False, max_queue_size: int = 10,
                 shuffle: bool = True, initial_epoch: int = 0, sample_weight: Any = None,
                 validation_split: float = 0.0, validation_batch_size: int | None = None):
        registry.check_free(model)
        strategy = multi_worker_strategy_of(model)
        if strategy is not None:
            from nbtrain.run.multiworker import is_chief, worker_callbacks

            callbacks = worker_callbacks(callbacks, is_chief(strategy))
        config = fit_config(
            model, x, y, api="fit", batch_size=batch_size, epochs=epochs, verbose=0,
            callbacks=SteeringLog.before(callbacks, log := SteeringLog()),
            validation_split=validation_split, validation_data=validation_data,
            shuffle=shuffle, class_weight=class_weight, sample_weight=sample_weight,
            initial_epoch=initial_epoch, steps_per_epoch=steps_per_epoch,
            validation_steps=validation_steps, validation_freq=validation_freq,
            validation_batch_size=validation_batch_size, max_queue_size=max_queue_size,
            workers=workers, use_multiprocessing=use_multiprocessing)
        history = RunHistory()
        loop = FitLoop.from_config(config, history=history)
        super().__init__(model, loop, history, strategy, log)

    # -- controls -----------------------------------------------------------------------

    def start(self) -> Run:
        """Start training in a background thread; returns at once.

        Returns:
            The run itself.

        Raises:
            RuntimeError: already started, or the model is training in another Run.

        Example:

        ```python
        run = nbtrain.Run(model, sequence, epochs=5).start()
        ```
        """
        with self._status.lock:
            if self._status.state != CREATED:
                raise RuntimeError(f"This run was already started (it is {self.state}).")
            thread = self._passes.begin()
        self._passes.launch(thread)
        return self

    def pause(self) -> bool:
        """Hold training before its next batch; the data workers stay alive.

        Returns at once: `'pausing'`, then `'paused'` once the loop holds.

        Returns:
            True if the run was running and is now pausing; else False, with a warning.

        Example:

        ```python
        run.pause(); ...; run.resume()
        ```
        """
        return self._change("pause", (RUNNING,), PAUSING)

    def stop(self) -> bool:
        """Stop after the current batch: the pass ends and the data workers stop.
        Works while pausing or paused.  `resume()` continues later.

        A stop is an interruption, not an end of training: for the callbacks the epoch in progress
        does not end (`on_epoch_end` runs once, when a resume completes it), nor does the training
        (`close()` ends it).  Returns at once: `'stopping'`, then `'stopped'` within 5 s of the
        current batch, even while a data read hangs (`nbtrain.run.waiting.STOP_TIMEOUT`).

        Returns:
            True if a running, pausing or paused run is now stopping; else False, warned.

        Example:

        ```python
        run.stop(); run.wait()
        ```
        """
        return self._change("stop", (RUNNING, PAUSING, PAUSED), STOPPING)

    def _change(self, what: str, sources: tuple, target: State, quiet: bool = False) -> bool:
        status = self._status
        with status.lock:
            self._require_chief(what)
            if status.state not in sources:
                return False if quiet else refused(what, status.state)
            status.change(target)
        status.dispatch()
        return True

    def resume(self, epochs: int | None = None) -> bool:
        """Continue training.

        Pausing or paused: continues with the next batch.  Stopped: a new pass of the loop
        from the interrupted epoch and, for a Sequence or arrays, its exact next
        batch in the same order (a generator is read on where it was).
        `epochs=N` sets the final epoch to N, so `resume(epochs=N)` also trains
        a finished run further.  While stopping, resume is ignored.  A failed run
        that is `run.resumable` (its data, a callback, a lost data worker; see
        `nbtrain.engine.recovery`) resumes once fixed, at the batch that failed.

        Args:
            epochs: new final epoch (must be greater than the epoch in progress).

        Returns:
            True if training resumes (or the target changed); False for a no-op, warned.

        Raises:
            RuntimeError: the run has not started, or failed and is not `resumable`.
            ValueError: `epochs` is not after the epoch in progress.

        Example:

        ```python
        run.stop(); run.wait()
        run.resume(epochs=run.epochs + 5)
        ```
        """
        status, loop, thread = self._status, self._loop, None
        with status.lock:
            self._require_chief("resume")
            state = status.state
            lost = state == FAILED and self.resumable
            if lost:  # like a stop: the data is read again, by fresh workers
                state = STOPPED
            if state == FAILED:
                raise RuntimeError(_not_resumable(status.exception, status.failure))
            if state == STOPPING:
                return refused("resume", state)
            if self._closed:
                raise RuntimeError("This run was closed (run.close()) and cannot be resumed.")
            if state in (STOPPED, FINISHED):
                registry.check_free(self._model, self)
            if epochs is not None:
                self._set_epochs(epochs)
            if state == RUNNING:
                return epochs is not None or refused("resume", state)
            if state in HOLDING:
                status.change(RUNNING)
            elif loop.position().epoch >= loop.epochs:  # stopped or finished
                warnings.warn(
                    f"The run has trained all {loop.epochs} epochs; to train more, call "
                    f"run.resume(epochs=N) with N > {loop.epochs}.",
                    RuntimeWarning, stacklevel=2,
                )
                return False
            else:
                if lost:
                    status.clear_failure()
                thread = self._passes.begin()
        if thread is not None:
            self._passes.launch(thread)
        else:
            status.dispatch()
        return True

    def _set_epochs(self, epochs: Any) -> None:
        self._coordinator.set_epochs(_checked_epochs(epochs, self._loop.position().epoch),
                                     self._passes.active)

    def close(self, timeout: float | None = None) -> None:
        """End the run for good: stop it if it is training, wait until its pass
        has ended, and end the training for the callbacks (`on_train_end`, on
        the calling thread, if a stop left it open: `CSVLogger` closes its file).
        A closed run cannot be resumed; closing twice is a no-op.

        In a multi-worker job, closing the chief's Run ends the job: every other
        worker's `run.wait()` returns (the chief's program exiting does the same).
        On another worker, `close()` waits until the chief closes.

        Args:
            timeout: seconds to wait at most, a number >= 0 (None: no limit).

        Raises:
            TimeoutError: the pass was still ending after `timeout` s.
            RuntimeError: called from the training thread.

        Example:

        ```python
        run.stop(); run.wait()
        run.close()
        ```
        """
        self._require_caller_thread("close()")
        deadline = Deadline(timeout)
        if not self.is_chief:
            self._coordinator.close(deadline)
            self._closed = True
            return
        with self._status.lock:
            if self._closed:
                return
            started = self._status.state != CREATED
        if started:
            with contextlib.suppress(RuntimeError):
                self._change("stop", (RUNNING, PAUSING, PAUSED), STOPPING, quiet=True)
            self._passes.wait_idle(deadline)
        with self._status.lock:
            if self._closed:
                return
            self._closed = True
            end = self._status.state == STOPPED  # not a failed training: Keras never ends those
        if end:
            self._loop.end_training()
        self._coordinator.close(deadline)

    @contextlib.contextmanager
    def paused(self) -> Iterator[Run]:
        """Hold training for the duration of a `with` block; resume after it if it was running.

        On entry it waits until the loop actually holds between two batches, and
        snapshots the model's metric state; on exit it restores it, so calling
        `model.evaluate` or `model.predict` inside the block is safe and does not
        disturb the epoch's running averages.  While a block is open the loop
        does not move, even if `resume()` or `stop()` are called meanwhile (they
        take effect when the block ends).

        Yields:
            The run.

        Raises:
            RuntimeError: called from the training thread.

        Example:

        ```python
        with run.paused():
            print(model.evaluate(x_test, y_test, verbose=0))
        ```
        """
        if self._passes.on_training_thread():
            raise RuntimeError("run.paused() cannot be used on the training thread.")
        self._coordinator.check_hold()
        with self._hold.paused():
            yield self


def _not_resumable(error: BaseException | None, failure: Any) -> str:
    """Why `resume()` of a failed run is refused."""
    what = f"{type(error).__name__}: {error}".splitlines()[0]
    why = {"step": "the training step failed and may have changed the model",
           "validation": "validation failed",
           "data": "a generator or dataset that raised cannot go on",
           }.get(getattr(failure, "kind", None), "the failure was not in the data or a callback")
    return (f"This run failed ({what}) and cannot be resumed: {why}. Fix the cause and "
            "start a new run; run.exception holds the error.")


def _checked_epochs(epochs: Any, current: int) -> int:
    """`epochs` for `resume(epochs=N)`: an integer after the epoch in progress."""
    try:
        if isinstance(epochs, bool):
            raise TypeError
        epochs = operator.index(epochs)
    except TypeError:
        raise ValueError(f"`epochs` must be an integer, got {epochs!r}.") from None
    if epochs <= current:
        raise ValueError(
            f"`epochs={epochs}` must be greater than the epoch in progress "
            f"({current}): epochs is the index of the final epoch."
        )
    return epochs


__all__ = ["ENDED", "STATES", "Run", "RunHistory"]
