"""`Presenter`: what a dashboard shows, pushed to its widgets at a bounded rate.

It owns the widgets (`view`), the metric tracker, the throttle, the plot
renderer, the messages and the `RateMeter` (elapsed time, steps per second,
ETA).  Any thread may call it; one lock keeps it consistent.  When the state
becomes an ended one, the `Snapshot` writes the final table and plot into the
cell's outputs.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from nbtrain.dashboard import format as fmt
from nbtrain.dashboard.layout import DashboardView, set_traits
from nbtrain.dashboard.liveplot import LivePlot
from nbtrain.dashboard.plotcontrols import PlotOptions
from nbtrain.dashboard.snapshot import Snapshot
from nbtrain.dashboard.throttle import Throttle
from nbtrain.dashboard.tracker import MetricTracker
from nbtrain.run.state import ACTIVE, ENDED, RUNNING

MAX_MESSAGES = 20


class RateMeter:
    """The training clock (it runs only while batches are trained), the steady step
    rate and the time left.

    - Steady state: after every start or resume the first step is not measured
      (it holds the compile and tracing, or the data pipeline starting), so
      the first window opens at the first measure that sees a step done since.
    - Smoothed: steps and seconds are summed over windows of at least
      `window` seconds within an epoch, both decaying with a time constant of
      `tau` seconds (or two epochs, when longer); the rate is their ratio (the
      plain average since the start while that is shorter than `tau`).
    - An epoch's end (validation, callbacks) is not a step: a window across
      one measures what the end costs beyond its steps (`end_cost`; the
      first end, which traces the validation step, is not measured), and the
      ETA adds that for each end to come.  (Epochs shorter than a window: the
      rate is the pace across them, their ends included.)
    - Known only once `settle` seconds and 2 steps were measured: before that
      `rate` is None and there is no ETA.  It is kept while the clock is stopped.

    Example:

    ```python
    meter = RateMeter()
    meter.set_active(True, now=0.0)
    meter.measure(0.0, 0)        # the start
    meter.measure(9.0, 1)        # the first step: 9 s of compile, not measured
    meter.measure(10.0, 51)      # 50 steps in 1 s
    meter.rate                   # -> 50.0
    meter.eta(500)               # -> 10.0 (seconds)
    ```
    """

    def __init__(self, window: float = 0.5, tau: float = 10.0, settle: float = 1.0) -> None:
        self.window, self.tau, self.settle = window, tau, settle
        self.elapsed = 0.0
        self.active_since: float | None = None
        self.rate: float | None = None
        self.end_cost = 0.0  # seconds an epoch's end takes beyond its steps
        self._first: int | None = None  # steps done at the first measure since the start
        self._mark: tuple[float, int, int] | None = None  # where the window opened
        self._within = _Pace()  # windows within an epoch
        self._across = _Pace()  # every window (the pace when epochs are shorter than one)
        self._ends = 0  # epoch ends measured
        self._epoch: tuple[float, int] | None = None  # when the last epoch end was seen first
        self._epoch_span = 0.0  # seconds of the last epoch seen whole

    def set_active(self, active: bool, now: float) -> None:
        """Start (True) or stop (False) the clock at `now`; a start opens no window
        until a step is done (that step is not measured)."""
        if active and self.active_since is None:
            self.active_since = now
            self._first = self._mark = self._epoch = None
        elif not active and self.active_since is not None:
            self.elapsed += now - self.active_since
            self.active_since = None

    def elapsed_at(self, now: float) -> float:
        """Seconds of training up to `now`."""
        if self.active_since is None:
            return self.elapsed
        return self.elapsed + now - self.active_since

    def measure(self, now: float, total: int, active: bool = True,
                ends: int = 0) -> float | None:
        """The steady rate in steps per second (None while not known), given `total`
        steps trained and `ends` epochs ended (their validation done) by `now`
        (while not `active`, the last rate)."""
        if not active:
            return self.rate
        epoch = ends
        self._follow_epoch(now, epoch)
        if self._mark is None or total < self._mark[1]:  # a new training counts from 0
            if self._first is None or total < self._first:
                self._first = total
            elif total > self._first:
                self._mark = (now, total, epoch)
            return self.rate
        since, before, began = self._mark
        span, steps = now - since, total - before
        if span < self.window:
            return self.rate
        self._mark = (now, total, epoch)
        tau = max(self.tau, 2 * self._epoch_span)
        self._across.add(steps, span, tau)
        if epoch == began:
            self._within.add(steps, span, tau)
        elif self._within.known(self.settle):
            cost = max(span - steps / self._within.rate, 0.0) / max(epoch - began, 1)
            self._ends += 1
            if self._ends > 1:  # the first end traced the validation step: not measured
                self.end_cost += (cost - self.end_cost) / min(self._ends - 1, 3)
        if self._within.known(self.settle):
            self.rate = self._within.rate
        elif self._across.known(self.settle):
            self.rate, self.end_cost = self._across.rate, 0.0
        return self.rate

    def _follow_epoch(self, now: float, epoch: int) -> None:
        seen = self._epoch
        if seen is None or epoch != seen[1]:
            if seen is not None and epoch == seen[1] + 1:
                self._epoch_span = now - seen[0]  # from its first sight to the next one's
            self._epoch = (now, epoch)

    def eta(self, remaining: float, ends: int = 0) -> float | None:
        """Seconds to train `remaining` steps and `ends` epoch ends (None while unknown)."""
        if not self.rate:
            return None
        return remaining / self.rate + ends * self.end_cost


class _Pace:
    """Steps and seconds, summed with exponential decay (a `RateMeter`'s windows)."""

    def __init__(self) -> None:
        self.steps = self.seconds = 0.0  # decayed
        self.measured = (0.0, 0)  # seconds and steps in all

    def add(self, steps: int, seconds: float, tau: float) -> None:
        decay = math.exp(-seconds / tau)
        self.steps = decay * self.steps + steps
        self.seconds = decay * self.seconds + seconds
        self.measured = (self.measured[0] + seconds, self.measured[1] + steps)

    def known(self, settle: float) -> bool:
        return self.measured[0] >= settle and self.measured[1] >= 2 and self.steps > 0

    @property
    def rate(self) -> float:
        return self.steps / self.seconds


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
        self.state = RUNNING
        self.messages: deque[tuple[str, str]] = deque(maxlen=MAX_MESSAGES)
        self.snapshot = Snapshot(self.view.saver)
        self.meter = RateMeter()
        self.tracker.clock = self.training_time  # times the epochs (the table's column)
        self.lock = threading.RLock()
        self.flush_next = False  # the batch in flight at a state change is shown at once
        self.plot_options = PlotOptions()  # log scale, smoothing, metrics (plot controls)
        self.live = LivePlot(self)  # the plot: its renderer, its thread, its schedule
        # other views of what it shows (`htmlview.HtmlView`): called after each update
        # (True: forced, a state change) and once more after an ended run's final plot
        self.listeners: list[Callable[[bool], None]] = []
        # widget changes made by an update, after its plot, each returning the messages
        # it sent (`PlotControls`' new toggles): a throttled update that sends some
        # sends nothing else, so a burst is one update's worth within the budget
        self.deferred: list[Callable[[], int]] = []

    @property
    def renderer(self) -> Any:
        """The plot's `PlotRenderer` (None before the first render and after the final one)."""
        return self.live.renderer

    def training_time(self) -> float:
        """Seconds trained so far (the clock stops while paused or ended)."""
        return self.meter.elapsed_at(self.throttle.clock())

    def changed(self) -> None:
        """The tracker changed beyond new batches (an epoch ended, a history loaded)."""
        with self.lock:
            self.live.version += 1

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
            if old in ENDED and state not in ENDED:
                self.snapshot.clear()
            self.update(force=True)
            if state in ENDED:
                self.live.stop()  # the render thread (the final plot was drawn here)
                self.snapshot.write(*self.snapshot_bundles())
                for listener in self.listeners:
                    listener(True)  # with the final plot
                self.live.release()  # its figure is the bulk of a dashboard's memory
            # the badge last: a page (or a user) that sees an ended state has the final
            # table, plot and snapshot already (a save then keeps them)
            self.throttle.spent(self.view.set_state(state), self.throttle.clock())

    def snapshot_bundles(self) -> tuple[dict, dict | None]:
        """The final table and plot as mime bundles."""
        tracker = self.tracker
        progress = fmt.epoch_text(tracker.epoch + 1, self.epochs())
        names = ", ".join(m.name for m in tracker.ordered())
        return self.snapshot.bundles(self.state, progress, fmt.epoch_table(tracker),
                                     self.messages, names, self.view.key)

    def display(self) -> None:
        """Show the widgets (and, once ended, the snapshot) in the current cell."""
        with self.lock:
            bundles = self.snapshot_bundles() if self.state in ENDED else (None, None)
            self.snapshot.show(self.view.root.model_id, *bundles)

    # -- updates --------------------------------------------------------------------------

    def due(self) -> bool:
        """An update is due by the throttle."""
        return self.throttle.clock() >= self.throttle.next_update

    def update(self, force: bool = False, plot: bool = True) -> None:
        """Push the latest values to the widgets (and maybe render the plot; `plot=False`:
        not now, e.g. when the run's ended state, which draws the final plot, follows)."""
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
            if force:  # a state change: shown at once, whatever else follows
                throttle.spent(self._update_widgets(now), now)
            if self.plot and plot and (force or throttle.plot_due(now)):
                self.live.update(now, force)
            sent = sum(change() for change in self.deferred)
            if not force:
                throttle.spent(sent or self._update_widgets(now), now)
            elif sent:
                throttle.spent(sent, now)
            for listener in self.listeners:
                listener(force)

    def replot(self) -> None:
        """The plot options changed: draw again at once (while training, on the render
        thread from the last data; an ended run's snapshot is written again with it)."""
        with self.lock:
            if self.plot:
                self.live.replot()
            if self.state in ENDED and self.snapshot.outputs:
                self.snapshot.write(*self.snapshot_bundles())
                self.live.release()

    def _update_widgets(self, now: float) -> int:
        view, tracker = self.view, self.tracker
        epochs, steps, done = self.epochs(), tracker.steps, tracker.done
        active = self.state in ACTIVE
        rate = self.meter.measure(now, tracker.total, active, len(tracker.epoch_logs))
        if not active:
            rate = None  # paused or ended: no rate is current (the meter keeps it)
        eta = None
        length = steps or tracker.last_epoch_length
        if rate and epochs and length:
            remaining = max(length - done, 0) + max(epochs - tracker.epoch - 1, 0) * length
            eta = self.meter.eta(remaining, ends=max(epochs - tracker.epoch, 0))
        sent = set_traits(view.time, value=fmt.time_text(self.meter.elapsed_at(now), eta))
        style = fmt.BAR_STYLES.get(self.state, "")
        sent += set_traits(view.epoch_bar, max=max(int(epochs or 1), 1),
                           value=min(tracker.epochs_done, int(epochs or 1)), bar_style=style)
        sent += set_traits(view.epoch_counter, value=fmt.epoch_text(tracker.epoch + 1, epochs))
        sent += set_traits(view.batch_bar, max=max(int(steps or 1), 1),
                           value=min(done, int(steps or 0)), bar_style=style)
        sent += set_traits(view.batch_counter, value=fmt.batch_text(done, steps, rate))
        reserve = (epochs - (tracker.first_epoch or 0)) if epochs else None
        table = fmt.table_html(fmt.epoch_table(tracker, fmt.LIVE_ROWS), reserve=reserve)
        sent += set_traits(view.metrics, value=table)
        sent += set_traits(view.messages, value=fmt.messages_html(self.messages))
        return sent


__all__ = ["MAX_MESSAGES", "Presenter", "RateMeter"]
