"""`Dashboard`: the live view of a training, as a Keras callback, with controls
bound to a `Run`.

Threads: the widgets are created and displayed on the main thread; the
training thread only changes their values, through one `Throttle`; run state
changes (from whichever thread makes them) are shown at once, with the latest
values, regardless of the throttle.  When a run ends the static snapshot (final
table as `text/html`, final plot as `image/png`) is written into the cell's
outputs (see `nbtrain.dashboard.notebook`).
"""

from __future__ import annotations

import threading
import traceback
import warnings
import weakref
from collections import deque
from typing import Any

import keras

from nbtrain.dashboard import format as fmt
from nbtrain.dashboard import notebook
from nbtrain.dashboard.plot import PlotRenderer
from nbtrain.dashboard.throttle import Throttle
from nbtrain.dashboard.tracker import MetricTracker
from nbtrain.dashboard.view import DashboardView, set_traits

ENDED = frozenset({"stopped", "finished", "failed"})
"""Run states after which the static snapshot is shown."""
_ACTIVE = frozenset({"running", "pausing", "stopping"})  # a batch may be in progress
_MAX_MESSAGES = 20
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
        self.view = DashboardView(controls=False)
        self.tracker = MetricTracker(capacity, batch_logs)
        self.throttle = throttle or Throttle()
        self.plot = plot
        self.renderer: PlotRenderer | None = None  # made at the first render
        self.auto_display = auto_display
        self.run: Any = None
        self.state = "running"
        self.messages: deque[tuple[str, str]] = deque(maxlen=_MAX_MESSAGES)
        self.outputs: list[notebook.Outputs] = []
        self.png: bytes | None = None
        self._lock = threading.RLock()
        self._text: Any = None  # the terminal fallback, when not in a notebook
        self._elapsed = 0.0
        self._active_since: float | None = None
        self._rate: float | None = None
        self._rate_mark: tuple[float, int] | None = None
        self._plotted = -1  # tracker version of the last render
        self._version = 0
        self._fresh = False
        self._flush_next = False  # the batch in flight at a state change is shown at once
        self._warnings: _WarningCapture | None = None
        self._cancel_cell_hook = None
        self._remove_listener = None
        self._late = False  # bound to a run it is not a callback of

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def for_run(cls, run: Any, **options: Any) -> Dashboard:
        """Create a dashboard for `run` on the calling (main) thread, add it to the
        run's callbacks, bind the controls, display it and return it.

        Args:
            run: an `nbtrain.Run` that has not started.
            **options: passed to `Dashboard`.

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
        dashboard.display()
        return dashboard

    def bind(self, run: Any) -> None:
        """Bind the controls to `run` and follow its state (main thread).

        Args:
            run: an `nbtrain.Run` (`state`, `add_listener`, `allowed_actions`,
                `pause`, `resume`, `stop`, `epochs`, `history`, `exception`).
        """
        self.run = run
        _BOUND[id(run)] = self
        view = self.view
        view.pause.on_click(self._on_pause_click)
        view.stop.on_click(self._on_stop_click)
        view.continue_.on_click(self._on_continue_click)
        set_traits(view.controls.layout, display=None)
        history = getattr(run, "history", None)
        if history is not None and getattr(history, "epoch", None):
            with self._lock:
                self.tracker.load_history(history)
                self._version += 1
        self._remove_listener = run.add_listener(self._on_run_state)
        self._on_run_state(run, None, run.state)

    def close(self) -> None:
        """Unbind from the run, stop capturing warnings and close the widgets."""
        if self._remove_listener is not None:
            self._remove_listener()
            self._remove_listener = None
        self._release_hooks()
        self.view.close()

    def _release_hooks(self) -> None:
        if self._warnings is not None:
            self._warnings.release()
            self._warnings = None
        if self._cancel_cell_hook is not None:
            self._cancel_cell_hook()
            self._cancel_cell_hook = None

    # -- display --------------------------------------------------------------------------

    def display(self) -> None:
        """Show the dashboard in the current cell (call on the main thread).

        Displaying it again (in another cell) shows another view of the same
        widgets; every view gets the snapshot when the run ends.
        """
        with self._lock:
            table, plot = self._snapshot() if self.state in ENDED else (None, None)
            outputs = notebook.show_dashboard(self.view.root.model_id, table, plot)
            if outputs.view is not None:  # None: nowhere to display (no IPython)
                self.outputs.append(outputs)
                if self.state in ENDED:
                    self.view.show_live(False)  # the snapshot shows table and plot

    def _ipython_display_(self) -> None:
        self.display()

    def _snapshot(self) -> tuple[dict, dict | None]:
        rows = fmt.table_rows(self.tracker.ordered())
        progress = fmt.epoch_text(self.tracker.epoch + 1, self._epochs())
        table = {"text/html": fmt.snapshot_html(self.state, progress, rows, self.messages),
                 "text/plain": fmt.snapshot_text(self.state, progress, rows, self.messages)}
        plot = None
        if self.png is not None:
            names = ", ".join(m.name for m in self.tracker.ordered())
            plot = notebook.png_bundle(self.png, f"<nbtrain plot: {names}>")
        return table, plot

    # -- messages -------------------------------------------------------------------------

    def message(self, text: str, level: str = "warning") -> None:
        """Show a message in the dashboard's message area (any thread).

        Args:
            text: the message.
            level: `"warning"` or `"error"` (shown preformatted, in red).
        """
        self._add_message(text, level)
        self._update(force=self.state not in _ACTIVE)

    def _add_message(self, text: str, level: str = "warning") -> None:
        with self._lock:
            if not self.messages or self.messages[-1] != (level, text):
                self.messages.append((level, text))

    def _failure(self, exception: BaseException | None) -> None:
        if exception is None:
            return
        text = "".join(traceback.format_exception(type(exception), exception,
                                                  exception.__traceback__))
        self._add_message(text.rstrip(), "error")

    # -- state ----------------------------------------------------------------------------

    def _epochs(self) -> int | None:
        epochs = (self.params or {}).get("epochs")
        if (epochs is None or self._late) and self.run is not None:
            epochs = getattr(self.run, "epochs", epochs)
        return epochs

    def _elapsed_at(self, now: float) -> float:
        if self._active_since is None:
            return self._elapsed
        return self._elapsed + now - self._active_since

    def set_state(self, state: str) -> None:
        """Show a new run state, with the latest values and plot (any thread).

        When the state is an ended one (`stopped`, `finished`, `failed`), the
        static snapshot is written into the cell's outputs.
        """
        with self._lock:
            now = self.throttle.clock()
            old, self.state = self.state, state
            self._flush_next = True
            if state in _ACTIVE and self._active_since is None:
                self._active_since = now
                self._rate_mark = None
            elif state not in _ACTIVE and self._active_since is not None:
                self._elapsed += now - self._active_since
                self._active_since = None
            sent = self.view.set_state(state)
            self.throttle.spent(sent, now)
            if old in ENDED and state not in ENDED:
                self.view.show_live(True)
                for outputs in self.outputs:
                    notebook.update_snapshot(outputs, None, None)
            self._update(force=True)
            if state in ENDED:
                if self._warnings is not None:  # a failed pass never reaches on_train_end
                    self._warnings.release()
                    self._warnings = None
                table, plot = self._snapshot()
                for outputs in self.outputs:
                    notebook.update_snapshot(outputs, table, plot)
                self.renderer = None  # its figure is the bulk of a dashboard's memory
                if self.outputs:
                    self.view.show_live(False)

    def _on_run_state(self, run: Any, old: str | None, new: str) -> None:
        try:
            allowed = frozenset(run.allowed_actions())
        except Exception:  # a run without the method: no controls
            allowed = frozenset()
        if new == "failed":
            self._failure(getattr(run, "exception", None))
        if self._late:
            self._refresh_from_run()
        self.set_state(new)
        with self._lock:
            self.view.set_controls(allowed, new, self._continue_default())

    def _continue_default(self) -> int | None:
        run = self.run
        target = getattr(run, "epochs", None) or self._epochs()
        if target is None:
            return None
        done = getattr(run, "epoch", None)
        if done is None:
            done = self.tracker.epochs_done
        if done < target:
            return int(target)
        span = target - (self.tracker.first_epoch or 0)
        return int(target + max(span, 1))

    def _refresh_from_run(self) -> None:
        """A dashboard that is not one of the run's callbacks follows its History."""
        run = self.run
        with self._lock:
            tracker = self.tracker
            history = getattr(run, "history", None)
            tracker.reset()
            tracker.load_history(history)
            tracker.epoch = int(getattr(run, "epoch", tracker.epoch) or 0)
            tracker.steps = getattr(run, "steps", None)
            tracker.done = int(getattr(run, "batch", 0) or 0)
            self._version += 1

    # -- controls (main thread: the kernel runs click handlers there) --------------------

    def _act(self, action) -> None:
        run = self.run
        try:
            action(run)
        except Exception as exc:  # an action that became illegal meanwhile
            self.message(f"{type(exc).__name__}: {exc}")
            self._on_run_state(run, None, run.state)

    def _on_pause_click(self, _button: Any) -> None:
        def toggle(run):
            if "pause" in run.allowed_actions():
                run.pause()
            else:
                run.resume()
        self._act(toggle)

    def _on_stop_click(self, _button: Any) -> None:
        self._act(lambda run: run.stop())

    def _on_continue_click(self, _button: Any) -> None:
        epochs = int(self.view.continue_epochs.value)
        self._act(lambda run: run.resume(epochs=epochs))

    # -- updates --------------------------------------------------------------------------

    def _update(self, force: bool = False) -> None:
        """Push the latest values to the widgets (and maybe render the plot)."""
        with self._lock:
            throttle = self.throttle
            now = throttle.clock()
            if not force and now < throttle.next_update:
                return
            tracker = self.tracker
            tracker.sample()
            for name in tracker.nonfinite:
                value = tracker.metrics[name].last
                self._add_message(f"{name} is {value} in epoch {tracker.epoch + 1}")
            tracker.nonfinite.clear()
            throttle.spent(self._update_widgets(now), now)
            if self.plot and (force or throttle.plot_due(now)):
                self._render()

    def _update_widgets(self, now: float) -> int:
        view, tracker = self.view, self.tracker
        epochs, steps, done = self._epochs(), tracker.steps, tracker.done
        rate = self._measure_rate(now)
        eta = None
        if self.state in _ACTIVE and rate and epochs:
            length = steps or tracker.last_epoch_length
            if length:
                remaining = max(length - done, 0) + max(epochs - tracker.epoch - 1, 0) * length
                eta = remaining / rate
        sent = set_traits(view.time, value=fmt.time_text(self._elapsed_at(now), eta))
        style = fmt.BAR_STYLES.get(self.state, "")
        sent += set_traits(view.epoch_bar, max=max(int(epochs or 1), 1),
                           value=min(tracker.epochs_done, int(epochs or 1)), bar_style=style)
        sent += set_traits(view.epoch_counter, value=fmt.epoch_text(tracker.epoch + 1, epochs))
        sent += set_traits(view.batch_bar, max=max(int(steps or 1), 1),
                           value=min(done, int(steps or 0)), bar_style=style)
        sent += set_traits(view.batch_counter, value=fmt.batch_text(done, steps, rate))
        rows = fmt.table_rows(tracker.ordered())
        sent += set_traits(view.metrics, value=fmt.table_html(rows))
        sent += set_traits(view.messages, value=fmt.messages_html(self.messages))
        return sent

    def _measure_rate(self, now: float) -> float | None:
        total = self.tracker.total
        if self.state not in _ACTIVE:
            return self._rate
        if self._rate_mark is None:
            self._rate_mark = (now, total)
            return self._rate
        since, before = self._rate_mark
        if now - since >= 0.5:
            measured = (total - before) / (now - since)
            self._rate = measured if self._rate is None else 0.6 * self._rate + 0.4 * measured
            self._rate_mark = (now, total)
        return self._rate

    def _render(self) -> None:
        tracker = self.tracker
        version = (self._version, tracker.total, tracker.epoch, len(tracker.metrics))
        if version == self._plotted:
            return
        panels = tracker.panels()
        if not panels:
            return
        clock = self.throttle.clock
        start = clock()
        if self.renderer is None:
            self.renderer = PlotRenderer()
        self.png = self.renderer.render(panels, tracker.x_range(self._epochs()))
        self.view.set_plot(self.png, live=not (self.outputs and self.state in ENDED))
        self._plotted = version
        self.throttle.rendered(clock() - start)

    # -- Keras callback hooks -------------------------------------------------------------

    def _start_display(self) -> None:
        if self.outputs or not self.auto_display:
            return
        if notebook.in_notebook():
            self.display()
            return
        from nbtrain.engine.progress import TextProgress

        self._text = TextProgress(verbose=1)
        self._text.set_model(self.model)
        self._text.set_params(self.params)

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._start_display()
        if self._text is not None:
            return
        if self.outputs and self._warnings is None:
            self._warnings = _WarningCapture(self.message)
        if self.run is None:
            self._fresh = self.state in ENDED
            if (self.outputs and self._cancel_cell_hook is None
                    and threading.current_thread() is threading.main_thread()):
                self._cancel_cell_hook = notebook.after_cell(self._after_cell)
            self.set_state("running")

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self._text is not None:
            return self._text.on_epoch_begin(epoch, logs)
        with self._lock:
            if self._fresh and epoch <= self.tracker.epoch:
                self.tracker.reset()
            self._fresh = False
            self.tracker.begin_epoch(epoch, (self.params or {}).get("steps"))
        self._update()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self._text is not None:
            return self._text.on_train_batch_end(batch, logs)
        self.tracker.batch_end(batch, logs)
        if self._flush_next:  # a pause or stop was asked during this batch: show it all
            self._flush_next = False
            if self._warnings is None and self.outputs and self.run is not None:
                # a resumed run's new pass (its own thread; on_train_begin ran once)
                self._warnings = _WarningCapture(self.message)
            self._update(force=True)
        elif self.throttle.clock() >= self.throttle.next_update:
            self._update()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self._text is not None:
            return self._text.on_epoch_end(epoch, logs)
        with self._lock:
            self.tracker.end_epoch(epoch, logs)
            self._version += 1
        self._update()

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._text is not None:
            self._text = None
            return
        self._release_hooks()
        if self.run is None:
            epochs = self._epochs()
            complete = epochs is None or self.tracker.epochs_done >= epochs
            stopped = getattr(self.model, "stop_training", False) and not complete
            self.set_state("stopped" if stopped else "finished")
        else:
            self._update(force=True)

    def _after_cell(self, result: Any) -> None:
        """The cell running a plain `fit` ended: if training did not end, it failed."""
        self._cancel_cell_hook = None
        if self.state not in _ACTIVE:
            return
        self._release_hooks()
        error = getattr(result, "error_in_exec", None)
        if isinstance(error, KeyboardInterrupt):
            self.message("Interrupted.")
            self.set_state("stopped")
        else:
            self._failure(error)
            self.set_state("failed" if error is not None else "stopped")


def display_run(run: Any) -> Dashboard:
    """Show a live view of `run` in the current cell: its dashboard if it has
    one, else a new one bound to it.

    This is what displaying a `Run` (a `run` as the last line of a cell) does.

    Args:
        run: an `nbtrain.Run`.

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
            dashboard._late = True
        dashboard.bind(run)
    dashboard.display()
    return dashboard

