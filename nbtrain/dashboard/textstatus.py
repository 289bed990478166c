"""`TextStatus`: the plain-text display of a Run, where there is no dashboard.

A line per change of state and per epoch, e.g.
`nbtrain: paused at epoch 2/5, batch 13/100`; chosen by
`nbtrain.dashboard.display.attach_display` outside a notebook.  No widgets.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, TextIO

import keras

from nbtrain.run.state import CREATED, FAILED, FINISHED
from nbtrain.text import (
    batch_fraction,
    epoch_fraction,
    format_learning_rate,
    format_logs,
    format_number,
)


class TextStatus(keras.callbacks.Callback):
    """A plain-text display of a Run: a line per change of state and per epoch.

    Used when there is no dashboard (outside a notebook, or before
    `nbtrain.dashboard` exists).  Lines are written by whichever thread made
    the change; a lock keeps them whole.

    Args:
        run: the run to describe (not yet started).
        stream: where to write (default `sys.stdout`, looked up at each write).
        epoch_lines: also write a line per epoch (False when Keras's own
            progress display shows the epochs).
        hint: announce the first start too, with this text after the state
            (e.g. what Ctrl-C does where the caller waits in `run.wait()`);
            None: the first start is not announced.

    Example:

    ```python
    run = nbtrain.Run(model, sequence, epochs=3)
    TextStatus.for_run(run)
    run.start()
    ```
    """

    def __init__(self, run: Any, stream: TextIO | None = None, epoch_lines: bool = True,
                 hint: str | None = None):
        super().__init__()
        self.run = run
        self._stream = stream
        self.epoch_lines = epoch_lines
        self.hint = hint
        self._lock = threading.Lock()

    @classmethod
    def for_run(cls, run: Any, stream: TextIO | None = None,
                epoch_lines: bool = True, hint: str | None = None) -> TextStatus:
        """Make a TextStatus and attach it to `run` (a listener and a callback).

        Args:
            run: the run, not yet started.
            stream: where to write (default `sys.stdout`).
            epoch_lines: also write a line per epoch.
            hint: announce the first start, followed by this text.
        """
        status = cls(run, stream, epoch_lines, hint)
        run.add_listener(status.on_state)
        if hasattr(run, "add_steering_listener"):
            run.add_steering_listener(status.on_steered)
        run.add_callback(status)
        return status

    def _write(self, line: str) -> None:
        with self._lock:
            stream = self._stream or sys.stdout
            stream.write(line + "\n")
            stream.flush()

    def describe(self) -> str:
        """The run's state and position in words, e.g. `paused at epoch 2/5, batch 13/100`."""
        run = self.run
        text = f"nbtrain: {run.state} at epoch {epoch_fraction(run.epoch, run.epochs)}"
        if run.state not in (FINISHED, CREATED):
            text += f", batch {batch_fraction(run.batch, run.steps)}"
        if run.state == FAILED and getattr(run, "failure", None) is not None:
            return f"nbtrain: failed - {run.failure.line()}"  # what, where, what next
        if run.state == FAILED and run.exception is not None:
            text += f": {type(run.exception).__name__}: {run.exception}"
        return text

    def on_state(self, run: Any, old: str, new: str) -> None:
        """Listener: one line per change of state (the first start only with a `hint`,
        e.g. `nbtrain: running at epoch 1/3, batch 0/128 - Ctrl-C stops it`)."""
        if old == CREATED:
            if self.hint:
                self._write(f"{self.describe()} - {self.hint}")
            return
        # Beside Keras's progress bar, whose line is open while an epoch runs: a line of its
        # own (the bar ends its line at an epoch's end, so a finish needs none).
        own_line = not self.epoch_lines and new != FINISHED
        self._write(("\n" if own_line else "") + self.describe())

    def on_steered(self, run: Any, change: Any) -> None:
        """Steering listener: a line per hyperparameter change, e.g.
        `nbtrain: learning_rate 0.1 -> 0.01 from epoch 2/5, batch 5/100`."""
        shown = format_learning_rate if change.name == "learning_rate" else format_number
        self._write(f"nbtrain: {change.name} {shown(change.old)} -> {shown(change.new)} from epoch "
                    f"{epoch_fraction(change.epoch, run.epochs)}, batch "
                    f"{batch_fraction(change.batch + 1, change.steps)}")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if not self.epoch_lines:
            return
        line = f"Epoch {epoch + 1}/{self.run.epochs}"
        steps, batch = self.run.steps, self.run.batch
        if steps and batch < steps:  # a callback's stop mid-epoch (a user's stop is no epoch end)
            line += f" (interrupted after {batch}/{steps} batches)"
        metrics = format_logs(logs)
        self._write(line + (f" - {metrics}" if metrics else ""))


__all__ = ["TextStatus"]
