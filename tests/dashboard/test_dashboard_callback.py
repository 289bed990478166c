"""Dashboard: widgets fed by callback events, controls bound to a Run, the
static snapshot, throttling, failure display.  No kernel, no browser."""

from __future__ import annotations

import base64
import bisect
import io
import warnings
from types import SimpleNamespace

import comm
import ipywidgets
import pytest
from dashboard_helpers import FakeRun
from PIL import Image

from nbtrain.dashboard import format as fmt
from nbtrain.dashboard import notebook
from nbtrain.dashboard.callback import Dashboard, display_run
from nbtrain.dashboard.layout import PLOT_HEIGHT, PLOT_WIDTH
from nbtrain.dashboard.throttle import Throttle

CLASSES = ["nbtrain-dashboard", "nbtrain-header", "nbtrain-state", "nbtrain-epoch-bar",
           "nbtrain-batch-bar", "nbtrain-batch-counter", "nbtrain-metrics", "nbtrain-plot",
           "nbtrain-pause", "nbtrain-stop", "nbtrain-continue-epochs", "nbtrain-continue",
           "nbtrain-messages"]


@pytest.fixture
def make(clock):
    """Dashboards on a fake clock, closed after the test."""
    made = []

    def make(**options):
        options.setdefault("throttle", Throttle(clock=clock))
        options.setdefault("auto_display", False)
        dashboard = Dashboard(**options)
        made.append(dashboard)
        return dashboard

    yield make
    for dashboard in made:
        dashboard.close()


def tree(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from tree(child)


def by_class(dashboard, name):
    found = [w for w in tree(dashboard.view.root) if name in w._dom_classes]
    assert len(found) == 1, name
    return found[0]


def train(dashboard, clock, epochs=2, steps=50, start=0, dt=0.01, val=True, end=True):
    """Callback events as a loop sends them; batch logs are running averages."""
    dashboard.set_params({"epochs": epochs, "steps": steps})
    dashboard.on_train_begin()
    for epoch in range(start, epochs):
        dashboard.on_epoch_begin(epoch)
        total = 0.0
        for batch in range(steps):
            total += 1.0 / (1 + epoch * steps + batch)
            dashboard.on_train_batch_end(batch, {"loss": total / (batch + 1), "acc": 0.5})
            clock.advance(dt)
        logs = {"loss": total / steps, "acc": 0.5}
        if val:
            logs.update(val_loss=total / steps * 1.2, val_acc=0.4)
        dashboard.on_epoch_end(epoch, logs)
    if end:
        dashboard.on_train_end()


def test_widgets_work_without_a_kernel(make):
    dashboard = make()
    assert isinstance(dashboard.view.root.comm, comm.DummyComm)
    assert dashboard.view.root.model_id
    assert isinstance(dashboard.view.plot, ipywidgets.Image)


def test_set_traits_sends_one_message_and_only_for_a_change(comm_log):
    from nbtrain.dashboard.layout import set_traits

    bar = ipywidgets.IntProgress()
    comm_log.clear()
    assert set_traits(bar, value=3, max=10, bar_style="success") == 1
    assert len(comm_log) == 1
    assert comm_log[0][1] == {"value": 3, "max": 10, "bar_style": "success"}
    assert set_traits(bar, value=3, max=10) == 0
    assert len(comm_log) == 1
    bar.close()


def test_every_part_has_its_css_class_and_description(make):
    dashboard = make()
    for name in CLASSES:
        by_class(dashboard, name)
    assert by_class(dashboard, "nbtrain-pause").description == "Pause"
    assert by_class(dashboard, "nbtrain-stop").description == "Stop"
    assert by_class(dashboard, "nbtrain-continue").description == "Continue"
    assert by_class(dashboard, "nbtrain-continue-epochs").description == "to epoch"
    assert by_class(dashboard, "nbtrain-epoch-bar").description == "epoch"
    assert by_class(dashboard, "nbtrain-batch-bar").description == "batch"


def test_progress_table_and_time(make, clock):
    dashboard = make()
    dashboard.set_params({"epochs": 3, "steps": 50})
    dashboard.on_train_begin()
    dashboard.on_epoch_begin(0)
    dashboard.on_epoch_end(0, {"loss": 1.0, "acc": 0.5, "val_loss": 1.2, "val_acc": 0.4})
    dashboard.on_epoch_begin(1)
    for batch in range(12):
        clock.advance(1.0)  # every batch is due for an update
        dashboard.on_train_batch_end(batch, {"loss": 0.5, "acc": 0.75})
    view = dashboard.view
    assert view.epoch_counter.value == "epoch 2 / 3"
    assert (view.epoch_bar.value, view.epoch_bar.max) == (1, 3)
    assert view.batch_counter.value.startswith("batch 12/50 · ")
    assert view.batch_counter.value.endswith(" steps/s")
    assert (view.batch_bar.value, view.batch_bar.max) == (12, 50)
    assert view.batch_counter.value == "batch 12/50 · 1 steps/s"
    assert view.time.value == "elapsed 0:12 · ETA 1:28"  # (38 + 50) batches at 1 a second
    table = fmt.epoch_table(dashboard.tracker)
    assert view.metrics.value == fmt.table_html(table, reserve=3)
    assert table.columns == ("epoch", "time", "loss", "val_loss", "acc", "val_acc")
    assert table.rows == [("1", "0.00 s", "1.0000", "1.2000", "0.5000", "0.4000"),
                          ("2 so far", "0:12", "0.5000", "", "0.7500", "")]
    assert "nbtrain-state-running" in view.state._dom_classes


def test_callback_mode_ends_finished_and_shows_no_controls(make, clock):
    dashboard = make()
    plot = dashboard.view.plot.layout
    # no empty image before a plot, but a hidden blank stand-in of its size keeps its room
    # (scaled with the cell's width as the image will be): nothing below it moves
    assert (plot.visibility, plot.display, dashboard.view.drawn) == ("hidden", None, False)
    blank = Image.open(io.BytesIO(dashboard.view.plot.value))
    assert blank.size == (PLOT_WIDTH, PLOT_HEIGHT) and blank.getextrema() == (255, 255)
    train(dashboard, clock)
    assert (plot.visibility, plot.display, dashboard.view.drawn) == (None, None, True)
    assert Image.open(io.BytesIO(dashboard.view.plot.value)).size == (PLOT_WIDTH, PLOT_HEIGHT)
    view = dashboard.view
    assert dashboard.state == "finished"
    assert view.controls.layout.display == "none"
    assert view.epoch_counter.value == "epoch 2 / 2"
    assert (view.epoch_bar.value, view.batch_bar.value) == (2, 50)
    assert view.epoch_bar.bar_style == "success"
    # the bars in the badge's colour
    assert fmt.STATE_COLORS["finished"] in view.state.value
    assert view.epoch_bar.style.bar_color == view.batch_bar.style.bar_color == (
        fmt.STATE_COLORS["finished"])
    assert view.time.value.startswith("elapsed 0:01") and "ETA" not in view.time.value
    assert dashboard.png is not None


def test_early_stop_in_callback_mode_is_stopped(make, clock):
    dashboard = make()
    dashboard.set_model(SimpleNamespace(stop_training=True))
    train(dashboard, clock, epochs=5, start=0, end=False)
    dashboard.params["epochs"] = 9
    dashboard.on_train_end()
    assert dashboard.state == "stopped"


@pytest.mark.parametrize("steps_per_second", [100, 20_000])
def test_messages_and_renders_a_second_whatever_the_step_rate(make, clock, comm_log,
                                                              steps_per_second):
    dashboard = make()
    plot_id = dashboard.view.plot.model_id
    seconds, steps = 10, 1000
    dashboard.set_params({"epochs": seconds * steps_per_second // steps + 1, "steps": steps})
    comm_log.clear()
    sent_at: list[float] = []  # the time of every widget message

    def note():
        sent_at.extend([clock.now] * (len(comm_log) - len(sent_at)))

    start = clock.now
    dashboard.on_train_begin()
    total, epoch = 0, 0
    while clock.now - start < seconds:
        dashboard.on_epoch_begin(epoch)
        for batch in range(steps):
            dashboard.on_train_batch_end(batch, {"loss": 1.0 / (1 + total), "acc": 0.5})
            total += 1
            note()
            clock.advance(1.0 / steps_per_second)
            if clock.now - start >= seconds:
                break
        dashboard.on_epoch_end(epoch, {"loss": 0.5, "acc": 0.5, "val_loss": 0.6})
        note()
        epoch += 1
    # in any one second (a sliding window: the first plot, with its new toggles, too)
    for i, t in enumerate(sent_at):
        assert bisect.bisect_left(sent_at, t + 1.0) - i <= 20, (t - start, sent_at[i:i + 30])
    renders = dashboard.throttle.renders
    assert 1 <= renders <= seconds + 1
    assert len([i for i, _ in comm_log if i == plot_id]) == renders
    assert dashboard.throttle.updates <= 10 * seconds + 2


def test_memory_constant_in_the_number_of_batches(make, clock):
    import gc
    import tracemalloc

    def retained(batches):
        dashboard = make(throttle=Throttle())  # the real clock: real renders
        train(dashboard, clock, epochs=1, steps=10, end=False)  # metrics and plot exist
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        dashboard.params["steps"] = batches
        dashboard.on_epoch_begin(1)
        for batch in range(batches):
            dashboard.on_train_batch_end(batch, {"loss": 1.0 / (batch + 1), "acc": 0.5})
        dashboard.on_epoch_end(1, {"loss": 0.1, "acc": 0.5})
        dashboard.presenter.update(force=True)
        dashboard.presenter.live.worker.wait_idle()  # no render in flight while measuring
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        return after - before

    retained(1000)  # the first renders load fonts and PIL plugins
    small, large = retained(1000), retained(300_000)
    assert large < small + 300_000, (small, large)


def test_final_values_are_pushed_on_pause_and_end_whatever_the_throttle(make, clock, cell):
    run = FakeRun(epochs=2)
    dashboard = make(throttle=Throttle(interval=1e9, plot_interval=1e9, clock=clock))
    run.add_callback(dashboard)
    dashboard.bind(run)
    run.set("running")
    dashboard.set_params({"epochs": 2, "steps": 50})
    dashboard.on_train_begin()
    dashboard.on_epoch_begin(0)
    for batch in range(37):
        dashboard.on_train_batch_end(batch, {"loss": 0.5})
    assert dashboard.view.batch_bar.value < 37  # throttled
    run.pause()
    assert dashboard.view.batch_bar.value == 37
    assert dashboard.view.batch_counter.value.startswith("batch 37/50")
    dashboard.on_train_batch_end(37, {"loss": 0.5})  # the batch in flight at the pause
    assert dashboard.view.batch_counter.value.startswith("batch 38/50")
    run.resume()
    for batch in range(38, 50):
        dashboard.on_train_batch_end(batch, {"loss": 0.4})
    dashboard.on_epoch_end(0, {"loss": 0.45})
    run.set("finished")
    assert dashboard.view.batch_bar.value == 50
    assert dashboard.view.epoch_bar.value == 1
    assert "0.45" in dashboard.view.metrics.value
    renders = dashboard.throttle.renders
    assert renders >= 2  # the plot too, at pause and at the end


def usable(widget) -> bool:
    """Shown and enabled; a control that cannot act is hidden (and disabled), not greyed."""
    shown = widget.layout.display != "none"
    assert shown != widget.disabled, (widget.description, shown, widget.disabled)
    return shown


def controls(dashboard):
    view = dashboard.view
    return {
        "row": view.controls.layout.display != "none",
        "toggle": (view.pause.description, usable(view.pause)),
        "stop": usable(view.stop),
        "continue": (usable(view.continue_), view.continue_epochs.layout.display != "none"),
    }


def test_buttons_enabled_only_when_legal(make, cell):
    run = FakeRun(epochs=3)
    dashboard = make()
    Dashboard.for_run  # noqa: B018 - the classmethod exists
    run.add_callback(dashboard)
    dashboard.bind(run)
    assert dashboard.view.controls.layout.display is None
    # created: no button yet, the row's room kept for the ones to come
    assert controls(dashboard) == {"row": True, "toggle": ("Pause", False), "stop": False,
                                   "continue": (False, False)}
    assert dashboard.view.controls.layout.min_height
    run.set("running")
    assert controls(dashboard) == {"row": True, "toggle": ("Pause", True), "stop": True,
                                   "continue": (False, False)}
    run.set("paused")
    assert controls(dashboard) == {"row": True, "toggle": ("Resume", True), "stop": True,
                                   "continue": (False, False)}
    run.set("stopping")
    assert controls(dashboard) == {"row": True, "toggle": ("Pause", False), "stop": False,
                                   "continue": (False, False)}
    run.set("stopped")
    # one control trains a stopped run on: "Resume to epoch 3" (the toggle only pauses)
    assert controls(dashboard) == {"row": True, "toggle": ("Pause", False), "stop": False,
                                   "continue": (True, True)}
    assert dashboard.view.continue_epochs.value == 3  # stopped early: the same target
    assert dashboard.view.continue_.description == "Resume"
    assert "next batch" in dashboard.view.continue_.tooltip
    run.set("running")
    run.epoch = 3
    run.set("finished")
    assert controls(dashboard) == {"row": True, "toggle": ("Pause", False), "stop": False,
                                   "continue": (True, True)}
    assert dashboard.view.continue_epochs.value == 6  # finished: as many epochs again
    assert dashboard.view.continue_.description == "Continue"
    assert "ended run on" in dashboard.view.continue_epochs.tooltip
    run.set("failed")  # nothing to do: no controls at all
    assert controls(dashboard) == {"row": False, "toggle": ("Pause", False), "stop": False,
                                   "continue": (False, False)}
    # a failed run that can resume (a lost data worker): the toggle resumes it
    run.ACTIONS = {**FakeRun.ACTIONS, "failed": {"resume"}}
    run.set("failed")
    assert controls(dashboard) == {"row": True, "toggle": ("Resume", True), "stop": False,
                                   "continue": (False, False)}


def test_clicks_drive_the_run(make, cell):
    run = FakeRun(epochs=3)
    dashboard = make()
    run.add_callback(dashboard)
    dashboard.bind(run)
    run.set("running")
    view = dashboard.view
    view.pause.click()
    assert run.calls == ["pause"] and run.state == "paused"
    view.pause.click()
    assert run.calls[-1] == ("resume", None) and run.state == "running"
    view.stop.click()
    assert run.calls[-1] == "stop"
    run.set("stopped")
    view.continue_epochs.value = 7
    view.continue_.click()
    assert run.calls[-1] == ("resume", 7) and run.epochs == 7


def test_an_illegal_action_shows_a_message(make, cell):
    run = FakeRun(epochs=3)
    run.epoch = 5
    dashboard = make()
    run.add_callback(dashboard)
    dashboard.bind(run)
    run.set("finished")
    dashboard.view.continue_epochs.value = 2
    dashboard.view.continue_.click()
    assert "ValueError" in dashboard.view.messages.value
    assert run.state == "finished"


def test_failure_shows_the_traceback_and_turns_red(make, clock, cell):
    run = FakeRun(epochs=3)
    dashboard = make()
    run.add_callback(dashboard)
    dashboard.bind(run)
    dashboard.display()
    run.set("running")
    train(dashboard, clock, epochs=1, end=False)

    def step():
        raise ValueError("the data broke <here>")

    try:
        step()
    except ValueError as exc:
        run.exception = exc
    run.set("failed")
    view = dashboard.view
    assert "Traceback (most recent call last)" in view.messages.value
    assert "in step" in view.messages.value
    assert "ValueError: the data broke &lt;here&gt;" in view.messages.value
    assert fmt.STATE_COLORS["failed"] in view.state.value
    assert "nbtrain-state-failed" in view.state._dom_classes
    assert view.batch_bar.bar_style == "danger"
    table = cell.outputs()[1]
    assert "ValueError: the data broke" in table["text/html"]
    assert "failed" in table["text/plain"]


def test_snapshot_in_the_cell_outputs(make, clock, cell):
    run = FakeRun(epochs=2)
    dashboard = Dashboard.for_run(run, throttle=Throttle(clock=clock))
    try:
        view_bundle, table, plot = cell.outputs()
        assert view_bundle == {
            notebook.WIDGET_MIMETYPE: {"version_major": 2, "version_minor": 0,
                                       "model_id": dashboard.view.root.model_id},
            "text/plain": "nbtrain dashboard",
        }
        assert table == {} and plot == {}  # nothing while training
        assert run.callbacks == [dashboard]
        run.set("running")
        train(dashboard, clock, epochs=2)
        run.set("finished")
        view_bundle, table, plot = cell.outputs()
        assert view_bundle["text/plain"] == "nbtrain dashboard"
        assert set(table) == {"text/html", "text/plain"}
        assert "<table" in table["text/html"] and "finished" in table["text/html"]
        assert "epoch 2 / 2" in table["text/plain"]
        assert set(plot) == {"image/png", "text/plain"}
        assert plot["text/plain"] == "<nbtrain plot: loss, acc>"
        image = Image.open(io.BytesIO(base64.b64decode(plot["image/png"])))
        assert image.format == "PNG" and base64.b64decode(plot["image/png"]) == dashboard.png
        assert dashboard.renderer is None  # the figure is let go once the snapshot is made
        # the live view keeps showing it all (a reloaded page has only the view) ...
        view = dashboard.view
        for part in (view.header, view.metrics, view.plot, view.messages):
            assert part.layout.display is None
        assert view.plot.value == dashboard.png and "finished" in view.state.value
        # ... and carries the rule that hides this snapshot wherever the view renders
        assert f"nbtrain-of-{view.key}" in table["text/html"]
        assert f".nbtrain-of-{view.key}{{display:none" in view.style.value
        assert view.style.layout.display == "none" and view.style in view.root.children
        # continue: the snapshot empties
        run.resume(epochs=4)
        assert cell.outputs()[1:] == [{}, {}]
        assert dashboard.view.plot.layout.display is None
        train(dashboard, clock, epochs=4, start=2)
        run.set("finished")
        assert "epoch 4 / 4" in cell.outputs()[1]["text/plain"]
        assert base64.b64decode(cell.outputs()[2]["image/png"]) == dashboard.png
    finally:
        dashboard.close()


def test_text_fallback_is_the_same_on_every_run(make, cell):
    first, second = make(), make()
    first.display()
    second.display()
    bundles = cell.outputs()
    assert bundles[0]["text/plain"] == bundles[3]["text/plain"] == fmt.TEXT_FALLBACK
    assert bundles[0][notebook.WIDGET_MIMETYPE] != bundles[3][notebook.WIDGET_MIMETYPE]


def test_display_run_again_shows_the_same_widgets(clock, cell):
    run = FakeRun(epochs=1)
    dashboard = Dashboard.for_run(run, throttle=Throttle(clock=clock))
    try:
        assert display_run(run) is dashboard
        outputs = cell.outputs()
        assert len(outputs) == 6
        assert outputs[0] == outputs[3]  # a second view of the same widget model
        run.set("running")
        train(dashboard, clock, epochs=1)
        run.set("finished")
        outputs = cell.outputs()
        assert outputs[1] == outputs[4] and "text/html" in outputs[1]
        assert outputs[2] == outputs[5] and "image/png" in outputs[2]
        display_run(run)  # displayed after the end: the snapshot comes at once
        assert "text/html" in cell.outputs()[7] and "image/png" in cell.outputs()[8]
        assert dashboard.view.plot.layout.display is None  # the view shows it too
    finally:
        dashboard.close()


def test_display_run_of_an_ended_run_without_a_dashboard(cell):
    run = FakeRun(epochs=2)
    run.state = "finished"
    run.epoch = 2
    run.history.epoch = [0, 1]
    run.history.history = {"loss": [2.0, 1.0], "val_loss": [2.5, 1.5]}
    dashboard = display_run(run)
    try:
        assert run.callbacks == [dashboard]  # between passes: it follows the next ones
        view, table, plot = cell.outputs()
        best = 'title="best">1.5000<'  # epoch 2's val_loss, the best
        assert "finished" in table["text/html"] and best in table["text/html"]
        assert "image/png" in plot
        assert dashboard.view.metrics.layout.display is None
        assert best in dashboard.view.metrics.value
        assert not dashboard.view.continue_.disabled
    finally:
        dashboard.close()


def test_display_run_of_a_running_run_without_a_dashboard(cell):
    run = FakeRun(epochs=5, started=True)
    run.history.epoch = [0, 1]
    run.history.history = {"loss": [2.0, 1.0], "val_loss": [2.5, 1.5]}
    run.epoch, run.batch, run.steps = 2, 3, 10
    dashboard = display_run(run)
    try:
        assert dashboard.controls.follows_history and run.callbacks == []
        assert dashboard.tracker.metrics["loss"].best == 1.5
        assert dashboard.view.epoch_counter.value == "epoch 3 / 5"
        assert dashboard.view.batch_counter.value.startswith("batch 3/10")
        run.history.epoch.append(2)
        run.history.history["loss"].append(0.5)
        run.history.history["val_loss"].append(1.0)
        run.epoch, run.batch = 3, 0
        run.set("paused")
        assert dashboard.tracker.metrics["loss"].best == 1.0
        assert dashboard.view.epoch_counter.value == "epoch 4 / 5"
        assert display_run(run) is dashboard
    finally:
        dashboard.close()


def test_warnings_of_the_training_thread_go_to_the_message_area(make, clock, cell):
    import threading

    dashboard = make()
    dashboard.display()
    dashboard.set_params({"epochs": 1, "steps": 2})
    shown = []
    original = warnings.showwarning

    def training():
        dashboard.on_train_begin()
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("the generator ended early", UserWarning, stacklevel=1)
        dashboard.on_train_end()

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = lambda *a, **k: shown.append(a[0])
        thread = threading.Thread(target=training)
        thread.start()
        thread.join()
        warnings.warn("main thread", UserWarning, stacklevel=1)
        assert [str(m) for m in shown] == ["main thread"]
    assert warnings.showwarning is original
    assert "UserWarning: the generator ended early" in dashboard.view.messages.value


def test_nan_metrics_are_reported(make, clock):
    dashboard = make()
    dashboard.set_params({"epochs": 1, "steps": 5})
    dashboard.on_train_begin()
    dashboard.on_epoch_begin(0)
    dashboard.on_train_batch_end(0, {"loss": 1.0})
    dashboard.on_train_batch_end(1, {"loss": float("nan")})
    clock.advance(1)
    dashboard.on_train_batch_end(2, {"loss": float("nan")})
    assert "loss is nan in epoch 1" in dashboard.view.messages.value


def test_a_failed_plain_fit_is_shown_when_its_cell_ends(make, clock, cell):
    dashboard = make()
    dashboard.display()
    train(dashboard, clock, epochs=1, end=False)
    try:
        raise RuntimeError("out of memory")
    except RuntimeError as exc:
        error = exc
    dashboard._after_cell(SimpleNamespace(error_in_exec=error))
    assert dashboard.state == "failed"
    assert "RuntimeError: out of memory" in dashboard.view.messages.value
    assert "run the cell again" in dashboard.view.messages.value  # what to do next
    assert "text/html" in cell.outputs()[1]
    other = make()
    other.display()
    train(other, clock, epochs=1, end=False)
    other._after_cell(SimpleNamespace(error_in_exec=KeyboardInterrupt()))
    assert other.state == "stopped" and "Interrupted." in other.view.messages.value


def test_after_cell_runs_once(monkeypatch):
    from IPython.core.events import EventManager, available_events

    shell = SimpleNamespace()
    shell.events = EventManager(shell, available_events)
    monkeypatch.setattr("IPython.get_ipython", lambda: shell)
    results = []
    notebook.after_cell(results.append)
    shell.events.trigger("post_run_cell", "first")
    shell.events.trigger("post_run_cell", "second")
    assert results == ["first"]
    cancel = notebook.after_cell(results.append)
    cancel()
    shell.events.trigger("post_run_cell", "third")
    assert results == ["first"]


def test_outside_a_notebook_it_prints_text_progress(capsys):
    dashboard = Dashboard()  # auto_display: no notebook here, so text
    try:
        dashboard.set_params({"epochs": 1, "steps": 2, "verbose": 1})
        dashboard.on_train_begin()
        dashboard.on_epoch_begin(0)
        dashboard.on_train_batch_end(0, {"loss": 1.0})
        dashboard.on_train_batch_end(1, {"loss": 0.5})
        dashboard.on_epoch_end(0, {"loss": 0.5})
        dashboard.on_train_end()
        out = capsys.readouterr().out
        assert "2/2" in out and "loss: 0.5000" in out  # Keras's own bar (no "Epoch 1/1" line)
        assert dashboard.outputs == []
    finally:
        dashboard.close()
