"""`LivePlot`: when and where a dashboard's plot is rendered.

Why the plot lagged (issue 25: renders at about 0.12/s, the plot epochs
behind the counters): it was rendered on the training thread, and the
throttle spaced renders so that they took at most 1% of the wall time.  A
render costs 5-25 ms on an idle core, but its wall time on a loaded 2-core
machine, competing with TensorFlow's threads for the CPU and the GIL, was
about 65-80 ms, so renders were 6.5-8 s apart (10 s at most); a plot-control
change waited for the next of them.

Now (`PlotWorker`): the training thread only copies what to draw (the
tracker's bounded series, microseconds) at most once a second and goes on;
a thread of the dashboard's renders it, while TensorFlow's step releases the
GIL, and shows it.  Renders come every `Throttle.plot_interval` (1 s), at
most `Throttle.max_plot_interval` (2 s) apart, and a plot-control change is
drawn at once from the last data.  Paused, ended, or driven by a fake clock
(tests), the plot is rendered on the caller's thread as before; the final
plot (the static snapshot) always is, after the thread has been joined.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from nbtrain.dashboard.plot import PlotRenderer, give_back, take_renderer
from nbtrain.dashboard.plotworker import PlotWorker
from nbtrain.dashboard.tracker import LEARNING_RATE
from nbtrain.engine.hyperparameters import scalar_value
from nbtrain.run.state import ACTIVE, ENDED


class PlotJob(NamedTuple):
    """What one render draws: copies of the tracker's panels at one moment."""

    panels: list
    rate: Any  # the learning-rate panel, or None
    x_range: tuple[float, float]
    metrics: frozenset  # the metric names that exist (for the plot options)
    made: float = 0.0  # when (the throttle's clock): the next render is due a period later


def learning_rate_of(model: Any) -> float | None:
    """The learning rate `model`'s optimizer trains with now (a schedule's value at
    the current step), or None (no model, no optimizer yet)."""
    optimizer = getattr(model, "optimizer", None)
    value = getattr(optimizer, "learning_rate", None) if optimizer is not None else None
    if value is None:
        return None
    return scalar_value(value)


def drawable(panel: Any) -> bool:
    """A panel shows something: a batch line (two points) or an epoch or val marker."""
    return len(panel.batch[0]) >= 2 or len(panel.epochs[0]) > 0 or len(panel.val[0]) > 0


class LivePlot:
    """The plot of one `Presenter`: its renderer, its render thread and its schedule.

    Args:
        presenter: the dashboard's `Presenter` (its tracker, plot options,
            throttle, view, snapshot, lock and state).
        threaded: render on a thread of its own while training (default: when
            the throttle's clock is the real one).

    Attributes:
        renderer: the `PlotRenderer` (None before the first render and after the
            final one: its figure is the bulk of a dashboard's memory).
        learning_rate: a function returning the optimizer's learning rate now
            (None: the learning-rate panel shows only what the logs and steering
            tell); read at most twice a second.
        version: bumped when the tracker changed beyond new batches.
    """

    def __init__(self, presenter: Any, threaded: bool | None = None):
        self.presenter = presenter
        self.renderer: PlotRenderer | None = None
        self.threaded = (presenter.throttle.clock is time.monotonic
                         if threaded is None else threaded)
        self.learning_rate: Callable[[], float | None] | None = None
        self.version = 0
        self.render_lock = threading.Lock()  # one render at a time, whichever thread
        self.worker = PlotWorker(self._render_job, self._publish, presenter.lock)
        self._submitted: Any = None  # the version of the last job made
        self._seq = 0  # renders started
        self._shown = 0  # the newest render shown
        self._rate_read = -1.0

    # -- on the presenter's thread, its lock held --------------------------------------------

    def update(self, now: float, force: bool) -> None:
        """The plot may be due (`force`: a state change): hand the latest data to the
        render thread, or render here when nothing trains."""
        presenter = self.presenter
        self.read_rate(now)
        job = self.job(force)
        if job is None:
            return
        if self.threaded and presenter.state in ACTIVE:
            presenter.throttle.plot_submitted(now)
            self.worker.submit(job)
            return
        if presenter.state in ENDED:
            self.worker.stop()  # the final plot is drawn here, after the thread's last
        self.draw(job)

    def replot(self) -> None:
        """The plot options changed: draw again at once (from the last data while
        training; then an ended run's snapshot is written again with it)."""
        presenter = self.presenter
        self.version += 1
        if self.threaded and presenter.state in ACTIVE:
            if not self.worker.kick():
                self._submitted = None
            return
        job = self.job(True)
        if job is not None:
            self.draw(job)

    def stop(self) -> None:
        """Join the render thread (the run ended or the dashboard closed)."""
        self.worker.stop()

    def read_rate(self, now: float) -> None:
        """Record the optimizer's learning rate (at most twice a second)."""
        if self.learning_rate is None or 0 <= now - self._rate_read < 0.5:
            return
        self._rate_read = now
        try:
            value = self.learning_rate()
        except Exception:  # noqa: BLE001 - no model yet, a schedule that cannot be read
            return
        if value is not None:
            self.presenter.tracker.learning_rate(float(value))

    def job(self, force: bool = False) -> PlotJob | None:
        """A copy of what to draw now; None when nothing is drawable yet or nothing
        changed since the last job (unless `force`)."""
        tracker = self.presenter.tracker
        rates = tracker.rates[-1] if tracker.rates else None
        version = (self.version, tracker.total, tracker.epoch, len(tracker.metrics), rates,
                   len(tracker.marks))
        if version == self._submitted and not force:
            return None
        panels = [panel for panel in tracker.panels() if drawable(panel)]
        if not panels:
            return None  # no axes with an arbitrary range before a metric's first point
        self._submitted = version
        return PlotJob(panels, tracker.rate_panel(),
                       tracker.x_range(self.presenter.epochs()),
                       frozenset(tracker.metrics), self.presenter.throttle.clock())

    def draw(self, job: PlotJob) -> None:
        """Render `job` on this thread and show it."""
        result = self._render_job(job)
        if result is not None:
            self._publish(job, *result)

    # -- on any thread ------------------------------------------------------------------------

    def _panels(self, job: PlotJob) -> list:
        options = self.presenter.plot_options
        panels = options.select(job.panels)
        chosen = options.metrics
        if job.rate is not None and (not chosen or LEARNING_RATE in chosen):
            panels = [*panels, job.rate]
        return panels

    def _render_job(self, job: PlotJob) -> tuple[bytes, float, int] | None:
        """Render `job`; its cost is the CPU time of this thread when threaded (what a
        render takes from training; its wall time on a loaded machine is mostly
        waiting for a core), the throttle's clock otherwise."""
        clock = time.thread_time if self.threaded else self.presenter.throttle.clock
        with self.render_lock:
            self._seq += 1
            seq = self._seq
            start = clock()
            if self.renderer is None:
                self.renderer = take_renderer()
            self.presenter.plot_options.apply(self.renderer)
            png = self.renderer.render(self._panels(job), job.x_range)
            return png, clock() - start, seq

    def _publish(self, job: PlotJob, png: bytes, seconds: float, seq: int = 0) -> None:
        """Show a rendered plot (the presenter's lock held); an older render than the
        one shown is dropped.  The next render is due a period after this one's data
        was taken (threaded) or after it was drawn."""
        if seq < self._shown:
            return
        self._shown = seq
        presenter = self.presenter
        presenter.snapshot.png = png
        presenter.view.set_plot(png)
        presenter.throttle.rendered(seconds, since=job.made if self.threaded else None)

    def release(self) -> None:
        """Give the renderer back for the next dashboard's plot (its figure is the bulk
        of a dashboard's memory: one is kept, not one per dashboard)."""
        with self.render_lock:
            if self.renderer is not None:
                give_back(self.renderer)
            self.renderer = None


__all__ = ["LivePlot", "PlotJob", "drawable", "learning_rate_of"]
