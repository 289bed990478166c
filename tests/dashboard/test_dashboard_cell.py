"""`CellControls`: Pause/Resume and Stop of a dashboard whose training runs on
the cell's own thread, with the kernel's widget messages stood in for by a
scripted pump (the real one is tested in tests/testkernel_events.py and the
browser tests).  No kernel, no browser."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from nbtrain import kernel_events
from nbtrain.dashboard.callback import Dashboard
from nbtrain.dashboard.throttle import Throttle


class ScriptedEvents:
    """Stands in for `KernelEvents`: each `poll()`/`pump()` runs the next action
    of `script` (a click), or nothing once the script is done."""

    def __init__(self, script=()):
        self.script = list(script)
        self.calls = []

    def _next(self, kind):
        self.calls.append(kind)
        if self.script:
            action = self.script.pop(0)
            if action is not None:
                action()

    def poll(self):
        self._next("poll")

    def pump(self, timeout=0.0):
        self._next("pump")
        return 0


@pytest.fixture
def events(monkeypatch):
    scripted = ScriptedEvents()
    monkeypatch.setattr(kernel_events, "current", lambda: scripted)
    return scripted


@pytest.fixture
def dashboard(clock, cell):
    made = Dashboard(throttle=Throttle(clock=clock), auto_display=False, plot=False)
    made.display()
    yield made
    made.close()


def batches(dashboard, count, start=0):
    for batch in range(start, start + count):
        dashboard.on_train_batch_end(batch, {"loss": 1.0 / (batch + 1)})


def test_a_displayed_dashboard_on_the_cells_thread_shows_pause_and_stop(dashboard, events):
    dashboard.set_params({"epochs": 2, "steps": 10})
    dashboard.on_train_begin()
    view = dashboard.view
    assert view.controls.layout.display is None
    assert not view.pause.disabled and view.pause.description == "Pause"
    assert not view.stop.disabled
    assert view.continue_.layout.display == "none"  # nothing to continue once the call returns


def test_pause_holds_in_the_batch_hook_until_resume(dashboard, events):
    view = dashboard.view
    seen = []

    def look():
        seen.append((dashboard.state, view.pause.description, view.batch_counter.value))

    # Batch 0: no click; batch 1: Pause.  Then, held: a look, and Resume.
    events.script = [None, view.pause.click, look, view.pause.click]
    dashboard.set_params({"epochs": 1, "steps": 10})
    dashboard.on_train_begin()
    dashboard.on_epoch_begin(0)
    batches(dashboard, 2)
    assert events.calls == ["poll", "poll", "pump", "pump"]
    state, button, counter = seen[0]
    assert (state, button) == ("paused", "Resume")
    assert "batch 2/10" in counter  # shown where the loop holds
    assert dashboard.state == "running" and view.pause.description == "Pause"


def test_stop_ends_a_plain_model_fit_early_with_its_history(dashboard, events):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.zeros((64, 4), "float32")
    y = np.zeros((64,), "float32")
    events.script = [None, None, lambda: dashboard.view.stop.click()]
    history = model.fit(x, y, batch_size=8, epochs=5, verbose=0, callbacks=[dashboard])
    assert len(history.epoch) == 1  # stopped in the first epoch's third batch
    assert dashboard.state == "stopped"
    assert dashboard.view.pause.disabled and dashboard.view.stop.disabled
    # the call returned: nothing can act, so no controls at all (hidden, not greyed)
    assert dashboard.view.controls.layout.display == "none"
    assert events.calls == ["poll"] * 3


def test_stop_while_paused_releases_the_hold(dashboard, events):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    dashboard.set_model(model)
    view = dashboard.view
    events.script = [view.pause.click, view.stop.click]
    dashboard.set_params({"epochs": 1, "steps": 10})
    dashboard.on_train_begin()
    batches(dashboard, 1)
    assert model.stop_training is True
    assert dashboard.state == "stopping"
    view = dashboard.view  # stopping: no button can act; the row keeps its room
    assert [view.pause.layout.display, view.stop.layout.display] == ["none", "none"]
    assert view.controls.layout.display is None and view.controls.layout.min_height
    dashboard.on_train_end()
    assert dashboard.state == "stopped"


def test_without_a_kernel_the_dashboard_has_no_controls(dashboard, monkeypatch):
    monkeypatch.setattr(kernel_events, "current", lambda: None)
    dashboard.set_params({"epochs": 1, "steps": 10})
    dashboard.on_train_begin()
    batches(dashboard, 3)
    dashboard.on_train_end()
    assert dashboard.view.controls.layout.display == "none"
    assert dashboard.state == "finished"
