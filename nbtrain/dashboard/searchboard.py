"""`SearchDashboard`: the live view of a hyperparameter search (`nbtrain.search`).

It shows, for a search object that has what `ControlledSearch` declares:

- a header: the search's state (the run states' badge, CSS `nbtrain-state`),
  the trials done out of `max_trials` (`nbtrain-search-progress`, a bar
  `nbtrain-search-bar`), the elapsed time and an ETA from the mean time of the
  trials ended (`nbtrain-time`);
- Pause/Resume, Stop and Skip trial (`nbtrain-pause`, `nbtrain-stop`,
  `nbtrain-search-skip`), the legal ones only; a click calls the search's
  method on the kernel's main thread, which a busy cell blocked in
  `search.wait()` handles as it does a run's (`nbtrain.kernel_events`);
- the trials table (`nbtrain-search-trials`): hyperparameter values, objective,
  status, best first;
- every trial's epoch curves overlaid (`img.nbtrain-search-plot`, drawn by
  `nbtrain.dashboard.compare`), redrawn when a trial ends and, at most every
  `PLOT_PERIOD` seconds, when the current trial ends an epoch;
- the current trial live: its run's own `Dashboard` (bars, table, plot and the
  learning-rate row, which steers that trial), without its run buttons (the
  search's buttons act on the trial in progress), in `nbtrain-search-current`.

When the search ends, a static snapshot (state, trials table and overlaid
curves; `nbtrain-snapshot`) is written into the cell's outputs, as the run
dashboard's `Snapshot` does, so a saved notebook shows the search without a
kernel; the live view hides it where widgets render.

Threads: the search calls its listeners from its own thread; they only set
widget values, under one lock.
"""

from __future__ import annotations

import base64
import html
import io
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import ipywidgets as widgets
import keras

from nbtrain.dashboard import format as fmt
from nbtrain.dashboard import notebook
from nbtrain.dashboard.layout import PAUSE_TIP, RESUME_TIP, set_traits, view_parts
from nbtrain.dashboard.plotworker import PlotWorker
from nbtrain.run.state import ACTIVE, ENDED, FAILED, PAUSED

PLOT_PERIOD = 2.0
"""Seconds at least between two redraws of the overlaid curves within a trial."""
SKIP_TIP = "End the trial in progress now (recorded with what it reached); the next one starts"
STOP_TIP = "Stop the search after the current batch (Resume goes on with it)"
_CELL = ("padding:2px 10px;line-height:18px;text-align:right;white-space:nowrap;"
         "font-variant-numeric:tabular-nums")
_HEAD = "padding:2px 10px;line-height:17px;text-align:right;border-bottom:1px solid #ccc"
_STRIPE = "background:rgba(128,128,128,0.08)"
_CURRENT = "color:#757575;font-style:italic"


class ControlledSearch(Protocol):
    """What the search dashboard uses of a search (`nbtrain.search`'s object).

    Optional: `max_trials` and `tuner` (its oracle's objective and `max_trials`).
    """

    state: str
    trials: Sequence[Any]
    current: Any

    def add_listener(self, fn: Callable[..., Any]) -> Callable[[], None]: ...

    def pause(self) -> Any: ...

    def resume(self) -> Any: ...

    def stop(self) -> Any: ...

    def skip(self) -> Any: ...

    def allowed_actions(self) -> set[str]: ...


def _classed(cls: type, *classes: str, **traits: Any) -> widgets.DOMWidget:
    return cls(_dom_classes=classes, **traits)


def _show(widget: widgets.DOMWidget, shown: bool) -> int:
    return set_traits(widget.layout, display=None if shown else "none")


# -- reading a search and its trials (duck-typed) ------------------------------------------

def allowed_actions(search: Any) -> set[str]:
    """The actions legal now, as the search says (`allowed_actions()`, whose table is
    `nbtrain.tuning.searchstate.CONTROLS`); none when it cannot tell."""
    try:
        return set(search.allowed_actions())
    except Exception:  # noqa: BLE001 - a search that cannot tell shows no control
        return set()


def max_trials(search: Any) -> int | None:
    """The search's `max_trials` (its own, else its tuner's oracle's), or None."""
    value = getattr(search, "max_trials", None)
    if value is None:
        oracle = getattr(getattr(search, "tuner", None), "oracle", None)
        value = getattr(oracle, "max_trials", None)
    return int(value) if value else None


def objective(search: Any) -> tuple[str, str]:
    """The objective's name and direction (`"min"` or `"max"`) from the tuner's oracle."""
    oracle = getattr(getattr(search, "tuner", None), "oracle", None)
    goal = getattr(oracle, "objective", None)
    name = getattr(goal, "name", None) or "score"
    direction = getattr(goal, "direction", None) or "min"
    return str(name), str(direction)


def trial_values(trial: Any) -> dict:
    """A trial record's hyperparameter values, as a dict (without Hyperband's
    bookkeeping, `tuner/bracket` and the like, but its `tuner/epochs` as `epochs`)."""
    values = getattr(trial, "hyperparameters", None)
    if values is None:
        values = getattr(trial, "values", None)
    if not isinstance(values, dict):  # a keras_tuner HyperParameters
        values = getattr(values, "values", None)
    if not isinstance(values, dict):
        return {}
    out = {k: v for k, v in values.items() if not str(k).startswith("tuner/")}
    if "tuner/epochs" in values and "epochs" not in out:  # Hyperband's budget for the trial
        out["epochs"] = values["tuner/epochs"]
    return out


def trial_status(trial: Any) -> str:
    """A trial record's status, lower case (`running`, `completed`, ...)."""
    return str(getattr(trial, "status", "") or "").lower()


def trial_score(trial: Any) -> float | None:
    """A trial record's score, or None."""
    score = getattr(trial, "score", None)
    try:
        return None if score is None else float(score)
    except (TypeError, ValueError):
        return None


def trial_run(trial: Any) -> Any:
    """A trial record's Run, or None."""
    return getattr(trial, "run", None)


def ranked(trials: Sequence[Any], direction: str = "min") -> list[Any]:
    """Trials best first: scored ones by score (the direction's best first), then the
    one in progress, then the rest, each in their order."""
    sign = -1.0 if direction == "max" else 1.0
    scored = sorted((t for t in trials if trial_score(t) is not None),
                    key=lambda t: sign * trial_score(t))
    live = [t for t in trials if trial_score(t) is None and trial_status(t) == "running"]
    rest = [t for t in trials if trial_score(t) is None and t not in live]
    return scored + live + rest


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def trials_html(trials: Sequence[Any], metric: str, direction: str,
                current: Any = None) -> str:
    """The trials table (`nbtrain-search-trials`): hyperparameters, objective, status,
    best first; the best row marked (`nbtrain-search-best`), the current one italic,
    each drawn trial's colour in the overlaid curves beside its id (`trial_colors`)."""
    order = ranked(trials, direction)
    names: list[str] = []
    for trial in order:
        names += [n for n in trial_values(trial) if n not in names]
    head = "".join(f'<th style="{_HEAD}">{html.escape(h)}</th>'
                   for h in ["trial", *names, metric, "status"])
    rows = []
    colors = trial_colors(trials)
    best = order[0] if order and trial_score(order[0]) is not None else None
    for i, trial in enumerate(order):
        values = trial_values(trial)
        score = trial_score(trial)
        status = trial_status(trial)
        classes = ["nbtrain-search-row"]
        style = _STRIPE if i % 2 else ""
        if trial is best:
            classes.append("nbtrain-search-best")
            style += ";font-weight:bold"
        if trial_run(trial) is not None and trial_run(trial) is current:
            classes.append("nbtrain-search-current-row")
            style += ";" + _CURRENT
        cells = [str(getattr(trial, "trial_id", i)) + (" ★" if trial is best else ""),
                 *(_value_text(values[n]) if n in values else "" for n in names),
                 "—" if score is None else f"{score:.4g}", status or "—"]
        color = colors.get(_key(trial))
        swatch = (f'<span class="nbtrain-search-swatch" style="color:{color};font-style:normal">'
                  "&#9632;</span> ") if color else ""
        rows.append(f'<tr class="{" ".join(classes)}" style="{style}">'
                    + "".join(f'<td style="{_CELL}">{swatch if j == 0 else ""}'
                              f"{html.escape(c)}</td>" for j, c in enumerate(cells))
                    + "</tr>")
    if not rows:
        rows.append(f'<tr><td style="{_CELL}" colspan="{len(names) + 3}">'
                    "no trial yet</td></tr>")
    return ('<table class="nbtrain-search-trials" style="border-collapse:collapse;'
            f'font-size:12px"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}'
            "</tbody></table>")


def _key(trial: Any) -> str:
    return str(getattr(trial, "trial_id", id(trial)))


def _drawn(trial: Any) -> bool:
    history = getattr(trial_run(trial), "history", None)
    return history is not None and bool(getattr(history, "epoch", None))


def trial_colors(trials: Sequence[Any]) -> dict[str, str]:
    """Each drawn trial's colour in the overlaid curves (`compare.COLORS` in the order
    the trials started, counting those with an epoch), by trial id."""
    from nbtrain.dashboard.compare import COLORS

    colors: dict[str, str] = {}
    for trial in trials:
        if _drawn(trial):
            colors[_key(trial)] = COLORS[len(colors) % len(COLORS)]
    return colors


def overlay_png(trials: Sequence[Any], width: float = 8.0,
                panel_height: float = 2.3) -> bytes | None:
    """Every trial's epoch curves overlaid, as `nbtrain.compare` draws runs (one panel
    per metric, a colour per trial, `trial_colors`, validation dashed), on an x axis
    as long as the longest trial's epochs (a first epoch is not drawn at the right
    edge); no legend (with many trials it hides the curves): the trials table shows
    each trial's colour.  None before any epoch."""
    from nbtrain.dashboard import axes as rules
    from nbtrain.dashboard.compare import Comparison, RunCurves

    curves, extent = [], 1
    for trial in trials:
        if not _drawn(trial):
            continue
        run = trial_run(trial)
        curves.append(RunCurves(f"trial {_key(trial)}", run.history))
        extent = max(extent, int(getattr(run, "epochs", 0) or 0), int(curves[-1].epochs[-1]))
    metrics: list[str] = []
    for run_curves in curves:
        metrics += [m for m in run_curves.metrics() if m not in metrics]
    metrics.sort(key=lambda m: m != "loss")
    if not metrics:
        return None
    comparison = Comparison(curves, metrics, width=width, panel_height=panel_height)
    figure = comparison.figure
    dashed = False
    for ax in figure.axes:
        ax.set_xlim(*rules.x_limits(0.0, float(extent)))
        if ax.get_legend() is not None:  # the trials table shows each trial's colour
            ax.get_legend().remove()
        dashed = dashed or any(line.get_linestyle() == "--" for line in ax.get_lines())
    figure.text(0.995, 0.01, "solid: training" + (", dashed: validation" if dashed else "")
                + "; colours as in the trials table", ha="right", va="bottom", fontsize=7,
                color="#616161")
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=figure.dpi)
    return out.getvalue()


class _EpochHook(keras.callbacks.Callback):
    """Added to the current trial's run: its first batch shows the trial as the
    search's current one (the search sends no event when its state stays
    `running` from one trial to the next), its epoch ends redraw the curves."""

    def __init__(self, board: SearchDashboard):
        super().__init__()
        self.board = board
        self.first = True

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.first:
            self.first = False
            self.board.refresh()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.board.refresh(epoch_ended=True)


class SearchView:
    """The widget tree of a search dashboard.

    Attributes:
        root: the `VBox` to display (CSS class `nbtrain-search`).
        key: marks its snapshot outputs (`format.snapshot_css`).
        state, progress, bar, time: the header (`nbtrain-state`,
            `nbtrain-search-progress`, `nbtrain-search-bar`, `nbtrain-time`).
        pause, stop, skip: the buttons (`nbtrain-pause`, `nbtrain-stop`,
            `nbtrain-search-skip`) in `nbtrain-search-controls`.
        messages: what a click could not do (`nbtrain-messages`).
        trials: the trials table (`nbtrain-search-trials` inside).
        plot: the overlaid curves (`nbtrain-search-plot`), hidden before the first.
        title, current: the current trial's heading (`nbtrain-search-current-title`)
            and its run dashboard's box (`nbtrain-search-current`).
        saver: the `SnapshotSaver` (a page reloaded before the end saves the snapshot).
    """

    def __init__(self) -> None:
        w = widgets
        self.key, self.style, self.saver, self.state = view_parts()
        self.progress = _classed(w.HTML, "nbtrain-search-progress",
                                 layout=w.Layout(margin="0 0 0 12px"))
        self.time = _classed(w.HTML, "nbtrain-time", layout=w.Layout(margin="0 0 0 12px"))
        self.header = _classed(w.HBox, "nbtrain-header", "nbtrain-search-header",
                               children=[self.state, self.progress, self.time])
        self.bar = _classed(w.IntProgress, "nbtrain-search-bar", max=1, description="trials")
        self.pause = _classed(w.Button, "nbtrain-pause", description="Pause", icon="pause",
                              tooltip=PAUSE_TIP)
        self.stop = _classed(w.Button, "nbtrain-stop", description="Stop", icon="stop",
                             tooltip=STOP_TIP)
        self.skip = _classed(w.Button, "nbtrain-search-skip", description="Skip trial",
                             icon="step-forward", tooltip=SKIP_TIP)
        self.controls = _classed(w.HBox, "nbtrain-controls", "nbtrain-search-controls",
                                 children=[self.pause, self.stop, self.skip],
                                 layout=w.Layout(min_height="36px"))
        self.messages = _classed(w.HTML, "nbtrain-messages")
        self.trials = _classed(w.HTML, "nbtrain-search-table")
        self.plot = _classed(w.Image, "nbtrain-search-plot", format="png",
                             layout=w.Layout(max_width="100%", display="none",
                                             align_self="flex-start"))
        self.title = _classed(w.HTML, "nbtrain-search-current-title")
        self.current = _classed(w.VBox, "nbtrain-search-current",
                                layout=w.Layout(border="1px solid #e0e0e0", padding="4px",
                                                display="none"))
        self.root = _classed(w.VBox, "nbtrain-search", children=[
            self.style, self.header, self.bar, self.controls, self.messages, self.trials,
            self.plot, self.title, self.current, self.saver])

    def set_state(self, state: str) -> int:
        """The badge, its colour and CSS class `nbtrain-state-<state>`, the bar's colour."""
        classes = tuple(c for c in self.state._dom_classes if not c.startswith("nbtrain-state-"))
        sent = set_traits(self.state, value=fmt.state_html(state),
                          _dom_classes=(*classes, f"nbtrain-state-{state}"))
        return sent + set_traits(self.bar.style, bar_color=fmt.STATE_COLORS.get(state))

    def set_controls(self, allowed: set[str], state: str) -> int:
        """Show the legal buttons only: Pause (Resume while pausing, paused or stopped),
        Stop, Skip trial."""
        if "pause" in allowed:
            sent = set_traits(self.pause, description="Pause", icon="pause", tooltip=PAUSE_TIP)
        else:
            sent = set_traits(self.pause, description="Resume", icon="play", tooltip=RESUME_TIP)
        shown = {"pause": "pause" in allowed or "resume" in allowed,
                 "stop": "stop" in allowed, "skip": "skip" in allowed}
        for name, button in (("pause", self.pause), ("stop", self.stop), ("skip", self.skip)):
            sent += set_traits(button, disabled=not shown[name]) + _show(button, shown[name])
        return sent + _show(self.controls, bool(allowed) or state in ACTIVE)

    def set_plot(self, png: bytes | None) -> int:
        """Show the overlaid curves (None: keep the last)."""
        if png is None:
            return 0
        self.plot.value = png
        return 1 + _show(self.plot, True)

    def close(self) -> None:
        """Close every widget of the search view (not the trial dashboards')."""
        for widget in (self.style, self.saver, self.state, self.progress, self.time,
                       self.header, self.bar, self.pause, self.stop, self.skip, self.controls,
                       self.messages, self.trials, self.plot, self.title, self.current,
                       self.root):
            widget.close()


class _Clock:
    """The search's active time (not while paused or ended) and each trial's times."""

    def __init__(self, clock: Callable[[], float]):
        self.clock = clock
        self.active = 0.0
        self.since: float | None = None
        self.started: dict[Any, float] = {}
        self.seconds: dict[Any, float] = {}

    def state(self, state: str) -> None:
        now = self.clock()
        if self.since is not None:
            self.active += now - self.since
        self.since = now if state in ACTIVE and state != PAUSED else None

    def elapsed(self) -> float:
        extra = self.clock() - self.since if self.since is not None else 0.0
        return self.active + extra

    def trials(self, trials: Sequence[Any]) -> None:
        now = self.clock()
        for trial in trials:
            key = getattr(trial, "trial_id", id(trial))
            status = trial_status(trial)
            duration = getattr(trial, "duration", None)  # the record's own times
            if getattr(trial, "ended", None) is not None and duration is not None:
                self.seconds[key] = float(duration)
            elif status == "running" and key not in self.started:
                self.started[key] = now
            elif status not in ("running", "") and key in self.started and key not in self.seconds:
                self.seconds[key] = now - self.started[key]

    def eta(self, done: int, total: int | None, current: Any) -> float | None:
        if not total or not self.seconds:
            return None
        mean = sum(self.seconds.values()) / len(self.seconds)
        left = mean * max(total - done, 0)
        key = getattr(current, "trial_id", None)
        if key in self.started and key not in self.seconds:
            left -= min(self.clock() - self.started[key], mean)
        return max(left, 0.0)


class SearchDashboard:
    """The live dashboard of a hyperparameter search (see the module's docstring).

    Args:
        search: an `nbtrain.search` object, or anything with what
            `ControlledSearch` declares.
        plot: draw the overlaid curves and the trials' live plots.
        clock: seconds, for the elapsed time and the ETA (tests pass a fake).

    Attributes:
        search: as given.
        view: the `SearchView`.
        trial_board: the run `Dashboard` of the current trial (None between trials).
        worker: the `PlotWorker` that draws the overlaid curves.
        outputs: the display ids of each time it was displayed.

    Example:

    ```python
    search = nbtrain.search(tuner, x, y, epochs=3, display=False)
    board = SearchDashboard.for_search(search)   # what display=None does in a notebook
    ```
    """

    def __init__(self, search: Any, *, plot: bool = True,
                 clock: Callable[[], float] = time.monotonic):
        self.search = search
        self.plot = plot
        self.view = SearchView()
        self.lock = threading.RLock()
        self.times = _Clock(clock)
        self.trial_board: Any = None
        self.outputs: list[notebook.Outputs] = []
        self._run: Any = None
        self._boards: list[Any] = []
        self._drawn: tuple = ()
        self._final: tuple = ()
        self._next_plot = 0.0
        self._snapshot: tuple[dict, dict | None] | None = None
        self._remove: Callable[[], None] | None = None
        self._failure: BaseException | None = None
        self._failed_text = ""
        self.listeners: list[Callable[[], None]] = []  # after each refresh (`SearchHtml`)
        self.worker = PlotWorker(lambda trials: (overlay_png(trials),), self._plotted,
                                 self.lock, name="nbtrain-search-plot")
        view = self.view
        view.pause.on_click(self._on_pause_click)
        view.stop.on_click(lambda _b: self._act(lambda s: s.stop()))
        view.skip.on_click(lambda _b: self._act(lambda s: s.skip()))

    @classmethod
    def for_search(cls, search: Any, *, html: bool = False, **options: Any) -> SearchDashboard:
        """Make a dashboard for `search`, follow it, display it (main thread; `html`: as
        one HTML output, `SearchHtml`), return it."""
        board = cls(search, **options)
        board.follow()
        board.display(html=html)
        return board

    def follow(self) -> None:
        """Follow the search's state and trials (its listener) and show them now."""
        self._remove = self.search.add_listener(self.on_search_event)
        self.refresh()

    def close(self) -> None:
        """Stop following the search and close the widgets (the trials' dashboards too)."""
        if self._remove is not None:
            self._remove()
            self._remove = None
        self.worker.stop()
        for board in self._boards:
            board.close()
        self._boards = []
        self.view.close()

    # -- display --------------------------------------------------------------------------

    def display(self, html: bool = False) -> None:
        """Show the dashboard in the current cell (and, once ended, its snapshot);
        `html`: as one HTML output updated in place (`SearchHtml`), no widget."""
        if html:
            SearchHtml.show(self)
            return
        with self.lock:
            table, plot = self._snapshot or (None, None)
            outputs = notebook.show_dashboard(self.view.root.model_id, table, plot, self.view.key)
            if outputs.view is not None:
                self.outputs.append(outputs)

    def _ipython_display_(self) -> None:
        self.display()

    def snapshot_bundles(self) -> tuple[dict, dict | None]:
        """The static snapshot: state, trials table and overlaid curves, as mime bundles."""
        search = self.search
        metric, direction = objective(search)
        trials = list(search.trials)
        progress = self.view.progress.value
        of = fmt.snapshot_class(self.view.key)
        table = {"text/html": f'<div class="nbtrain-snapshot nbtrain-search-snapshot {of}">'
                              f'<div style="margin:4px 0">{fmt.state_html(search.state)} '
                              f"{html.escape(progress)}</div>"
                              f"{trials_html(trials, metric, direction)}"
                              f"{self.view.messages.value}</div>",
                 "text/plain": "\n".join(filter(None, [
                     trials_text(search.state, progress, trials, metric, direction),
                     self._failed_text]))}
        png = self.view.plot.value if self.view.plot.layout.display != "none" else None
        plot = notebook.png_bundle(png, "<nbtrain search: trials' curves>") if png else None
        return table, plot

    # -- following the search ---------------------------------------------------------------

    def on_search_event(self, search: Any = None, event: str | None = None,
                        detail: Any = None) -> None:
        """The search's listener (any thread): `(search, event, detail)`, a state change,
        a trial begun or ended, or (`'run'`) a trial's new Run before it starts, whose
        dashboard is made then (as one of the run's callbacks)."""
        if event == "run" and detail is not None:
            with self.lock:
                self._follow_run(detail)
        self.refresh()

    def refresh(self, epoch_ended: bool = False) -> None:
        """Show the search as it is now (any thread)."""
        with self.lock:
            search, view = self.search, self.view
            state = search.state
            trials = list(search.trials)
            run = search.current
            self.times.state(state)
            self.times.trials(trials)
            done = sum(1 for t in trials if trial_status(t) not in ("running", ""))
            total = max_trials(search)
            view.set_state(state)
            at = done + any(trial_status(t) == "running" for t in trials)
            if state in ENDED:
                text = f"{done} of {total} trials done" if total else f"{done} trials done"
            else:
                text = (f"trial {min(at, total or at)} of {total}" if total else f"trial {at}"
                        ) + f" · {done} done"
            view.progress.value = html.escape(text)
            set_traits(view.bar, max=max(total or len(trials) or 1, 1), value=done)
            if run is not None and run is not self._run:
                self._follow_run(run)
            shown = self._run if run is not None or (
                self._run is not None and self._run.state not in ENDED) else None
            current = next((t for t in trials if shown is not None and trial_run(t) is shown),
                           None) or next((t for t in trials if trial_status(t) == "running"),
                                         None)
            eta = self.times.eta(done, total, current) if state in ACTIVE else None
            view.time.value = fmt.time_text(self.times.elapsed(), eta)
            view.set_controls(allowed_actions(search), state)
            self._show_failure(state)
            metric, direction = objective(search)
            view.trials.value = trials_html(trials, metric, direction, shown)
            self._show_trial(shown, current)
            self._redraw(trials, epoch_ended, state)
            self._write_snapshot(state)
        for listener in list(self.listeners):
            listener()

    def _plotted(self, _trials: Any, png: bytes | None) -> None:
        """The plot worker drew the overlaid curves (its lock, ours, held)."""
        self.view.set_plot(png)
        for listener in list(self.listeners):
            listener()

    def _redraw(self, trials: list[Any], epoch_ended: bool, state: str) -> None:
        """Draw the overlaid curves again when a trial began or ended, and at most every
        `PLOT_PERIOD` s at an epoch's end: on the plot worker's thread (neither the
        trial's training thread nor the search's waits for it); once the search
        ended, here, for the snapshot."""
        if not self.plot:
            return
        drawn = tuple((getattr(t, "trial_id", None), trial_status(t)) for t in trials)
        now = self.times.clock()
        if state not in ENDED:
            self._final = ()  # a search going on (resumed) is drawn again when it ends
        if state in ENDED:
            self.worker.stop()
            if (drawn, state) != self._final:  # once per end (several events may follow)
                self._final = (drawn, state)
                self._drawn = drawn
                self.view.set_plot(overlay_png(trials))
        elif drawn != self._drawn or (epoch_ended and now >= self._next_plot):
            self._drawn = drawn
            self._next_plot = now + PLOT_PERIOD
            self.worker.submit(trials)

    def _show_failure(self, state: str) -> None:
        """A failed search says why (`failure.report`: one line, then the user's frames)."""
        exception = getattr(self.search, "exception", None)
        if state != FAILED or exception is None or self._failure is exception:
            return
        from nbtrain.dashboard import failure

        self._failure = exception
        report = failure.report(exception, f"The search failed: {failure.cell_headline(exception)}")
        self.view.messages.value = fmt.messages_html([("failure", report)])
        self._failed_text = str(report)

    def _write_snapshot(self, state: str) -> None:
        if state in ENDED:
            self._snapshot = self.snapshot_bundles()
        elif self._snapshot is None:
            return
        else:
            self._snapshot = None
        for outputs in self.outputs:
            notebook.update_snapshot(outputs, *(self._snapshot or (None, None)))
        self.view.saver.set_snapshot(*(self._snapshot or (None, None)))

    def _follow_run(self, run: Any) -> None:
        """A new Run of the current trial: its own run dashboard, shown in the current box."""
        from nbtrain.dashboard.callback import Dashboard

        if run is self._run:
            return
        self._run = run
        board = Dashboard(auto_display=False, plot=self.plot)
        try:
            run.add_callback(board)
            run.add_callback(_EpochHook(self))
            follows = False
        except Exception:  # noqa: BLE001 - the run already started: follow its History
            follows = True
        board.bind(run, follows_history=follows)
        inner = board.view
        inner.root.children = tuple(c for c in inner.root.children if c is not inner.controls)
        for old in self._boards:  # the earlier trials' runs have ended
            old.close()
        self._boards = [board]
        self.trial_board = board
        self.view.current.children = (inner.root,)

    def _show_trial(self, run: Any, trial: Any) -> None:
        """Show the current trial's heading and run dashboard (None: hide them)."""
        view = self.view
        if run is None:
            _show(view.current, False)
            set_traits(view.title, value="")
            return
        values = ", ".join(f"{k}={_value_text(v)}" for k, v in trial_values(trial).items()) \
            if trial is not None else ""
        name = getattr(trial, "trial_id", "") if trial is not None else ""
        set_traits(view.title, value=f"<b>current trial {html.escape(str(name))}</b> "
                                     f"{html.escape(values)}")
        _show(view.current, True)

    # -- clicks (main thread) ---------------------------------------------------------------

    def _act(self, action: Callable[[Any], Any]) -> None:
        """Call the search's control; what it refused (an exception, or the warning a
        control gives when it does nothing) is shown in the messages, else they clear."""
        import warnings

        refused = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                action(self.search)
            refused = [str(w.message) for w in caught]
        except Exception as exc:  # noqa: BLE001 - an action that became illegal meanwhile
            refused = [f"{type(exc).__name__}: {exc}"]
        self.view.messages.value = fmt.messages_html([("warning", text) for text in refused])
        self.refresh()

    def _on_pause_click(self, _button: Any) -> None:
        def toggle(search: Any) -> None:
            if "pause" in allowed_actions(search):
                search.pause()
            else:
                search.resume()
        self._act(toggle)


def trials_text(state: str, progress: str, trials: Sequence[Any], metric: str,
                direction: str) -> str:
    """The snapshot's `text/plain`: state, progress, one line a trial, best first."""
    lines = [f"{state} - {progress}"]
    for trial in ranked(trials, direction):
        score = trial_score(trial)
        values = ", ".join(f"{k}={_value_text(v)}" for k, v in trial_values(trial).items())
        lines.append(f"trial {getattr(trial, 'trial_id', '?')}: {values}  {metric} "
                     f"{'—' if score is None else f'{score:.4g}'}  {trial_status(trial)}")
    return "\n".join(lines)


class SearchText:
    """The search as lines of text, where there is no notebook (a terminal, a script):
    its state changes and each trial's start and end.

    Args:
        search: the search to follow.
        write: where a line goes (default: `print`).
    """

    def __init__(self, search: Any, write: Callable[[str], Any] = print):
        self.search = search
        self.write = write
        self._remove = search.add_listener(self.on_search_event)

    def on_search_event(self, search: Any, event: str, detail: Any = None) -> None:
        """The search's listener: one line per state change and per trial start and end."""
        total = max_trials(search)
        metric, _ = objective(search)
        if event == "state":
            self.write(f"search {detail[1]}")
        elif event in ("trial_begin", "trial_end"):
            values = ", ".join(f"{k}={_value_text(v)}" for k, v in trial_values(detail).items())
            name = getattr(detail, "trial_id", "?")
            if event == "trial_begin":
                self.write(f"trial {name} begins: {values}")
                return
            done = sum(1 for t in search.trials if trial_status(t) not in ("running", ""))
            score = trial_score(detail)
            self.write(f"trial {name} {trial_status(detail)}: {metric} "
                       f"{'—' if score is None else f'{score:.4g}'} "
                       f"({done}{f' of {total}' if total else ''} done)")

    def close(self) -> None:
        """Stop following the search."""
        self._remove()


def attach_search_display(search: Any, display: bool | None = None) -> Any:
    """Show `search` as `nbtrain.search(..., display=...)` asks (call before it starts,
    on the main thread): the dashboard in a notebook (as one HTML output where the
    frontend's default is HTML: Colab, Kaggle), lines of text elsewhere, nothing for
    `display=False` (`notebook.choose_display`).

    Returns:
        The `SearchDashboard`, the `SearchText`, or None.
    """
    choice = notebook.choose_display(display)
    notebook.remember_display(search, choice)  # `search` on a cell's last line shows the same
    if choice in (notebook.DASHBOARD, notebook.HTML):
        register_search_display()
        return SearchDashboard.for_search(search, html=choice == notebook.HTML)
    if choice == notebook.TEXT:
        return SearchText(search)
    return None


def searches_table(searches: dict[str, Any]) -> tuple[str, str]:
    """Plain-text and HTML tables of searches (`%nbtrain search`): name, state, trials
    done out of `max_trials`, the best score and its trial, the trial in progress.

    Example:

    ```
    search  state    trials  best val_loss  best trial  current
    s       running  2/10           0.2113  1           2
    ```
    """
    header = ["search", "state", "trials", "best", "best trial", "current"]
    rows = []
    for name, search in searches.items():
        trials = list(search.trials)
        metric, direction = objective(search)
        done = sum(1 for t in trials if trial_status(t) not in ("running", ""))
        total = max_trials(search)
        order = ranked(trials, direction)
        best = order[0] if order and trial_score(order[0]) is not None else None
        running = next((t for t in trials if trial_status(t) == "running"), None)
        rows.append([name, str(search.state), f"{done}/{total}" if total else str(done),
                     f"{metric} {trial_score(best):.4g}" if best is not None else "—",
                     str(getattr(best, "trial_id", "—")) if best is not None else "—",
                     str(getattr(running, "trial_id", "—")) if running is not None else "—"])
    table = [header, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    text = "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table)
    cells = "".join(f"<th style='text-align:left'>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td style='text-align:left'>{html.escape(c)}</td>"
                                    for c in r) + "</tr>" for r in rows)
    return text, (f"<table class='nbtrain-search-status'><thead><tr>{cells}</tr></thead>"
                  f"<tbody>{body}</tbody></table>")


def register_search_display(ipython: Any = None) -> None:
    """Make a search shown as a cell's result (`search` on a cell's last line) display
    a new live dashboard of it (registered by type name; idempotent).

    Args:
        ipython: the shell (default: the current one; nothing happens without one).
    """
    notebook.display_by_type("nbtrain.tuning.search", "Search", display_search, ipython)


def display_search(search: Any) -> SearchDashboard | None:
    """Show a live view of `search` in the current cell (what displaying a search
    does): the display its `nbtrain.search` chose (`notebook.cell_display`: the
    widget dashboard or the HTML output); where that is text, its repr.

    Args:
        search: an `nbtrain.search` object.

    Returns:
        The `SearchDashboard` shown (None: its repr).
    """
    kind = notebook.cell_display(search)
    if kind == notebook.TEXT:
        notebook.show({"text/plain": repr(search)})
        return None
    return SearchDashboard.for_search(search, html=kind == notebook.HTML)


SEARCH_HINT = ("Steer it from code: <code>search.pause()</code>, <code>search.resume()</code>, "
               "<code>search.stop()</code>, <code>search.skip()</code> "
               "(or <code>%nbtrain search</code> to list searches).")
"""What a search's HTML output says while it runs."""


class SearchHtml:
    """A search shown as one HTML output updated in place (`display="html"`, the
    default where the run's dashboard is HTML: Colab, Kaggle), as `htmlview.HtmlView`
    shows a run.

    It reads the `SearchDashboard`'s widgets (made, never displayed): the state badge,
    trials done, time and ETA, the trials table, the overlaid curves
    (`img.nbtrain-search-plot`), the current trial with its run's live view
    (`HtmlView`'s HTML of the trial's dashboard) and a line on steering from code;
    ended, the state, the trials table and the final curves.  Updated after each of
    the board's refreshes and each update of the current trial's dashboard (its
    throttle), at most every `htmlview.MIN_INTERVAL` s but at once on a change of
    state.  The trial's dashboard calls it holding its presenter's lock, the board's
    plot worker holding the board's: it never takes the board's lock (it reads
    widget values, each read whole), and its own only to send.

    Args:
        board: the `SearchDashboard`.

    Attributes:
        display_id: the output's display id (None before `show`).
        sent: how many times the output was updated.
    """

    def __init__(self, board: SearchDashboard):
        import itertools

        self.board = board
        self.display_id: str | None = None
        self.sent = 0
        self.html: str | None = None
        self._last: float | None = None
        self._state: str = board.search.state  # as shown
        self._trial: Any = None  # the trial dashboard followed
        self._tickets = itertools.count()
        self._newest = -1  # the ticket of the bundle last sent (a later one wins)
        self._lock = threading.Lock()

    @classmethod
    def show(cls, board: SearchDashboard) -> SearchHtml | None:
        """Display the output in the current cell (main thread) and follow `board`;
        None where there is nowhere to display."""
        view = cls(board)
        bundle = view.bundle()
        view.display_id = notebook.show(bundle)
        if view.display_id is None:
            return None
        view.html = bundle["text/html"]
        board.listeners.append(view.on_board)
        view.on_board()
        return view

    def on_board(self) -> None:
        """The board refreshed: follow its current trial's dashboard, show the search."""
        trial = self.board.trial_board
        if trial is not None and trial is not self._trial:
            self._trial = trial
            with trial.presenter.lock:
                trial.presenter.listeners.append(self.refresh)
        self.refresh()

    def refresh(self, force: bool = False) -> None:
        """Update the output with what the board shows now (any thread); skipped when
        less than `MIN_INTERVAL` s since the last, unless `force`d or the state changed."""
        from nbtrain.dashboard.htmlview import MIN_INTERVAL

        now = self.board.times.clock()
        state = self.board.search.state
        with self._lock:
            if (not force and state == self._state and self._last is not None
                    and now - self._last < MIN_INTERVAL):
                return
            ticket = next(self._tickets)
        bundle = self.bundle()  # outside our lock: it takes the trial presenter's
        with self._lock:
            if ticket < self._newest or bundle["text/html"] == self.html:
                return
            self._newest, self._last, self._state = ticket, now, state
            self.html = bundle["text/html"]
            self.sent += 1
            notebook.update(self.display_id, bundle)

    def bundle(self) -> dict:
        """The output's mime bundle now: `text/html` and `text/plain`."""
        from nbtrain.dashboard.htmlview import HtmlView, bar_html

        board = self.board
        view, search = board.view, board.search  # values read whole, no lock: see above
        state = search.state
        color = fmt.STATE_COLORS.get(state, "#616161")
        metric, direction = objective(search)
        trials = list(search.trials)
        parts = [
            '<div class="nbtrain-header" style="margin:4px 0">'
            f'<span class="nbtrain-state nbtrain-state-{html.escape(state)}">'
            f"{fmt.state_html(state)}</span> "
            f'<span class="nbtrain-search-progress" style="margin-left:8px">'
            f"{view.progress.value}</span> "
            f'<span class="nbtrain-time" style="margin-left:8px">{view.time.value}</span></div>',
            f'<div>{bar_html("nbtrain-search-bar", view.bar.value, view.bar.max, color)}</div>',
        ]
        if state in ACTIVE:
            parts.append('<div class="nbtrain-hint" style="color:#616161;margin:4px 0">'
                         f"{SEARCH_HINT}</div>")
        parts.append(f'<div class="nbtrain-messages">{view.messages.value}</div>')
        parts.append(f'<div class="nbtrain-search-table">{view.trials.value}</div>')
        if view.plot.layout.display != "none" and view.plot.value:
            data = base64.b64encode(view.plot.value).decode("ascii")
            parts.append('<img class="nbtrain-search-plot" style="max-width:100%;'
                         f'display:block" src="data:image/png;base64,{data}">')
        current = None
        if state not in ENDED and view.current.layout.display != "none":
            current = board.trial_board
            parts.append(f'<div class="nbtrain-search-current-title">{view.title.value}</div>')
        text = trials_text(state, html.unescape(view.progress.value), trials, metric,
                           direction)
        if current is not None:  # the trial's own view (under its presenter's lock)
            trial = HtmlView(current.presenter, hint="").bundle()["text/html"]
            parts.append(f'<div class="nbtrain-search-current" style="border:1px solid #e0e0e0;'
                         f'padding:4px">{trial}</div>')
        return {"text/html": f'<div class="nbtrain-html nbtrain-search">{"".join(parts)}</div>',
                "text/plain": text}


__all__ = ["SEARCH_HINT", "ControlledSearch", "SearchDashboard", "SearchHtml", "SearchText",
           "SearchView",
           "attach_search_display", "display_search", "register_search_display",
           "searches_table",
           "overlay_png", "ranked", "trial_colors", "trials_html", "trials_text"]
