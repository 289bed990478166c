"""Step runners: the prepared-batch fast path trains exactly as `model.fit`, for
every batch structure; the runner interface; batch hooks only where defined."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import BatchRecorder, RecordingSequence, make_data, make_model

import nbtrain
from nbtrain.engine.callbacks import LoopCallbacks
from nbtrain.engine.steps import BatchSteps, CompiledSteps, StepRunner, make_steps
from nbtrain.engine.training import FitLoop

PATHS = [pytest.param(None, id="compiled"), pytest.param(False, id="train_on_batch")]


def two_input_model() -> keras.Model:
    keras.utils.set_random_seed(2)
    a = keras.Input((3,), name="a")
    b = keras.Input((2,), name="b")
    merged = keras.layers.Concatenate()([keras.layers.Dense(4)(b), a])  # b first: not sorted
    model = keras.Model({"b": b, "a": a}, keras.layers.Dense(1)(merged))
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", metrics=["mae"])
    return model


class DictSequence(nbtrain.Sequence):
    """Batches `({"b": ..., "a": ...}, y, sample_weight)` of 8 rows."""

    def __init__(self, a, b, y, w):
        self.a, self.b, self.y, self.w = a, b, y, w

    def __len__(self):
        return -(-len(self.y) // 8)

    def __getitem__(self, i):
        s = slice(8 * i, 8 * i + 8)
        return {"b": self.b[s], "a": self.a[s]}, self.y[s], self.w[s]


@pytest.mark.parametrize("workers", [0, 1])
def test_dict_inputs_with_sample_weights_train_and_validate_like_keras(workers):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((36, 3)).astype("float32")  # batches of 8, 8, 8, 8, 4
    b = rng.standard_normal((36, 2)).astype("float32")
    y = rng.standard_normal((36, 1)).astype("float32")
    w = rng.uniform(0.1, 2.0, 36).astype("float32")
    ours, theirs = two_input_model(), two_input_model()
    history = nbtrain.fit_generator(ours, DictSequence(a, b, y, w), epochs=2, verbose=0,
                                    shuffle=False, workers=workers,
                                    validation_data=DictSequence(a, b, y, w))
    reference = theirs.fit({"a": a, "b": b}, y, sample_weight=w, batch_size=8, epochs=2,
                           shuffle=False, verbose=0)
    for mine, keras_weight in zip(ours.get_weights(), theirs.get_weights(), strict=True):
        np.testing.assert_allclose(mine, keras_weight, rtol=1e-5, atol=1e-6)
    for key in ("loss", "mae"):
        np.testing.assert_allclose(history.history[key], reference.history[key], rtol=1e-5)
    evaluated = theirs.evaluate({"a": a, "b": b}, y, sample_weight=w, batch_size=8, verbose=0)
    np.testing.assert_allclose([history.history["val_loss"][-1], history.history["val_mae"][-1]],
                               evaluated, rtol=1e-5)


def test_a_tensor_passed_as_both_x_and_y_trains_like_keras():
    """The same tensor twice in a batch (an autoencoder's generator yielding
    `(t, t)`) is one input of the traced step: that batch takes the structured call."""
    x, _ = make_data(32)

    def batches():
        while True:
            for i in range(4):
                t = tf.constant(x[8 * i:8 * i + 8])
                yield t, t

    keras.utils.set_random_seed(4)
    ours = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4)])
    ours.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    theirs = keras.models.clone_model(ours)
    theirs.set_weights(ours.get_weights())
    theirs.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    history = nbtrain.fit_generator(ours, batches(), steps_per_epoch=4, epochs=2, verbose=0,
                                    workers=1)
    reference = theirs.fit(x, x, batch_size=8, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(history.history["loss"], reference.history["loss"], rtol=1e-5)
    for mine, keras_weight in zip(ours.get_weights(), theirs.get_weights(), strict=True):
        np.testing.assert_allclose(mine, keras_weight, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("compiled", PATHS)
def test_runners_implement_the_interface_and_accept_raw_or_prepared_batches(compiled):
    x, y = make_data(24)
    model = make_model(metrics=["mae"])
    runner = make_steps(model, "test", compiled)
    assert isinstance(runner, StepRunner)
    assert isinstance(runner, BatchSteps if compiled is False else CompiledSteps)
    assert runner.steps_per_execution == 1
    runner.reset()
    raw = (x[:8], y[:8], None)
    runner.run([raw, runner.prepare((x[8:16], y[8:16], None))])
    logs = runner.run([runner.prepare((x[16:], y[16:], None))])
    expected = model.evaluate(x, y, batch_size=8, verbose=0)
    assert list(runner.result(logs).values()) == pytest.approx(expected, rel=1e-5)
    state = runner.snapshot()
    runner.reset()
    runner.restore(state)
    assert list(runner.result(logs).values()) == pytest.approx(expected, rel=1e-5)


class EpochHooksOnly(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs: list[int] = []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(epoch)


def test_batch_hooks_only_for_callbacks_that_define_them():
    callbacks = LoopCallbacks([EpochHooksOnly()], model=make_model())
    assert callbacks.batch_hooks("train") == (None, None)
    assert callbacks.batch_hooks("test") == (None, None)
    callbacks.append(BatchRecorder())
    begin, end = callbacks.batch_hooks("train")
    assert begin is not None and end is not None
    assert callbacks.batch_hooks("test") == (None, None)  # train hooks only


def test_an_epoch_hooks_only_callback_sees_every_epoch_and_batches_are_exact():
    x, y = make_data(40)
    seq = RecordingSequence(x, y)
    epochs = EpochHooksOnly()
    history = FitLoop(make_model(), seq, epochs=3, verbose=0, shuffle=False,
                      callbacks=[epochs], workers=0).run()
    assert epochs.epochs == [0, 1, 2] and history.epoch == [0, 1, 2]
    assert seq.served == [0, 1, 2, 3, 4, "end"] * 3


@pytest.mark.parametrize("workers", [0, 1])
def test_a_generator_refilling_one_buffer_trains_on_what_it_yielded(workers):
    """Generators written for speed fill one preallocated batch and yield it again:
    each batch is copied when it becomes a tensor, so batches read ahead are not
    overwritten by the next ones (the tensor owns its data)."""
    x, y = make_data(64)

    def fresh():
        while True:
            for i in range(0, 64, 8):
                yield x[i:i + 8].copy(), y[i:i + 8].copy()

    def refilled():
        bx, by = np.empty((8, x.shape[1]), "float32"), np.empty((8, 1), "float32")
        while True:
            for i in range(0, 64, 8):
                bx[...], by[...] = x[i:i + 8], y[i:i + 8]
                yield bx, by

    weights = []
    for gen in (fresh, refilled):
        model = make_model()
        nbtrain.fit_generator(model, gen(), steps_per_epoch=8, epochs=2, workers=workers,
                              max_queue_size=6, verbose=0)
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-6)
