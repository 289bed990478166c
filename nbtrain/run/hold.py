"""`Hold`: the local gate of a Run (pause, stop) and its `paused()` blocks.

The loop calls `gate()` before every training step.  It holds there while the
run is pausing or paused (the state becomes `paused` there, once the loop
holds) or a `with run.paused():` block is open, and turns a stop into
`Interrupt`, which ends the pass as an interruption (no epoch end, no train
end).  A `paused()` block waits until the loop actually holds between two
batches, keeps the model's metric state (`FitLoop.held_metrics`)
and puts it back when the last open block ends, so evaluating or predicting
inside the block does not disturb the epoch's running averages.
"""

from __future__ import annotations

import collections
import contextlib
import threading
from typing import Any, Iterator

from nbtrain.engine import Interrupt
from nbtrain.run.state import HOLDING, PAUSED, PAUSING, STOPPING
from nbtrain.run.waiting import wait_until


class Hold:
    """The pause gate and the `paused()` blocks of one Run.

    Args:
        status: the Run's `RunStatus`.
        loop: its `FitLoop`.
        passes: its `PassRunner` (`active`: a pass is in progress).
        coordinator: its `Coordinator` (`check_hold`: a job has no `paused()`).
        owner: the Run (what a `paused()` block yields).

    Attributes:
        in_gate: the loop is holding in the gate now.
        holds: `paused()` blocks open (the gate holds while there is one).
    """

    def __init__(self, status: Any, loop: Any, passes: Any, coordinator: Any, owner: Any):
        self.status = status
        self.loop = loop
        self.passes = passes
        self.coordinator = coordinator
        self.owner = owner
        self.in_gate = False
        self.holds = 0
        self._threads: collections.Counter = collections.Counter()  # blocks open per thread
        self._held: Any = None  # the metric state kept by the first block

    def _holding(self) -> bool:
        return self.status.state in HOLDING or bool(self.holds)

    def gate(self) -> None:
        """Called by the loop before each step: hold while pausing or paused (the
        state becomes `paused` here, once held) or while a `paused()` block is
        open; end the pass with `Interrupt` when stopping."""
        status = self.status
        while True:
            with status.cond:
                if not self._holding():
                    self.in_gate = False
                    if status.state == STOPPING:
                        raise Interrupt
                    return
                if not self.in_gate:
                    self.loop.sync_model()  # the model holds its state while the loop holds
                self.in_gate = True
                status.cond.notify_all()
                announce = status.state == PAUSING
                if announce:
                    status.change(PAUSED)
                else:
                    status.cond.wait()
            if announce:
                status.dispatch()  # listeners hear "paused" from the loop that holds

    def check_stop(self) -> None:
        """Called while the loop waits for a batch: end the pass with `Interrupt`
        when stopping, so a read that hangs does not hold a stop."""
        if self.status.state == STOPPING:
            raise Interrupt

    def held_by_this_thread(self) -> bool:
        """True inside a `paused()` block opened on the calling thread."""
        return bool(self._threads[threading.get_ident()])

    @contextlib.contextmanager
    def paused(self) -> Iterator[Any]:
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
        if self.passes.on_training_thread():
            raise RuntimeError("run.paused() cannot be used on the training thread.")
        self.coordinator.check_hold()
        status = self.status
        me = threading.get_ident()
        with status.cond:
            self.holds += 1
            self._threads[me] += 1
            resume_after = status.act("pause")  # the gate makes it "paused" once it holds
        try:
            status.dispatch()
            with status.cond:
                wait_until(status.cond, lambda: not self.passes.active or self.in_gate)
                if self.holds == 1 and self.in_gate:
                    self._held = self.loop.held_metrics()
            yield self.owner
        finally:
            with status.cond:
                if self.holds == 1 and self._held is not None:
                    held, self._held = self._held, None
                    held.restore()
                self.holds -= 1
                self._threads[me] -= 1
                if resume_after and not self.holds:
                    status.act("resume")  # if still held: a stop meanwhile stands
                status.cond.notify_all()
            status.dispatch()


__all__ = ["Hold"]
