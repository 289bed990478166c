"""The live plot's controls: y scale, smoothing and metrics, drawn at once while paused or
ended, and kept in the static snapshot."""

from __future__ import annotations

import base64

import numpy as np
from dashboard_helpers import FakeRun
from test_dashboard_widget import train

from nbtrain.dashboard.plot import PlotRenderer
from nbtrain.dashboard.throttle import Throttle
from nbtrain.dashboard.tracker import MetricTracker
from nbtrain.dashboard.widget import Dashboard


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


def test_the_controls_redraw_while_paused_and_the_snapshot_keeps_the_last_choice(clock, cell):
    run = FakeRun(epochs=2)
    dashboard = Dashboard.for_run(run, throttle=Throttle(clock=clock))
    try:
        controls = dashboard.plot_controls
        rows = dashboard.view.root.children
        assert rows[rows.index(dashboard.view.plot) - 1] is controls.box
        run.set("running")
        train(dashboard, clock, epochs=1, end=False)
        run.set("paused")
        assert [ax.get_title(loc="left") for ax in dashboard.renderer.figure.axes] == [
            "loss", "acc"]
        controls.metrics.value = "loss"  # paused: drawn at once
        assert [ax.get_title(loc="left") for ax in dashboard.renderer.figure.axes] == ["loss"]
        controls.scale.value = True
        assert dashboard.renderer.figure.axes[0].get_yscale() == "log"
        run.set("running")
        train(dashboard, clock, epochs=2, start=1)
        run.set("finished")
        before = base64.b64decode(cell.outputs()[2]["image/png"])
        controls.scale.value = False  # ended: the snapshot is written again
        after = base64.b64decode(cell.outputs()[2]["image/png"])
        assert after != before and after == dashboard.png
        assert dashboard.renderer is None  # let go again
        controls.metrics.value = "nope"  # no such metric: every panel, not an empty plot
        assert base64.b64decode(cell.outputs()[2]["image/png"]) == dashboard.png != after
    finally:
        dashboard.close()
