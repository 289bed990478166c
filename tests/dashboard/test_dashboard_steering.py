"""The dashboard's learning-rate field on a real Run: Apply enabled while running or
paused, the value reaching the optimizer at the next batch, the change shown, marked
on the plot and printed by the text status."""

from __future__ import annotations

import io
import threading
from dataclasses import replace

import keras
import numpy as np
import pytest
from helpers import make_data, make_model

from nbtrain.dashboard.plot import MARK_COLOR, PlotRenderer
from nbtrain.dashboard.text import TextStatus
from nbtrain.dashboard.tracker import MetricTracker
from nbtrain.dashboard.widget import Dashboard
from nbtrain.run import Run

TIMEOUT = 60


class HoldAt(keras.callbacks.Callback):
    """Pauses its run at batch 3 of epoch 0 and records the learning rate per batch."""

    def __init__(self):
        super().__init__()
        self.run = None
        self.lrs = []

    def on_train_batch_begin(self, batch, logs=None):
        self.lrs.append(round(float(keras.ops.convert_to_numpy(
            self.model.optimizer.learning_rate)), 6))

    def on_train_batch_end(self, batch, logs=None):
        if batch == 3 and len(self.lrs) == 4:
            self.run.pause()


def test_apply_sets_the_learning_rate_while_paused_and_the_change_is_shown(cell):
    x, y = make_data(64)
    hold = HoldAt()
    run = Run(make_model(optimizer=keras.optimizers.SGD(0.1)), x, y, batch_size=8, epochs=1,
              callbacks=[hold], workers=0)
    hold.run = run
    paused = threading.Event()
    run.add_listener(lambda run, old, new: new == "paused" and paused.set())
    dashboard = Dashboard.for_run(run)
    try:
        steering = dashboard.steering
        rows = dashboard.view.root.children
        assert rows[rows.index(dashboard.view.controls) + 1] is steering.box
        assert "learning rate <b>0.1</b>" in steering.current.value
        assert steering.apply.disabled  # created: nothing to apply to yet
        run.start()
        assert paused.wait(TIMEOUT)
        assert not steering.apply.disabled  # paused: Apply works
        steering.value.value = 0.004
        steering.apply.click()  # the kernel runs click handlers on the main thread
        run.resume()
        run.wait(TIMEOUT)
        assert hold.lrs == [0.1] * 4 + [0.004] * 4
        assert "learning rate <b>0.004</b>" in steering.current.value
        assert "from epoch 1, batch 5" in steering.current.value
        assert dashboard.tracker.marks == (0.5,)  # batch 4 of 8
        assert steering.apply.disabled  # finished
    finally:
        if run.state in ("running", "paused", "pausing"):
            run.stop()
            run.wait(TIMEOUT)
        dashboard.close()
        run.close()


def test_a_bad_value_in_the_field_is_a_message_not_an_error(cell):
    x, y = make_data(64)
    run = Run(make_model(), x, y, batch_size=8, epochs=1, workers=0)
    dashboard = Dashboard.for_run(run)
    try:
        dashboard.steering.value.value = -1.0
        dashboard.steering.apply.click()
        assert any("learning_rate" in text and ">= 0" in text for _, text in dashboard.messages)
        assert run.hyperparameter_changes == []
    finally:
        dashboard.close()
        run.close()


def test_the_plot_marks_where_a_hyperparameter_changed():
    tracker = MetricTracker()
    tracker.begin_epoch(0, steps=10)
    for batch in range(10):
        tracker.batch_end(batch, {"loss": 1.0 / (batch + 1)})
    tracker.mark(0.4)
    (panel,) = tracker.panels()
    assert panel.marks == (0.4,)
    renderer = PlotRenderer()
    plain = PlotRenderer().render([replace(panel, marks=())], (0.0, 1.0))
    marked = renderer.render([panel], (0.0, 1.0))
    assert marked != plain
    ax = renderer.figure.axes[0]
    lines = [line for line in ax.get_lines() if line.get_color() == MARK_COLOR]
    assert [tuple(line.get_xdata()) for line in lines] == [(0.4, 0.4)]


def test_the_text_status_prints_a_line_per_change():
    x, y = make_data(64)
    hold = HoldAt()
    hold.on_train_batch_end = lambda batch, logs=None: (
        batch == 1 and not run.hyperparameter_changes and run.set_learning_rate(0.02))
    run = Run(make_model(), x, y, batch_size=8, epochs=2, callbacks=[hold], workers=0)
    out = io.StringIO()
    TextStatus.for_run(run, stream=out, epoch_lines=True)
    run.start()
    run.wait(TIMEOUT)
    run.close()
    lines = out.getvalue().splitlines()
    assert "nbtrain: learning_rate 0.01 -> 0.02 from epoch 1/2, batch 3/8" in lines
    assert lines.index("nbtrain: learning_rate 0.01 -> 0.02 from epoch 1/2, batch 3/8") == 0
    assert "learning_rate: 0.0200" in lines[1]  # the epoch line shows the logged value
    assert np.isclose(run.history.history["learning_rate"], [0.02, 0.02]).all()


def test_fit_compare_with_draws_the_earlier_run_faintly_behind_the_live_plot(cell):
    import nbtrain
    from nbtrain.dashboard.widget import Dashboard as DashboardType

    x, y = make_data(64)
    earlier = nbtrain.fit(make_model(), x, y, batch_size=8, epochs=2, validation_data=(x, y),
                          display=False)
    earlier.wait(TIMEOUT)
    with pytest.raises(TypeError, match="Runs or keras.callbacks.History"):
        nbtrain.fit(make_model(), x, y, batch_size=8, compare_with="run_a", display=False)
    run = nbtrain.fit(make_model(optimizer=keras.optimizers.SGD(0.001)), x, y, batch_size=8,
                      epochs=2, validation_data=(x, y), display=True, compare_with=earlier)
    try:
        run.wait(TIMEOUT)
        (dashboard,) = [cb for cb in run.callbacks if isinstance(cb, DashboardType)]
        (train_x, train_y), (val_x, val_y) = dashboard.tracker.overlay["loss"]
        assert list(train_x) == [0.5, 1.5] and list(val_x) == [1.0, 2.0]
        assert list(train_y) == earlier.history.history["loss"]
        assert list(val_y) == earlier.history.history["val_loss"]
        (panel,) = [p for p in dashboard.tracker.panels() if p.name == "loss"]
        assert panel.overlay is dashboard.tracker.overlay["loss"]
        renderer = PlotRenderer()  # the dashboard drops its renderer at the end: draw again
        renderer.render(dashboard.tracker.panels(), (0.0, 2.0))
        ax = renderer.figure.axes[0]
        faint = [line for line in ax.get_lines() if line.get_alpha() == 0.3]
        assert [list(line.get_ydata()) for line in faint] == [list(train_y), list(val_y)]
        low, high = ax.get_ylim()
        assert low <= min(train_y.min(), val_y.min()) and high >= max(train_y.max(), val_y.max())
    finally:
        run.close()
        earlier.close()
        for cb in run.callbacks:
            if isinstance(cb, DashboardType):
                cb.close()
