"""`CellControls`: Pause/Resume and Stop for training on the cell's own thread.

A blocking fit (`nbtrain.fit_generator(verbose=1)`, `model.fit_generator` under
`%nbtrain legacy`, `model.fit(callbacks=[nbtrain.Dashboard()])`) trains on
the kernel's main thread, so there is no `Run` to steer and no free thread to
run the buttons' click handlers.  The dashboard's batch hook calls
`on_batch()`, which handles pending widget messages (at most every
`nbtrain.kernel_events.POLL_INTERVAL` s: a clock read per batch otherwise)
and then acts on them:

- Pause holds the loop in that batch hook, between two batches, handling
  widget messages until Resume or Stop; the state is `paused` only once it
  holds.
- Stop sets `model.stop_training` (Keras's and nbtrain's loops end after the
  current batch); the training call returns its History and the cell goes on.

There is nothing to continue once the call has returned, so no Continue here.
Outside a kernel whose events can be driven (`nbtrain.kernel_events.current()`
is None) there are no controls; in a notebook kernel (ipykernel 6) the
dashboard says instead how to stop: interrupt the kernel (`STOP_HINT`).
"""

from __future__ import annotations

import threading
from typing import Any

from nbtrain import kernel_events as kernel_events
from nbtrain.dashboard import notebook
from nbtrain.dashboard.layout import set_traits

_ALLOWED = {
    "running": frozenset({"pause", "stop"}),
    "paused": frozenset({"resume", "stop"}),
}


STOP_HINT = ("This kernel cannot take clicks while the cell trains (ipykernel 6): to stop, "
             "interrupt the kernel (■). Training ends after the current batch; the model "
             "keeps its weights and the dashboard the epochs trained.")
"""What a dashboard on the cell's own thread says where its buttons cannot answer."""


def _say_how_to_stop(dashboard: Any) -> None:
    """No buttons that cannot answer: in a kernel whose busy cell cannot take clicks
    (ipykernel 6), the widget dashboard says how to stop (the HTML one always does)."""
    if (threading.current_thread() is threading.main_thread() and notebook.in_notebook()
            and not dashboard.presenter.listeners):
        dashboard.message(STOP_HINT)


class CellControls:
    """The controls of a dashboard whose training runs on the cell's thread.

    Args:
        dashboard: the `Dashboard` (displayed, not bound to a `Run`).
        events: the kernel's widget-message pump (`nbtrain.kernel_events.current()`).
    """

    def __init__(self, dashboard: Any, events: kernel_events.KernelEvents):
        self.dashboard = dashboard
        self.events = events
        self.state = "running"
        self._pause_asked = False
        view = dashboard.view
        view.pause.on_click(self._on_pause_click)
        view.stop.on_click(self._on_stop_click)
        set_traits(view.controls.layout, display=None)
        self._show()

    @classmethod
    def attach(cls, dashboard: Any) -> CellControls | None:
        """Controls for `dashboard` if the calling thread can handle widget messages, else None."""
        events = kernel_events.current()
        if events is None:
            _say_how_to_stop(dashboard)
            return None
        return cls(dashboard, events)

    def _show(self) -> None:
        # Clicks and training share the cell's thread: nothing else changes these widgets.
        self.dashboard.view.set_controls(_ALLOWED.get(self.state, frozenset()), self.state)

    def _set(self, state: str) -> None:
        self.state = state
        self.dashboard.set_state(state)
        self._show()

    # -- click handlers (called from `events.pump`, on the cell's thread) -------------------

    def _on_pause_click(self, _button: Any) -> None:
        if self.state == "running":
            self._pause_asked = True  # `on_batch` holds as soon as the handler returns
        elif self.state == "paused":
            self._set("running")

    def _on_stop_click(self, _button: Any) -> None:
        if self.state in ("running", "paused"):
            self._pause_asked = False
            model = self.dashboard.model
            if model is not None:
                model.stop_training = True
            self._set("stopping")

    # -- the batch hook -----------------------------------------------------------------

    def on_batch(self) -> None:
        """Handle the buttons' clicks; hold here while paused (cell's thread)."""
        self.events.poll()
        if not self._pause_asked:
            return
        self._pause_asked = False
        self._set("paused")
        while self.state == "paused":
            self.events.pump(kernel_events.SLICE * 5)

    def release(self) -> None:
        """Training ended: detach the click handlers and disable the buttons."""
        view = self.dashboard.view
        view.pause.on_click(self._on_pause_click, remove=True)
        view.stop.on_click(self._on_stop_click, remove=True)
        self.state = "ended"
        self._show()
