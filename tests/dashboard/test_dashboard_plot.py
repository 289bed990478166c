"""PlotRenderer: PNG from a reused Agg figure, never through pyplot."""

from __future__ import annotations

import ast
import inspect
import io
import pathlib
import threading
from dataclasses import replace

import numpy as np
from PIL import Image

import nbtrain.dashboard
from nbtrain.dashboard.plot import (
    PlotRenderer,
    give_back,
    smooth,
    take_renderer,
    use_log_scale,
)
from nbtrain.dashboard.pngfile import rgb_png
from nbtrain.dashboard.tracker import MetricTracker, RateChange


def tracker_with(batches: int, epochs: int = 4, start: float = 3.0, end: float = 0.1):
    tracker = MetricTracker(capacity=512)
    steps = batches // epochs
    total = 0
    for epoch in range(epochs):
        tracker.begin_epoch(epoch, steps)
        values = start * (end / start) ** ((total + np.arange(steps)) / batches)
        averages = np.cumsum(values) / np.arange(1, steps + 1)
        total += steps
        for batch in range(steps):
            tracker.batch_end(batch, {"loss": float(averages[batch]), "accuracy": 0.5})
        tracker.end_epoch(epoch, {"loss": float(averages[-1]), "accuracy": 0.5,
                                  "val_loss": float(averages[-1]) * 1.1, "val_accuracy": 0.4})
    return tracker


def render(renderer, tracker, epochs=4):
    return renderer.render(tracker.panels(), tracker.x_range(epochs))


def test_renders_a_png_with_a_panel_per_metric():
    renderer = PlotRenderer()
    png = render(renderer, tracker_with(400))
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert image.size == renderer.size
    assert [ax.get_title(loc="left") for ax in renderer.figure.axes] == ["loss", "accuracy"]


def test_rgb_png_decodes_to_the_pixels_given():
    rgb = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    image = Image.open(io.BytesIO(rgb_png(rgb)))
    assert image.format == "PNG" and image.mode == "RGB" and image.size == (5, 7)
    np.testing.assert_array_equal(np.asarray(image), rgb)
    plot = np.asarray(Image.open(io.BytesIO(render(PlotRenderer(), tracker_with(400)))))
    assert plot.shape[2] == 3 and plot.min() < 100 and plot.max() == 255  # lines on white


def test_a_renderer_given_back_draws_the_next_plot_as_a_new_one_would():
    """One renderer is kept for the next dashboard (no layout for the same panels);
    nothing of the plot it drew before shows: not its automatic log scale, its
    marks, an earlier run, its learning-rate labels or its limits."""

    def spread(panel, low, high):  # the panel's batch values from low to high
        x, y = panel.batch
        return replace(panel, batch=(x, np.linspace(low, high, len(y))))

    busy = tracker_with(400, start=100.0, end=0.01)  # the automatic choice goes to log
    loss, accuracy = busy.panels()
    rate = replace(loss, name="learning_rate", batch=(np.r_[0.0, 2.0], np.r_[0.1, 0.01]),
                   epochs=(np.array([]), np.array([])), val=(np.array([]), np.array([])),
                   changes=(RateChange(0.0, 0.1, 1), RateChange(2.0, 0.01, 3, 5)))
    overlay = ((np.r_[0.0, 4.0], np.r_[5.0, 4.0]), (np.r_[1.0], np.r_[4.5]))
    old = [replace(loss, marks=(1.5,), overlay=overlay), spread(accuracy, 0.2, 0.9), rate]
    used = take_renderer()
    used.render(old, (0.0, 5.0))
    assert used.panel_artists["loss"].ax.get_yscale() == "log"
    figure = used.figure
    give_back(used)
    loss, accuracy = tracker_with(400, start=2.0, end=1.0).panels()
    # the accuracy axis drawn before would still hold these (limits are kept while
    # the data fits): a new plot fits them afresh
    new = [loss, spread(accuracy, 0.3, 0.8),
           replace(rate, changes=(RateChange(0.0, 0.1, 1),), batch=(np.r_[0.0], np.r_[0.1]))]
    again = take_renderer()
    assert again is used and again.figure is figure and again.full_draws == 0
    png = again.render(new, (0.0, 5.0))
    assert again.panel_artists["loss"].ax.get_yscale() == "linear"
    assert png == PlotRenderer().render(new, (0.0, 5.0))
    assert take_renderer() is not used  # given to one plot at a time


def test_same_figure_reused_and_unchanged_limits_are_blitted():
    renderer = PlotRenderer()
    tracker = tracker_with(400)
    figure = renderer.figure
    render(renderer, tracker)
    render(renderer, tracker)
    render(renderer, tracker)
    assert renderer.figure is figure
    assert renderer.full_draws == 1 and renderer.blits == 2


def test_a_flat_metric_is_blitted_too():
    """A constant metric (or a single point) gets limits that fit it: re-rendering
    it does not redraw the whole figure every time."""
    renderer = PlotRenderer()
    tracker = MetricTracker(capacity=512)
    tracker.begin_epoch(0, 10)
    for batch in range(10):
        tracker.batch_end(batch, {"loss": 0.25})
    tracker.end_epoch(0, {"loss": 0.25})
    for _ in range(3):
        render(renderer, tracker, epochs=1)
    assert renderer.full_draws == 1 and renderer.blits == 2
    low, high = renderer.figure.axes[0].get_ylim()
    assert low < 0.25 < high


def test_a_million_batches_render_as_small_as_a_hundred():
    renderer = PlotRenderer()
    small = render(renderer, tracker_with(100))
    large_tracker = tracker_with(200_000)
    assert all(len(m.batch) <= 512 for m in large_tracker.metrics.values())
    large = render(PlotRenderer(), large_tracker)
    assert len(large) < 3 * len(small) + 20_000
    assert max(len(line.get_xdata()) for ax in renderer.figure.axes for line in ax.lines) <= 512


def test_log_scale_for_a_loss_spanning_decades_and_it_stays():
    renderer = PlotRenderer()
    tracker = tracker_with(400, start=100.0, end=0.01)
    render(renderer, tracker)
    loss_axes, accuracy_axes = renderer.figure.axes
    assert loss_axes.get_yscale() == "log"
    assert loss_axes.get_title(loc="right") == "log scale"  # said, not silent
    assert accuracy_axes.get_yscale() == "linear" and accuracy_axes.get_title(loc="right") == ""
    # later data of a narrower span (a bucket merge, a zoom): the automatic choice holds
    render(renderer, tracker_with(400, start=2.0, end=1.0))
    assert renderer.figure.axes[0].get_yscale() == "log"
    fresh = PlotRenderer()
    render(fresh, tracker_with(400, start=2.0, end=1.0))
    assert fresh.figure.axes[0].get_yscale() == "linear"


def test_log_asked_applies_to_losses_never_to_accuracy():
    renderer = PlotRenderer()
    renderer.log_y = True
    render(renderer, tracker_with(400, start=2.0, end=1.0))
    loss_axes, accuracy_axes = renderer.figure.axes
    assert loss_axes.get_yscale() == "log" and accuracy_axes.get_yscale() == "linear"


def test_use_log_scale():
    assert use_log_scale("loss", [np.array([100.0, 1.0])])
    assert not use_log_scale("loss", [np.array([10.0, 1.0])])
    assert not use_log_scale("loss", [np.array([100.0, 0.0])])
    assert not use_log_scale("accuracy", [np.array([100.0, 1.0])])
    assert not use_log_scale("loss", [np.array([])])


def test_smooth():
    y = np.array([1.0, 3.0, 2.0])
    np.testing.assert_array_equal(smooth(y, span=1), y)
    smoothed = smooth(np.r_[np.zeros(50), np.ones(50)], span=10)
    assert smoothed[0] == 0 and 0 < smoothed[60] < 1 and smoothed[-1] > 0.99


def test_x_axis_grows_with_the_data():
    renderer = PlotRenderer()
    tracker = tracker_with(400)  # 4 epochs of 100
    render(renderer, tracker, epochs=100)
    assert renderer.figure.axes[0].get_xlim() == (0.0, 5.0)  # 4 epochs: to 5, not 100
    assert all(ax.get_xlabel() == "epoch" for ax in renderer.figure.axes)  # one per panel


def test_epoch_means_and_validation_at_each_epochs_end():
    renderer = PlotRenderer()
    render(renderer, tracker_with(400))
    loss = renderer.panel_artists["loss"]
    np.testing.assert_array_equal(loss.epochs.get_xdata(), [1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(loss.val.get_xdata(), [1.0, 2.0, 3.0, 4.0])


def test_dashboard_modules_never_import_pyplot():
    package = pathlib.Path(nbtrain.dashboard.__file__).parent
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [f"{node.module}.{alias.name}" for alias in node.names]
                names.append(node.module or "")
            assert not any("pyplot" in name or "pylab" in name for name in names), path


def test_the_training_thread_never_calls_pyplot(monkeypatch):
    import matplotlib.pyplot as plt  # Keras imports it anyway; nobody may call it

    calls = []
    for name in dir(plt):
        value = getattr(plt, name)
        if inspect.isfunction(value) and not name.startswith("_"):
            def record(*args, _name=name, _fn=value, **kwargs):
                calls.append((_name, threading.current_thread().name))
                return _fn(*args, **kwargs)
            monkeypatch.setattr(plt, name, record)
    figures = plt.get_fignums()
    calls.clear()
    from nbtrain.dashboard.callback import Dashboard

    dashboard = Dashboard(auto_display=False)
    dashboard.set_params({"epochs": 2, "steps": 50})

    def train():
        dashboard.on_train_begin()
        for epoch in range(2):
            dashboard.on_epoch_begin(epoch)
            for batch in range(50):
                dashboard.on_train_batch_end(batch, {"loss": 1.0 / (batch + 1)})
            dashboard.on_epoch_end(epoch, {"loss": 0.1, "val_loss": 0.2})
        dashboard.on_train_end()

    thread = threading.Thread(target=train, name="training")
    thread.start()
    thread.join()
    assert dashboard.png and dashboard.throttle.renders >= 1
    assert calls == []
    assert plt.get_fignums() == figures
    dashboard.close()
