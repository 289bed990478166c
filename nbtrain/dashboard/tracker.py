"""What the dashboard knows about a run's metrics: plain data, no widgets.

`MetricTracker` turns callback logs into, for each metric, the values the
table shows (last, epoch average, validation, best with its epoch) and the
bounded series the plot draws.  Positions are in epochs: a batch point sits
at `epoch + fraction of the epoch done`, an epoch's training average and its
validation value at the epoch's end (epoch 1 ends at x = 1), as Keras's
History numbers them.  It also keeps the learning rate's history (its value
at the start and every change, with the epoch and batch it landed on): the
plot draws it as a panel of its own.

Batch logs are *running averages of the epoch so far* in Keras 3 (`model.fit`)
and in nbtrain's compiled loop (`batch_logs="running"`).  The mean of the
batches between two samples `m < n` is then exactly `(n*A_n - m*A_m) / (n - m)`,
so the tracker does not need to read every batch: it samples the logs only
when a plot bucket is full, and still plots exact bucket means of the
per-batch values.  It reads them at most every `sample_interval` seconds
(20 ms) too: a read of the logs' tensors waits for the step and costs the
training loop about as much as the rest of the dashboard (20 us a batch at
1,000 steps/s), while 50 points a second are more than a plot shows.  With
`batch_logs="batch"` (loops that report each batch's own value, as
`train_on_batch` does) every batch is read and averaged.  The
default, `"auto"`, starts as `"running"` and checks at the first epoch's end:
running averages end on the epoch's value; if the last batch log is not the
epoch's value, the logs were per-batch values, and the tracker drops the
batch curve it drew and switches to `"batch"`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from nbtrain.dashboard.series import BucketSeries

_NOT_METRICS = frozenset({"batch", "size", "num_steps"})
LEARNING_RATE = "learning_rate"
"""The name of the learning-rate panel."""


_ROUND = (1.0, 2.0, 3.0, 5.0)


def round_up(x: float) -> float:
    """The next round number at or above `x` (1, 2, 3, 5 x 10^k), at least 1: how
    far the x axis reaches (in epochs from its start).  The data fill at least half
    of it, and the axis changes (a full redraw of the plot) 4 times a decade.

    Example:

    ```python
    round_up(3.4), round_up(11), round_up(0.2)   # -> (5.0, 20.0, 1.0)
    ```
    """
    if not x > 1.0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(x))
    for m in (*_ROUND, 10.0):
        value = m * power
        if value >= x * (1 - 1e-12):
            return value
    return 10.0 * power


def x_limits(start: float, position: float, final: float | None = None) -> tuple[float, float]:
    """The x axis from `start` to the next round number of epochs past `position`,
    or to the `final` epoch (when known, and not passed) once that axis would reach
    two thirds of the run: the data fill about half of the axis or more, and a
    short run's axis changes (a full redraw of the plot) at most twice (3 epochs:
    to 1, then to 3)."""
    end = start + round_up(position - start)
    if final is not None and position <= final and 2 * (final - start) <= 3 * (end - start):
        end = max(final, start + 1.0)
    return float(start), float(end)


def _is_rate(name: str) -> bool:
    name = name.lower()
    return name in ("lr", LEARNING_RATE) or LEARNING_RATE in name


def metric_values(logs: dict | None) -> Iterator[tuple[str, float]]:
    """The `(name, float value)` pairs of the metrics in Keras logs (bookkeeping
    keys and values that are not numbers left out)."""
    for key, value in (logs or {}).items():
        if key in _NOT_METRICS:
            continue
        try:
            yield key, float(value)
        except (TypeError, ValueError):
            continue
_LOWER_HINTS = ("loss", "error", "crossentropy", "hinge", "divergence", "poisson", "logcosh",
                "mean_squared", "mean_absolute")
_LOWER_NAMES = frozenset({"mse", "mae", "mape", "msle", "rmse", "kld"})


def best_direction(name: str) -> str | None:
    """`"min"` or `"max"` for what counts as the best value of a metric; None for
    values that have no best (the learning rate).

    Example:

    ```python
    best_direction("val_loss")  # -> "min"
    best_direction("accuracy")  # -> "max"
    ```
    """
    name = name.lower().removeprefix("val_")
    if name in ("lr", "learning_rate") or "learning_rate" in name:
        return None
    if name in _LOWER_NAMES or any(hint in name for hint in _LOWER_HINTS):
        return "min"
    return "max"


@dataclass
class Metric:
    """One metric: its latest values, its best, and its three plotted series."""

    name: str
    capacity: int
    direction: str | None = None
    last: float | None = None
    epoch_avg: float | None = None
    val: float | None = None
    best: float | None = None
    best_epoch: int | None = None
    best_is_val: bool = False
    nonfinite: bool = False
    batch: BucketSeries = field(init=False)
    epochs: BucketSeries = field(init=False)
    val_points: BucketSeries = field(init=False)

    def __post_init__(self) -> None:
        self.direction = best_direction(self.name)
        self.batch = BucketSeries(self.capacity)
        self.epochs = BucketSeries(self.capacity)
        self.val_points = BucketSeries(self.capacity)

    def offer_best(self, value: float, epoch: int, is_val: bool) -> None:
        """Consider an epoch-level value for the best (validation values win over training)."""
        if self.direction is None or not math.isfinite(value):
            return
        if self.best_is_val and not is_val:
            return
        better = (self.best is None or (is_val and not self.best_is_val)
                  or (value < self.best if self.direction == "min" else value > self.best))
        if better:
            self.best, self.best_epoch, self.best_is_val = value, epoch, is_val


@dataclass
class Panel:
    """What the plot draws for one metric (arrays of positions in epochs and values)."""

    name: str
    batch: tuple[np.ndarray, np.ndarray]
    epochs: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    marks: tuple[float, ...] = ()  # where a hyperparameter changed (a steered run)
    overlay: Any = None  # an earlier run's ((x, train), (x, val)) arrays, drawn faintly
    changes: tuple[RateChange, ...] = ()  # the learning-rate panel: its first value, each change


@dataclass(frozen=True)
class RateChange:
    """A change of the learning rate: where (x, in epochs), to what, and the 1-based
    epoch and batch it landed on (batch None: between epochs)."""

    x: float
    value: float
    epoch: int
    batch: int | None = None


class RateHistory:
    """The learning rate's history: its first value, then each change.

    Example:

    ```python
    history = RateHistory()
    history.record(1e-3, 0.0, steps=100)
    history.record(3e-4, 2.5, steps=100)     # a change in epoch 3, batch 51
    history.panel(start=0.0, now=4.0)        # a step line from 0 to 4
    ```
    """

    def __init__(self) -> None:
        self.rates: list[RateChange] = []

    def record(self, value: float | None, x: float, steps: int | None = None, *,
               epoch: int | None = None, batch: int | None = None,
               change: bool = False) -> None:
        """The rate is `value` from position `x` (in epochs) on; recorded when it
        differs from the last value recorded (float32 noise aside).

        Args:
            value: the rate (None or not finite: ignored).
            x: position in epochs.
            steps: batches an epoch (to name the batch from `x`).
            epoch, batch: 1-based, where it landed (default: from `x`).
            change: a change applied by steering (exact position; recorded even
                when a reading of the same value got there first, which it replaces).
        """
        if value is None or not math.isfinite(value):
            return
        last = self.rates[-1] if self.rates else None
        if last is not None and math.isclose(last.value, value, rel_tol=1e-6):
            if not change or last.batch is not None or len(self.rates) == 1:
                return
            self.rates.pop()  # read at an update; the change says exactly where it landed
        if epoch is None:
            epoch = int(math.floor(x)) + 1
            batch = int(round((x - epoch + 1) * steps)) + 1 if steps and x % 1 else None
        self.rates.append(RateChange(float(x), float(value), epoch, batch))

    def panel(self, start: float, now: float) -> Panel | None:
        """A step line from `start` to `now` and its points: the first value (at the
        line's start), then each change (None before a value)."""
        rates = self.rates
        if not rates:
            return None
        now = max(now, rates[-1].x)
        x = [min(rates[0].x, start)] + [r.x for r in rates[1:]] + [now]
        y = [r.value for r in rates] + [rates[-1].value]
        empty = (np.empty(0), np.empty(0))
        return Panel(LEARNING_RATE, (np.array(x), np.array(y)), empty, empty,
                     changes=(replace(rates[0], x=x[0]), *rates[1:]))


class MetricTracker:
    """Metric values and plot series from Keras callback logs.

    Args:
        capacity: buckets kept per series (see `BucketSeries`).
        batch_logs: `"running"` if batch logs are running averages of the epoch
            (Keras 3), `"batch"` if they are each batch's own value, `"auto"`
            to find out at the first epoch's end.
        sample_interval: the fewest seconds between two reads of running-average
            logs (0: whenever a plot bucket is full; the series' means are exact
            either way, only their resolution differs).

    Example:

    ```python
    tracker = MetricTracker()
    tracker.begin_epoch(0, steps=100)
    for batch in range(100):
        tracker.batch_end(batch, {"loss": running_average[batch]})
    tracker.end_epoch(0, {"loss": 0.31, "val_loss": 0.35})
    tracker.metrics["loss"].best    # -> 0.35 (validation), best_epoch 1
    ```
    """

    def __init__(self, capacity: int = 1024, batch_logs: str = "auto",
                 sample_interval: float = 0.02):
        if batch_logs not in ("auto", "running", "batch"):
            raise ValueError(
                f"batch_logs must be 'auto', 'running' or 'batch', got {batch_logs!r}.")
        self.capacity = capacity
        self.batch_logs = batch_logs
        self.sample_interval = sample_interval
        self.running = batch_logs != "batch"
        self._check = batch_logs == "auto"  # still to find out what batch logs are
        self.metrics: dict[str, Metric] = {}
        self.first_epoch: int | None = None
        self.epoch = 0
        self.steps: int | None = None
        self.done = 0  # batches of `epoch` done
        self.total = 0  # batches done over the whole run (as far as seen)
        self.last_epoch_length: int | None = None
        self.nonfinite: list[str] = []  # metrics that just became nan/inf (read and cleared)
        self._logs: dict | None = None
        self._sampled = 0  # batches of the epoch at the last sample
        self._sampled_at = -math.inf  # time.monotonic() at the last sample
        self._sampled_logs: dict = {}
        self._sums: dict = {}  # batch_logs="batch": sums over the epoch
        self._room = 1.0
        self._completed: int | None = None  # the last epoch that ended complete
        self.marks: tuple[float, ...] = ()  # positions (in epochs) of hyperparameter changes
        self.rate_history = RateHistory()
        # an earlier run's epoch-level curves drawn behind this one's (kept across
        # reset(); see `nbtrain.dashboard.compare.overlay_of`)
        self.overlay: dict[str, Any] = getattr(self, "overlay", {})
        self.epoch_logs: dict[int, dict[str, float]] = {}  # each epoch's values (the table)
        self.epoch_times: dict[int, float] = {}  # each epoch's training seconds, where timed
        self.epoch_began: float | None = None  # `clock()` when the epoch in progress began
        self.clock: Any = getattr(self, "clock", None)  # training seconds now (kept across reset)

    # -- events ---------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything (a new training from scratch)."""
        self.__init__(self.capacity, self.batch_logs, self.sample_interval)

    def begin_epoch(self, epoch: int, steps: int | None) -> None:
        """An epoch starts (or, for the epoch in progress, resumes after a stop)."""
        completed = -1 if self._completed is None else self._completed
        if self.first_epoch is not None and (epoch < self.epoch or epoch <= completed):
            self.reset()  # a new training, not a continuation
        if self.first_epoch is None:
            self.first_epoch = epoch
        if epoch != self.epoch or self._completed == epoch:
            self.done = 0
            self._sampled = 0
            self._sampled_logs = {}
            self._sums = {}
        self.epoch = epoch
        self.steps = steps or None
        self._logs = None
        if self.clock is not None and (self.done == 0 or self.epoch_began is None):
            self.epoch_began = self.clock()

    def batch_end(self, batch: int, logs: dict | None) -> None:
        """A batch (or `steps_per_execution` batches) ended; cheap unless a bucket is full."""
        n = batch + 1
        if n > self.done:
            self.total += n - self.done
        self.done = n
        self._logs = logs
        if not self.running:
            self.sample()
        elif (n - self._sampled >= self._room
              and time.monotonic() - self._sampled_at >= self.sample_interval):
            self.sample()

    def sample(self) -> None:
        """Fold the batches since the last sample into the series."""
        logs, n, m = self._logs, self.done, self._sampled
        if not logs or n <= m:
            return
        self._sampled_at = time.monotonic()
        x = self.position(0.5 * (m + n))
        room = math.inf
        for key, value in metric_values(logs):
            metric = self.metrics.get(key) or self._metric(key)
            if not math.isfinite(value):
                if not metric.nonfinite:
                    metric.nonfinite = True
                    self.nonfinite.append(key)
                metric.last = metric.epoch_avg = value
                continue
            if self.running:
                previous = self._sampled_logs.get(key)
                if m and previous is None:
                    self._sampled_logs[key] = value  # a metric seen mid-epoch: start from here
                    metric.epoch_avg = value
                    continue
                mean = (n * value - m * previous) / (n - m) if m else value
                metric.epoch_avg = value
                self._sampled_logs[key] = value
            else:
                mean = value
                total, count = self._sums.get(key, (0.0, 0))
                self._sums[key] = (total + value * (n - m), count + n - m)
                metric.epoch_avg = self._sums[key][0] / self._sums[key][1]
            metric.last = mean
            series = metric.batch
            series.add(x, mean, n - m)
            if series.room < room:
                room = series.room
        self._sampled = n
        self._room = room if room != math.inf else 1.0

    def end_epoch(self, epoch: int, logs: dict | None) -> None:
        """An epoch ended (after a stop: partway); `logs` holds its averages and `val_*`."""
        self.sample()
        if self._check and self._logs and logs:
            self._check_running(logs)
        steps = self.steps
        partial = steps is not None and self.done < steps
        end = epoch + (self.done / steps if partial else 1.0)
        if not partial:
            self.last_epoch_length = self.done
            self._completed = epoch
        if self.clock is not None and self.epoch_began is not None:
            self.epoch_times[epoch] = self.clock() - self.epoch_began
        self.record_epoch(epoch, end, logs)

    def _check_running(self, logs: dict) -> None:
        """`batch_logs="auto"`: running averages end on the epoch's values."""
        if self.done < 3:
            return  # too few batches to tell
        self._check = False
        for key, last in self._logs.items():
            try:
                last, value = float(last), float(logs[key])
            except (KeyError, TypeError, ValueError):
                continue
            if math.isfinite(value) and abs(last - value) > 1e-6 * max(1.0, abs(value)):
                self.running = False  # per-batch values: what was drawn is wrong
                self.batch_logs = "batch"
                for metric in self.metrics.values():
                    metric.batch.clear()
                return

    def record_epoch(self, epoch: int, end: float, logs: dict | None) -> None:
        """Record epoch-level values ending at position `end` (the epoch's end, or
        where a stop interrupted it): the training average and the validation value
        both there; a learning rate in the logs (steering, ReduceLROnPlateau) goes
        into the learning-rate history too."""
        for key, value in metric_values(logs):
            self.epoch_logs.setdefault(epoch, {})[key] = value
            is_val = key.startswith("val_")
            if _is_rate(key) and not is_val:
                self.learning_rate(value, end, epoch=epoch + 1)
            name = key[4:] if is_val else key
            metric = self.metrics.get(name) or self._metric(name)
            if is_val:
                metric.val = value
                metric.val_points.add(end, value)
            else:
                metric.epoch_avg = value
                metric.epochs.add(end, value)
            metric.offer_best(value, epoch + 1, is_val)

    def load_history(self, history: Any) -> None:
        """Epoch-level values from a `keras.callbacks.History` (a view opened late)."""
        epochs = list(getattr(history, "epoch", None) or [])
        values = getattr(history, "history", None) or {}
        for i, epoch in enumerate(epochs):
            logs = {k: v[i] for k, v in values.items() if i < len(v)}
            if self.first_epoch is None:
                self.first_epoch = epoch
            self.record_epoch(epoch, epoch + 1.0, logs)
            self.epoch = self._completed = epoch
            self.done = 0

    def mark(self, x: Any) -> None:
        """Mark where a hyperparameter changed on every panel.

        Args:
            x: the position in epochs, or the change itself (an
                `nbtrain.engine.hyperparameters.HyperparameterChange`: its `x`; a learning
                rate's new value also goes into the learning-rate history, labelled
                with the epoch and batch it landed on).
        """
        change = None if isinstance(x, (int, float)) else x
        position = float(x if change is None else change.x)
        self.marks = (*self.marks, position)
        if change is not None and _is_rate(getattr(change, "name", "")):
            self.learning_rate(float(change.new), position, epoch=int(change.epoch) + 1,
                               batch=int(change.batch) + 1, change=True)

    def learning_rate(self, value: float | None, x: float | None = None, **where: Any) -> None:
        """The learning rate is `value` at position `x` (default: where training is);
        see `RateHistory.record` (`where`: its `epoch`, `batch`, `change`)."""
        if x is None:
            x = self.position(self.done) if self.first_epoch is not None else 0.0
        self.rate_history.record(value, x, self.steps or self.last_epoch_length, **where)

    @property
    def rates(self) -> list[RateChange]:
        """The learning rate: its first value, then each change."""
        return self.rate_history.rates

    # -- reading --------------------------------------------------------------------------

    def _metric(self, name: str) -> Metric:
        metric = self.metrics[name] = Metric(name, self.capacity)
        self._room = 1.0
        return metric

    @property
    def epochs_done(self) -> int:
        """Epochs completed (the epoch in progress not counted)."""
        if self._completed == self.epoch or (self.steps is not None and self.done >= self.steps):
            return self.epoch + 1
        return self.epoch

    def position(self, batches: float) -> float:
        """Where `batches` batches into the current epoch sit, in epochs."""
        steps = self.steps or self.last_epoch_length
        if steps:
            return self.epoch + min(batches / steps, 1.0)
        return self.epoch + batches / (batches + 50.0)  # epoch of unknown length

    def ordered(self) -> list[Metric]:
        """The metrics, the loss first, then in the order they appeared."""
        return sorted(self.metrics.values(), key=lambda m: m.name != "loss")

    def panels(self) -> list[Panel]:
        """The plot's panels, one per metric that has something to draw (the
        learning rate is not one of them: see `rate_panel`)."""
        out = []
        for metric in self.ordered():
            if _is_rate(metric.name):
                continue
            if not (len(metric.batch) or len(metric.epochs) or len(metric.val_points)):
                continue
            out.append(Panel(metric.name, metric.batch.arrays(), metric.epochs.arrays(),
                             metric.val_points.arrays(), self.marks,
                             self.overlay.get(metric.name)))
        return out

    def rate_panel(self) -> Panel | None:
        """The learning rate's whole history as a panel (None before it is known):
        a step line from the first epoch to where training is, and its changes."""
        return self.rate_history.panel(float(self.first_epoch or 0), self.end_position())

    def end_position(self) -> float:
        """Where training is, in epochs (the end of the last epoch seen)."""
        if self.first_epoch is None:
            return 0.0
        if self.done == 0 and self._completed == self.epoch:
            return self.epoch + 1.0
        return self.position(self.done)

    def x_range(self, epochs: int | None) -> tuple[float, float]:
        """The x-axis span: from the first epoch seen to the next round number of
        epochs past where training is (`x_limits`), no further than `epochs`
        (the final epoch) once that is near."""
        start = float(self.first_epoch or 0)
        return x_limits(start, max(self.end_position(), start), epochs)
