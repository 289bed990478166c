"""MetricTracker: table values and plot series from callback logs."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from nbtrain.dashboard.tracker import MetricTracker, best_direction, x_limits


def running_averages(values):
    return np.cumsum(values) / np.arange(1, len(values) + 1)


def feed_epoch(tracker, epoch, values, logs_extra=None, every=1, steps=None):
    """Batch logs as Keras 3 reports them: running averages of the epoch so far."""
    tracker.begin_epoch(epoch, steps or len(values))
    averages = running_averages(values)
    for batch in range(every - 1, len(values), every):  # steps_per_execution = every
        tracker.batch_end(batch, {"loss": float(averages[batch])})
    tracker.end_epoch(epoch, {"loss": float(averages[-1]), **(logs_extra or {})})


def test_batch_values_are_recovered_from_running_averages():
    rng = np.random.default_rng(0)
    values = rng.random(100)
    tracker = MetricTracker(capacity=256, sample_interval=0)  # every batch read
    feed_epoch(tracker, 0, values)
    x, y = tracker.metrics["loss"].batch.arrays()
    np.testing.assert_allclose(y, values, rtol=1e-9)
    np.testing.assert_allclose(x, (np.arange(100) + 0.5) / 100)


class CountedValue:
    """A log value that counts its reads (a tensor read waits for the step)."""

    reads = 0

    def __init__(self, value):
        self.value = value

    def __float__(self):
        CountedValue.reads += 1
        return self.value


def test_fast_loops_are_read_at_most_every_sample_interval_and_stay_exact():
    values = np.random.default_rng(2).random(1000)
    averages = running_averages(values)
    tracker = MetricTracker(sample_interval=3600.0)  # no second read by time in this test
    CountedValue.reads = 0
    tracker.begin_epoch(0, 1000)
    for batch in range(1000):
        tracker.batch_end(batch, {"loss": CountedValue(float(averages[batch]))})
    assert CountedValue.reads == 1  # the first batch only
    tracker.end_epoch(0, {"loss": float(averages[-1])})
    x, y = tracker.metrics["loss"].batch.arrays()
    np.testing.assert_allclose(y, [values[0], values[1:].mean()], rtol=1e-9)
    np.testing.assert_allclose(x, [0.0005, 0.5005])


def test_long_runs_are_sampled_only_when_a_bucket_fills_and_stay_exact():
    rng = np.random.default_rng(1)
    tracker = MetricTracker(capacity=64, sample_interval=0)
    values = rng.random((4, 1024))
    samples = []
    original = tracker.sample
    tracker.sample = lambda: (samples.append(tracker.done), original())[1]
    for epoch in range(4):
        feed_epoch(tracker, epoch, values[epoch])
    x, y = tracker.metrics["loss"].batch.arrays()
    assert len(y) <= 64
    width = int(tracker.metrics["loss"].batch.width)
    np.testing.assert_allclose(y, values.reshape(-1, width).mean(axis=1), rtol=1e-9)
    assert len(samples) < 4 * 1024 / 4  # most batches are never read


def test_steps_per_execution_intervals():
    values = np.arange(1.0, 13.0)
    tracker = MetricTracker(capacity=64, sample_interval=0)
    feed_epoch(tracker, 0, values, every=4)
    _, y = tracker.metrics["loss"].batch.arrays()
    np.testing.assert_allclose(y, [2.5, 6.5, 10.5])


def test_table_values():
    tracker = MetricTracker()
    feed_epoch(tracker, 0, np.array([4.0, 2.0]), {"val_loss": 3.0, "acc": 0.5, "val_acc": 0.4})
    feed_epoch(tracker, 1, np.array([1.0, 1.0]), {"val_loss": 3.5, "acc": 0.6, "val_acc": 0.7})
    loss, acc = tracker.metrics["loss"], tracker.metrics["acc"]
    assert loss.last == 1.0
    assert loss.epoch_avg == 1.0 and loss.val == 3.5
    assert (loss.best, loss.best_epoch, loss.best_is_val) == (3.0, 1, True)  # lower is better
    assert (acc.best, acc.best_epoch) == (0.7, 2)  # higher is better
    assert [m.name for m in tracker.ordered()] == ["loss", "acc"]


def test_epoch_average_during_an_epoch_is_the_running_average():
    tracker = MetricTracker()
    tracker.begin_epoch(0, 10)
    tracker.batch_end(0, {"loss": 3.0})
    tracker.batch_end(1, {"loss": 2.0})  # batches 3 then 1
    tracker.sample()
    assert tracker.metrics["loss"].epoch_avg == 2.0
    assert tracker.metrics["loss"].last == 1.0


def test_best_of_training_values_until_validation_appears():
    tracker = MetricTracker()
    tracker.record_epoch(0, 1.0, {"loss": 2.0})
    assert (tracker.metrics["loss"].best, tracker.metrics["loss"].best_is_val) == (2.0, False)
    tracker.record_epoch(1, 2.0, {"loss": 1.0, "val_loss": 5.0})
    assert (tracker.metrics["loss"].best, tracker.metrics["loss"].best_is_val) == (5.0, True)


@pytest.mark.parametrize("name, direction", [
    ("loss", "min"), ("val_loss", "min"), ("mae", "min"), ("mean_squared_error", "min"),
    ("accuracy", "max"), ("val_auc", "max"), ("learning_rate", None),
])
def test_best_direction(name, direction):
    assert best_direction(name) == direction


def test_stop_mid_epoch_then_resume_continues_the_same_epoch():
    values = np.arange(1.0, 11.0)
    averages = running_averages(values)
    tracker = MetricTracker(sample_interval=0)  # every batch a point
    tracker.begin_epoch(0, 10)
    for batch in range(4):
        tracker.batch_end(batch, {"loss": float(averages[batch])})
    tracker.end_epoch(0, {"loss": float(averages[3])})  # stopped after 4 of 10 batches
    # a partial epoch: its mean where it was interrupted
    assert tracker.metrics["loss"].epochs.arrays()[0].tolist() == [0.4]
    assert tracker.epochs_done == 0
    tracker.begin_epoch(0, 10)  # resumed: the metric state goes on from batch 4
    for batch in range(4, 10):
        tracker.batch_end(batch, {"loss": float(averages[batch])})
    tracker.end_epoch(0, {"loss": float(averages[-1])})
    _, y = tracker.metrics["loss"].batch.arrays()
    np.testing.assert_allclose(y, values)
    assert tracker.epochs_done == 1
    assert tracker.metrics["loss"].epochs.arrays()[0].tolist() == [0.4, 1.0]


def test_per_batch_logs():
    tracker = MetricTracker(batch_logs="batch")
    tracker.begin_epoch(0, 4)
    for batch, value in enumerate([1.0, 3.0, 5.0, 7.0]):
        tracker.batch_end(batch, {"loss": value})
    tracker.sample()
    metric = tracker.metrics["loss"]
    assert metric.batch.arrays()[1].tolist() == [1.0, 3.0, 5.0, 7.0]
    assert (metric.last, metric.epoch_avg) == (7.0, 4.0)


def test_non_finite_values_are_reported_once_and_not_plotted():
    tracker = MetricTracker()
    tracker.begin_epoch(0, 5)
    tracker.batch_end(0, {"loss": 1.0})
    tracker.batch_end(1, {"loss": float("nan")})
    tracker.batch_end(2, {"loss": float("nan")})
    tracker.sample()  # what the dashboard's next update reads (within 0.1 s)
    assert tracker.nonfinite == ["loss"]
    assert math.isnan(tracker.metrics["loss"].last)
    assert tracker.metrics["loss"].batch.arrays()[1].tolist() == [1.0]


def test_history_and_positions():
    history = SimpleNamespace(epoch=[0, 1, 2],  # what a keras.callbacks.History holds
                              history={"loss": [3.0, 2.0, 1.0], "val_loss": [3.5, 2.5, 1.5]})
    tracker = MetricTracker()
    tracker.load_history(history)
    # epoch means and validation values at each epoch's end, as History numbers them
    assert tracker.metrics["loss"].epochs.arrays()[0].tolist() == [1.0, 2.0, 3.0]
    assert tracker.metrics["loss"].val_points.arrays()[0].tolist() == [1.0, 2.0, 3.0]
    assert tracker.metrics["loss"].best == 1.5 and tracker.metrics["loss"].best_epoch == 3
    assert tracker.epochs_done == 3
    assert tracker.x_range(10) == (0.0, 3.0)  # the data's reach, not the final epoch


@pytest.mark.parametrize("position, final, expected", [
    (0.0, None, 1.0), (0.3, 100, 1.0), (1.0, 100, 1.0), (1.2, 100, 2.0), (3.4, 100, 5.0),
    (7.3, 100, 10.0), (11.0, 100, 20.0), (13.0, 100, 20.0), (29.0, 100, 30.0),
    (37.0, 100, 50.0), (51.0, 100, 100.0), (97.0, 100, 100.0), (13.0, 50, 20.0),
    (31.0, 50, 50.0), (6.5, 7, 7.0), (3.2, 7, 7.0), (0.2, 3, 1.0), (1.2, 3, 3.0),
    (2.5, 10, 3.0), (3.5, 10, 5.0), (5.5, 10, 10.0), (150.0, 100, 200.0),
    (250.0, None, 300.0),
])
def test_the_x_axis_grows_to_the_next_round_number_or_the_run_s_end(position, final,
                                                                  expected):
    assert x_limits(0.0, position, final) == (0.0, expected)
    assert x_limits(5.0, 5.0 + position, None if final is None else final + 5.0) == (
        5.0, 5.0 + expected)


def test_x_range_follows_training():
    tracker = MetricTracker()
    tracker.begin_epoch(0, 10)
    for batch in range(3):
        tracker.batch_end(batch, {"loss": 1.0})
    assert tracker.x_range(100) == (0.0, 1.0)
    for epoch in range(0, 11):
        tracker.begin_epoch(epoch, 10)
        for batch in range(10):
            tracker.batch_end(batch, {"loss": 1.0})
        tracker.end_epoch(epoch, {"loss": 1.0})
    assert tracker.x_range(100) == (0.0, 20.0)  # 11 epochs done
    assert tracker.x_range(11) == (0.0, 11.0)  # the last epoch: no further


def test_learning_rate_history_from_readings_and_changes():
    tracker = MetricTracker()
    tracker.learning_rate(0.0010000000474974513)  # read before the first batch
    tracker.begin_epoch(0, 10)
    for batch in range(5):
        tracker.batch_end(batch, {"loss": 1.0})
    tracker.learning_rate(0.001)  # the same value (float32 noise): nothing new
    change = SimpleNamespace(x=0.5, epoch=0, batch=5, name="learning_rate", old=1e-3, new=3e-4)
    tracker.mark(change)
    tracker.learning_rate(3e-4)  # read after the change: already recorded
    for batch in range(5, 10):
        tracker.batch_end(batch, {"loss": 1.0})
    tracker.end_epoch(0, {"loss": 1.0, "learning_rate": 3e-4})
    assert tracker.marks == (0.5,)
    assert [(r.x, r.value) for r in tracker.rates] == [(0.0, 0.0010000000474974513), (0.5, 3e-4)]
    assert (tracker.rates[1].epoch, tracker.rates[1].batch) == (1, 6)
    panel = tracker.rate_panel()
    assert panel.name == "learning_rate" and panel.changes == tuple(tracker.rates)
    assert panel.batch[0].tolist() == [0.0, 0.5, 1.0]  # from the start to where training is
    assert panel.batch[1].tolist() == [0.0010000000474974513, 3e-4, 3e-4]
    assert "learning_rate" not in [p.name for p in tracker.panels()]  # a panel of its own
    tracker.end_epoch(1, {"loss": 1.0, "learning_rate": 1e-4})  # ReduceLROnPlateau's log
    assert tracker.rates[-1].value == 1e-4 and tracker.rates[-1].epoch == 2


def test_non_metric_and_non_numeric_logs_are_ignored():
    tracker = MetricTracker()
    tracker.begin_epoch(0, 2)
    tracker.batch_end(0, {"batch": 0, "size": 32, "loss": 1.0, "vector": [1.0, 2.0]})
    tracker.sample()
    assert list(tracker.metrics) == ["loss"]


def test_unknown_epoch_length_positions_stay_inside_the_epoch():
    tracker = MetricTracker()
    tracker.begin_epoch(2, None)
    for batch in range(1000):
        tracker.batch_end(batch, {"loss": 1.0})
    x, _ = tracker.metrics["loss"].batch.arrays()
    assert np.all(np.diff(x) > 0) and 2 < x[0] and x[-1] < 3
