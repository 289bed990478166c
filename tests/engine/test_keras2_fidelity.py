"""The Keras 2 details old code relies on (issue 13, point 1)."""

from __future__ import annotations

import threading

import keras
import numpy as np
import pytest
from helpers import FEATURES, RecordingSequence, make_data, make_model
from keras2_wrappers import Closure, wrapped_batches

import nbtrain


class ListBatches(RecordingSequence):
    """Batches as lists `[x, y]` (or `[x, y, w]`), as many Keras 2 Sequences return them."""

    def __getitem__(self, index):
        return list(super().__getitem__(index))


@pytest.mark.parametrize("workers", [0, 2])
def test_batches_may_be_lists(workers):
    x, y = make_data(32)
    weights = np.ones(32, "float32")
    model = make_model()
    history = nbtrain.fit_generator(model, ListBatches(x, y, weights=weights), epochs=2,
                                    verbose=0, workers=workers,
                                    validation_data=ListBatches(x, y))
    assert len(history.history["loss"]) == 2 and "val_loss" in history.history

    def generator():
        while True:
            yield [x[:8], y[:8]]

    history = nbtrain.fit_generator(model, generator(), steps_per_epoch=3, verbose=0,
                                    workers=workers)
    assert history.epoch == [0]


class Growing(nbtrain.Sequence):
    """Keras 2.3's IncreaseBatchSizeRandomSequence: the batch grows after each epoch."""

    def __init__(self, batch_size=3, samples=20):
        self.batch_size, self.samples = batch_size, samples

    def __len__(self):
        return int(np.ceil(self.samples / self.batch_size))

    def __getitem__(self, index):
        return (np.zeros((self.batch_size, FEATURES), "float32"),
                np.zeros((self.batch_size, 1), "float32"))

    def on_epoch_end(self):
        self.batch_size += 2


class ParamsLog(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.steps: list = []
        self.at_train_begin = None
        self.batches: list = []

    def set_params(self, params):
        super().set_params(params)
        self.steps.append(params["steps"])

    def on_train_begin(self, logs=None):
        self.at_train_begin = self.params["steps"]

    def on_epoch_begin(self, epoch, logs=None):
        self.batches.append(0)

    def on_train_batch_begin(self, batch, logs=None):
        self.batches[-1] += 1


@pytest.mark.parametrize("workers", [0, 1])
def test_params_steps_is_the_sequence_length_and_set_params_is_sent_again(workers):
    log = ParamsLog()
    nbtrain.fit_generator(make_model(), Growing(), epochs=5, verbose=0, workers=workers,
                          callbacks=[log])
    assert log.at_train_begin == 7
    assert log.steps[:5] == [7, 4, 3, 3, 2]  # Keras 2.3: after every epoch
    assert log.batches == [7, 4, 3, 3, 2]


def test_params_steps_with_steps_per_epoch_is_sent_once():
    log = ParamsLog()
    x, y = make_data(32)
    nbtrain.fit_generator(make_model(), RecordingSequence(x, y), steps_per_epoch=2, epochs=3,
                          verbose=0, callbacks=[log])
    assert log.steps == [2] and log.at_train_begin == 2


class ReadsValidationData(keras.callbacks.Callback):
    """A Keras 2 custom-metric callback: reads `self.validation_data` at each epoch end."""

    def __init__(self):
        super().__init__()
        self.seen: list = []

    def on_epoch_end(self, epoch, logs=None):
        x_val, y_val = self.validation_data[0], self.validation_data[1]
        predictions = self.model.predict(x_val, verbose=0)
        self.seen.append((x_val.shape, y_val.shape, predictions.shape,
                          len(self.validation_data)))


def test_callbacks_get_validation_data_for_tuple_validation():
    x, y = make_data(32)
    callback = ReadsValidationData()
    nbtrain.fit_generator(make_model(), RecordingSequence(x, y), epochs=2, verbose=0,
                          validation_data=(x[:16], y[:16]), callbacks=[callback])
    assert callback.seen == [((16, FEATURES), (16, 1), (16, 1), 3)] * 2
    np.testing.assert_array_equal(callback.validation_data[2], np.ones(16))  # sample weights
    run = nbtrain.fit(make_model(), x, y, batch_size=8, validation_data=(x[:8], y[:8], np.ones(8)),
                      callbacks=[ReadsValidationData()], display=False)
    run.wait(timeout=60)
    assert run.state == "finished"


def mean_difference(y_true, y_pred):
    return keras.ops.mean(y_true - y_pred)  # fails on float64 y_true against float32 y_pred


@pytest.mark.parametrize("workers", [0, 2])
def test_float64_batches_are_cast_to_floatx(workers):
    model = make_model(metrics=[mean_difference])

    def generator():
        while True:
            yield np.random.random((8, FEATURES)), np.random.random((8, 1))  # float64

    history = nbtrain.fit_generator(model, generator(), steps_per_epoch=3, verbose=0,
                                    workers=workers, validation_data=generator(),
                                    validation_steps=2)
    assert "mean_difference" in history.history and "val_mean_difference" in history.history
    result = nbtrain.evaluate_generator(model, generator(), steps=2, workers=workers)
    assert len(result) == 2
    predictions = nbtrain.predict_generator(model, generator(), steps=2, workers=workers)
    assert predictions.dtype == np.float32


def test_the_cast_runs_on_the_worker_threads(monkeypatch):
    from nbtrain.engine import training

    threads = []
    cast = training.cast_float64

    def recording(structure, floatx):
        threads.append(threading.current_thread().name)
        return cast(structure, floatx)

    monkeypatch.setattr(training, "cast_float64", recording)
    x, y = make_data(32)
    nbtrain.fit_generator(make_model(), RecordingSequence(x.astype("float64"), y), epochs=1,
                          verbose=0, workers=2)
    # all but the first batch, which the caller reads to check it against the model (issue 26)
    assert threads[0] == threading.main_thread().name
    assert len(threads) >= 4 and threading.main_thread().name not in threads[1:]


@pytest.mark.parametrize("make", [wrapped_batches, Closure], ids=["wrapper attribute", "closure"])
def test_fresh_generators_inside_the_object_are_rebuilt_in_each_worker(make):
    model = make_model()
    history = nbtrain.fit_generator(model, make(32), steps_per_epoch=4, epochs=2, verbose=0,
                                    workers=2, use_multiprocessing=True,
                                    validation_data=make(16), validation_steps=2)
    assert history.epoch == [0, 1] and "val_loss" in history.history


def test_a_started_generator_inside_a_wrapper_is_refused_before_training():
    started = wrapped_batches(32)
    next(started)
    log = ParamsLog()
    with pytest.raises(TypeError, match=r"`generator` with use_multiprocessing=True.*started"):
        nbtrain.fit_generator(make_model(), started, steps_per_epoch=2, verbose=0,
                              use_multiprocessing=True, callbacks=[log])
    assert log.at_train_begin is None  # refused before on_train_begin


def test_ordered_enqueuer_join_end_of_epoch():
    x, y = make_data(16)
    sequence = RecordingSequence(x, y)
    enqueuer = nbtrain.OrderedEnqueuer(sequence)
    enqueuer.start(workers=1, max_queue_size=2)
    try:
        batches = enqueuer.get()
        assert enqueuer.join_end_of_epoch(timeout=0.01) is False  # no pass has ended
        next(batches), next(batches)  # the pass's two batches
        assert enqueuer.join_end_of_epoch() is True
        assert sequence.served.count("end") == 1  # on_epoch_end has run
        assert enqueuer.join_end_of_epoch(timeout=0.01) is False  # the signal was cleared
    finally:
        enqueuer.stop()


def _two_outputs() -> keras.Model:
    keras.utils.set_random_seed(0)
    a, b = keras.Input((3,), name="input_a"), keras.Input((3,), name="input_b")
    joined = keras.layers.Concatenate()([a, b])
    model = keras.Model([a, b], [keras.layers.Dense(4, name="dense_1")(joined),
                                 keras.layers.Dense(3, name="dense_2")(joined)])
    model.compile(optimizer="rmsprop", loss=["mse", "mse"], loss_weights=[1.0, 0.5])
    return model


def test_dict_targets_are_fed_to_the_outputs_by_name():
    """Keras 2.3.1's test_model_methods feeds `{'dense_1': ..., 'dropout': ...}`: targets
    by output name (Keras 3 takes a dict `y` only for a model whose outputs are a dict)."""
    rng = np.random.default_rng(0)

    def batches():
        while True:
            yield ({"input_b": rng.random((4, 3)), "input_a": rng.random((4, 3))},
                   {"dense_2": rng.random((4, 3)), "dense_1": rng.random((4, 4)),
                    "ids": np.arange(4)})

    model = _two_outputs()
    with pytest.warns(UserWarning, match=r"target dict has the key 'ids', which names no output"):
        history = nbtrain.fit_generator(model, batches(), steps_per_epoch=3, epochs=2,
                                        verbose=0, workers=0)
    assert history.epoch == [0, 1] and np.isfinite(history.history["loss"]).all()
    x, y = next(batches())
    del y["ids"]
    expected = model.evaluate(x, y, verbose=0)  # Keras 3 maps two outputs by name itself
    got = nbtrain.evaluate_generator(model, iter([(x, y)]), steps=1, workers=0)
    assert got == pytest.approx(expected, rel=1e-5)


def test_a_dict_naming_no_input_is_left_to_the_model_and_a_subclassed_model_gets_it_whole():
    from nbtrain.engine.batches import NamedFeed

    feed = NamedFeed(_two_outputs())
    strangers = {"image": np.zeros((2, 3))}
    assert feed.inputs(strangers) is strangers  # nothing matches: Keras says what it expected

    class Subclassed(keras.Model):
        def call(self, inputs):
            return inputs["a"]

    whole = {"a": np.zeros((2, 3)), "note": ["x", "y"]}
    assert NamedFeed(Subclassed()).inputs(whole) is whole  # its inputs have no names
