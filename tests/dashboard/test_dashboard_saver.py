"""The dashboard's `SnapshotSaver` (issue 12, a page reloaded before the end):
its synced traits carry exactly what the kernel writes into the snapshot
outputs, set when the run ends and emptied when it goes on, nothing per batch;
the snapshot outputs carry the metadata the page's half finds them by.  No
kernel, no browser (tests/browser/test_reload_browser.py runs the page's half).
"""

from __future__ import annotations

import json

import pytest
from dashboard_helpers import FakeRun
from test_dashboard_callback import train

from nbtrain.dashboard import notebook
from nbtrain.dashboard.callback import Dashboard, display_run
from nbtrain.dashboard.saver import SnapshotSaver
from nbtrain.dashboard.throttle import Throttle


@pytest.fixture
def bound(clock, cell, comm_log):
    """A dashboard bound to a FakeRun and displayed (as `nbtrain.fit` does)."""
    run = FakeRun(epochs=2)
    dashboard = Dashboard.for_run(run, throttle=Throttle(clock=clock))
    yield run, dashboard
    dashboard.close()


def sent_by(comm_log, widget) -> list[dict]:
    """The state updates `widget` sent to the front-end."""
    return [state for comm_id, state in comm_log if comm_id == widget.comm.comm_id]


def test_the_saver_is_a_hidden_part_of_the_view_with_the_dashboards_key(bound, cell):
    _, dashboard = bound
    view = dashboard.view
    saver = view.saver
    assert isinstance(saver, SnapshotSaver) and saver not in view.root.children
    # core widgets only in the dashboard's box; the saver is in no output either
    assert len(cell.outputs()) == 3
    assert saver.model_id not in json.dumps(cell.outputs())
    pending = [view.root]
    while pending:
        widget = pending.pop()
        assert type(widget).__module__.startswith("ipywidgets."), type(widget)
        pending.extend(getattr(widget, "children", ()))
    assert saver.layout.display == "none" and "nbtrain-saver" in saver._dom_classes
    assert saver.key == view.key
    state = saver.get_state()  # what the front-end gets: an inline ES module, no URL
    esm = state["_esm"]
    assert "export default" in esm and "import" not in esm and "http" not in esm
    assert state["table"] == {} and state["plot"] == {}
    ids = cell.order
    assert cell.metadata[ids[0]] is None  # the widget output carries no mark
    assert cell.metadata[ids[1]] == {"nbtrain": {"snapshot": "table", "key": view.key}}
    assert cell.metadata[ids[2]] == {"nbtrain": {"snapshot": "plot", "key": view.key}}


def test_set_at_the_end_emptied_on_continue_nothing_per_batch(bound, cell, clock, comm_log):
    run, dashboard = bound
    saver = dashboard.view.saver
    run.set("running")
    train(dashboard, clock, epochs=2, end=False)
    assert sent_by(comm_log, saver) == []  # nothing while training, whatever the batches
    dashboard.on_train_end()
    run.set("finished")
    _, table, plot = cell.outputs()
    assert "finished" in table["text/html"] and "image/png" in plot
    assert saver.table == table and saver.plot == plot  # what the kernel wrote, exactly
    assert sent_by(comm_log, saver) == [{"table": table, "plot": plot}]  # in one message
    marks = [cell.metadata[i] for i in cell.order[1:]]
    assert [m["nbtrain"]["snapshot"] for m in marks] == ["table", "plot"]  # kept by updates

    run.resume(epochs=4)  # continue: the snapshot empties, on every page
    assert cell.outputs()[1:] == [{}, {}]
    assert saver.table == {} and saver.plot == {}
    assert sent_by(comm_log, saver)[-1] == {"table": {}, "plot": {}}
    assert [cell.metadata[i] for i in cell.order[1:]] == marks
    before = len(sent_by(comm_log, saver))
    train(dashboard, clock, epochs=4, start=2)
    assert len(sent_by(comm_log, saver)) == before
    run.set("finished")
    _, table, plot = cell.outputs()
    assert "epoch 4 / 4" in table["text/plain"]
    assert saver.table == table and saver.plot == plot


def test_set_on_stop_and_on_failure(bound, cell, clock):
    run, dashboard = bound
    saver = dashboard.view.saver
    run.set("running")
    train(dashboard, clock, epochs=1, end=False)
    run.set("stopping")
    assert saver.table == {}  # not ended yet
    run.set("stopped")
    assert "stopped" in saver.table["text/html"] and saver.table == cell.outputs()[1]
    run.set("running")
    assert saver.table == {} and saver.plot == {}
    run.exception = ValueError("the data broke")
    run.set("failed")
    assert "ValueError: the data broke" in saver.table["text/html"]
    assert saver.table == cell.outputs()[1] and saver.plot == cell.outputs()[2]


def test_every_view_of_the_dashboard_is_marked_with_one_key(bound, cell, clock):
    run, dashboard = bound
    display_run(run)  # a second view of the same widgets, with its own snapshot outputs
    key = dashboard.view.saver.key
    marks = [cell.metadata[i] for i in cell.order]
    assert marks == [None, notebook.snapshot_metadata("table", key),
                     notebook.snapshot_metadata("plot", key)] * 2
    run.set("running")
    train(dashboard, clock, epochs=2)
    run.set("finished")
    outputs = cell.outputs()
    assert outputs[1] == outputs[4] == dashboard.view.saver.table


def test_a_plot_options_change_after_the_end_sets_it_again(bound, cell, clock):
    run, dashboard = bound
    run.set("running")
    train(dashboard, clock, epochs=2)
    run.set("finished")
    first = dashboard.view.saver.plot
    dashboard.presenter.plot_options.log_y = True
    dashboard.presenter.replot()
    assert dashboard.view.saver.plot == cell.outputs()[2] != first


def test_set_snapshot_sends_only_a_change(comm_log):
    saver = SnapshotSaver("k")
    try:
        saver.set_snapshot({"text/plain": "a"}, None)
        saver.set_snapshot({"text/plain": "a"}, None)
        assert sent_by(comm_log, saver) == [{"table": {"text/plain": "a"}}]  # plot: still {}
        saver.set_snapshot(None, {"image/png": "iVBO"})
        assert sent_by(comm_log, saver)[-1] == {"table": {}, "plot": {"image/png": "iVBO"}}
        assert len(sent_by(comm_log, saver)) == 2
    finally:
        saver.close()


def test_snapshot_metadata():
    assert notebook.snapshot_metadata("table", "3f2a") == {
        "nbtrain": {"snapshot": "table", "key": "3f2a"}}
    assert notebook.snapshot_metadata("plot", None) is None
