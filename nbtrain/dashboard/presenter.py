"""`Presenter`: what a dashboard shows, pushed to its widgets at a bounded rate.

It owns the widgets (`view`), the metric tracker, the throttle, the plot
renderer, the messages and the `RateMeter` (elapsed time, steps per second,
ETA).  Any thread may call it; one lock keeps it consistent.  When the state
becomes an ended one, the `Snapshot` writes the final table and plot into the
cell's outputs.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from nbtrain.dashboard import format as fmt
from nbtrain.dashboard.plot import PlotRenderer
from nbtrain.dashboard.plotcontrols import PlotOptions
from nbtrain.dashboard.snapshot import Snapshot
from nbtrain.dashboard.throttle import Throttle
from nbtrain.dashboard.tracker import MetricTracker
from nbtrain.dashboard.view import DashboardView, set_traits
from nbtrain.run.state import ACTIVE, ENDED, RUNNING

MAX_MESSAGES = 20


class RateMeter:
    """The training clock (it runs only while batches are trained) and the rate.

    The rate is measured over at least half a second and smoothed
    (`0.6 * old + 0.4 * new`); it is kept while the clock is stopped.

    Example:

    ```python
    meter = RateMeter()
    meter.set_active(True, now=0.0)
    meter.measure(0.0, 0); meter.measure(1.0, 50)   # 50.0 steps/s
    ```
    """

    def __init__(self) -> None:
        self.elapsed = 0.0
        self.active_since: float | None = None
        self.rate: float | None = None
        self._mark: tuple[float, int] | None = None

    def set_active(self, active: bool, now: float) -> None:
        """Start (True) or stop (False) the clock at `now`."""
        if active and self.active_since is None:
            self.active_since = now
            self._mark = None
        elif not active and self.active_since is not None:
            self.elapsed += now - self.active_since
            self.active_since = None

    def elapsed_at(self, now: float) -> float:
        """Seconds of training up to `now`."""
        if self.active_since is None:
            return self.elapsed
        return self.elapsed + now - self.active_since

    def measure(self, now: float, total: int, active: bool = True) -> float | None:
        """The rate in steps per second, given `total` steps trained by `now`
        (while not `active`, the last rate)."""
        if not active:
            return self.rate
        if self._mark is None:
            self._mark = (now, total)
            return self.rate
        since, before = self._mark
        if now - since >= 0.5:
            measured = (total - before) / (now - since)
            self.rate = measured if self.rate is None else 0.6 * self.rate + 0.4 * measured
            self._mark = (now, total)
        return self.rate


def _drawable(panel: Any) -> bool:
    """A panel shows something: a batch line (two points) or an epoch or val marker."""
    return len(panel.batch[0]) >= 2 or len(panel.epochs[0]) > 0 or len(panel.val[0]) > 0


class Presenter:
    """The widgets of one dashboard and everything they show.

    Args:
        epochs: returns the final epoch (None: unknown yet).
        plot: draw the live plots.
        batch_logs, capacity: for the `MetricTracker`.
        throttle: the update schedule (default `Throttle()`).
    """

    def __init__(self, epochs: Callable[[], int | None], *, plot: bool = True,
                 batch_logs: str = "auto", capacity: int = 1024,
                 throttle: Throttle | None = None):
        self.epochs = epochs
        self.view = DashboardView(controls=False)
        self.tracker = MetricTracker(capacity, batch_logs)
        self.throttle = throttle or Throttle()
        self.plot = plot
        self.renderer: PlotRenderer | None = None  # made at the first render
        self.state = RUNNING
        self.messages: deque[tuple[str, str]] = deque(maxlen=MAX_MESSAGES)
        self.snapshot = Snapshot(self.view.saver)
        self.meter = RateMeter()
        self.lock = threading.RLock()
        self.flush_next = False  # the batch in flight at a state change is shown at once
        self._version = 0
        self._plotted: Any = -1  # what the last render showed
        self.plot_options = PlotOptions()  # log scale, smoothing, metrics (plot controls)

    def changed(self) -> None:
        """The tracker changed beyond new batches (an epoch ended, a history loaded)."""
        with self.lock:
            self._version += 1

    # -- messages -------------------------------------------------------------------------

    def add_message(self, text: str, level: str = "warning") -> None:
        """Add a message (not shown until the next update)."""
        with self.lock:
            if not self.messages or self.messages[-1] != (level, text):
                self.messages.append((level, text))

    # -- state ----------------------------------------------------------------------------

    def set_state(self, state: str) -> None:
        """Show a new state at once, with the latest values; an ended state writes the
        snapshot into the cell's outputs (the live view goes on showing it all)."""
        with self.lock:
            now = self.throttle.clock()
            old, self.state = self.state, state
            self.flush_next = True
            self.meter.set_active(state in ACTIVE, now)
            sent = self.view.set_state(state)
            self.throttle.spent(sent, now)
            if old in ENDED and state not in ENDED:
                self.snapshot.clear()
            self.update(force=True)
            if state in ENDED:
                self.snapshot.write(*self.snapshot_bundles())
                self.renderer = None  # its figure is the bulk of a dashboard's memory

    def snapshot_bundles(self) -> tuple[dict, dict | None]:
        """The final table and plot as mime bundles."""
        tracker = self.tracker
        rows = fmt.table_rows(tracker.ordered())
        progress = fmt.epoch_text(tracker.epoch + 1, self.epochs())
        names = ", ".join(m.name for m in tracker.ordered())
        return self.snapshot.bundles(self.state, progress, rows, self.messages, names,
                                     self.view.key)

    def display(self) -> None:
        """Show the widgets (and, once ended, the snapshot) in the current cell."""
        with self.lock:
            bundles = self.snapshot_bundles() if self.state in ENDED else (None, None)
            self.snapshot.show(self.view.root.model_id, *bundles)

    # -- updates --------------------------------------------------------------------------

    def due(self) -> bool:
        """An update is due by the throttle."""
        return self.throttle.clock() >= self.throttle.next_update

    def update(self, force: bool = False) -> None:
        """Push the latest values to the widgets (and maybe render the plot)."""
        with self.lock:
            throttle = self.throttle
            now = throttle.clock()
            if not force and now < throttle.next_update:
                return
            tracker = self.tracker
            tracker.sample()
            for name in tracker.nonfinite:
                value = tracker.metrics[name].last
                self.add_message(f"{name} is {value} in epoch {tracker.epoch + 1}")
            tracker.nonfinite.clear()
            throttle.spent(self._update_widgets(now), now)
            if self.plot and (force or throttle.plot_due(now)):
                self._render()

    def replot(self) -> None:
        """The plot options changed: draw again now if nothing trains (then an ended
        run's snapshot is written again with it), else at the next due render."""
        with self.lock:
            self.changed()
            if self.state in ACTIVE:
                return
            if self.plot:
                self._render()
            if self.state in ENDED and self.snapshot.outputs:
                self.snapshot.write(*self.snapshot_bundles())
                self.renderer = None

    def _update_widgets(self, now: float) -> int:
        view, tracker = self.view, self.tracker
        epochs, steps, done = self.epochs(), tracker.steps, tracker.done
        active = self.state in ACTIVE
        rate = self.meter.measure(now, tracker.total, active)
        if not active:
            rate = None  # paused or ended: no rate is current (the meter keeps it)
        eta = None
        if self.state in ACTIVE and rate and epochs:
            length = steps or tracker.last_epoch_length
            if length:
                remaining = max(length - done, 0) + max(epochs - tracker.epoch - 1, 0) * length
                eta = remaining / rate
        sent = set_traits(view.time, value=fmt.time_text(self.meter.elapsed_at(now), eta))
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

    def _render(self) -> None:
        tracker = self.tracker
        version = (self._version, tracker.total, tracker.epoch, len(tracker.metrics))
        if version == self._plotted:
            return
        # no empty axes with an arbitrary y range before a metric's first visible point
        panels = [panel for panel in self.plot_options.select(tracker.panels())
                  if _drawable(panel)]
        if not panels:
            return
        clock = self.throttle.clock
        start = clock()
        if self.renderer is None:
            self.renderer = PlotRenderer()
        self.plot_options.apply(self.renderer)
        png = self.renderer.render(panels, tracker.x_range(self.epochs()))
        self.snapshot.png = png
        self.view.set_plot(png)
        self._plotted = version
        self.throttle.rendered(clock() - start)


__all__ = ["MAX_MESSAGES", "Presenter", "RateMeter"]
