"""Steering a Run: `set_learning_rate` / `set_hyperparameters` take effect before the
next batch's step, exactly once, and are recorded (changes, History, listeners)."""

from __future__ import annotations

import math
import threading

import keras
import numpy as np
import pytest

import nbtrain
from tests.helpers import make_data, make_model

TIMEOUT = 60


def lr_of(model) -> float:
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


class LrAtBatch(keras.callbacks.Callback):
    """Records `(epoch, batch, learning rate)` at every batch begin (before its step)
    and calls `actions[(epoch, batch)](run)` at that batch's end."""

    def __init__(self, actions=None):
        super().__init__()
        self.seen: list[tuple[int, int, float]] = []
        self.actions = dict(actions or {})
        self.run = None
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        self.seen.append((self.epoch, batch, lr_of(self.model)))

    def on_train_batch_end(self, batch, logs=None):
        action = self.actions.get((self.epoch, batch))
        if action is not None:
            action(self.run)


def make_run(recorder, epochs=2, optimizer=None, **kwargs):
    x, y = make_data(64)
    model = make_model(optimizer=optimizer or keras.optimizers.SGD(0.1))
    run = nbtrain.Run(model, x, y, batch_size=8, epochs=epochs, shuffle=False,
                      callbacks=[recorder], **kwargs)
    recorder.run = run
    return run, model


def lrs(recorder):
    return [round(lr, 6) for _, _, lr in recorder.seen]


def test_the_value_reaches_the_optimizer_before_the_next_batch_exactly_once():
    def set_lr(run):
        run.set_learning_rate(0.01)

    def overwrite(run):  # the user's own change later on is not undone by a re-apply
        run.model.optimizer.learning_rate = 0.5

    recorder = LrAtBatch({(0, 2): set_lr, (0, 5): overwrite})
    run, model = make_run(recorder, epochs=1)
    run.start()
    run.wait(TIMEOUT)
    assert lrs(recorder) == [0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.5, 0.5]
    (change,) = run.hyperparameter_changes
    assert (change.epoch, change.batch, change.steps, change.name) == (0, 3, 8, "learning_rate")
    assert change.old == pytest.approx(0.1) and change.new == 0.01
    assert change.x == pytest.approx(3 / 8)
    run.close()


def test_history_gets_learning_rate_per_epoch_once_steered_earlier_epochs_filled():
    recorder = LrAtBatch({(1, 7): lambda run: run.set_learning_rate(0.02)})
    run, _ = make_run(recorder, epochs=3)
    run.start()
    history = run.wait(TIMEOUT).history
    # as ReduceLROnPlateau logs it: the value at each epoch's end
    assert history["learning_rate"] == pytest.approx([0.1, 0.1, 0.02])
    assert len(history["learning_rate"]) == len(history["loss"]) == 3
    run.close()


def test_an_unsteered_run_logs_no_learning_rate():
    recorder = LrAtBatch()
    run, _ = make_run(recorder, epochs=1)
    run.start()
    assert "learning_rate" not in run.wait(TIMEOUT).history
    assert run.hyperparameter_changes == []
    run.close()


def test_a_set_while_paused_lands_on_the_first_batch_after_resume():
    paused = threading.Event()
    recorder = LrAtBatch({(0, 3): lambda run: run.pause()})
    run, model = make_run(recorder, epochs=1)
    run.add_listener(lambda run, old, new: new == "paused" and paused.set())
    heard = []
    run.add_steering_listener(lambda run, change: heard.append(
        (threading.current_thread().name, change.batch, change.new)))
    run.start()
    assert paused.wait(TIMEOUT)
    run.set_learning_rate(0.03)
    assert run.state == "paused" and run.batch == 4
    assert run.learning_rate == pytest.approx(0.1)  # not yet: at the next batch
    assert run.resume()
    run.wait(TIMEOUT)
    assert lrs(recorder) == [0.1] * 4 + [0.03] * 4
    assert [(c.epoch, c.batch) for c in run.hyperparameter_changes] == [(0, 4)]
    assert heard == [("nbtrain-run-pass-1", 4, 0.03)]
    assert run.learning_rate == pytest.approx(0.03)
    run.close()


def test_a_set_before_start_and_after_a_stop_lands_on_the_next_pass():
    recorder = LrAtBatch({(0, 1): lambda run: run.stop()})
    run, _ = make_run(recorder, epochs=1)
    run.set_learning_rate(0.05)  # created: the run can still train
    run.start()
    run.wait(TIMEOUT)
    assert run.state == "stopped"
    run.set_learning_rate(0.002)
    run.resume()
    run.wait(TIMEOUT)
    assert lrs(recorder) == [0.05, 0.05] + [0.002] * 6
    assert [(c.batch, c.new) for c in run.hyperparameter_changes] == [(0, 0.05), (2, 0.002)]
    run.close()
    with pytest.raises(RuntimeError, match="closed"):
        run.set_learning_rate(0.1)


@pytest.mark.parametrize("value, error, match", [
    (float("nan"), ValueError, "finite"),
    (-1.0, ValueError, ">= 0"),
    (math.inf, ValueError, "finite"),
    ("0.1", TypeError, "real number"),
    (True, TypeError, "real number"),
])
def test_bad_values_are_refused_before_any_work(value, error, match):
    recorder = LrAtBatch()
    run, model = make_run(recorder, epochs=1)
    with pytest.raises(error, match=match):
        run.set_learning_rate(value)
    run.start()
    run.wait(TIMEOUT)
    assert run.hyperparameter_changes == [] and set(lrs(recorder)) == {0.1}
    run.close()


def test_unknown_and_non_variable_hyperparameters_are_refused():
    run, _ = make_run(LrAtBatch(), optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    with pytest.raises(ValueError, match="SGD has no hyperparameter `speed`"):
        run.set_hyperparameters(speed=1.0)
    with pytest.raises(ValueError, match="`momentum` of SGD is a float, not a keras.Variable"):
        run.set_hyperparameters(momentum=0.5)
    with pytest.raises(ValueError, match="at least one"):
        run.set_hyperparameters()
    run.close()


def test_a_learning_rate_schedule_is_refused_with_a_clear_error():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    run, _ = make_run(LrAtBatch(), optimizer=keras.optimizers.SGD(schedule))
    with pytest.raises(ValueError, match="schedule \\(ExponentialDecay\\); nbtrain refuses"):
        run.set_learning_rate(0.01)
    assert run.learning_rate is None
    run.close()


class GainSGD(keras.optimizers.SGD):
    """SGD whose step is scaled by `gain`, a variable hyperparameter."""

    def __init__(self, learning_rate=0.1, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.gain = keras.Variable(1.0, trainable=False, name="gain")

    def update_step(self, gradient, variable, learning_rate):
        super().update_step(gradient, variable, keras.ops.multiply(learning_rate, self.gain))


def test_set_hyperparameters_changes_a_variable_hyperparameter_from_the_next_batch():
    weights = []
    recorder = LrAtBatch({(0, 3): lambda run: run.set_hyperparameters(gain=0.0)})
    recorder.on_train_batch_begin = lambda batch, logs=None: weights.append(
        recorder.model.get_weights()[0].copy())
    run, model = make_run(recorder, epochs=1, optimizer=GainSGD(0.1))
    run.start()
    run.wait(TIMEOUT)
    weights.append(model.get_weights()[0])
    moved = [not np.array_equal(a, b) for a, b in zip(weights, weights[1:])]
    assert moved == [True] * 4 + [False] * 4  # batches 0-3 trained, 4-7 with gain 0
    assert [(c.name, c.batch) for c in run.hyperparameter_changes] == [("gain", 4)]
    assert run.history.history["gain"] == [0.0]
    run.close()


def test_a_failed_run_refuses():
    def boom(run):
        raise ValueError("boom")

    run, _ = make_run(LrAtBatch({(0, 0): boom}), epochs=1)
    run.start()
    with pytest.raises(ValueError):
        run.wait(TIMEOUT)
    with pytest.raises(RuntimeError, match="failed"):
        run.set_learning_rate(0.1)
