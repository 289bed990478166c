"""How the plot reads (`nbtrain.dashboard.axes`, drawn by `PlotRenderer` and
`nbtrain.compare`): on the Agg canvas, no tick label overlaps another or leaves
the figure, at linear and log scales, for losses from 1e-4 to 1e3, accuracies
and learning rates; bounded metrics stay in their range; the legend lists
exactly the lines drawn, as they are drawn; the learning rate is a panel of
its own with each change labelled."""

from __future__ import annotations

import itertools
import re
from types import SimpleNamespace

import numpy as np
import pytest

from nbtrain.dashboard import axes
from nbtrain.dashboard.compare import compare
from nbtrain.dashboard.plot import PlotRenderer
from nbtrain.dashboard.tracker import MetricTracker

NUMBER = re.compile(r"^-?\d+(\.\d+)?(e-?\d+)?$")


def train(metrics: dict, epochs: int = 6, steps: int = 50, val: bool = True, rates=(),
          seed: int = 0) -> MetricTracker:
    """A tracker fed like a loop: each metric goes geometrically from `start` to `end`
    (with noise), batch logs as running averages; `rates`: (epoch, batch, value)."""
    rng = np.random.default_rng(seed)
    tracker = MetricTracker(capacity=256)
    tracker.learning_rate(1e-3)
    total = epochs * steps
    for epoch in range(epochs):
        tracker.begin_epoch(epoch, steps)
        sums = dict.fromkeys(metrics, 0.0)
        for batch in range(steps):
            done = (epoch * steps + batch) / total
            logs = {}
            for name, (start, end) in metrics.items():
                if start > 0 and end > 0:
                    value = start * (end / start) ** done * float(np.exp(0.1 * rng.standard_normal()))
                else:
                    value = start + (end - start) * done
                if name != "loss":
                    value = min(value, 1.0) if "acc" in name else value
                sums[name] += value
                logs[name] = sums[name] / (batch + 1)
            tracker.batch_end(batch, logs)
            for e, b, value in rates:
                if (e, b) == (epoch, batch):
                    tracker.mark(SimpleNamespace(x=epoch + batch / steps, epoch=epoch, batch=batch,
                                                 name="learning_rate", old=0.0, new=value))
        logs = {name: sums[name] / steps for name in metrics}
        if val:
            logs.update({f"val_{name}": v * 0.97 for name, v in logs.items()})
        tracker.end_epoch(epoch, logs)
    return tracker


def draw(tracker: MetricTracker, log_y=None, smoothing=None, epochs=None) -> PlotRenderer:
    renderer = PlotRenderer()
    renderer.log_y, renderer.smoothing = log_y, smoothing
    panels = tracker.panels()
    rate = tracker.rate_panel()
    if rate is not None:
        panels.append(rate)
    renderer.render(panels, tracker.x_range(epochs))
    return renderer


def texts(figure) -> list:
    """Every tick label shown (inside its axis's view), every title and axis label,
    with its box on the canvas."""
    renderer = figure.canvas.get_renderer()
    out = []
    for ax in figure.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            slack = 1e-9 * max(abs(low), abs(high), 1e-300)
            for loc, label in zip(axis.get_majorticklocs(), axis.get_majorticklabels()):
                if low - slack <= loc <= high + slack and label.get_visible() and label.get_text():
                    out.append((label.get_text(), "tick", label.get_window_extent(renderer)))
            assert axis.get_offset_text().get_text() == "", "an offset text (x10^k) is shown"
            assert not any(t.get_visible() and t.get_text() for t in axis.get_minorticklabels()
                           if low <= t.get_position()[axis is ax.yaxis] <= high)
        for text in (ax.title, ax._left_title, ax._right_title, ax.xaxis.label):
            if text.get_text():
                out.append((text.get_text(), "label", text.get_window_extent(renderer)))
    return out


def assert_readable(figure):
    boxes = texts(figure)
    width, height = figure.canvas.get_width_height()
    for text, kind, box in boxes:
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height, (
            f"{text!r} leaves the figure: {box}")
        if kind == "tick":
            assert NUMBER.match(text), f"tick label {text!r} is not a plain number"
    for (a, _, box_a), (b, _, box_b) in itertools.combinations(boxes, 2):
        assert not box_a.overlaps(box_b), f"{a!r} overlaps {b!r}"
    for ax in figure.axes:  # no two ticks of an axis read the same
        labels = [t.get_text() for t in ax.yaxis.get_majorticklabels() if t.get_text()]
        low, high = sorted(ax.get_ylim())
        shown = [t for loc, t in zip(ax.yaxis.get_majorticklocs(), labels) if low <= loc <= high]
        assert len(shown) == len(set(shown)) and len(shown) >= 1, shown


LOSSES = [(1e3, 1e-4), (1e3, 5e2), (3.0, 0.1), (0.31, 0.29), (1e-3, 1e-4), (2e-4, 1e-4),
          (12.0, 11.0), (4e2, 1.0), (1.0, 1.0)]


@pytest.mark.parametrize("log_y", [None, False, True])
@pytest.mark.parametrize("start, end", LOSSES)
def test_loss_ticks_are_readable(start, end, log_y):
    figure = draw(train({"loss": (start, end)}), log_y=log_y).figure
    assert_readable(figure)


@pytest.mark.parametrize("log_y", [None, False, True])
@pytest.mark.parametrize("start, end", [(0.1, 0.99), (0.97, 0.999), (0.5, 0.5), (0.0, 1.0)])
def test_accuracy_ticks_are_readable_and_inside_0_1(start, end, log_y):
    renderer = draw(train({"loss": (2.0, 0.5), "accuracy": (start, end)}), log_y=log_y)
    assert_readable(renderer.figure)
    ax = renderer.panel_artists["accuracy"].ax
    low, high = ax.get_ylim()
    assert ax.get_yscale() == "linear"  # never log, even when log is asked
    assert 0.0 <= low and high <= 1.05


@pytest.mark.parametrize("rates", [(), ((1, 10, 3e-4),), ((1, 10, 3e-4), (3, 0, 1e-4), (3, 5, 2.5e-5)),
                                   ((0, 20, 1e-2), (2, 20, 1e-6))])
def test_learning_rate_panel_reads_and_labels_each_change(rates):
    renderer = draw(train({"loss": (2.0, 0.5), "accuracy": (0.2, 0.9)}, rates=rates))
    assert_readable(renderer.figure)
    rate = renderer.panel_artists["learning_rate"]
    assert rate.ax.get_yscale() == "log"
    low, high = rate.ax.get_ylim()
    values = [1e-3, *[value for _, _, value in rates]]
    assert low < min(values) and max(values) < high  # the whole history
    assert np.log10(high / low) >= 1.0  # a step of 3x is visible, not a flat line
    labels = [t.get_text() for t in rate.ax.texts if t.get_visible()]
    for epoch, batch, value in rates[-1:]:  # the newest change is always labelled
        assert f"{axes.rate_text(value)}\nepoch {epoch + 1}, batch {batch + 1}" in labels
    boxes = [t.get_window_extent(renderer.canvas.get_renderer())
             for t in rate.ax.texts if t.get_visible()]
    ax_box = rate.ax.get_window_extent(renderer.canvas.get_renderer())
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b)
    for box in boxes:
        assert ax_box.x0 <= box.x0 and box.x1 <= ax_box.x1


def legend_of(ax):
    legend = ax.get_legend()
    if legend is None:
        return []
    return [(text.get_text(), handle.get_marker(), handle.get_linestyle())
            for text, handle in zip(legend.get_texts(), legend.legend_handles)]


def drawn(ax):
    return [(line.get_label(), line.get_marker(), line.get_linestyle()) for line in ax.get_lines()
            if line.get_visible() and len(line.get_xdata())
            and not line.get_label().startswith("_")]


@pytest.mark.parametrize("val", [True, False])
@pytest.mark.parametrize("smoothing", [None, 0.0, 0.9])
def test_legend_entries_are_the_series_drawn_as_drawn(val, smoothing):
    renderer = draw(train({"loss": (2.0, 0.5)}, val=val), smoothing=smoothing)
    ax = renderer.panel_artists["loss"].ax
    assert legend_of(ax) == drawn(ax)
    names = [name for name, _, _ in legend_of(ax)]
    assert names == ["training", "epoch mean"] + (["validation"] if val else [])
    assert ("validation" in names) == val  # no "val" entry without validation data


def test_legend_follows_a_change_of_style():
    """Smoothing turned off while training: the raw line becomes "training"; many
    epochs: the epoch means become a line; the legend shows each as drawn."""
    renderer = PlotRenderer()
    tracker = train({"loss": (2.0, 0.5)})
    renderer.render(tracker.panels(), tracker.x_range(None))
    renderer.smoothing = 0.0
    renderer.render(tracker.panels(), tracker.x_range(None))
    ax = renderer.panel_artists["loss"].ax
    assert legend_of(ax) == drawn(ax)
    many = train({"loss": (2.0, 0.5)}, epochs=70, steps=2)
    renderer.render(many.panels(), many.x_range(None))
    assert legend_of(ax) == drawn(ax)
    assert ("epoch mean", "none", "-") in legend_of(ax)  # a line now, no markers


def test_tick_texts():
    assert axes.tick_texts([0.0, 0.5, 1.0, 1.5]) == ["0", "0.5", "1.0", "1.5"]
    assert axes.tick_texts([0.1, 1.0, 10.0], log=True) == ["0.1", "1", "10"]
    assert axes.tick_texts([1e-4, 1e-3, 1e-2], log=True) == ["1e-4", "0.001", "0.01"]
    assert axes.tick_texts([0.00024, 0.00026]) == ["2.4e-4", "2.6e-4"]
    assert axes.tick_texts([0.0, 20000.0, 40000.0]) == ["0", "2e4", "4e4"]
    assert axes.rate_text(0.0010000000474974513) == "0.001"
    assert axes.rate_text(3e-4) == "3e-4" and axes.rate_text(2.5e-5) == "2.5e-5"


def test_metric_kinds():
    assert [axes.metric_kind(n) for n in ("loss", "val_mae", "accuracy", "val_acc", "auc",
                                          "f1_score", "learning_rate", "lr", "psnr")] == [
        "loss", "loss", "bounded", "bounded", "bounded", "bounded", "rate", "rate", "other"]


def test_the_automatic_scale_never_flips_back():
    choice = axes.ScaleChoice(axes.LOSS)
    assert not choice.choose(None, np.array([2.0, 1.0]))
    assert choice.choose(None, np.array([200.0, 1.0]))  # spans two decades: log
    assert choice.choose(None, np.array([2.0, 1.0]))  # stays
    assert not choice.choose(None, np.array([2.0, -1.0]))  # a log axis cannot show it
    assert not choice.choose(False, np.array([200.0, 1.0]))  # linear asked


def test_compare_reads_like_the_live_plot():
    history = SimpleNamespace(epoch=[0, 1, 2, 3], history={
        "loss": [300.0, 3.0, 0.3, 0.03], "val_loss": [400.0, 4.0, 0.4, 0.04],
        "accuracy": [0.2, 0.6, 0.9, 0.97], "val_accuracy": [0.2, 0.5, 0.8, 0.9]})
    comparison = compare(history, history, names=["a", "b"])
    figure = comparison.figure
    assert_readable(figure)
    loss, accuracy = figure.axes
    assert loss.get_yscale() == "log" and accuracy.get_yscale() == "linear"
    assert accuracy.get_ylim()[1] <= 1.05
    assert [ax.get_xlabel() for ax in figure.axes] == ["epoch", "epoch"]
    assert legend_of(loss) == drawn(loss)
