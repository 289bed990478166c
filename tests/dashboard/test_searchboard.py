"""The search dashboard (`nbtrain.dashboard.searchboard`) driven by a fake search with
`nbtrain.search`'s API: header, ETA, trials table best first, buttons, the current
trial's run dashboard embedded, overlaid curves and the static snapshot."""

from __future__ import annotations

import base64
from types import SimpleNamespace

import pytest
from dashboard_helpers import FakeClock, FakeRun

from nbtrain.dashboard.searchboard import SearchDashboard, trials_html
from nbtrain.tuning.searchstate import CONTROLS


class FakeSearch:
    """`nbtrain.search`'s object, driven by hand: trials are started and ended by the test."""

    def __init__(self, max_trials: int = 3, direction: str = "min"):
        self.state = "running"
        self.trials: list = []
        self.current = None
        self.calls: list = []
        self.listeners: list = []
        objective = SimpleNamespace(name="val_loss", direction=direction)
        self.tuner = SimpleNamespace(oracle=SimpleNamespace(max_trials=max_trials,
                                                            objective=objective))

    def add_listener(self, fn):
        self.listeners.append(fn)
        return lambda: self.listeners.remove(fn)

    def allowed_actions(self):  # nbtrain.Search's table, a trial always current
        skip = {"skip"} if self.state in ("running", "paused") else set()
        return set(CONTROLS.get(self.state, ())) | skip

    def _tell(self, event, detail=None):
        for fn in list(self.listeners):
            fn(self, event, detail)

    def start_trial(self, **values):
        run = FakeRun(epochs=2)
        trial = SimpleNamespace(trial_id=f"{len(self.trials):02d}", hyperparameters=values,
                                status="RUNNING", score=None, run=run)
        self.trials.append(trial)
        self._tell("trial_begin", trial)
        self._tell("run", run)  # before it starts: its dashboard is one of its callbacks
        self.current = run
        run.set("running")
        return trial

    def end_trial(self, score, losses=(1.0, 0.5), status="COMPLETED"):
        trial = self.trials[-1]
        trial.run.history.epoch = list(range(len(losses)))
        trial.run.history.history = {"loss": list(losses),
                                     "val_loss": [v + 0.1 for v in losses]}
        trial.run.set("finished")
        trial.status, trial.score = status, score
        self.current = None
        self._tell("trial_end", trial)

    def set(self, state):
        old, self.state = self.state, state
        self._tell("state", (old, state))

    def pause(self):
        self.calls.append("pause")
        self.set("paused")

    def resume(self):
        self.calls.append("resume")
        self.set("running")

    def stop(self):
        self.calls.append("stop")
        self.set("stopped")

    def skip(self):
        self.calls.append("skip")
        if self.current is None:
            raise RuntimeError("no trial in progress")
        self.end_trial(0.9, losses=(1.0,), status="STOPPED")


@pytest.fixture
def make(comm_log):
    made = []

    def build(search, **options):
        board = SearchDashboard(search, **options)
        board.follow()
        made.append(board)
        return board

    yield build
    for board in made:
        board.close()


def shown(widget) -> bool:
    return widget.layout.display != "none"


def row_ids(table_html: str) -> list[str]:
    import re

    return re.findall(r'<tr class="nbtrain-search-row[^"]*"[^>]*><td[^>]*>'
                      r'(?:<span[^>]*>[^<]*</span> )?(\d+)', table_html)


def test_header_counts_trials_and_the_eta_comes_from_the_trials_times(make):
    clock = FakeClock()
    search = FakeSearch(max_trials=3)
    board = make(search, plot=False, clock=clock)
    view = board.view
    assert "nbtrain-search" in view.root._dom_classes
    assert "nbtrain-state-running" in view.state._dom_classes
    search.start_trial(units=8)
    assert view.progress.value.startswith("trial 1 of 3")
    assert "ETA" not in view.time.value  # no trial ended: no time to go by
    clock.advance(10)
    search.end_trial(0.5)
    search.start_trial(units=16)
    clock.advance(4)
    board.refresh()
    assert view.progress.value == "trial 2 of 3 · 1 done"
    assert (view.bar.value, view.bar.max) == (1, 3)
    # two trials left at 10 s each, 4 s of the current one spent
    assert view.time.value == "elapsed 0:14 · ETA 0:16"
    search.pause()
    clock.advance(100)
    search.resume()
    assert view.time.value.startswith("elapsed 0:14")  # a pause is not the search's time
    search.end_trial(0.4)
    search.set("finished")
    assert view.progress.value == "2 of 3 trials done"
    assert "ETA" not in view.time.value and "nbtrain-state-finished" in view.state._dom_classes


def test_trials_table_best_first_with_hyperparameters_objective_and_status(make):
    search = FakeSearch(direction="min")
    board = make(search, plot=False)
    for units, score in ((8, 0.7), (16, 0.3), (32, 0.5)):
        search.start_trial(units=units, lr=1e-3)
        search.end_trial(score)
    search.start_trial(units=64, lr=1e-2)
    table = board.view.trials.value
    assert 'class="nbtrain-search-trials"' in table
    assert row_ids(table) == ["01", "02", "00", "03"]  # best first, the running one last
    assert "<th" in table and ">units<" in table and ">lr<" in table and ">val_loss<" in table
    assert "nbtrain-search-best" in table.split("</tr>")[1]  # the first body row
    assert "completed" in table and "running" in table and "nbtrain-search-current-row" in table
    assert row_ids(trials_html(search.trials, "accuracy", "max")) == ["00", "02", "01", "03"]


def test_buttons_show_what_is_legal_and_call_the_search(make):
    search = FakeSearch()
    board = make(search, plot=False)
    view = board.view
    search.start_trial(units=8)
    assert [shown(b) for b in (view.pause, view.stop, view.skip)] == [True, True, True]
    assert "nbtrain-pause" in view.pause._dom_classes
    assert "nbtrain-search-skip" in view.skip._dom_classes
    view.skip.click()
    assert search.calls == ["skip"] and search.trials[0].status == "STOPPED"
    search.start_trial(units=16)
    view.pause.click()
    assert search.calls[-1] == "pause" and view.pause.description == "Resume"
    assert shown(view.skip)  # a paused search may skip its trial
    view.pause.click()
    assert search.calls[-1] == "resume" and view.pause.description == "Pause"
    view.stop.click()
    assert search.calls[-1] == "stop" and view.pause.description == "Resume"
    assert not shown(view.stop) and not shown(view.skip)
    search.set("finished")
    assert not shown(view.controls)


def test_skip_shows_once_the_next_trial_trains_with_no_event_of_the_search(make):
    class Search(FakeSearch):  # as nbtrain.search: skip only while a trial's Run trains
        def allowed_actions(self):
            allowed = {"running": {"pause", "stop"}}.get(self.state, set())
            return allowed | ({"skip"} if self.current is not None else set())

    search = Search()
    board = make(search, plot=False)
    search.start_trial(units=8)
    search.end_trial(0.5)
    assert not shown(board.view.skip)
    trial = search.start_trial(units=16)  # the state stays running: no event after current
    hooks = [cb for cb in trial.run.callbacks if hasattr(cb, "first")]
    for hook in hooks:  # the trial's first batch
        hook.on_train_batch_end(0)
    assert shown(board.view.skip)


def test_a_failed_search_says_why_in_the_view_and_the_snapshot(make, cell):
    search = FakeSearch()
    board = make(search, plot=False)
    board.display()
    search.start_trial(units=8)
    try:
        raise ValueError("build() needs an Input")
    except ValueError as exc:
        search.exception = exc
    search.set("failed")
    assert "build() needs an Input" in board.view.messages.value
    assert not shown(board.view.controls)
    table = cell.outputs()[1]
    assert "build() needs an Input" in table["text/html"]
    assert "build() needs an Input" in table["text/plain"]


def test_a_refused_click_is_shown_as_a_message(make):
    import warnings

    search = FakeSearch()
    board = make(search, plot=False)
    board.view.skip.click()  # no trial in progress: raises
    assert "no trial in progress" in board.view.messages.value
    search.stop = lambda: warnings.warn("search.stop() does nothing: the search is stopping.",
                                        RuntimeWarning, stacklevel=2)  # as nbtrain.search
    board.view.stop.click()
    assert "search.stop() does nothing" in board.view.messages.value
    board.view.pause.click()  # done: the messages clear
    assert board.view.messages.value == "" and search.calls[-1] == "pause"


def test_the_current_trial_shows_its_run_dashboard_without_its_run_buttons(make):
    search = FakeSearch()
    board = make(search, plot=False)
    assert not shown(board.view.current)
    first = search.start_trial(units=8, lr=0.001)
    inner = board.trial_board
    assert inner is not None and inner.run is first.run
    assert board.view.current.children == (inner.view.root,)
    assert inner.view.controls not in inner.view.root.children  # the search's buttons act
    assert inner in first.run.callbacks  # it is the run's own live dashboard
    assert "current trial 00" in board.view.title.value and "units=8" in board.view.title.value
    search.end_trial(0.5)
    assert not shown(board.view.current)
    second = search.start_trial(units=16, lr=0.01)
    assert board.trial_board.run is second.run and board.trial_board is not inner


def test_every_trials_curves_overlaid_and_redrawn_as_trials_end(make):
    search = FakeSearch()
    board = make(search)
    assert not shown(board.view.plot)  # nothing to draw yet
    search.start_trial(units=8)
    search.end_trial(0.5, losses=(1.0, 0.5))
    assert board.worker.wait_idle()  # drawn on the plot worker's thread
    first = board.view.plot.value
    assert shown(board.view.plot) and first[:8] == b"\x89PNG\r\n\x1a\n"
    search.start_trial(units=16)
    search.end_trial(0.3, losses=(0.8, 0.3))
    assert board.worker.wait_idle()
    assert board.view.plot.value != first
    # no legend on the curves: the table shows each trial's colour, as compare assigns them
    from nbtrain.dashboard.compare import COLORS
    from nbtrain.dashboard.searchboard import trial_colors

    assert trial_colors(search.trials) == {"00": COLORS[0], "01": COLORS[1]}
    rows = board.view.trials.value.split("</tr>")[1:3]  # best first: trial 01, then 00
    assert f"color:{COLORS[1]}" in rows[0] and f"color:{COLORS[0]}" in rows[1]


def test_the_snapshot_is_written_when_the_search_ends_and_cleared_when_it_goes_on(make, cell):
    search = FakeSearch(max_trials=1)
    board = make(search)
    board.display()
    view_out, table_out, plot_out = cell.outputs()
    assert table_out == {} and plot_out == {}
    search.start_trial(units=8)
    search.end_trial(0.25)
    search.set("finished")
    _, table_out, plot_out = cell.outputs()
    assert "nbtrain-snapshot" in table_out["text/html"]
    assert "nbtrain-search-trials" in table_out["text/html"]
    assert "trial 00: units=8  val_loss 0.25  completed" in table_out["text/plain"]
    assert base64.b64decode(plot_out["image/png"]) == board.view.plot.value
    search.set("running")  # e.g. a stopped search resumed
    assert cell.outputs()[1:] == [{}, {}]


def test_hyperband_bookkeeping_is_not_a_column_but_its_epochs_are(make):
    search = FakeSearch()
    board = make(search, plot=False)
    search.start_trial(units=8, **{"tuner/epochs": 2, "tuner/initial_epoch": 0,
                                   "tuner/bracket": 1})
    table = board.view.trials.value
    assert ">units<" in table and ">epochs<" in table and "tuner/" not in table


def test_outside_a_notebook_the_search_is_lines_of_text(monkeypatch):
    from nbtrain.dashboard import notebook
    from nbtrain.dashboard.searchboard import SearchText, attach_search_display

    monkeypatch.setattr(notebook, "in_notebook", lambda: False)
    search = FakeSearch(max_trials=2)
    assert attach_search_display(search, display=False) is None and not search.listeners
    lines: list[str] = []
    text = attach_search_display(search)
    assert isinstance(text, SearchText)
    text.write = lines.append
    search.start_trial(units=8)
    search.end_trial(0.25)
    search.set("finished")
    assert lines == ["trial 00 begins: units=8", "trial 00 completed: val_loss 0.25 (1 of 2 done)",
                     "search finished"]
    text.close()
    assert not search.listeners


# -- the search as one HTML output (issue 29: Colab and Kaggle) -----------------------------

WIDGET = "application/vnd.jupyter.widget-view+json"


def test_a_search_as_one_html_output_updated_in_place(make, cell):
    from nbtrain.dashboard.htmlview import MIN_INTERVAL
    from nbtrain.dashboard.searchboard import SEARCH_HINT

    clock = FakeClock()
    search = FakeSearch(max_trials=2)
    board = make(search, clock=clock)
    board.display(html=True)
    (shown_,) = cell.outputs()  # one output, no widget, no snapshot outputs
    assert WIDGET not in shown_ and 'class="nbtrain-html nbtrain-search"' in shown_["text/html"]
    assert SEARCH_HINT in shown_["text/html"] and "no trial yet" in shown_["text/html"]

    clock.advance(MIN_INTERVAL)
    search.start_trial(units=8)  # the trial's dashboard updates it too (its new state)
    live = cell.outputs()[0]["text/html"]
    assert "current trial 00" in live and "units=8" in live
    assert 'class="nbtrain-search-current"' in live and "epoch 1 / 2" in live  # the trial's view
    assert "trial 1 of 2" in live and "nbtrain-state-running" in live

    search.pause()  # a change of state: at once
    assert "nbtrain-state-paused" in cell.outputs()[0]["text/html"]
    search.resume()
    search.end_trial(0.25, losses=(1.0, 0.5))
    search.set("finished")
    (final,) = cell.outputs()
    html = final["text/html"]
    assert "nbtrain-state-finished" in html and "2 of 2" not in html and "1 of 2 trials" in html
    assert 'img class="nbtrain-search-plot"' in html  # the final curves
    assert SEARCH_HINT not in html and "nbtrain-search-current" not in html
    assert "trial 00: units=8  val_loss 0.25  completed" in final["text/plain"]
    assert len(cell.order) == 1 and cell.updates >= 3


def fake_kernel(monkeypatch, **environment):
    """A notebook kernel (no IPython display formatter) with these variables set."""
    import IPython

    from nbtrain.dashboard import notebook

    for name in ("COLAB_RELEASE_TAG", "COLAB_GPU", "KAGGLE_KERNEL_RUN_TYPE", "KAGGLE_URL_BASE",
                 "VSCODE_PID", "VSCODE_CWD", notebook.ENV_DISPLAY):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(IPython, "get_ipython",
                        lambda: SimpleNamespace(kernel=object(), user_ns={}))


@pytest.mark.parametrize(("environment", "html"), [
    ({"COLAB_RELEASE_TAG": "x"}, True), ({"KAGGLE_KERNEL_RUN_TYPE": "Interactive"}, True),
    ({}, False), ({"COLAB_RELEASE_TAG": "x", "NBTRAIN_DISPLAY": "dashboard"}, False)])
def test_the_search_display_is_html_where_the_frontend_gets_html(monkeypatch, cell, comm_log,
                                                                 environment, html):
    from nbtrain.dashboard.searchboard import attach_search_display, display_search

    fake_kernel(monkeypatch, **environment)
    search = FakeSearch()
    board = attach_search_display(search)
    again = display_search(search)  # `search` on a cell's last line: the same display
    try:
        outputs = cell.outputs()
        if html:
            assert len(outputs) == 2 and all(WIDGET not in o for o in outputs)
            assert all("nbtrain-search" in o["text/html"] for o in outputs)
        else:
            assert len(outputs) == 6 and WIDGET in outputs[0] and WIDGET in outputs[3]
    finally:
        board.close()
        again.close()


def test_a_real_search_shown_to_the_end_and_listed_by_the_magic(comm_log, ipython, tmp_path,
                                                                capsys, monkeypatch):
    keras_tuner = pytest.importorskip("keras_tuner")
    monkeypatch.setenv("NBTRAIN_DISPLAY", "dashboard")  # no kernel here: text by default
    import keras
    import numpy as np

    from nbtrain.tuning import Search

    def build(hp):
        model = keras.Sequential([keras.Input((4,)),
                                  keras.layers.Dense(hp.Int("units", 2, 8, step=2)),
                                  keras.layers.Dense(1)])
        model.compile(keras.optimizers.SGD(hp.Choice("learning_rate", [0.01, 0.05])), "mse")
        return model

    x = np.random.default_rng(0).random((32, 4)).astype("float32")
    tuner = keras_tuner.RandomSearch(build, objective="val_loss", max_trials=2, seed=1,
                                     directory=str(tmp_path), overwrite=True)
    search = Search(tuner, x, x.sum(1), epochs=2, validation_split=0.25, batch_size=8)
    search.set_tuner_verbose(0)
    board = SearchDashboard(search)
    board.follow()
    try:
        search.start()
        search.wait(timeout=120)
        view = board.view
        assert search.state == "finished" and "nbtrain-state-finished" in view.state._dom_classes
        assert view.progress.value == "2 of 2 trials done"
        scores = {t.trial_id: t.score for t in search.trials}
        best = min(scores, key=scores.get)
        assert row_ids(view.trials.value)[0] == best  # the tuner's best, first
        assert "learning_rate" in view.trials.value and "tuner/" not in view.trials.value
        assert shown(view.plot) and not shown(view.current)
        assert board.trial_board.run is search.trials[-1].run  # each trial's run was shown
        ipython.run_line_magic("load_ext", "nbtrain")
        ipython.user_ns["s"] = search
        ipython.run_line_magic("nbtrain", "search")
        out = capsys.readouterr().out.splitlines()
        assert out[0].split() == ["search", "state", "trials", "best", "best", "trial", "current"]
        assert out[1].split() == ["s", "finished", "2/2", "val_loss", f"{scores[best]:.4g}",
                                  best, "—"]
        ipython.run_line_magic("nbtrain", "search s")  # its dashboard again, in this cell
        assert "nbtrain dashboard" in capsys.readouterr().out  # the widget's text fallback
        from nbtrain.dashboard.searchboard import register_search_display

        register_search_display(ipython)  # as attach_search_display does in a notebook
        ipython.run_cell("s")  # a search as a cell's result: its dashboard, not its repr
        out = capsys.readouterr().out
        assert "nbtrain dashboard" in out and "<nbtrain.Search" not in out
        with pytest.raises(Exception, match="no search named 'nope'"):
            ipython.run_line_magic("nbtrain", "search nope")
    finally:
        ipython.user_ns.pop("s", None)
        board.close()
        search.close()
