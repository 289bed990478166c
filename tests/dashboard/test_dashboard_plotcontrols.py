"""The live plot's controls: y scale and smoothing dropdowns that always show their value,
a toggle per metric that exists, drawn at once while paused or ended, and kept in the
static snapshot."""

from __future__ import annotations

import base64

import ipywidgets as widgets
import numpy as np
from dashboard_helpers import FakeRun
from test_dashboard_callback import train

from nbtrain.dashboard.callback import Dashboard
from nbtrain.dashboard.plot import PlotRenderer
from nbtrain.dashboard.plotcontrols import SCALES, SMOOTHING
from nbtrain.dashboard.throttle import Throttle
from nbtrain.dashboard.tracker import MetricTracker


def test_the_renderer_takes_a_scale_and_a_smoothing_weight():
    values = [1.0 / (batch + 1) for batch in range(20)]
    tracker = MetricTracker(batch_logs="batch")
    tracker.begin_epoch(0, steps=20)
    for batch, value in enumerate(values):
        tracker.batch_end(batch, {"loss": value})
    renderer = PlotRenderer()
    renderer.log_y, renderer.smoothing = True, 0.6
    renderer.render(tracker.panels(), (0.0, 1.0))
    ax = renderer.figure.axes[0]
    assert ax.get_yscale() == "log"
    smoothed = [line for line in ax.get_lines() if line.get_linewidth() == 1.5][0]
    expected, acc, weight = [], 0.0, 0.0
    for value in values:
        acc, weight = 0.6 * acc + 0.4 * value, 0.6 * weight + 0.4
        expected.append(acc / weight)
    np.testing.assert_allclose(smoothed.get_ydata(), expected)
    renderer.log_y = False
    renderer.render(tracker.panels(), (0.0, 1.0))
    assert ax.get_yscale() == "linear"


def selected(dropdown) -> tuple:
    """What the page shows: the selected index and its label (ipywidgets 8 sends only
    `index`; None is an empty select)."""
    return dropdown.index, dropdown.options[dropdown.index] if dropdown.index is not None else None


def test_every_dropdown_shows_its_value_auto_too(clock):
    dashboard = Dashboard(throttle=Throttle(clock=clock), auto_display=False)
    try:
        controls = dashboard.plot_controls
        assert selected(controls.scale) == (0, "auto")
        assert selected(controls.smoothing) == (0, "auto")
        assert controls.scale.get_state()["index"] == 0  # what the page receives
        controls.scale.value = "log"
        controls.smoothing.value = "off"
        assert (dashboard.presenter.plot_options.log_y,
                dashboard.presenter.plot_options.smoothing) == (True, 0.0)
        controls.scale.value = "auto"  # chosen again: still shown, not blank
        controls.smoothing.value = "auto"
        assert selected(controls.scale) == (0, "auto") == selected(controls.smoothing)
        assert (dashboard.presenter.plot_options.log_y,
                dashboard.presenter.plot_options.smoothing) == (None, None)
        assert [label for label, _ in SCALES] == list(controls.scale.options)
        assert [label for label, _ in SMOOTHING] == list(controls.smoothing.options)
    finally:
        dashboard.close()


def titles(dashboard) -> list[str]:
    return [ax.get_title(loc="left") for ax in dashboard.renderer.figure.axes]


def test_the_controls_redraw_while_paused_and_the_snapshot_keeps_the_last_choice(clock, cell):
    run = FakeRun(epochs=2)
    dashboard = Dashboard.for_run(run, throttle=Throttle(clock=clock))
    try:
        controls = dashboard.plot_controls
        rows = dashboard.view.root.children
        assert rows[rows.index(dashboard.view.plot) - 1] is controls.box
        assert not controls.shown and controls.toggles == {}  # no plot yet
        made = []
        widgets.Widget.on_widget_constructed(made.append)
        try:
            run.set("running")
            train(dashboard, clock, epochs=1, end=False)
        finally:
            widgets.Widget.on_widget_constructed(None)
        # the toggles given to the metrics were made with the dashboard, not while training
        assert not [w for w in made if isinstance(w, widgets.ToggleButton)]
        run.set("paused")
        assert controls.shown
        assert titles(dashboard) == ["loss", "acc"]
        # one toggle per metric that exists, pressed: its panel is drawn
        assert {name: t.value for name, t in controls.toggles.items()} == {
            "loss": True, "acc": True}
        assert list(controls.metrics.children) == list(controls.toggles.values())
        assert all("nbtrain-plot-metric" in t._dom_classes for t in controls.metrics.children)
        # the toggles not given a metric yet are not metric toggles to the page
        assert not any("nbtrain-plot-metric" in t._dom_classes for t in controls.spares.children)
        controls.toggles["acc"].value = False  # paused: drawn at once
        assert titles(dashboard) == ["loss"]
        assert (controls.toggles["acc"].icon, controls.toggles["loss"].icon) == ("", "check")
        controls.toggles["loss"].value = False  # the last one shown stays
        assert controls.toggles["loss"].value and titles(dashboard) == ["loss"]
        controls.scale.value = "log"
        assert dashboard.renderer.figure.axes[0].get_yscale() == "log"
        run.set("running")
        train(dashboard, clock, epochs=2, start=1)
        run.set("finished")
        before = base64.b64decode(cell.outputs()[2]["image/png"])
        controls.scale.value = "linear"  # ended: the snapshot is written again
        after = base64.b64decode(cell.outputs()[2]["image/png"])
        assert after != before and after == dashboard.png
        assert dashboard.renderer is None  # let go again
        controls.toggles["acc"].value = True  # every panel again
        assert base64.b64decode(cell.outputs()[2]["image/png"]) == dashboard.png != after
        assert dashboard.presenter.plot_options.metrics is None
    finally:
        dashboard.close()


def test_a_metric_that_appears_later_gets_its_toggle_and_is_drawn(clock, cell):
    run = FakeRun(epochs=3)
    dashboard = Dashboard.for_run(run, throttle=Throttle(clock=clock))
    try:
        controls = dashboard.plot_controls
        run.set("running")
        train(dashboard, clock, epochs=1, end=False)
        run.set("paused")
        controls.toggles["acc"].value = False
        run.set("running")
        dashboard.on_epoch_begin(1)
        for batch in range(50):
            clock.advance(0.1)
            dashboard.on_train_batch_end(batch, {"loss": 0.5, "acc": 0.6, "gain": 2.0})
        run.set("paused")
        assert list(controls.toggles) == ["loss", "acc", "gain"]
        assert controls.toggles["gain"].value and titles(dashboard) == ["loss", "gain"]
    finally:
        dashboard.close()


def test_the_learning_rate_panel_has_its_toggle_from_the_start(clock, cell):
    run = FakeRun(epochs=2)
    dashboard = Dashboard.for_run(run, throttle=Throttle(clock=clock))
    try:
        controls = dashboard.plot_controls
        run.set("running")
        dashboard.tracker.learning_rate(0.001)  # what the dashboard reads from the optimizer
        train(dashboard, clock, epochs=1, end=False)
        run.set("paused")
        assert list(controls.toggles) == ["loss", "acc", "learning_rate"]
        assert titles(dashboard)[-1] == "learning_rate"
        controls.toggles["learning_rate"].value = False
        assert titles(dashboard) == ["loss", "acc"]
        controls.toggles["loss"].value = False
        controls.toggles["acc"].value = False  # the last one shown stays
        assert controls.toggles["acc"].value and titles(dashboard) == ["acc"]
        controls.toggles["learning_rate"].value = True
        controls.toggles["acc"].value = False  # the learning rate alone, not every panel
        assert titles(dashboard) == ["learning_rate"]
    finally:
        dashboard.close()
