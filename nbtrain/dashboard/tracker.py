"""What the dashboard knows about a run's metrics: plain data, no widgets.

`MetricTracker` turns callback logs into, for each metric, the values the
table shows (last, epoch average, validation, best with its epoch) and the
bounded series the plot draws.  Positions are in epochs: a batch point sits
at `epoch + fraction of the epoch done`, an epoch's training average in the
middle of the batches it averages, a validation value at the epoch's end.

Batch logs are *running averages of the epoch so far* in Keras 3 (`model.fit`)
and in nbtrain's compiled loop (`batch_logs="running"`).  The mean of the
batches between two samples `m < n` is then exactly `(n*A_n - m*A_m) / (n - m)`,
so the tracker does not need to read every batch: it samples the logs only
when a plot bucket is full, and still plots exact bucket means of the
per-batch values.  With `batch_logs="batch"` (loops that report each batch's
own value, as `train_on_batch` does) every batch is read and averaged.  The
default, `"auto"`, starts as `"running"` and checks at the first epoch's end:
running averages end on the epoch's value; if the last batch log is not the
epoch's value, the logs were per-batch values, and the tracker drops the
batch curve it drew and switches to `"batch"`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nbtrain.dashboard.series import BucketSeries

_NOT_METRICS = frozenset({"batch", "size", "num_steps"})


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


class MetricTracker:
    """Metric values and plot series from Keras callback logs.

    Args:
        capacity: buckets kept per series (see `BucketSeries`).
        batch_logs: `"running"` if batch logs are running averages of the epoch
            (Keras 3), `"batch"` if they are each batch's own value, `"auto"`
            to find out at the first epoch's end.

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

    def __init__(self, capacity: int = 1024, batch_logs: str = "auto"):
        if batch_logs not in ("auto", "running", "batch"):
            raise ValueError(
                f"batch_logs must be 'auto', 'running' or 'batch', got {batch_logs!r}.")
        self.capacity = capacity
        self.batch_logs = batch_logs
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
        self._sampled_logs: dict = {}
        self._sums: dict = {}  # batch_logs="batch": sums over the epoch
        self._room = 1.0
        self._completed: int | None = None  # the last epoch that ended complete
        self.marks: tuple[float, ...] = ()  # positions (in epochs) of hyperparameter changes
        self.overlay: dict[str, Any] = getattr(self, "overlay", {})  # kept across reset()
        self.epoch_logs: dict[int, dict[str, float]] = {}  # each epoch's values (the table)
        self.epoch_times: dict[int, float] = {}  # each epoch's training seconds, where timed
        self.epoch_began: float | None = None  # `clock()` when the epoch in progress began
        self.clock: Any = getattr(self, "clock", None)  # training seconds now (kept across reset)

    # -- events ---------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything (a new training from scratch)."""
        self.__init__(self.capacity, self.batch_logs)

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
        if not self.running or n - self._sampled >= self._room:
            self.sample()

    def sample(self) -> None:
        """Fold the batches since the last sample into the series."""
        logs, n, m = self._logs, self.done, self._sampled
        if not logs or n <= m:
            return
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
        """Record epoch-level values ending at position `end`: a training average
        midway through the part of the epoch it averages, a validation value at its end."""
        middle = (epoch + end) / 2
        for key, value in metric_values(logs):
            self.epoch_logs.setdefault(epoch, {})[key] = value
            is_val = key.startswith("val_")
            name = key[4:] if is_val else key
            metric = self.metrics.get(name) or self._metric(name)
            if is_val:
                metric.val = value
                metric.val_points.add(end, value)
            else:
                metric.epoch_avg = value
                metric.epochs.add(middle, value)
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

    def set_overlay(self, history: Any) -> None:
        """Draw an earlier run's epoch-level curves (a `keras.callbacks.History`)
        faintly behind this one's: training values midway through each epoch,
        validation values at its end, as this run's own are placed."""
        epochs = np.array(list(getattr(history, "epoch", None) or []), dtype=float)
        overlay: dict[str, Any] = {}
        for key, values in (getattr(history, "history", None) or {}).items():
            try:
                values = np.array(values, dtype=float)
            except (TypeError, ValueError):
                continue
            if values.ndim != 1 or len(values) != len(epochs):
                continue
            is_val = key.startswith("val_")
            name = key[4:] if is_val else key
            empty = (np.empty(0), np.empty(0))
            train, val = overlay.get(name, (empty, empty))
            if is_val:
                val = (epochs + 1.0, values)
            else:
                train = (epochs + 0.5, values)
            overlay[name] = (train, val)
        self.overlay = overlay

    def mark(self, x: float) -> None:
        """Mark position `x` (in epochs) on every panel: a hyperparameter changed there."""
        self.marks = (*self.marks, float(x))

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
        """The plot's panels, one per metric that has something to draw."""
        out = []
        for metric in self.ordered():
            if not (len(metric.batch) or len(metric.epochs) or len(metric.val_points)):
                continue
            out.append(Panel(metric.name, metric.batch.arrays(), metric.epochs.arrays(),
                             metric.val_points.arrays(), self.marks,
                             self.overlay.get(metric.name)))
        return out

    def x_range(self, epochs: int | None) -> tuple[float, float]:
        """The x-axis span: from the first epoch seen to the target epoch."""
        start = float(self.first_epoch or 0)
        end = max(float(epochs or 0), self.position(self.done), start + 1.0)
        return start, end
