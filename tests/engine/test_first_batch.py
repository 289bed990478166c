"""The first batch is checked against the model in the caller's thread, before any
callback or worker starts, and then trained (read once) (issue 26, point 1)."""

from __future__ import annotations

import threading
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import FEATURES, RecordingSequence, batch_generator, make_data, make_model

import nbtrain


class Hooks(keras.callbacks.Callback):
    """Records every hook called; any entry means training had started."""

    def __init__(self):
        super().__init__()
        self.calls: list = []

    def on_train_begin(self, logs=None):
        self.calls.append("train_begin")

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append("epoch_begin")

    def on_test_begin(self, logs=None):
        self.calls.append("test_begin")

    def on_predict_begin(self, logs=None):
        self.calls.append("predict_begin")


def classifier(units: int, loss: str = "sparse_categorical_crossentropy") -> keras.Model:
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((FEATURES,)),
                              keras.layers.Dense(units, activation="softmax")])
    model.compile("sgd", loss)
    return model


def narrow(kind: str):
    """Data of 3 features for a model of FEATURES (4), as `kind`; with the kwargs."""
    x, y = make_data(32)
    x = x[:, :3]
    if kind == "arrays":
        return (x, y), {"batch_size": 8}
    if kind == "sequence":
        return (RecordingSequence(x, y),), {}
    if kind == "generator":
        return (batch_generator(x, y),), {"steps_per_epoch": 4}
    if kind == "dataset":
        return (tf.data.Dataset.from_tensor_slices((x, y)).batch(8),), {}
    raise AssertionError(kind)


def _refused(call, *fragments):
    before = set(threading.enumerate())
    with pytest.raises(ValueError) as info:
        call()
    assert set(threading.enumerate()) == before  # no worker, no Run thread
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)
    return str(info.value)


@pytest.mark.parametrize("kind", ["arrays", "sequence", "generator", "dataset"])
def test_fit_refuses_a_shape_the_model_refuses_before_anything_starts(kind):
    model, hooks = make_model(), Hooks()
    weights = [w.copy() for w in model.get_weights()]
    args, kwargs = narrow(kind)
    message = _refused(lambda: nbtrain.fit(model, *args, callbacks=[hooks], display=False,
                                           **kwargs),
                       "does not fit the model", "expects shape (None, 4)",
                       "has shape (8, 3)", "keras.Input(shape=(3,))")
    assert "\x1b" not in message
    assert message.startswith("`x`")
    assert hooks.calls == []
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights()))


@pytest.mark.parametrize("workers", [0, 1])
def test_fit_generator_evaluate_and_predict_refuse_it_too(workers):
    x, y = make_data(32)
    hooks = Hooks()
    for call in (nbtrain.fit_generator, nbtrain.evaluate_generator, nbtrain.predict_generator):
        sequence = RecordingSequence(x[:, :3], y)
        _refused(lambda call=call, sequence=sequence: call(
            make_model(), sequence, callbacks=[hooks], workers=workers),
            "`generator` (RecordingSequence) does not fit the model")
        assert len(sequence.served) == 1  # the first batch only (fit_generator shuffles)
    assert hooks.calls == []


def test_a_model_that_accepts_the_shape_is_not_refused():
    """Keras stays the authority: a first layer that slices its input takes any width."""
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Lambda(lambda t: t[:, :2]),
                              keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x, y = make_data(16)
    history = nbtrain.fit(model, x[:, :3], y, batch_size=8, display=False).wait(60)
    assert len(history.history["loss"]) == 1


@pytest.mark.parametrize("kind", ["arrays", "sequence"])
def test_sparse_labels_out_of_range(kind):
    x, _ = make_data(32)
    labels = (np.arange(32) % 10).astype("int64")  # 10 classes for a 2-unit softmax
    hooks = Hooks()
    if kind == "arrays":
        call = lambda: nbtrain.fit(classifier(2), x, labels, callbacks=[hooks],  # noqa: E731
                                   display=False)
        start = "`y`: label"
    else:
        call = lambda: nbtrain.fit(classifier(2), RecordingSequence(x, labels),  # noqa: E731
                                   callbacks=[hooks], display=False)
        start = "the targets of `x` (RecordingSequence): label"
    message = _refused(call, "not a class of the model", "has 2 units", "labels in 0..1",
                       "0..9")
    assert message.startswith(start)
    assert hooks.calls == []


def test_labels_in_range_and_ignore_class_train():
    x, _ = make_data(32)
    labels = (np.arange(32) % 3).astype("int64")
    nbtrain.fit(classifier(3), x, labels, batch_size=8, display=False).wait(60)
    labels[::4] = -1
    model = classifier(3)
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(ignore_class=-1))
    nbtrain.fit(model, x, labels, batch_size=8, display=False).wait(60)


def test_integer_labels_with_categorical_crossentropy():
    x, _ = make_data(32)
    _refused(lambda: nbtrain.fit(classifier(3, "categorical_crossentropy"), x,
                                 np.arange(32) % 3, display=False),
             "categorical_crossentropy needs one-hot targets of width 3",
             "sparse_categorical_crossentropy", "to_categorical(y, 3)")


def test_batch_size_larger_than_the_data_warns_once():
    x, y = make_data(16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = nbtrain.fit(make_model(), x, y, batch_size=10**7, epochs=3, display=False)
        run.wait(60)
    found = [w for w in caught if "batch_size=10000000 is larger than the 16 samples" in
             str(w.message)]
    assert len(found) == 1 and found[0].filename == __file__
    assert len(run.history.history["loss"]) == 3


@pytest.mark.parametrize("workers, processes", [(0, False), (2, False), (2, True)])
def test_the_checked_batch_is_trained_and_read_once(workers, processes):
    x, y = make_data(32)
    sequence = RecordingSequence(x, y)
    run = nbtrain.fit(make_model(), sequence, epochs=2, shuffle=True, workers=workers,
                      use_multiprocessing=processes, display=False)
    run.wait(120)
    assert len(run.history.history["loss"]) == 2
    if processes:  # the workers' reads are recorded in their own processes
        return
    first_pass = sequence.served[:sequence.served.index("end")]
    assert sorted(first_pass) == [0, 1, 2, 3], sequence.served  # the checked batch: once
    if workers == 0:  # (threads read ahead into a third pass that is dropped at the end)
        assert sorted(i for i in sequence.served if i != "end") == [0, 0, 1, 1, 2, 2, 3, 3]


def test_a_generator_gives_its_first_item_once():
    x, y = make_data(32)
    items = []

    def gen():
        for k in range(8):
            items.append(k)
            yield x[4 * k:4 * k + 4], y[4 * k:4 * k + 4]

    seen = []

    class Count(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(batch)

    nbtrain.fit_generator(make_model(), gen(), steps_per_epoch=4, epochs=2, verbose=0,
                          callbacks=[Count()])
    assert items == list(range(8)) and seen == [0, 1, 2, 3] * 2


def test_a_first_batch_that_cannot_be_read_raises_from_fit_naming_it():
    class Broken(RecordingSequence):
        def __getitem__(self, index):
            raise OSError(f"cannot open the file of batch {index}")

    x, y = make_data(32)
    hooks = Hooks()
    before = set(threading.enumerate())
    with pytest.raises(OSError) as info:
        nbtrain.fit(make_model(), Broken(x, y), shuffle=False, callbacks=[hooks], display=False)
    assert set(threading.enumerate()) == before and hooks.calls == []
    assert info.value.__notes__[-1] == (
        "Reading the first batch (Broken[0]) to check it against the model, before training "
        "started, failed: fix the data, then train again.")


def test_a_wrong_number_of_inputs_names_them():
    keras.utils.set_random_seed(1)
    a, b = keras.Input((FEATURES,), name="image"), keras.Input((2,), name="meta")
    model = keras.Model([a, b], keras.layers.Dense(1)(keras.layers.Concatenate()([a, b])))
    model.compile("sgd", "mse")
    x, y = make_data(16)
    _refused(lambda: nbtrain.fit(model, x, y, batch_size=8, display=False),
             "`x` does not fit the model: it has 2 inputs (input 'image', input 'meta'), but "
             "the first batch's `x` is 1 array.")
    history = nbtrain.fit(model, [x, x[:, :2]], y, batch_size=8, display=False).wait(60)
    assert len(history.history["loss"]) == 1
