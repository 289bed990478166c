"""What the screenshots showed (issue 12, part 5): the badge stays in the header
when a run ends, no empty plot before a first point, no stale rate once a run
is paused or ended, one control to train a stopped or finished run on, a
failure's traceback from the user's own frames with one line on what to do.

Also part 4 as the kernel sees it: the live view keeps every part shown in
every state (a reloaded page has only the view) and carries the style that
hides its static snapshot where it renders."""

from __future__ import annotations

import concurrent.futures
import io
import re
import threading

import numpy as np
import pytest
from dashboard_helpers import FakeRun
from PIL import Image

from nbtrain.dashboard import failure
from nbtrain.dashboard import format as fmt
from nbtrain.dashboard.callback import Dashboard
from nbtrain.dashboard.layout import MESSAGE_LINE, PLOT_HEIGHT, PLOT_WIDTH, expected_panels
from nbtrain.dashboard.throttle import Throttle


@pytest.fixture
def bound(clock, cell):
    """A displayed dashboard bound to a FakeRun of 3 epochs (run, dashboard)."""
    run = FakeRun(epochs=3)
    dashboard = Dashboard(throttle=Throttle(clock=clock), auto_display=False)
    run.add_callback(dashboard)
    dashboard.bind(run)
    dashboard.display()
    yield run, dashboard
    dashboard.close()


def start(run, dashboard) -> None:
    """The bound run starts training: 3 epochs of 50 steps, epoch 0 begun."""
    run.set("running")
    dashboard.set_params({"epochs": 3, "steps": 50})
    dashboard.on_train_begin()
    dashboard.on_epoch_begin(0)


def batches(dashboard, clock, count, start=0, dt=0.1):
    for batch in range(start, start + count):
        clock.advance(dt)
        dashboard.on_train_batch_end(batch, {"loss": 1.0 / (batch + 1), "acc": 0.5})


def shown(widget) -> bool:
    return widget.layout.display != "none"


@pytest.mark.parametrize("end", ["stopped", "finished", "failed"])
def test_every_part_stays_where_it_was_when_the_run_ends(bound, clock, cell, end):
    run, dashboard = bound
    view = dashboard.view
    start(run, dashboard)
    batches(dashboard, clock, 30)
    order = list(view.root.children)
    run.set(end)
    assert list(view.root.children) == order and order.index(view.header) == 1
    for part in (view.header, view.state, view.metrics, view.plot, view.messages):
        assert shown(part), part
    assert f"nbtrain-state-{end}" in view.state._dom_classes
    assert "<table" in view.metrics.value and view.plot.value == dashboard.png
    # the static copy is in the cell's outputs, marked for the view's style to hide
    table = cell.outputs()[1]["text/html"]
    assert fmt.snapshot_class(view.key) in table and end in table
    assert fmt.snapshot_class(view.key) in view.style.value and not shown(view.style)


def test_two_dashboards_hide_only_their_own_snapshots(clock):
    first, second = (Dashboard(throttle=Throttle(clock=clock), auto_display=False)
                     for _ in range(2))
    try:
        assert first.view.key != second.view.key
        assert fmt.snapshot_class(second.view.key) not in first.view.style.value
    finally:
        first.close()
        second.close()


def test_no_plot_before_a_first_visible_point(bound, clock):
    run, dashboard = bound
    view = dashboard.view
    start(run, dashboard)
    batches(dashboard, clock, 1, dt=5.0)  # one point: a line of one point draws nothing
    dashboard.presenter.update(force=True)
    assert view.plot.layout.visibility == "hidden" and shown(view.plot)  # its room kept
    assert not view.drawn and dashboard.png is None
    assert not dashboard.plot_controls.shown  # nothing to control yet
    batches(dashboard, clock, 20, start=1, dt=5.0)
    dashboard.presenter.update(force=True)
    assert view.plot.layout.visibility is None and view.plot.value == dashboard.png
    assert dashboard.plot_controls.shown
    # the room kept is the height of the first plot (one row of panels): nothing moves
    assert Image.open(io.BytesIO(dashboard.png)).size == (PLOT_WIDTH, PLOT_HEIGHT)


def test_the_room_kept_is_as_many_rows_as_the_model_will_have_panels(clock, cell):
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae", "mse", "mape"])
    assert expected_panels(model) == 5  # loss, 3 metrics, the learning rate: two rows
    run = FakeRun(epochs=3)
    run.model = model
    dashboard = Dashboard(throttle=Throttle(clock=clock), auto_display=False)
    try:
        run.add_callback(dashboard)
        dashboard.bind(run)
        dashboard.set_model(model)
        dashboard.display()
        blank = Image.open(io.BytesIO(dashboard.view.plot.value))  # the stand-in
        assert blank.size == (PLOT_WIDTH, 2 * PLOT_HEIGHT)
        start(run, dashboard)
        for batch in range(30):
            clock.advance(0.1)
            dashboard.on_train_batch_end(batch, {"loss": 1.0 / (batch + 1), "mae": 0.5,
                                                 "mse": 0.4, "mape": 30.0})
        dashboard.presenter.update(force=True)
        assert Image.open(io.BytesIO(dashboard.png)).size == (PLOT_WIDTH, 2 * PLOT_HEIGHT)
    finally:
        dashboard.close()
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    assert expected_panels(plain) is None  # not compiled: the default, one row
    inputs = keras.Input((4,))
    two = keras.Model(inputs, [keras.layers.Dense(1)(inputs), keras.layers.Dense(1)(inputs)])
    two.compile(optimizer="sgd", loss=["mse", "mse"])
    assert expected_panels(two) is None  # several outputs: a loss each, not told


def test_a_run_that_ends_before_its_first_plot_gives_up_the_plots_room(bound, clock):
    run, dashboard = bound
    start(run, dashboard)
    run.set("stopped")
    assert not shown(dashboard.view.plot) and not dashboard.plot_controls.shown
    run.resume()
    assert shown(dashboard.view.plot)  # training again: the room is back


def test_a_failed_run_shows_no_plot_controls(bound, clock):
    run, dashboard = bound
    start(run, dashboard)
    batches(dashboard, clock, 30, dt=0.1)
    dashboard.presenter.update(force=True)
    assert dashboard.plot_controls.shown
    run.exception = _catch(lambda: 1 / 0)
    run.set("failed")
    assert not dashboard.plot_controls.shown
    assert not shown(dashboard.view.controls)  # and no run controls: nothing can act


@pytest.mark.parametrize("state", ["paused", "stopping", "stopped", "finished", "failed"])
def test_the_bars_take_the_badges_colour(bound, clock, state):
    run, dashboard = bound
    view = dashboard.view
    start(run, dashboard)
    batches(dashboard, clock, 5)
    run.set(state)
    color = fmt.STATE_COLORS[state]
    assert color in view.state.value
    assert view.epoch_bar.style.bar_color == view.batch_bar.style.bar_color == color


@pytest.mark.parametrize("state", ["paused", "stopped", "finished"])
def test_no_stale_rate_once_paused_or_ended(bound, clock, state):
    run, dashboard = bound
    view = dashboard.view
    start(run, dashboard)
    batches(dashboard, clock, 30, dt=0.05)
    assert view.batch_counter.value.endswith(" steps/s")
    assert "ETA" in view.time.value
    run.set(state)
    assert view.batch_counter.value == "batch 30/50"
    assert "ETA" not in view.time.value
    if state in ("paused", "stopped"):
        run.resume()
        batches(dashboard, clock, 15, start=30, dt=0.05)
        assert view.batch_counter.value.endswith(" steps/s")


def test_one_control_trains_a_stopped_or_finished_run_on(bound):
    run, dashboard = bound
    view = dashboard.view
    run.set("running")
    run.set("paused")
    assert (view.pause.description, view.pause.disabled) == ("Resume", False)
    assert not shown(view.continue_)
    run.set("stopped")
    # the toggle only pauses: hidden; "Resume to epoch 3" is the one way on, at the next batch
    assert (view.pause.description, view.pause.disabled) == ("Pause", True)
    assert not shown(view.pause) and not shown(view.stop) and shown(view.continue_)
    assert (view.continue_.description, view.continue_epochs.value) == ("Resume", 3)
    assert "next batch" in view.continue_.tooltip
    view.continue_.click()
    assert run.calls[-1] == ("resume", 3) and run.state == "running"
    run.epoch = 3
    run.set("finished")
    assert (view.continue_.description, view.continue_epochs.value) == ("Continue", 6)
    assert view.continue_epochs.description == "to epoch"
    assert "ended run on" in view.continue_.tooltip


def test_a_run_that_only_resumes_resumes_with_the_toggle(bound):
    run, dashboard = bound
    run.ACTIONS = {**FakeRun.ACTIONS, "failed": {"resume"}}  # a lost data worker
    run.lost_worker = True
    run.exception = _catch(lambda: 1 / 0)
    run.set("running")
    run.set("failed")
    view = dashboard.view
    assert (view.pause.description, view.pause.disabled) == ("Resume", False)
    assert not shown(view.continue_)
    assert failure.LOST_WORKER_HINT in view.messages.value
    assert "nbtrain-failure-line" in view.messages.value  # the one line, then the frames
    view.pause.click()  # Resume
    assert run.calls[-1] == ("resume", None) and run.state == "running"
    assert "nbtrain-failure" not in view.messages.value  # resumed: the report is over


# -- tracebacks ----------------------------------------------------------------------------


def test_traceback_of_a_thread_pool_starts_at_the_cell(ipython):
    result = ipython.run_cell(
        "def load(i):\n"
        "    return 1 / (i - 3)\n")
    assert result.success
    load = ipython.user_ns["load"]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        error = pool.submit(load, 3).exception()  # as raised in the pool's worker thread
    assert isinstance(error, ZeroDivisionError)
    text = failure.user_traceback(error)
    lines = text.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[1].startswith("  Cell In[") and lines[1].endswith(", line 2, in load")
    assert lines[2] == "    return 1 / (i - 3)"
    assert "ZeroDivisionError: division by zero" in text
    assert "concurrent" not in text.replace("concurrent.futures hidden", "")
    assert "threading.py" not in text
    assert re.fullmatch(r"\(\d+ frames? of nbtrain, Keras, TensorFlow and threading hidden\)",
                        lines[-2]), text
    assert lines[-1] == failure.FAILED_HINT


def test_a_failed_run_shows_the_users_frames_and_what_to_do(ipython, cell):
    from helpers import make_model

    import nbtrain

    result = ipython.run_cell(
        "import nbtrain, numpy as np\n"
        "class Broken(nbtrain.Sequence):\n"
        "    def __len__(self):\n"
        "        return 4\n"
        "    def __getitem__(self, index):\n"
        "        if index == 2:\n"
        "            raise ValueError(f'bad batch {index}')\n"
        "        return np.zeros((4, 4), 'float32'), np.zeros((4, 1), 'float32')\n")
    assert result.success
    model = make_model()
    run = nbtrain.fit(model, ipython.user_ns["Broken"](), epochs=1, shuffle=False, display=False)
    dashboard = Dashboard(auto_display=False)
    dashboard.bind(run, follows_history=True)
    try:
        with pytest.raises(ValueError):
            run.wait(60)
        assert run.state == "failed" and dashboard.state == "failed"
        text = [t for level, t in dashboard.messages if level == "failure"][0]
        assert text.splitlines()[0] == run.failure.line()  # what, where (Broken[2]), what next
        assert "Broken[2] raised ValueError: bad batch 2" in text.splitlines()[0]
        frames = [line for line in text.splitlines() if line.startswith("  ")
                  and not line.startswith("    ")]
        assert frames and all(line.startswith("  Cell In[") for line in frames), text
        assert "raise ValueError(f'bad batch {index}')" in text
        assert "nbtrain/" not in text and "threading.py" not in text
        assert "ValueError: bad batch 2" in text
        assert re.fullmatch(r"\(\d+ frames of nbtrain, Keras, TensorFlow and threading hidden\)",
                            text.splitlines()[-1]), text
    finally:
        dashboard.close()


def test_an_error_inside_nbtrain_keeps_its_frames():
    def inner():
        raise RuntimeError("inside")

    errors = []
    thread = threading.Thread(target=lambda: errors.append(_catch(inner)))
    thread.start()
    thread.join()
    text = failure.user_traceback(errors[0], hint=None)
    assert "in inner" in text and "RuntimeError: inside" in text
    assert failure.internal(threading.__file__) and failure.internal(failure.__file__)
    assert not failure.internal(np.__file__)


def _catch(fn):
    try:
        fn()
    except Exception as exc:
        return exc


def test_resume_to_its_own_final_epoch_is_the_plain_resume(cell):
    import keras
    from helpers import make_data, make_model

    from nbtrain.run import Run

    reached, release = threading.Event(), threading.Event()
    trained = []

    class Hold(keras.callbacks.Callback):
        """Counts every batch; holds the training thread at batch 5 of epoch 0 once."""

        def on_train_batch_end(self, batch, logs=None):
            trained.append(batch)
            if len(trained) == 6 and not release.is_set():
                reached.set()
                release.wait(60)

    x, y = make_data(128)
    run = Run(make_model(), x, y, batch_size=8, epochs=2, callbacks=[Hold()], workers=0)
    dashboard = Dashboard.for_run(run)
    view = dashboard.view
    try:
        run.start()
        assert reached.wait(60)
        view.stop.click()
        release.set()
        run.wait(60)
        assert run.state == "stopped" and view.continue_.description == "Resume"
        assert view.continue_epochs.value == 2 and view.pause.disabled
        view.continue_.click()  # the one control, at its default: the run's own target
        run.wait(60)
        assert run.state == "finished" and run.epochs == 2
        assert trained == list(range(16)) * 2  # no batch twice, none skipped
    finally:
        release.set()
        if run.state in ("running", "paused", "pausing", "stopping"):
            run.stop()
            run.wait(60)
        dashboard.close()


def test_a_warning_mid_run_takes_the_line_kept_for_it(bound, clock):
    run, dashboard = bound
    view = dashboard.view
    start(run, dashboard)
    batches(dashboard, clock, 5)
    kept = view.messages.layout.min_height
    assert kept == MESSAGE_LINE and view.messages.value == ""  # room before any message
    dashboard.message("a warning that came mid-run")
    batches(dashboard, clock, 5, start=5)
    assert "a warning that came mid-run" in view.messages.value
    assert view.messages.layout.min_height == kept  # nothing below it moved
    run.set("failed")
    assert view.messages.layout.min_height is None  # an ended run's take their own room
