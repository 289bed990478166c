"""`Hold`: the local gate of a Run (pause, stop) and its `paused()` blocks.

The loop calls `gate()` before every training step.  It holds there while the
run is paused or a `with run.paused():` block is open, and turns a stop into
`model.stop_training`.  A `paused()` block waits until the loop actually holds
between two batches, keeps the model's metric state (`FitLoop.held_metrics`)
and puts it back when the last open block ends, so evaluating or predicting
inside the block does not disturb the epoch's running averages.
"""

from __future__ import annotations

import collections
import contextlib
import threading
from typing import Any, Iterator

from nbtrain.run.state import PAUSED, RUNNING, STOPPING
from nbtrain.run.waiting import wait_until


class Hold:
    """The pause gate and the `paused()` blocks of one Run.

    Args:
        status: the Run's `RunStatus`.
        loop: its `FitLoop`.
        passes: its `PassRunner` (`active`: a pass is in progress).

    Attributes:
        in_gate: the loop is holding in the gate now.
        holds: `paused()` blocks open (the gate holds while there is one).
    """

    def __init__(self, status: Any, loop: Any, passes: Any):
        self.status = status
        self.loop = loop
        self.passes = passes
        self.in_gate = False
        self.holds = 0
        self._threads: collections.Counter = collections.Counter()  # blocks open per thread
        self._held: Any = None  # the metric state kept by the first block

    def _holding(self) -> bool:
        return self.status.state == PAUSED or bool(self.holds)

    def gate(self) -> None:
        """Called by the loop before each step: hold while paused; enforce a stop."""
        status = self.status
        with status.cond:
            if self._holding():
                self.in_gate = True
                status.cond.notify_all()
                try:
                    while self._holding():
                        status.cond.wait()
                finally:
                    self.in_gate = False
            if status.state == STOPPING:
                # Also covers a stop made before this pass reset model.stop_training.
                self.loop.model.stop_training = True

    def held_by_this_thread(self) -> bool:
        """True inside a `paused()` block opened on the calling thread."""
        return bool(self._threads[threading.get_ident()])

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Hold the loop for the block; resume after it if it was running (see `Run.paused`)."""
        status = self.status
        me = threading.get_ident()
        resume_after = False
        with status.cond:
            self.holds += 1
            self._threads[me] += 1
            if status.state == RUNNING:
                status.change(PAUSED)
                resume_after = True
        try:
            status.dispatch()
            with status.cond:
                wait_until(status.cond, lambda: not self.passes.active or self.in_gate)
                if self.holds == 1 and self.in_gate:
                    self._held = self.loop.held_metrics()
            yield
        finally:
            with status.cond:
                if self.holds == 1 and self._held is not None:
                    held, self._held = self._held, None
                    held.restore()
                self.holds -= 1
                self._threads[me] -= 1
                if resume_after and status.state == PAUSED and not self.holds:
                    status.change(RUNNING)
                status.cond.notify_all()
            status.dispatch()


__all__ = ["Hold"]
