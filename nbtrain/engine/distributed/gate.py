"""`CollectiveGate`: the `FitLoop` gate of one worker of a multi-worker job.

To cost almost nothing the control words travel *inside* the training step:
the gate before batch `n` sets them, the compiled train step sums them in the
very all-reduce that averages its loss and metrics
(`replicas.multi_worker_step`), and the gate before batch `n + 1` acts on the
result, identical on every worker.  So a command takes effect on every worker
at the same batch, one batch after the chief's gate saw it.  While paused the
gate exchanges the words on their own, paced by the chief: at once when its
state changes, else every `heartbeat` seconds, so the exchange's timeout does
not fire and resume or stop reach everyone.

The engine knows nothing of threads: the worker's local side (what it asks
for, how to wait for that to change, how to show what was agreed) is a
`LocalControl` given by the caller, in nbtrain the Run's coordinator
(`nbtrain.run.multiworker.WorkerCoordinator`).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from nbtrain.engine.distributed.control import (
    IN_PASS,
    PAUSE,
    RUN,
    STEER_SLOTS,
    STOP,
    Agreement,
    CollectiveControl,
)
from nbtrain.engine.distributed.strategy import heartbeat_interval
from nbtrain.engine.training import Interrupt


class LocalControl(Protocol):
    """The worker's own side of the gate (the `Run` in nbtrain)."""

    def command(self) -> int:
        """What this worker asks for now: `RUN`, `PAUSE` or `STOP` (only the chief's counts)."""

    def epochs(self) -> int:
        """The final epoch this worker asks for (only the chief's counts; 0: no change)."""

    def hyperparameters(self) -> dict[str, float]:
        """Hyperparameter values this worker asks for (only the chief's count; they
        stay asked for until `applied` reports them)."""

    def wait(self, timeout: float) -> None:
        """Block up to `timeout` s, or until `command()` may have changed (chief only)."""

    def agreed(self, command: int) -> None:
        """The workers agreed on `command` at this gate (a follower shows it)."""

    def applied(self, changes: list) -> None:
        """Every worker applied these `HyperparameterChange`s at this gate."""


class _Follower:
    """A LocalControl that asks for nothing and shows nothing."""

    def command(self) -> int:
        return RUN

    def epochs(self) -> int:
        return 0

    def hyperparameters(self) -> dict[str, float]:
        return {}

    def wait(self, timeout: float) -> None:
        return None

    def agreed(self, command: int) -> None:
        return None

    def applied(self, changes: list) -> None:
        return None


class CollectiveGate:
    """The `FitLoop` gate of one worker of a multi-worker job.

    Called before each training step, it acts on what every worker agreed
    (the words the previous train step summed, or an exchange of its own at
    the first gate of a pass): stop raises `Interrupt` (the pass ends as an
    interruption, on every worker at the same batch); pause
    exchanges heartbeats until the chief resumes or stops; a new final epoch and
    the chief's hyperparameter changes are applied to the loop.  Then it sets
    the words the next train step carries: the loop's train steps carry this
    gate's words (`FitLoop.set_carrier`) when the step runner supports it (the
    compiled steps do), else every gate makes an exchange of its own.

    Args:
        control: the `CollectiveControl`.
        loop: the `FitLoop` it gates.
        local: this worker's `LocalControl`; None asks for nothing (a follower).
        heartbeat: seconds between exchanges while paused (None: a quarter of
            the control timeout, within [0.5, 5]).

    Example:

    ```python
    loop = FitLoop(model, nbtrain.ShardedSequence(batches), epochs=3, verbose=0)
    loop.set_gate(CollectiveGate(CollectiveControl(model.distribute_strategy), loop))
    loop.run()
    ```
    """

    def __init__(self, control: CollectiveControl, loop: Any, local: LocalControl | None = None,
                 *, heartbeat: float | None = None):
        self.control = control
        self.loop = loop
        self.local = local if local is not None else _Follower()
        self.heartbeat = heartbeat_interval(control.timeout) if heartbeat is None else heartbeat
        self._outgoing: np.ndarray | None = None  # words for the next train step to carry
        self._carried: Any = None  # the all-reduced words a train step brought back
        self._names: list[str] | None = None  # the optimizer's steerable hyperparameters
        loop.set_carrier(self)

    def reset(self) -> None:
        """Forget words in flight (at the start of a pass)."""
        self._outgoing = self._carried = None

    # -- the train step's side ----------------------------------------------------------

    def take_outgoing(self) -> np.ndarray | None:
        """The words the next train step should all-reduce (once), or None."""
        words, self._outgoing = self._outgoing, None
        return words

    def bring_back(self, reduced: Any) -> None:
        """The summed words of the step that carried them."""
        self._carried = reduced

    # -- the gate -----------------------------------------------------------------------

    def _position(self) -> tuple[int, int, int]:
        epoch, batch, steps = self.loop.position()
        return epoch, batch, int(steps or 0)

    def _steer(self) -> tuple:
        """The chief's asked-for hyperparameters as `(index, value)` pairs, at most
        `STEER_SLOTS` (the rest ride on the next exchanges)."""
        asked = self.local.hyperparameters()
        if not asked:
            return ()
        if self._names is None:
            self._names = self.loop.steerable_names()
        names = self._names
        pairs = [(names.index(name), value) for name, value in sorted(asked.items())
                 if name in names]
        return tuple(pairs[:STEER_SLOTS])

    def _apply_steer(self, steer: tuple) -> None:
        if not steer:
            return
        if self._names is None:
            self._names = self.loop.steerable_names()
        changes = self.loop.set_hyperparameters({self._names[i]: v for i, v in steer})
        self.local.applied(changes)

    def _exchange(self) -> Agreement:
        return self.control.exchange(self.local.command(), self.local.epochs(), IN_PASS,
                                     self._position(), self._steer())

    def _apply_epochs(self, epochs: int) -> None:
        loop = self.loop
        if epochs and epochs != loop.epochs:
            loop.set_epochs(max(int(epochs), loop.position().epoch + 1))

    def __call__(self) -> None:
        self._outgoing = None
        carried, self._carried = self._carried, None
        if carried is not None:
            agreement = self.control.decode(carried)
        else:
            agreement = self._exchange()
        while True:
            self._apply_epochs(agreement.epochs)
            self._apply_steer(agreement.steer)
            if agreement.command == STOP:
                self.local.agreed(STOP)
                raise Interrupt
            if agreement.command != PAUSE:
                break
            self.local.agreed(PAUSE)
            self.local.wait(self.heartbeat)
            agreement = self._exchange()
        self.local.agreed(RUN)
        self._outgoing = self.control.encode(self.local.command(), self.local.epochs(), IN_PASS,
                                             self._position(), self._steer())


__all__ = ["CollectiveGate", "LocalControl"]
