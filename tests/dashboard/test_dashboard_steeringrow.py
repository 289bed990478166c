"""The dashboard's learning-rate field on a real Run: Apply in every state but a failed
run's, the value pending until the optimizer has it at the next batch, then shown where
it landed, a bad entry explained, the change marked on the plot and printed by the text
status."""

from __future__ import annotations

import html
import io
import re
import threading
from collections import deque
from dataclasses import replace

import keras
import numpy as np
import pytest
from dashboard_helpers import FakeRun
from helpers import make_data, make_model

from nbtrain.dashboard.callback import Dashboard
from nbtrain.dashboard.plot import MARK_COLOR, PlotRenderer
from nbtrain.dashboard.steeringrow import lr_text, parse_rate
from nbtrain.dashboard.textstatus import TextStatus
from nbtrain.dashboard.tracker import MetricTracker
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


def note(steering) -> tuple[str, str]:
    """The note's kind (pending, applied, error) and its text."""
    kinds = [c[len("nbtrain-lr-"):] for c in steering.note._dom_classes
             if c != "nbtrain-lr-note"]
    text = re.sub(r"<[^>]+>", "", steering.note.value)
    return (kinds[0] if kinds else ""), html.unescape(text)


def test_apply_while_paused_is_pending_until_resume_then_shown_where_it_landed(cell):
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
        assert steering.value.value == "0.1"
        assert shown(steering.box) and shown(steering.apply)  # created: a rate may be set
        run.start()
        assert paused.wait(TIMEOUT)
        steering.value.value = "0.004"
        steering.apply.click()  # the kernel runs click handlers on the main thread
        assert note(steering) == ("pending", "pending: from the next batch")
        assert steering.pending == 0.004
        run.resume()
        run.wait(TIMEOUT)
        assert hold.lrs == [0.1] * 4 + [0.004] * 4
        assert "learning rate <b>0.004</b>" in steering.current.value
        assert note(steering) == ("applied", "applied from epoch 1, batch 5")
        assert steering.pending is None
        assert dashboard.tracker.marks == (0.5,)  # batch 4 of 8
        # finished: the rate can still be set; it applies when training goes on
        assert shown(steering.box) and shown(steering.apply)
        steering.value.value = "3e-4"
        steering.apply.click()
        assert note(steering) == ("pending", "pending: from the next batch, when training goes on")
        assert run.hyperparameter_changes[-1].new == 0.004  # not yet
        run.resume(epochs=2)
        run.wait(TIMEOUT)
        assert hold.lrs[8:] == [0.0003] * 8
        assert note(steering) == ("applied", "applied from epoch 2, batch 1")
        assert f"learning rate <b>{lr_text(3e-4)}</b>" in steering.current.value
    finally:
        if run.state in ("running", "paused", "pausing"):
            run.stop()
            run.wait(TIMEOUT)
        dashboard.close()
        run.close()


def test_a_bad_entry_is_explained_kept_and_cleared_by_the_next_success(cell):
    x, y = make_data(64)
    run = Run(make_model(optimizer="adam"), x, y, batch_size=8, epochs=1, workers=0)
    dashboard = Dashboard.for_run(run)
    try:
        steering = dashboard.steering
        assert "learning rate <b>0.001</b>" in steering.current.value
        assert steering.value.value == "0.001"  # Adam's float32 default, as a person writes it
        steering.value.value = "abc"
        steering.apply.click()
        assert note(steering) == ("error", "“abc” is not a number: write it as 0.001 or 3e-4")
        assert steering.value.value == "abc"  # not silently reverted
        assert run.hyperparameter_changes == [] and steering.pending is None
        steering.value.value = "1e-"  # typing on: no new error while it is not a number yet
        assert note(steering)[0] == "error"
        steering.value.value = "1e-3"  # a number again: the error goes
        assert note(steering) == ("", "")
        steering.value.value = "-1"
        steering.apply.click()
        kind, text = note(steering)
        assert kind == "error" and "learning_rate" in text and ">= 0" in text, text
        assert steering.pending is None and dashboard.messages == deque()
        steering.value.value = "0.01"
        steering.apply.click()  # the next success clears the error
        assert note(steering) == ("pending", "pending: from the next batch, when training starts")
        assert steering.pending == 0.01
    finally:
        dashboard.close()
        run.close()


def test_the_field_shows_while_the_run_can_train_again_a_failed_one_has_none(cell):
    run = FakeRun(epochs=2)
    run.learning_rate = 0.001
    run.set_learning_rate = lambda value: None
    run.add_steering_listener = lambda fn: (lambda: None)
    dashboard = Dashboard.for_run(run)
    try:
        steering = dashboard.steering
        for state in ("running", "paused", "stopping", "stopped", "finished"):
            run.set(state)
            assert shown(steering.box) and shown(steering.apply), state
        run.set("failed")
        assert not shown(steering.box)  # nothing can train again
        run.ACTIONS = {**FakeRun.ACTIONS, "failed": {"resume"}}  # one that resumes once fixed
        run.set("failed")
        assert not shown(steering.box)  # its one action is Resume
        run.set("running")
        assert shown(steering.box)
        run.set("finished")
        run.ACTIONS = {}  # a closed run allows nothing: it will not train again
        run.set("finished")
        assert not shown(steering.box)
    finally:
        dashboard.close()


def test_the_learning_rate_reads_as_written():
    assert [lr_text(v) for v in (np.float32(0.001), 0.1, None)] == ["0.001", "0.1", "—"]
    assert parse_rate(" 3e-4 ") == 3e-4
    with pytest.raises(ValueError, match="not a number"):
        parse_rate("0,001")


def shown(widget) -> bool:
    return widget.layout.display != "none"


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
    from nbtrain.dashboard.callback import Dashboard as DashboardType

    x, y = make_data(64)
    earlier = nbtrain.fit(make_model(), x, y, batch_size=8, epochs=2, validation_data=(x, y),
                          display=False)
    earlier.wait(TIMEOUT)
    with pytest.raises(TypeError, match="Run or a keras.callbacks.History"):
        nbtrain.fit(make_model(), x, y, batch_size=8, compare_with="run_a", display=False)
    run = nbtrain.fit(make_model(optimizer=keras.optimizers.SGD(0.001)), x, y, batch_size=8,
                      epochs=2, validation_data=(x, y), display=True, compare_with=earlier)
    try:
        run.wait(TIMEOUT)
        (dashboard,) = [cb for cb in run.callbacks if isinstance(cb, DashboardType)]
        (train_x, train_y), (val_x, val_y) = dashboard.tracker.overlay["loss"]
        assert list(train_x) == [1.0, 2.0] == list(val_x)  # epoch averages at its end
        assert list(train_y) == earlier.history.history["loss"]
        assert list(val_y) == earlier.history.history["val_loss"]
        (panel,) = [p for p in dashboard.tracker.panels() if p.name == "loss"]
        assert panel.overlay is dashboard.tracker.overlay["loss"]
        renderer = PlotRenderer()  # the dashboard drops its renderer at the end: draw again
        renderer.render(dashboard.tracker.panels(), (0.0, 2.0))
        ax = renderer.figure.axes[0]
        drawn = {tuple(line.get_ydata()): line for line in ax.get_lines()}
        for values in (train_y, val_y):  # the earlier run's curves, drawn faintly
            line = drawn[tuple(values)]
            assert line.get_alpha() is not None and line.get_alpha() < 0.5
        low, high = ax.get_ylim()
        assert low <= min(train_y.min(), val_y.min()) and high >= max(train_y.max(), val_y.max())
    finally:
        run.close()
        earlier.close()
        for cb in run.callbacks:
            if isinstance(cb, DashboardType):
                cb.close()
