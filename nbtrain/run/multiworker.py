"""`WorkerCoordinator`: a Run in a multi-worker job, where the chief steers and the others follow.

Under `tf.distribute.MultiWorkerMirroredStrategy` every worker runs the same
program, so every worker builds the same `Run`.  Its coordinator (the
`Coordinator` protocol of `nbtrain.run.coordinator`) is what makes that Run a
member of the job:

- In a pass, the loop's gate is a `CollectiveGate`: the chief's pause, stop
  and `resume(epochs=N)` reach every worker at the same batch.  On the other
  workers the Run only *shows* what was agreed (its state follows the chief's);
  their own controls refuse to act.
- Between passes (after a stop, or after the last epoch) the chief may resume,
  train further or end the job, so the workers keep exchanging on the same
  channel: the chief from a heartbeat thread (`nbtrain-run-heartbeat`, an
  exchange every few seconds), the others from their pass thread, blocked until
  the chief's next word.  `RESUME(epochs)` starts a new pass on every worker at
  the exact batch where they stopped; `END` (`run.close()`, or the chief's
  interpreter exiting) lets the other workers' `run.wait()` return.
- A collective that fails or times out becomes a `WorkerLostError` and fails
  the Run on every surviving worker; a worker whose training fails for another
  reason reports it to the cluster first, so the others fail at once with its
  message.

Only the chief writes files: on the other workers the Keras callbacks that
only write files (`ModelCheckpoint`, `CSVLogger`, `TensorBoard`) are left out.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
from typing import Any, Callable

import keras

from nbtrain.engine.distributed import (
    BETWEEN_PASSES,
    END,
    PAUSE,
    RESUME,
    RUN,
    STOP,
    WAIT,
    CollectiveControl,
    CollectiveGate,
    WorkerLostError,
    WorkersOutOfStepError,
)
from nbtrain.run.state import HOLDING, PAUSED, PAUSING, RUNNING, STOPPING
from nbtrain.run.waiting import Deadline, wait_until

# Callbacks whose only effect is writing files: the chief's alone.
CHIEF_ONLY_CALLBACKS = (keras.callbacks.ModelCheckpoint, keras.callbacks.CSVLogger,
                        keras.callbacks.TensorBoard)

_CHIEFS: set = set()  # coordinators of chief Runs not closed yet: the exit hook closes them


def is_chief(strategy: Any) -> bool:
    """True on the chief of a multi-worker strategy (and for anything else)."""
    return strategy is None or bool(strategy.extended.should_checkpoint)


def worker_callbacks(callbacks: Any, chief: bool) -> Any:
    """The callbacks a worker runs: all of them on the chief; elsewhere, all but
    `CHIEF_ONLY_CALLBACKS` (two workers must not write the same files)."""
    if chief or not callbacks:
        return callbacks
    if isinstance(callbacks, keras.callbacks.CallbackList):
        callbacks = callbacks.callbacks
    return [cb for cb in callbacks if not isinstance(cb, CHIEF_ONLY_CALLBACKS)]


class WorkerCoordinator:
    """Keeps one worker's `Run` in step with the other workers of its job.

    It is the Run's `Coordinator` and, for its `CollectiveGate`, the worker's
    `LocalControl` (`command`, `epochs`, `hyperparameters`, `wait`, `agreed`,
    `applied`).

    Args:
        status: the Run's `RunStatus`.
        loop: the Run's `FitLoop`.
        owner: the Run (closed at interpreter exit on the chief).
        strategy: the model's `MultiWorkerMirroredStrategy`.
        timeout: seconds an exchange waits for the others (None: the strategy's).
        heartbeat: seconds between exchanges while paused or between passes
            (None: `distributed.heartbeat_interval` of the timeout).

    Example:

    ```python
    coordinator = WorkerCoordinator(status, loop, run, model.distribute_strategy)
    ```
    """

    def __init__(self, status: Any, loop: Any, owner: Any, strategy: Any, *,
                 timeout: float | None = None, heartbeat: float | None = None):
        self.status = status
        self.loop = loop
        self.owner = owner
        self.control = CollectiveControl(strategy, timeout=timeout)
        self.is_chief = self.control.is_chief
        self.task = self.control.task
        self.collective_gate = CollectiveGate(self.control, loop, self, heartbeat=heartbeat)
        self.heartbeat = self.collective_gate.heartbeat
        self._requested_epochs: int | None = None
        self.steering: Any = None  # the Run's RunSteering (set with the gate)
        self._decision: tuple[int, int] | None = None  # what the heartbeat thread sends last
        self._beat: threading.Thread | None = None
        self._beat_error: BaseException | None = None
        self.released = False  # the job is over for this worker: run.wait() may return
        self.closed = False
        if self.is_chief:
            _CHIEFS.add(self)

    # -- the gate's LocalControl (training thread) ---------------------------------------

    def command(self) -> int:
        """The chief's state as a command (RUN elsewhere)."""
        if not self.is_chief:
            return RUN
        state = self.status.state
        return STOP if state == STOPPING else PAUSE if state in HOLDING else RUN

    def epochs(self) -> int:
        """The chief's final epoch (0 elsewhere)."""
        if not self.is_chief:
            return 0
        return self._requested_epochs or self.loop.epochs

    def wait(self, timeout: float) -> None:
        """Chief: hold up to `timeout` s while paused (a control wakes it up)."""
        if self.is_chief:
            with self.status.cond:
                if self.status.state in HOLDING:
                    self.status.cond.wait(timeout)

    def hyperparameters(self) -> dict[str, float]:
        """The chief's pending hyperparameter values (none elsewhere)."""
        steering = self.steering
        if not self.is_chief or steering is None or not steering.pending:
            return {}
        return dict(steering.pending)

    def applied(self, changes: list) -> None:
        """Every worker applied `changes` at this gate: record them."""
        if self.steering is not None:
            self.steering.agreed(changes)

    def agreed(self, command: int) -> None:
        """Show the agreed command as the state: on the chief, `'pausing'` becomes
        `'paused'` once every worker holds; the followers follow."""
        status = self.status
        if self.is_chief:
            if command == PAUSE:
                with status.lock:
                    if status.state == PAUSING:
                        status.change(PAUSED)
                status.dispatch()
            return
        if command == RUN and status.state != PAUSED:
            return
        with status.lock:
            state = status.state
            if command == PAUSE and state == RUNNING:
                status.change(PAUSED)
            elif command == RUN and state == PAUSED:
                status.change(RUNNING)
            elif command == STOP:
                status.act("stop")  # where a stop acts (`state.CONTROLS`)
        status.dispatch()

    # -- the Coordinator protocol --------------------------------------------------------

    def gate(self, local: Callable[[], None], steering: Any) -> Callable[[], None]:
        """The `CollectiveGate` (the Run's own gate is not used in a job); the chief's
        pending hyperparameters ride in its control words."""
        self.steering = steering
        return self.collective_gate

    def wait_check(self, local: Callable[[], None]) -> None:
        """None: a stop takes effect at the same batch on every worker, never inside a read."""
        return None

    def set_epochs(self, epochs: int, pass_active: bool) -> None:
        """The chief's new final epoch: applied on every worker at the same gate."""
        self._requested_epochs = int(epochs)
        if not pass_active:
            self.loop.set_epochs(epochs)

    def check_hold(self) -> None:
        raise RuntimeError(
            "run.paused() is not available in a multi-worker job: model.evaluate and "
            "model.predict run collectives every worker must join.  Use run.pause() / "
            "run.resume() (the other workers hold at the same batch)."
        )

    def translate(self, error: BaseException) -> BaseException:
        """A failed collective as a `WorkerLostError`; other errors unchanged."""
        return self.control.lost(error)

    def before_pass(self) -> None:
        """On the pass thread, before `FitLoop.run()`: the chief tells the others to resume."""
        self.collective_gate.reset()
        if self.is_chief and self._beat is not None:
            self._send_decision(RESUME, self.loop.epochs)

    def after_pass(self, error: BaseException | None, start_pass: Callable[[], None]) -> None:
        """On the pass thread, after the pass ended: wait for (or, on the chief, let the
        user make) the decision about what comes next."""
        if error is not None:
            if not isinstance(error, (WorkerLostError, WorkersOutOfStepError)):
                self.control.report(error)  # the others fail now, not at a timeout
            self._release()
            return
        if self.is_chief:
            if self.closed:
                return
            self._decision, self._beat_error = None, None
            self._beat = threading.Thread(target=self._beat_loop, name="nbtrain-run-heartbeat",
                                          daemon=True)
            self._beat.start()
        else:
            self._follow(start_pass)

    def job_ended(self) -> bool:
        """The chief's `wait()` returns when its pass ends; the others' when the job ends."""
        return self.is_chief or self.released

    def close(self, deadline: Deadline) -> None:
        """Chief: end the job (the other workers' `run.wait()` returns).  Other
        workers: wait until the chief does (until `deadline`)."""
        if not self.is_chief:
            with self.status.cond:
                wait_until(self.status.cond, lambda: self.released, deadline,
                           lambda: f"The chief did not end the job within {deadline.timeout} s.")
            return
        self.closed = True
        _CHIEFS.discard(self)
        if self._beat is not None:
            with contextlib.suppress(Exception):
                self._send_decision(END, 0)
        self._release()

    # -- between passes -----------------------------------------------------------------

    def _position(self) -> tuple[int, int, int]:
        epoch, batch, steps = self.loop.position()
        return epoch, batch, int(steps or 0)

    def _beat_loop(self) -> None:
        """Chief: exchange WAIT every `heartbeat` s until a decision, send it, end."""
        cond = self.status.cond
        try:
            while True:
                with cond:
                    decision = self._decision
                if decision is not None:
                    self.control.exchange(decision[0], decision[1], BETWEEN_PASSES,
                                          self._position())
                    return
                self.control.exchange(WAIT, 0, BETWEEN_PASSES, self._position())
                with cond:
                    if self._decision is None:
                        cond.wait(self.heartbeat)
        except Exception as exc:  # noqa: BLE001 - the job is broken: fail the run
            self._beat_error = exc
            self._fail(exc)

    def _send_decision(self, command: int, epochs: int) -> None:
        """Chief: have the heartbeat thread send `command` as its last exchange."""
        beat = self._beat
        with self.status.cond:
            self._decision = (command, epochs)
            self.status.cond.notify_all()
        if beat is not None and beat is not threading.current_thread():
            beat.join()
        self._beat = None
        if self._beat_error is not None:
            raise self._beat_error

    def _follow(self, start_pass: Callable[[], None]) -> None:
        """Not the chief: wait for the chief's decision (on the pass thread)."""
        try:
            while True:
                agreement = self.control.exchange(WAIT, 0, BETWEEN_PASSES, self._position())
                if agreement.command == RESUME:
                    if agreement.epochs:
                        self.loop.set_epochs(int(agreement.epochs))
                    start_pass()  # the next pass, as the chief did
                    return
                if agreement.command == END:
                    self.loop.end_training()  # the chief's close() ended the training
                    break
        except Exception as exc:  # noqa: BLE001 - the job is broken: fail the run
            self._fail(exc)
        self._release()

    def _fail(self, error: BaseException) -> None:
        error = self.translate(error)
        with self.status.lock:
            self.status.fail(error)
        self.status.dispatch()
        self._release()

    def _release(self) -> None:
        with self.status.cond:
            self.released = True
            self.status.cond.notify_all()


def _close_chiefs_at_exit(timeout: float = 30.0) -> None:
    """At interpreter exit, end the job of every chief Run not closed yet, so the
    other workers' `run.wait()` returns instead of timing out."""
    for coordinator in list(_CHIEFS):
        with contextlib.suppress(Exception):
            coordinator.owner.close(timeout=timeout)


# Exit hooks run last-registered first: this one runs before the Run registry's own (a
# Run imports this module when it first meets a multi-worker model, after the registry).
getattr(threading, "_register_atexit", atexit.register)(_close_chiefs_at_exit)


__all__ = ["CHIEF_ONLY_CALLBACKS", "WorkerCoordinator", "is_chief", "worker_callbacks"]
