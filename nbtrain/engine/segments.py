"""`TrainingSegments`: one training for the callbacks, across the passes of a `FitLoop`.

`on_train_begin` runs when a training begins (the first pass, or the first
after an end: a new *segment*, begun with `callbacks.begin_segment` so that
nothing written is truncated); an interruption (`Interrupt` from the gate)
suspends the training without ending it; the next pass carries on with it;
`end()` runs `on_train_end` once.  Beside Keras's hooks, a callback may define
`on_train_failed(exception)` (a pass failed: no `on_train_end` follows) and
`on_train_resume()` (an interrupted or failed training goes on).  See
docs/architecture.md, "One training across passes, and segments".
"""

from __future__ import annotations

import warnings
from typing import Any

from nbtrain.engine.callbacks import begin_segment, carry_on, suspend


class TrainingSegments:
    """The open-or-ended state of a loop's training, as its callbacks see it.

    Args:
        callbacks: the loop's `LoopCallbacks`.

    Attributes:
        open: True from `on_train_begin` to `on_train_end`.
        logs: the last epoch's logs (what `on_train_end` gets).
    """

    def __init__(self, callbacks: Any):
        self.callbacks = callbacks
        self.open = False
        self.logs: dict = {}
        self._suspended = False  # an interruption left the training open
        self._begun: set[int] = set()  # ids of the callbacks the open training began
        self._count = 0  # trainings begun

    def start(self) -> bool:
        """At the start of a pass: begin a training, or carry on with the open one.

        Returns:
            True if a training (or segment) was begun now.
        """
        if self.open:
            self.carry_on()
            return False
        if self._count:
            begin_segment(self.callbacks)
        else:
            self.callbacks.on_train_begin()
        self._count += 1
        self.open = True
        self._begun = {id(cb) for cb in self.callbacks.callbacks}
        return True

    def carry_on(self) -> None:
        """The open training goes on (on this thread): callbacks added since it
        began (`Run.add_callback` while stopped) get their `on_train_begin` now."""
        callbacks = self.callbacks.callbacks
        late = [cb for cb in callbacks if id(cb) not in self._begun]
        if self._suspended:
            suspended = [cb for cb in callbacks if id(cb) in self._begun]
            carry_on(suspended)
            self._suspended = False
            for callback in suspended:
                if hasattr(callback, "on_train_resume"):
                    callback.on_train_resume()
        for callback in late:
            callback.on_train_begin()
            self._begun.add(id(callback))

    def interrupt(self) -> None:
        """The pass was interrupted: the training stays open (writers flushed)."""
        suspend(self.callbacks)
        self._suspended = True

    def fail(self, exception: BaseException) -> None:
        """The pass failed: callbacks that define `on_train_failed(exception)` are told
        (no `on_train_end` follows; a resumable failure leaves the training open, and
        the pass that resumes it calls `on_train_resume()` of those that define it)."""
        for callback in self.callbacks.callbacks:
            hook = getattr(callback, "on_train_failed", None)
            try:
                if hook is not None:
                    hook(exception)
            except Exception as exc:  # the training's own error is what the caller gets
                warnings.warn(f"{type(callback).__name__}.on_train_failed raised {exc!r}",
                              stacklevel=2)

    def end(self, logs: dict | None = None) -> None:
        """`on_train_end` (with `logs`, default the last epoch's) if a training is open."""
        if not self.open:
            return
        self.carry_on()
        self.open = False
        self.callbacks.on_train_end(self.logs if logs is None else logs)


__all__ = ["TrainingSegments"]
