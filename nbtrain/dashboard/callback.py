"""`Dashboard`: the live view of a training, as a Keras callback, with controls
bound to a `Run`.

`Dashboard` is a thin composition of the dashboard's rooms:

- the Keras callback hooks (here): they feed the tracker and ask for updates;
  a plain `model.fit` has no Run, so the callback also keeps the state itself
  (running, then stopped or finished at `on_train_end`, failed if the cell
  ends first);
- `presenter.Presenter`: the widgets, the rate meter and what they show;
- `snapshot.Snapshot`: the final table and plot written into the cell's outputs;
- `controls.RunControls`: the buttons bound to a Run (`bind`).

Threads: the widgets are created and displayed on the main thread; the
training thread only changes their values, through one `Throttle`; run state
changes (from whichever thread makes them) are shown at once, with the latest
values, regardless of the throttle.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from typing import Any

import keras

from nbtrain.dashboard import failure, notebook
from nbtrain.dashboard.buttons import RunControls
from nbtrain.dashboard.cell import CellControls
from nbtrain.dashboard.htmlview import show_html
from nbtrain.dashboard.layout import expected_panels
from nbtrain.dashboard.liveplot import learning_rate_of
from nbtrain.dashboard.plotcontrols import PlotControls
from nbtrain.dashboard.presenter import Presenter
from nbtrain.dashboard.steeringrow import SteeringControls
from nbtrain.dashboard.throttle import Throttle
from nbtrain.run.state import ACTIVE, ENDED, FAILED, FINISHED, RUNNING, STOPPED

# id(run) -> the Dashboard bound to it.  Weak values: an entry lasts as long as its
# dashboard, which holds its run, so the id cannot be reused meanwhile.
_BOUND: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


class _WarningCapture:
    """Routes warnings raised on one thread to `sink` (`warnings.showwarning` chain)."""

    def __init__(self, sink):
        self.sink = sink
        self.thread = threading.get_ident()
        self.previous = warnings.showwarning
        self.active = True
        warnings.showwarning = self.show

    def show(self, message, category, filename, lineno, file=None, line=None):
        if self.active and threading.get_ident() == self.thread:
            self.sink(f"{category.__name__}: {message}")
        else:
            self.previous(message, category, filename, lineno, file, line)

    def release(self) -> None:
        self.active = False
        if warnings.showwarning == self.show:
            warnings.showwarning = self.previous


class _Live:
    """The callback hooks of a shown dashboard: they feed its tracker and presenter."""

    def __init__(self, dashboard: Dashboard):
        self.dashboard = dashboard
        self.presenter = dashboard.presenter

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        dashboard, presenter = self.dashboard, self.presenter
        with presenter.lock:
            if dashboard.fresh and epoch <= presenter.tracker.epoch:
                presenter.tracker.reset()
            dashboard.fresh = False
            presenter.tracker.begin_epoch(epoch, (dashboard.params or {}).get("steps"))
        presenter.update()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        presenter = self.presenter
        presenter.tracker.batch_end(batch, logs)
        cell = self.dashboard.cell_controls
        if cell is not None:
            cell.on_batch()  # the buttons' clicks, handled from the busy cell
        if presenter.flush_next:  # a pause or stop was asked during this batch: show it all
            presenter.flush_next = False
            self.dashboard.capture_warnings()  # a resumed run's new pass (on_train_begin ran once)
            presenter.update(force=True)
        elif presenter.due():
            presenter.update()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        presenter = self.presenter
        with presenter.lock:
            presenter.tracker.end_epoch(epoch, logs)
            presenter.changed()
        presenter.update()

    def on_train_end(self, logs: dict | None = None) -> None:
        self.dashboard.train_ended()


class Dashboard(keras.callbacks.Callback):
    """A live training dashboard for Jupyter: state, progress, metric table,
    plots, messages, and (bound to a `Run`) Pause/Resume, Stop and Continue.

    As a plain Keras callback it shows itself when training begins (in a
    notebook; elsewhere it prints the engine's text progress instead).
    `nbtrain.fit` uses `Dashboard.for_run`, which also binds the controls.

    Args:
        plot: draw the live plots.
        batch_logs: `"running"` when batch logs are running averages of the
            epoch (Keras 3's `model.fit`, nbtrain's compiled loop), `"batch"`
            when they are each batch's own value (`train_on_batch`), `"auto"`
            to find out at the end of the first epoch.
        capacity: points kept per plotted series (long runs are bucket-averaged).
        throttle: the update schedule (default: `Throttle()`: bars and table at
            most 10 times a second within 12 widget messages a second, plot at
            most once a second and within 1% of the wall time).
        auto_display: at the start of training, if not displayed yet, display in
            a notebook, or fall back to text progress elsewhere.

    Example:

    ```python
    model.fit(x, y, epochs=10, validation_split=0.1, callbacks=[nbtrain.Dashboard()])
    ```
    """

    accepts_tensor_logs = True
    """Batch logs may be passed as tensors: the dashboard converts only the values
    it samples (when a plot bucket fills, at most a few times a second), so a
    loop need not copy every batch's metrics to the host for it."""

    def __init__(self, *, plot: bool = True, batch_logs: str = "auto", capacity: int = 1024,
                 throttle: Throttle | None = None, auto_display: bool = True):
        super().__init__()
        self.presenter = Presenter(self._epochs, plot=plot, batch_logs=batch_logs,
                                   capacity=capacity, throttle=throttle)
        self.auto_display = auto_display
        self.plot_controls = PlotControls.attach(self.presenter) if plot else None
        # the learning-rate panel reads the optimizer's rate (from the start, schedules too)
        self.presenter.live.learning_rate = lambda: learning_rate_of(getattr(self, "_model", None))
        self.view.keep_plot_room(plot)
        self.controls: RunControls | None = None
        self.steering: SteeringControls | None = None  # the learning-rate field (bound runs)
        self.fresh = False  # a plain fit after an ended one: its first epoch starts over
        self._hooks: Any = _Live(self)  # or the text progress outside a notebook
        self._warnings: _WarningCapture | None = None
        self._cancel_cell_hook = None
        self._cell: CellControls | None = None  # controls of a fit on the cell's thread

    # -- the parts, as attributes -----------------------------------------------------

    @property
    def view(self) -> Any:
        """The widgets (`DashboardView`)."""
        return self.presenter.view

    @property
    def tracker(self) -> Any:
        """The metric series (`MetricTracker`)."""
        return self.presenter.tracker

    @property
    def throttle(self) -> Throttle:
        """The update schedule."""
        return self.presenter.throttle

    @property
    def plot(self) -> bool:
        """Whether live plots are drawn."""
        return self.presenter.plot

    @property
    def renderer(self) -> Any:
        """The plot renderer (None before the first plot and after the run ends)."""
        return self.presenter.renderer

    @property
    def state(self) -> str:
        """The state shown."""
        return self.presenter.state

    @property
    def messages(self) -> Any:
        """The messages shown, as `(level, text)` pairs."""
        return self.presenter.messages

    @property
    def outputs(self) -> list:
        """The display ids of each time it was displayed."""
        return self.presenter.snapshot.outputs

    @property
    def png(self) -> bytes | None:
        """The last plot rendered, as PNG."""
        return self.presenter.snapshot.png

    @property
    def run(self) -> Any:
        """The Run its controls are bound to, or None."""
        return self.controls.run if self.controls is not None else None

    def capture_warnings(self) -> None:
        """Show the training thread's warnings in the dashboard (again, on a resumed
        run's new pass: its own thread, and `on_train_begin` ran only once)."""
        if self._warnings is None and self.outputs and self.run is not None:
            self._warnings = _WarningCapture(self.message)

    @property
    def cell_controls(self) -> CellControls | None:
        """The controls of a training on the cell's own thread (a blocking fit), or None."""
        return self._cell

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def for_run(cls, run: Any, *, html: bool = False, **options: Any) -> Dashboard:
        """Create a dashboard for `run` on the calling (main) thread, add it to the
        run's callbacks, bind the controls, display it and return it.

        Args:
            run: an `nbtrain.Run` that has not started.
            html, **options: `display(html)`'s (HTML output); passed to `Dashboard`.

        Example:

        ```python
        run = Run(...)
        dashboard = Dashboard.for_run(run)
        run.start()
        ```
        """
        dashboard = cls(auto_display=False, **options)
        run.add_callback(dashboard)
        dashboard.bind(run)
        dashboard.display(html=html)
        return dashboard

    def bind(self, run: Any, *, follows_history: bool = False) -> None:
        """Bind the controls to `run` and follow its state (main thread).

        Args:
            run: an `nbtrain.Run`, or anything with what
                `nbtrain.dashboard.buttons.ControlledRun` declares.
            follows_history: the dashboard is not one of the run's callbacks:
                it shows the run's History and position at each change of state.
        """
        self.controls = RunControls(self, run, follows_history)
        _BOUND[id(run)] = self
        self.view.reserve_plot_rows(expected_panels(getattr(run, "model", None)))
        self.controls.bind()
        self.steering = SteeringControls.attach(self, run)

    def close(self) -> None:
        """Unbind from the run, stop capturing warnings and close the widgets."""
        if self.controls is not None:
            self.controls.unbind()
        if self.steering is not None:
            self.steering.detach()
        self._release_hooks()
        self.view.close()

    def _release_hooks(self) -> None:
        if self._cell is not None:
            self._cell.release()
            self._cell = None
        if self._warnings is not None:
            self._warnings.release()
            self._warnings = None
        if self._cancel_cell_hook is not None:
            self._cancel_cell_hook()
            self._cancel_cell_hook = None

    # -- display and messages -------------------------------------------------------------

    def display(self, html: bool = False) -> None:
        """Show the dashboard in the current cell (main thread; `html`: as one HTML output).

        Displaying it again (in another cell) shows another view of the same
        widgets; every view gets the snapshot when the run ends.
        """
        show_html(self) if html else self.presenter.display()

    def _ipython_display_(self) -> None:
        self.display()

    def message(self, text: str, level: str = "warning") -> None:
        """Show a message in the dashboard's message area (any thread).

        Args:
            text: the message.
            level: `"warning"` or `"error"` (shown preformatted, in red).
        """
        self.presenter.add_message(text, level)
        self.presenter.update(force=self.state not in ACTIVE)

    def failure(self, exception: BaseException | None, headline: str | None = None) -> None:
        """Add the exception that failed training to the messages (`failure.report`):
        `headline`, one line on what failed, where and what to do next (default:
        made from the exception), then the user's own frames, the others folded."""
        if exception is None:
            return
        text = failure.report(exception, headline or failure.cell_headline(exception))
        self.presenter.add_message(text, "failure")

    def clear_failure(self) -> None:
        """A failed run resumed: its failure report leaves the messages."""
        presenter = self.presenter
        with presenter.lock:
            kept = [message for message in presenter.messages if message[0] != "failure"]
            presenter.messages.clear()
            presenter.messages.extend(kept)

    def set_state(self, state: str) -> None:
        """Show a new run state, with the latest values and plot (any thread).

        When the state is an ended one (`stopped`, `finished`, `failed`), the
        static snapshot is written into the cell's outputs.
        """
        with self.presenter.lock:
            if state in ENDED and self._warnings is not None:
                self._warnings.release()  # a failed pass never reaches on_train_end
                self._warnings = None
            self.presenter.set_state(state)
            self.view.keep_rooms(state not in ENDED, self.plot)  # no plot controls on a failure
            if self.plot_controls is not None:
                self.plot_controls.show_for(state)

    def _epochs(self) -> int | None:
        epochs = (self.params or {}).get("epochs")
        controls = self.controls
        if controls is not None and (epochs is None or controls.follows_history):
            epochs = getattr(controls.run, "epochs", epochs)
        return epochs

    # -- Keras callback hooks -------------------------------------------------------------

    def on_train_begin(self, logs: dict | None = None) -> None:
        if not self.outputs and self.auto_display:
            if (kind := notebook.choose_display()) in (notebook.DASHBOARD, notebook.HTML):
                self.view.reserve_plot_rows(expected_panels(self.model))
                self.display(html=kind == notebook.HTML)
            else:
                from nbtrain.engine.progress import TextProgress

                self._hooks = TextProgress(verbose=1)
                self._hooks.set_model(self.model)
                self._hooks.set_params(self.params)
                return
        if self.outputs and self._warnings is None:
            self._warnings = _WarningCapture(self.message)
        if self.run is None:
            self.fresh = self.state in ENDED
            if (self.outputs and self._cancel_cell_hook is None
                    and threading.current_thread() is threading.main_thread()):
                self._cancel_cell_hook = notebook.after_cell(self._after_cell)
            self.set_state(RUNNING)
            if self.outputs and self._cell is None:
                self._cell = CellControls.attach(self)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._hooks.on_epoch_begin(epoch, logs)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._hooks.on_train_batch_end(batch, logs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._hooks.on_epoch_end(epoch, logs)

    def on_train_end(self, logs: dict | None = None) -> None:
        hooks, self._hooks = self._hooks, _Live(self)
        if isinstance(hooks, _Live):
            hooks.on_train_end(logs)

    def train_ended(self) -> None:
        """Training ended (`on_train_end` of a shown dashboard)."""
        self._release_hooks()
        if self.run is None:
            epochs = self._epochs()
            complete = epochs is None or self.tracker.epochs_done >= epochs
            stopped = getattr(self.model, "stop_training", False) and not complete
            self.set_state(STOPPED if stopped else FINISHED)
        else:  # the run's ended state follows, and draws the final plot
            self.presenter.update(force=True, plot=False)

    def _after_cell(self, result: Any) -> None:
        """The cell running a plain `fit` ended: if training did not end, it failed."""
        self._cancel_cell_hook = None
        if self.state not in ACTIVE:
            return
        self._release_hooks()
        error = getattr(result, "error_in_exec", None)
        if isinstance(error, KeyboardInterrupt):
            self.message("Interrupted.")
            self.set_state(STOPPED)
        else:
            self.failure(error, failure.cell_headline(error) if error is not None else None)
            self.set_state(FAILED if error is not None else STOPPED)


def display_run(run: Any, html: bool = False) -> Dashboard:
    """Show a live view of `run` in the current cell: its dashboard if it has
    one, else a new one bound to it.

    This is what displaying a `Run` (a `run` as the last line of a cell) does.

    Args:
        run: an `nbtrain.Run`.
        html: as one HTML output (`display="html"`), not the widgets.

    Example:

    ```python
    run = nbtrain.fit(model, x, y, epochs=20, display=False)
    display_run(run)      # or just `run` at the end of a cell
    ```
    """
    dashboard = _BOUND.get(id(run))
    if dashboard is None or dashboard.run is not run:
        dashboard = Dashboard(auto_display=False)
        try:
            run.add_callback(dashboard)
        except Exception:  # the run already started: follow its state and History
            dashboard.bind(run, follows_history=True)
        else:
            dashboard.bind(run)
    dashboard.display(html=html)
    return dashboard


__all__ = ["ENDED", "Dashboard", "display_run"]
