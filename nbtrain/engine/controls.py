"""The contract between a training loop and its controllers (a `Run`, a `CollectiveGate`).

`LoopControls` writes it out both ways: what the loop provides (its attributes
and its abstract methods, which `FitLoop` implements) and what a controller may
call (the methods below, implemented here on those attributes).  A controller
calls these and never writes the loop's fields.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, NamedTuple

from nbtrain.data import is_sequence, sequence_length
from nbtrain.engine.hyperparameters import (
    HyperparameterChange,
    assign_hyperparameters,
    check_hyperparameters,
    steerable_names,
)


class Interrupt(Exception):  # noqa: N818 - a signal, like StopIteration, not an error
    """Raised by a `FitLoop` gate to end the pass before the next batch.

    It is an interruption, not an end: the epoch in progress does not end for
    the callbacks and the training does not end either; the loop keeps its
    position and the epoch's metric state, stops its enqueuers and `run()`
    returns.  The next `run()` continues at the exact next batch.

    Example:

    ```python
    def gate():
        if stop_requested.is_set():
            raise Interrupt
    loop = FitLoop(model, sequence, epochs=5, gate=gate)
    ```
    """


class Position(NamedTuple):
    """Where training stands, as its controllers see it.

    Attributes:
        epoch: the epoch in progress, or the next one to start.
        batch: batches of `epoch` already trained.
        steps: batches in the epoch in progress, once it has begun (else None).
    """

    epoch: int
    batch: int
    steps: int | None


class HeldMetrics:
    """The metric state of a loop held between two batches (`FitLoop.held_metrics`).

    `restore()` puts it back (at batch 0 it resets the metrics, as the loop
    just did), so evaluating or predicting meanwhile does not disturb the
    epoch's running averages.  Also a context manager that restores on exit.
    """

    def __init__(self, runner: Any, snapshot: Any):
        self._runner = runner
        self._snapshot = snapshot

    def restore(self) -> None:
        """Put the kept metric state back."""
        if self._snapshot is None:
            self._runner.reset()
        else:
            self._runner.restore(self._snapshot)

    def __enter__(self) -> HeldMetrics:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.restore()


class LoopControls(abc.ABC):
    """What a controller may ask of a training loop, and what the loop provides for it
    (the base of `FitLoop`).

    The loop sets the attributes below in its constructor and implements the
    abstract methods; the other methods are the controllers' API.
    """

    model: Any
    """The Keras model trained."""
    epochs: int
    """The final epoch: a pass ends when the position reaches it (`set_epochs`)."""
    gate: Callable[[], None] | None
    """Called before each training step (`set_gate`)."""
    state: Any
    """The position: `epoch` (in progress, or next) and `batch` (trained in it)."""
    callbacks: Any
    """The loop's `keras.callbacks.CallbackList`; `params` holds `epochs` and `steps`."""
    steps_per_epoch: int | None
    """Batches per epoch as given (None: the data's length, or until it ends)."""
    train_steps: Any
    """The training step runner (`nbtrain.engine.backends.base.StepRunner`): `sync`,
    `snapshot`, `restore`, `reset`, and a `carrier` where the step can carry one."""
    train_stream: Any
    """The training data's stream: `data` (the source) and `while_waiting`."""
    history: Any
    """The `keras.callbacks.History` the loop records into (kept across passes)."""
    recovery: Any
    """What a failed pass left (`nbtrain.engine.recovery.Recovery`; `failure`)."""

    @abc.abstractmethod
    def run(self) -> Any:
        """Train from the position to epoch `epochs`, one pass; return the History.
        A gate's `Interrupt` ends the pass early; the next `run()` goes on."""

    @abc.abstractmethod
    def sync_model(self) -> None:
        """Put the training state back into the model (between two steps, on the
        training thread), before anyone reads or changes it."""

    @abc.abstractmethod
    def end_training(self, logs: dict | None = None) -> None:
        """End the training for the callbacks (`on_train_end`) if one is open."""

    def set_epochs(self, epochs: int) -> None:
        """Make `epochs` the final epoch (a pass in progress ends there)."""
        self.epochs = int(epochs)
        self.callbacks.params["epochs"] = self.epochs

    def set_gate(self, gate: Callable[[], None] | None) -> None:
        """Call `gate()` before each step from now on (None: no gate)."""
        self.gate = gate

    def set_wait_check(self, check: Callable[[], None] | None) -> None:
        """Call `check()` every 0.1 s while the loop waits for a training batch from
        its workers (from the next pass on); an `Interrupt` it raises ends the pass
        as the gate's would, the awaited batch unread (None: no check)."""
        self.train_stream.while_waiting = check

    def set_carrier(self, carrier: Any) -> bool:
        """Have each train step carry `carrier`'s control words in its all-reduce
        (`CollectiveGate`); False when the step runner cannot (then nothing changes)."""
        if not hasattr(self.train_steps, "carrier"):
            return False
        self.train_steps.carrier = carrier
        return True

    def position(self) -> Position:
        """The epoch, the batch within it and the epoch's steps (None until it begins)."""
        steps = self.callbacks.params.get("steps")
        return Position(self.state.epoch, self.state.batch, int(steps) if steps else None)

    def epoch_steps(self) -> int | None:
        """Batches in the current epoch when known: the epoch's, `steps_per_epoch`, or
        the Sequence's length."""
        steps = self.callbacks.params.get("steps") or self.steps_per_epoch
        if steps:
            return int(steps)
        source = self.train_stream.data
        if is_sequence(source):
            try:
                return sequence_length(source)
            except Exception:  # noqa: BLE001 - a length the user's code fails to give
                return None
        return None

    def steerable_names(self) -> list[str]:
        """The optimizer's hyperparameters that can change while training, sorted
        (`nbtrain.engine.hyperparameters.steerable_names`)."""
        return steerable_names(getattr(self.model, "optimizer", None))

    def check_hyperparameters(self, values: dict[str, Any]) -> dict[str, float]:
        """Check a change for `set_hyperparameters` (any thread; raises before any work)."""
        return check_hyperparameters(getattr(self.model, "optimizer", None), values)

    def set_hyperparameters(self, values: dict[str, float]) -> list[HyperparameterChange]:
        """Assign checked hyperparameter values now, between two batches (the training
        thread's gate, or while no pass is in progress); return the changes, placed
        at the next batch to train."""
        self.sync_model()  # on JAX the optimizer's variables live outside the model meanwhile
        old = assign_hyperparameters(self.model.optimizer, values)
        epoch, batch, steps = self.position()
        return [HyperparameterChange(epoch, batch, steps, name, old[name], value)
                for name, value in values.items()]

    def held_metrics(self) -> HeldMetrics:
        """Keep the metric state, while the loop holds between two batches, to be
        restored before it goes on (`with loop.held_metrics(): model.evaluate(...)`)."""
        runner = self.train_steps
        # At batch 0 the loop has just reset the metrics (and the model may not be
        # built yet): restoring is resetting them again.
        return HeldMetrics(runner, runner.snapshot() if self.state.batch else None)


__all__ = ["HeldMetrics", "Interrupt", "LoopControls", "Position"]
