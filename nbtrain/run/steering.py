"""Steering a Run: hyperparameters changed while it trains, and the record of it.

`run.set_learning_rate(value)` and `run.set_hyperparameters(**values)` check
what they are asked in the caller's thread (any thread, while running, paused,
stopped, ...) and leave the values *pending*; the loop's gate applies them on
the training thread before the next batch's step, exactly once
(`FitLoop.set_hyperparameters`).  In a multi-worker job the chief's pending
values travel in the control words instead, and every worker applies them at
the same gate (`nbtrain.engine.distributed.gate.CollectiveGate`).

Every change is recorded: `run.hyperparameter_changes` (where it landed: epoch
and batch), steering listeners (the dashboard, the text status), and, once a
hyperparameter has changed, an entry per epoch in the logs and the History
under its name (`learning_rate`, as Keras's ReduceLROnPlateau logs it), the
epochs before the first change filled with the value they trained at.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any, Callable

import keras

from nbtrain.engine.hyperparameters import LEARNING_RATE, HyperparameterChange, read_hyperparameter

SteeringListener = Callable[[Any, HyperparameterChange], None]


class SteeringLog(keras.callbacks.Callback):
    """Puts each steered hyperparameter in the epoch logs, before the History sees them.

    It reads the values at every epoch end (a variable read per epoch, no batch
    hook); once a hyperparameter has changed it writes it into the logs, and
    fills the earlier epochs of the Run's History with what they trained at.
    """

    def __init__(self) -> None:
        super().__init__()
        self.logged: set[str] = set()  # hyperparameters that changed at least once
        self.history: Any = None  # the Run's RunHistory
        self._values: dict[int, dict[str, float]] = {}  # epoch -> values at its end
        self._lock = threading.Lock()

    @staticmethod
    def before(callbacks: Any, log: SteeringLog) -> Any:
        """The user's `callbacks` with `log` first (anything else is left for
        `fit_config` to refuse with its message)."""
        if isinstance(callbacks, keras.callbacks.CallbackList):
            callbacks = callbacks.callbacks
        if callbacks is None:
            return [log]
        if isinstance(callbacks, (list, tuple)):
            return [log, *callbacks]
        return callbacks

    def start_logging(self, name: str) -> None:
        """Write `name` into the epoch logs from now on (it changed)."""
        with self._lock:
            self.logged.add(name)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        optimizer = getattr(self.model, "optimizer", None)
        with self._lock:
            names = sorted(self.logged | {LEARNING_RATE})
        values = {}
        for name in names:
            try:
                values[name] = read_hyperparameter(optimizer, name)
            except Exception:  # noqa: BLE001 - a schedule, or no optimizer: nothing to log
                continue
        self._values[int(epoch)] = values
        if logs is None:
            return
        for name in names:
            if name in self.logged and name in values:
                logs[name] = values[name]
                if self.history is not None:
                    self.history.fill(name, {e: v[name] for e, v in self._values.items()
                                             if name in v})


class RunSteering:
    """A Run's steering: its controls (`set_learning_rate`, `set_hyperparameters`),
    the pending changes, their record and their listeners.

    Args:
        status: the Run's `RunStatus` (its lock guards the pending values).
        loop: its `FitLoop` (checks and applies the values).
        owner: the Run (passed to listeners).
        log: the `SteeringLog` among the loop's callbacks.
        check: raises `RuntimeError` if the run cannot train again, or is not
            steered here (`RunActions.require_trainable`; called with the lock held).
    """

    def __init__(self, status: Any, loop: Any, owner: Any, log: SteeringLog,
                 check: Callable[[], None]):
        self.status = status
        self.loop = loop
        self.owner = owner
        self.log = log
        self.check = check
        log.history = loop.history
        self.pending: dict[str, float] = {}
        self.changes: list[HyperparameterChange] = []
        self._listeners: list[SteeringListener] = []

    def request(self, values: dict[str, float]) -> None:
        """Leave checked values pending for the next gate (any thread)."""
        with self.status.cond:
            self.pending.update(values)
            self.status.cond.notify_all()  # a paused chief's gate exchanges at once

    def take(self) -> dict[str, float]:
        """The pending values, now removed (the training thread's gate)."""
        with self.status.lock:
            values, self.pending = self.pending, {}
        return values

    def apply_pending(self) -> None:
        """Apply the pending values now (the local gate, before a step)."""
        values = self.take()
        if values:
            self.record(self.loop.set_hyperparameters(values))

    def agreed(self, changes: list[HyperparameterChange]) -> None:
        """Values the workers of a job applied at this gate: no longer pending (on
        the chief, unless set again meanwhile), and recorded."""
        with self.status.lock:
            for change in changes:
                if self.pending.get(change.name) == change.new:
                    del self.pending[change.name]
        self.record(changes)

    def record(self, changes: list[HyperparameterChange]) -> None:
        """Keep `changes` and tell the listeners (on the training thread)."""
        with self.status.lock:
            self.changes.extend(changes)
            listeners = list(self._listeners)
        for change in changes:
            self.log.start_logging(change.name)
            for listener in listeners:
                try:
                    listener(self.owner, change)
                except Exception as exc:  # noqa: BLE001 - a display must not break training
                    warnings.warn(f"A steering listener failed: {type(exc).__name__}: {exc}",
                                  RuntimeWarning, stacklevel=2)

    # -- the Run's steering controls ------------------------------------------------------

    def set_learning_rate(self, value: float) -> None:
        """Set the optimizer's learning rate from the next batch on.

        It takes effect before the next batch's step, exactly once, from any
        thread, while the run is created, running, pausing, paused, stopping,
        stopped or finished (then at the first batch of the next pass).  In a
        multi-worker job, call it on the chief: every worker applies it at the
        same batch.  Recorded in `hyperparameter_changes`, in the epoch logs
        and History as `learning_rate` (as Keras's `ReduceLROnPlateau` logs it;
        earlier epochs filled with their value), and by the displays.

        A learning-rate schedule (`keras.optimizers.schedules`) is refused: it
        is part of the compiled step, and a constant in its place would
        silently drop it.  Compile with a float learning rate to steer it.

        Args:
            value: the new learning rate, a finite number >= 0.

        Raises:
            ValueError: a bad value, or the learning rate is a schedule.
            TypeError: not a number.
            RuntimeError: the run cannot train any more (closed, or failed),
                or this is not the chief of a multi-worker job.

        Example:

        ```python
        run = nbtrain.fit(model, x, y, epochs=10)
        run.set_learning_rate(1e-3)
        ```
        """
        self.set_hyperparameters(learning_rate=value)

    def set_hyperparameters(self, **values: float) -> None:
        """Set optimizer hyperparameters from the next batch on (see `set_learning_rate`).

        Only hyperparameters held in a `keras.Variable` can change: in Keras 3's
        own optimizers that is `learning_rate`; `momentum`, `beta_1` or
        `weight_decay` are Python floats fixed in the compiled step and are
        refused (an optimizer of your own may keep any in a variable).  In a
        multi-worker job at most two changes ride on one batch, so several at
        once may land on consecutive batches (each on every worker at the same
        batch).

        Args:
            **values: hyperparameter name to its new value.

        Raises:
            ValueError: no values, an unknown name, a hyperparameter that is not a
                variable, a value that is not finite.
            TypeError: a value that is not a number.
            RuntimeError: as for `set_learning_rate`.

        Example:

        ```python
        run.set_hyperparameters(learning_rate=1e-3, gain=0.5)
        ```
        """
        checked = self.loop.check_hyperparameters(values)
        with self.status.lock:
            self.check()
        self.request(checked)

    @property
    def learning_rate(self) -> float | None:
        """The optimizer's learning rate now (None if it is a schedule or there is none).

        A value set with `set_learning_rate` shows here once it has taken effect
        (at the next batch).
        """
        try:
            return read_hyperparameter(self.loop.model.optimizer, LEARNING_RATE)
        except Exception:  # noqa: BLE001 - a schedule, or no optimizer
            return None

    @property
    def hyperparameter_changes(self) -> list[HyperparameterChange]:
        """Every change applied so far, in order: where it landed (epoch, batch) and
        the old and new values (`nbtrain.engine.hyperparameters.HyperparameterChange`)."""
        with self.status.lock:
            return list(self.changes)

    def add_steering_listener(self, fn: SteeringListener) -> Callable[[], None]:
        """Call `fn(run, change)` for every hyperparameter change, on the training
        thread, right after it is applied (before the batch it lands on).

        Args:
            fn: the listener; its exceptions are warned about, never raised.

        Returns:
            A function that removes the listener.

        Example:

        ```python
        run.add_steering_listener(lambda run, c: print(c.name, c.old, "->", c.new))
        ```
        """
        with self.status.lock:
            self._listeners.append(fn)

        def remove() -> None:
            with self.status.lock:
                if fn in self._listeners:
                    self._listeners.remove(fn)

        return remove


__all__ = ["RunSteering", "SteeringLog", "SteeringListener"]
