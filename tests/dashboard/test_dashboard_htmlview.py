"""`display="html"` (issue 29): the dashboard as one HTML output, updated in place
through its display id while training (throttled), ending with the whole metric
table and the final plot; no widget output at all.  And the hint a blocking
fit's dashboard shows where its buttons cannot answer (ipykernel 6)."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest
from dashboard_helpers import FakeRun
from test_dashboard_callback import train

from nbtrain.dashboard import display, htmlview, notebook
from nbtrain.dashboard.callback import Dashboard
from nbtrain.dashboard.cell import STOP_HINT
from nbtrain.dashboard.throttle import Throttle

WIDGET = notebook.WIDGET_MIMETYPE


@pytest.fixture
def html_bound(clock, cell, comm_log):
    """A dashboard bound to a FakeRun and shown as HTML (`nbtrain.fit(display="html")`)."""
    run = FakeRun(epochs=3)
    dashboard = Dashboard.for_run(run, html=True, throttle=Throttle(clock=clock))
    yield run, dashboard
    dashboard.close()


def rows(html: str) -> int:
    table = html[html.index('class="nbtrain-metrics"'):]
    return len(re.findall(r"<tr", table)) - 1  # less the header row


def test_one_html_output_updated_in_place_while_training(html_bound, cell, clock, monkeypatch):
    run, dashboard = html_bound
    assert len(cell.order) == 1  # one output, no widget, no snapshot outputs
    (shown,) = cell.outputs()
    assert WIDGET not in shown and 'class="nbtrain-html"' in shown["text/html"]
    run.set("running")
    texts = []
    original = cell.update

    def update(display_id, bundle, metadata=None):
        assert display_id == cell.order[0]  # the one output, by its display id
        texts.append(bundle["text/html"])
        original(display_id, bundle, metadata)

    monkeypatch.setattr(notebook, "update", update)  # follow each update
    train(dashboard, clock, epochs=3, steps=50, dt=0.02, end=False)  # 3 s of (fake) time
    assert len(cell.order) == 1
    live = texts[-1]
    assert "epoch 3 / 3" in live and "steps/s" in live
    assert htmlview.RUN_HINT in live and "nbtrain-state-running" in live
    assert 'img class="nbtrain-plot"' in live  # the plot once drawn, as an image
    # throttled: about one update per MIN_INTERVAL of training, not one per batch
    assert 3 <= len(texts) <= 3 / htmlview.MIN_INTERVAL + 4, len(texts)


def test_it_ends_with_the_whole_table_and_the_final_plot(html_bound, cell, clock):
    run, dashboard = html_bound
    run.set("running")
    train(dashboard, clock, epochs=3, steps=20)
    run.set("finished")
    (final,) = cell.outputs()
    html = final["text/html"]
    assert "nbtrain-state-finished" in html and htmlview.RUN_HINT not in html
    assert rows(html) == 3  # every epoch
    png = re.search(r'src="data:image/png;base64,([^"]+)"', html).group(1)
    assert base64.b64decode(png) == dashboard.png  # the final plot
    assert final["text/plain"].startswith("finished - epoch 3 / 3")
    assert WIDGET not in final


def test_a_long_run_shows_every_epoch_at_the_end_and_the_last_ones_while_training(
        cell, clock, comm_log):
    run = FakeRun(epochs=14)
    dashboard = Dashboard.for_run(run, html=True, throttle=Throttle(clock=clock))
    try:
        run.set("running")
        train(dashboard, clock, epochs=14, steps=5, val=False, end=False)
        dashboard.presenter.update(force=True)
        assert rows(cell.outputs()[0]["text/html"]) <= 14  # the live table: last rows + room
        dashboard.on_train_end()
        run.set("finished")
        assert rows(cell.outputs()[0]["text/html"]) == 14
    finally:
        dashboard.close()


def test_a_state_change_is_shown_at_once(html_bound, cell, clock):
    run, dashboard = html_bound
    run.set("running")
    train(dashboard, clock, epochs=1, steps=5, end=False)
    before = cell.updates
    run.set("paused")  # no time passed: not throttled away
    assert cell.updates == before + 1
    assert "nbtrain-state-paused" in cell.outputs()[0]["text/html"]


def test_attach_display_html_shows_no_widget(monkeypatch, cell, comm_log):
    run = FakeRun(epochs=2)
    shown = display.attach_display(run, "html")
    try:
        assert isinstance(shown, Dashboard) and shown.run is run
        assert len(cell.outputs()) == 1 and WIDGET not in cell.outputs()[0]
    finally:
        shown.close()


def test_nbtrain_fit_display_html_end_to_end(cell):
    import keras

    import nbtrain

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    x, y = np.zeros((32, 3), "float32"), np.zeros((32, 1), "float32")
    run = nbtrain.fit(model, x, y, batch_size=8, epochs=2, display="html")
    run.wait()
    assert run.state == "finished"
    (final,) = cell.outputs()
    html = final["text/html"]
    assert "nbtrain-state-finished" in html and rows(html) == 2
    assert "mae" in html and 'img class="nbtrain-plot"' in html


def test_a_blocking_fit_where_clicks_cannot_arrive_says_how_to_stop(
        monkeypatch, cell, clock, comm_log):
    monkeypatch.setattr(notebook, "in_notebook", lambda: True)  # a kernel, not ipykernel 7
    monkeypatch.delenv(notebook.ENV_DISPLAY, raising=False)
    monkeypatch.setattr(notebook, "frontend", lambda: notebook.JUPYTER)
    dashboard = Dashboard(throttle=Throttle(clock=clock))
    try:
        train(dashboard, clock, epochs=1, steps=5)
        assert ("warning", STOP_HINT) in list(dashboard.messages)
        assert dashboard.view.controls.layout.display == "none"  # no buttons offered
    finally:
        dashboard.close()


def test_a_plain_fit_in_colab_gets_the_html_output(monkeypatch, cell, clock, comm_log):
    monkeypatch.setattr(notebook, "in_notebook", lambda: True)
    monkeypatch.delenv(notebook.ENV_DISPLAY, raising=False)
    monkeypatch.setenv("COLAB_RELEASE_TAG", "x")
    dashboard = Dashboard(throttle=Throttle(clock=clock))
    try:
        train(dashboard, clock, epochs=1, steps=5)
        (final,) = cell.outputs()
        assert WIDGET not in final and "nbtrain-state-finished" in final["text/html"]
        assert htmlview.CELL_HINT not in final["text/html"]  # only while training
    finally:
        dashboard.close()


@pytest.mark.parametrize("clicks_reach_busy_cells", [False, True])
def test_a_runs_dashboard_says_how_to_stop_where_busy_cells_take_no_clicks(
        monkeypatch, cell, comm_log, clicks_reach_busy_cells):
    import sys

    from nbtrain import kernel_events

    monkeypatch.setattr(notebook, "in_notebook", lambda: True)
    monkeypatch.setattr(notebook, "frontend", lambda: notebook.JUPYTER)
    monkeypatch.delenv(notebook.ENV_DISPLAY, raising=False)
    monkeypatch.setitem(sys.modules, "ipykernel", sys.modules.get("ipykernel") or object())
    events = object() if clicks_reach_busy_cells else None  # ipykernel 7 / 6
    monkeypatch.setattr(kernel_events, "current", lambda: events)
    run = FakeRun(epochs=2)
    shown = display.attach_display(run)
    try:
        hinted = ("warning", display.WAIT_HINT) in list(shown.messages)
        assert hinted is not clicks_reach_busy_cells
    finally:
        shown.close()
    html = display.attach_display(FakeRun(epochs=2), "html")  # says it in its own words
    try:
        assert not html.messages
    finally:
        html.close()
