"""When the dashboard may send: one throttle for every widget update.

Two schedules share a clock.  Bars, counters and table update at most every
`interval` seconds *and* within a budget of widget messages a second (an
update that changed three widgets costs three messages, so the next one waits
three times longer); the plot renders every `plot_interval` seconds (1 s),
less often when rendering would take more than `plot_share` of the wall time
(10% of a core; a render costs 6-60 ms of CPU, about 1% at one a second),
but never more than `max_plot_interval` (2 s) apart: the plot is never more
than about 2 s behind the counters.  (It used to be 1% of the wall time and
10 s: with a render's wall time of 65-80 ms on a loaded machine, renders came
every 6.5-8 s and the plot lagged epochs behind.  Renders now run on a thread
of their own, `LivePlot`, which costs the training far less than their wall
time.)  The first render waits `plot_interval` after the first look: a plot
of one batch says nothing, and a run shorter than that renders only its
final plot; its one message counts against the same budget.  In any one second at most
`budget` messages plus those of one update are sent (12 + 8 = 20 with the
defaults), whatever the step rate: a model at 10 000 steps/s sends what one
at 10 steps/s sends.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Throttle:
    """Decides when to update the widgets and when to render the plot.

    Args:
        interval: minimum seconds between two updates of bars and table.
        budget: widget messages a second the updates (and renders) may send on average.
        plot_interval: seconds between two plot renders.
        plot_share: largest fraction of wall time spent rendering the plot (10% of
            a core: on the render thread a render takes 6-60 ms of CPU, about 1% of
            a core at one a second; slower renders space out, up to
            `max_plot_interval`).
        max_plot_interval: the most seconds between two renders while training.
        clock: the time source (for tests).

    Example:

    ```python
    throttle = Throttle()
    if throttle.due():                 # cheap: one clock read
        sent = update_widgets()        # number of widget messages
        throttle.spent(sent)
        if throttle.plot_due():
            start = time.monotonic()
            render_plot()
            throttle.rendered(time.monotonic() - start)
    ```
    """

    def __init__(self, interval: float = 0.1, budget: float = 12.0, plot_interval: float = 1.0,
                 plot_share: float = 0.1, max_plot_interval: float = 2.0,
                 clock: Callable[[], float] = time.monotonic):
        self.interval = interval
        self.budget = budget
        self.plot_interval = plot_interval
        self.plot_share = plot_share
        self.max_plot_interval = max_plot_interval
        self.clock = clock
        self.next_update = 0.0
        self.next_plot: float | None = None  # None: not looked at yet (see plot_due)
        self.updates = 0
        self.messages = 0
        self.renders = 0
        self.render_seconds = 0.0
        self.render_cost: float | None = None  # recent seconds per render

    def due(self, now: float | None = None) -> bool:
        """True when bars and table may be updated."""
        return (self.clock() if now is None else now) >= self.next_update

    def spent(self, messages: int, now: float | None = None) -> None:
        """Record an update that sent `messages` widget messages; schedule the next one.

        Forced updates (a state change) are recorded too: they delay the next
        throttled one, so the budget holds on average.
        """
        now = self.clock() if now is None else now
        self.updates += 1
        self.messages += messages
        self.next_update = max(self.next_update, now + self._wait(messages))

    def _wait(self, messages: int) -> float:
        return max(self.interval, messages / self.budget) if self.budget else self.interval

    def plot_due(self, now: float | None = None) -> bool:
        """True when the plot may be rendered (never at the first look: that one
        schedules the first render `plot_interval` later)."""
        now = self.clock() if now is None else now
        if self.next_plot is None:
            self.next_plot = now + self.plot_interval
            return False
        return now >= self.next_plot

    def plot_submitted(self, now: float | None = None) -> None:
        """A render was handed to the render thread: the next is not due before
        `plot_interval` (`rendered` then schedules it from the render's cost)."""
        now = self.clock() if now is None else now
        self.next_plot = now + self.plot_interval

    def rendered(self, seconds: float, now: float | None = None,
                 since: float | None = None) -> None:
        """Record a render that took `seconds` (and sent one message); schedule the next.

        The wait adapts to the average of recent renders (the first, which
        builds the figure, included), so that rendering stays within
        `plot_share` of the wall time, but never exceeds `max_plot_interval`:
        the plot of a training run is never much older than that.  The wait
        counts from `since` when given (when the render's data was taken: the
        render thread keeps a steady period), else from `now`.
        """
        now = self.clock() if now is None else now
        self.renders += 1
        self.render_seconds += seconds
        self.messages += 1
        if self.budget:
            self.next_update = max(self.next_update, now + 1 / self.budget)
        cost = self.render_cost
        cost = self.render_cost = seconds if cost is None else 0.5 * (cost + seconds)
        wait = max(self.plot_interval, cost / self.plot_share if self.plot_share else 0.0)
        wait = min(wait, max(self.max_plot_interval, self.plot_interval))
        self.next_plot = (now if since is None else since) + wait

    def reset(self) -> None:
        """Make the next update and render due at once."""
        self.next_update = self.next_plot = 0.0
