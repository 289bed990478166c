"""`RunActions`: what a user does with a Run (start, pause, resume, stop, close), by the table.

Every control acts by `state.CONTROLS`: an action in a state where the table
says it acts changes the state (the loop's gate acts on it before the next
batch) or begins a new pass; `allowed_actions` is the same table, read.  One
rule for a call that cannot act (`nbtrain.run.refusal`): a call the run's state
makes a no-op (pausing a pausing run, stopping a stopped one) does nothing,
warns (`RuntimeWarning`, naming the state and what would act) and returns
False; a call that can never act on this run (not started, closed, failed for
good, a follower of a multi-worker job) raises `RuntimeError`.
"""

from __future__ import annotations

import contextlib
import operator
import warnings
from typing import Any

from nbtrain.run import registry
from nbtrain.run.coordinator import Coordinator
from nbtrain.run.events import RunStatus
from nbtrain.run.passes import PassRunner
from nbtrain.run.refusal import refused
from nbtrain.run.state import CONTROLS, CREATED, FAILED, RUNNING, STOPPED, allowed_actions
from nbtrain.run.waiting import INTERRUPT_WAIT, Deadline

_RESUME, _CONTINUE, _STOP = CONTROLS["resume"], CONTROLS["continue"], CONTROLS["stop"]


class RunActions:
    """The controls of one Run, and what it allows now.

    Args:
        status: the Run's `RunStatus`.
        loop: its `FitLoop`.
        passes: its `PassRunner`.
        coordinator: its `Coordinator`.
        owner: the Run (what the model registry records).

    Attributes:
        closed: `run.close()` has ended the run for good.
    """

    def __init__(self, status: RunStatus, loop: Any, passes: PassRunner,
                 coordinator: Coordinator, owner: Any):
        self.status = status
        self.loop = loop
        self.passes = passes
        self.coordinator = coordinator
        self.owner = owner
        self.closed = False

    # -- what the run allows ------------------------------------------------------------

    def allowed_actions(self) -> set[str]:
        """The controls that do something now, for enabling buttons.

        A subset of `{'pause', 'resume', 'stop', 'continue'}`, where `'continue'`
        means `resume(epochs=N)` (train further after a stop or the end).

        Example:

        ```python
        pause_button.disabled = "pause" not in run.allowed_actions()
        ```
        """
        if not self.coordinator.is_chief or self.closed:
            return set()
        return set(allowed_actions(self.status.state, self.status.resumable))

    # -- the controls -------------------------------------------------------------------

    def start(self) -> Any:
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
        with self.status.lock:
            if self.status.state != CREATED:
                raise RuntimeError(f"This run was already started (it is {self.status.state}).")
            thread = self.passes.begin()
        self.passes.launch(thread)
        return self.owner

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
        return self.act("pause")

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
        return self.act("stop")

    def act(self, action: str, quiet: bool = False) -> bool:
        """Take `action` during a pass (`RunStatus.act`); refuse it, warned unless
        `quiet`, where the table says it does not act."""
        status = self.status
        with status.lock:
            self.require_chief(action)
            if not status.act(action):
                return False if quiet else refused(action, status.state)
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
        status, loop, thread = self.status, self.loop, None
        with status.lock:
            self.require_chief("resume")
            state = status.state
            if state == FAILED and not status.resumable:
                raise RuntimeError(_not_resumable(status.exception, status.failure))
            retarget = state == RUNNING and epochs is not None  # the final epoch only
            if not (_RESUME.acts_in(state) or _CONTINUE.acts_in(state) or retarget):
                return refused("resume", state)
            if self.closed:
                raise RuntimeError("This run was closed (run.close()) and cannot be resumed.")
            new_pass = state in _RESUME.new_pass | _CONTINUE.new_pass
            if new_pass:
                registry.check_free(loop.model, self.owner)
            if epochs is not None:
                self.coordinator.set_epochs(_checked_epochs(epochs, loop.position().epoch),
                                            self.passes.active)
            if retarget:
                return True
            if not new_pass:
                status.act("resume")  # the loop's gate lets it go on
            elif loop.position().epoch >= loop.epochs:
                warnings.warn(
                    f"The run has trained all {loop.epochs} epochs; to train more, call "
                    f"run.resume(epochs=N) with N > {loop.epochs}.",
                    RuntimeWarning, stacklevel=3,
                )
                return False
            else:
                if state == FAILED:  # like a stop: the data is read again, by fresh workers
                    status.clear_failure()
                thread = self.passes.begin()
        if thread is not None:
            self.passes.launch(thread)
        else:
            status.dispatch()
        return True

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
        self.require_caller_thread("close()")
        deadline = Deadline(timeout)
        if not self.coordinator.is_chief:
            self.coordinator.close(deadline)
            self.closed = True
            return
        with self.status.lock:
            if self.closed:
                return
            started = self.status.state != CREATED
        if started:
            with contextlib.suppress(RuntimeError):
                self.act("stop", quiet=True)
            self.passes.wait_idle(deadline)
        with self.status.lock:
            if self.closed:
                return
            self.closed = True
            end = self.status.state == STOPPED  # not a failed training: Keras never ends those
        if end:
            self.loop.end_training()
        self.coordinator.close(deadline)

    def stop_on_interrupt(self) -> None:
        """A Ctrl-C while waiting: stop a training chief's run, and wait about a second
        (`INTERRUPT_WAIT`) for its pass to end."""
        if self.coordinator.is_chief and self.status.state in _STOP.in_pass:
            self.stop()
            with contextlib.suppress(TimeoutError):
                self.passes.wait_idle(Deadline(INTERRUPT_WAIT))

    # -- the checks of the other parts --------------------------------------------------

    def require_started(self, what: str) -> None:
        """Raise `RuntimeError` if the run has not started (for `run.<what>()`)."""
        if self.status.state == CREATED:
            raise RuntimeError(f"This run has not started: call run.start() before run.{what}().")

    def require_chief(self, what: str) -> None:
        """Raise `RuntimeError` if the run has not started or follows a job's chief."""
        self.require_started(what)
        if not self.coordinator.is_chief:
            raise RuntimeError(
                f"run.{what}() on {self.coordinator.task}: in a multi-worker job only "
                "the chief's Run is steered; its controls reach every worker at the same batch."
            )

    def require_caller_thread(self, what: str) -> None:
        """Raise `RuntimeError` on a pass's thread (where `what` would never return)."""
        if self.passes.on_training_thread():
            raise RuntimeError(f"run.{what} cannot be called from the training thread.")

    def require_trainable(self) -> None:
        """Raise `RuntimeError` if the run cannot train again, or is not steered here
        (`lock` held; what `set_hyperparameters` checks)."""
        if self.closed:
            raise RuntimeError("This run was closed (run.close()): it will not train again.")
        if self.status.state == FAILED and not self.status.lost_worker:
            raise RuntimeError("This run failed and cannot train again; see run.exception.")
        if not self.coordinator.is_chief:
            raise RuntimeError(
                f"run.set_hyperparameters() on {self.coordinator.task}: in a multi-worker job "
                "only the chief's Run is steered; its changes reach every worker at the same batch.")


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


__all__ = ["RunActions"]
