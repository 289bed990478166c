"""`CellControls`: Pause/Resume and Stop for training on the cell's own thread.

A blocking fit (`nbtrain.fit_generator(verbose=1)`, `model.fit_generator` under
`%nbtrain legacy`, `model.fit(callbacks=[nbtrain.Dashboard()])`) trains on
the kernel's main thread, so there is no `Run` to steer and no free thread to
run the buttons' click handlers.  The dashboard's batch hook calls
`on_batch()`, which handles pending widget messages (at most every
`nbtrain.kernel_events.POLL_INTERVAL` s: a clock read per batch otherwise)
and then acts on them:

- Pause holds the loop in that batch hook, between two batches, handling
  widget messages until Resume or Stop; the state is `pausing` until it
  holds, then `paused`.
- Stop sets `model.stop_training` (Keras's and nbtrain's loops end after the
  current batch); the training call returns its History and the cell goes on.

`CellControls` is the dashboard's `Controls` (`nbtrain.dashboard.buttons`), as
a Run is: the same buttons, the same states (`nbtrain.run.state.State`, held
in a `RunStatus`) and the same table (`CONTROLS`), for a training of one pass:
only the actions that act during a pass (`allowed_actions(new_pass=False)`).
There is nothing to continue once the call has returned, so no Continue here;
then (`release`) the controls' pass has ended, `stopped`, and nothing acts.
Outside a kernel whose events can be driven (`nbtrain.kernel_events.current()`
is None) there are no controls; in a notebook kernel (ipykernel 6) the
dashboard says instead how to stop: interrupt the kernel (`STOP_HINT`).
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from nbtrain import kernel_events as kernel_events
from nbtrain.dashboard import notebook
from nbtrain.dashboard.buttons import ControlButtons
from nbtrain.run.events import RunStatus
from nbtrain.run.state import ENDED, PAUSED, PAUSING, RUNNING, STOPPED, State, allowed_actions

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
        self.status = RunStatus(self)
        with self.status.lock:
            self.status.change(RUNNING)  # the call trains from the start (shown already)
        self.status.dispatch()
        self.buttons = ControlButtons(dashboard.view, self, self._failed)
        self.buttons.bind()
        self._remove_listener = self.status.add_listener(self._on_state)
        self._show()

    @classmethod
    def attach(cls, dashboard: Any) -> CellControls | None:
        """Controls for `dashboard` if the calling thread can handle widget messages, else None."""
        events = kernel_events.current()
        if events is None:
            _say_how_to_stop(dashboard)
            return None
        return cls(dashboard, events)

    # -- the `Controls` of the dashboard's buttons (called from `events.pump`) -------------

    @property
    def state(self) -> State:
        """`'running'`, `'pausing'`, `'paused'`, `'stopping'`; `'stopped'` once released."""
        return self.status.state

    def allowed_actions(self) -> set[str]:
        """The actions that act now: those of a pass in progress (the call has one)."""
        return set(allowed_actions(self.status.state, new_pass=False))

    def add_listener(self, fn: Callable[[Any, str, str], Any]) -> Callable[[], None]:
        """Call `fn(controls, old_state, new_state)` on every change of state."""
        return self.status.add_listener(fn)

    def pause(self) -> bool:
        """Hold in the next batch hook (`on_batch`), handling clicks until Resume or Stop."""
        return self._act("pause")

    def resume(self, epochs: int | None = None) -> bool:
        """Go on from the hold (`epochs`: none to change, the call trains to its own end)."""
        return self._act("resume")

    def stop(self) -> bool:
        """End the training call after the current batch (`model.stop_training`)."""
        if not self._act("stop"):
            return False
        model = self.dashboard.model
        if model is not None:
            model.stop_training = True
        return True

    def _act(self, action: str) -> bool:
        status = self.status
        with status.lock:
            acted = status.act(action)
        status.dispatch()
        return acted

    def _on_state(self, _controls: Any, _old: str, new: str) -> None:
        if new not in ENDED:  # once released, the dashboard shows how the training ended
            self.dashboard.set_state(new)
        self._show()

    def _show(self) -> None:
        # Clicks and training share the cell's thread: nothing else changes these widgets.
        self.dashboard.view.set_controls(self.allowed_actions(), self.status.state)

    def _failed(self, exc: Exception) -> None:
        self.dashboard.message(f"{type(exc).__name__}: {exc}")

    # -- the batch hook -----------------------------------------------------------------

    def on_batch(self) -> None:
        """Handle the buttons' clicks; hold here while paused (cell's thread)."""
        self.events.poll()
        status = self.status
        if status.state != PAUSING:  # clicks and training share this thread: no race
            return
        with status.lock:
            status.change(PAUSED)  # the loop holds here, between two batches
        status.dispatch()
        while status.state == PAUSED:
            self.events.pump(kernel_events.SLICE * 5)

    def release(self) -> None:
        """Training ended: detach the click handlers and show no controls."""
        self.buttons.unbind()
        self._remove_listener()
        with self.status.lock:
            self.status.change(STOPPED)  # the pass is over; a blocking fit has no next one
        self.status.dispatch()
        self._show()
