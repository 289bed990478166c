"""fit_generator: the Keras 2 loop semantics, on the compiled and the fallback paths."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers import BatchRecorder, RecordingSequence, batch_generator, make_data, make_model

import nbtrain
from nbtrain.engine.training import FitLoop

PATHS = [pytest.param(None, id="compiled"), pytest.param(False, id="train_on_batch")]


def fit(model, data, compiled=None, **kwargs):
    kwargs.setdefault("verbose", 0)
    return FitLoop(model, data, compiled_steps=compiled, **kwargs).run()


@pytest.mark.parametrize("compiled", PATHS)
@pytest.mark.parametrize("workers", [0, 1, 2])
def test_trains_every_batch_of_every_epoch_in_order(compiled, workers):
    x, y = make_data(40)
    seq = RecordingSequence(x, y)  # 5 batches
    rec = BatchRecorder()
    history = fit(make_model(), seq, compiled, epochs=3, callbacks=[rec], workers=workers,
                  shuffle=False)
    assert rec.pairs == [(e, b) for e in range(3) for b in range(5)]
    expected = [0, 1, 2, 3, 4, "end"] * 3
    if workers == 0:
        assert seq.served == expected
    else:  # workers read ahead into the next pass; nothing more is trained
        assert seq.served[:18] == expected and "end" not in seq.served[18:]
    assert history.epoch == [0, 1, 2]
    assert len(history.history["loss"]) == 3
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_initial_epoch_and_epochs_is_the_final_epoch():
    x, y = make_data(16)
    rec = BatchRecorder()
    history = fit(make_model(), RecordingSequence(x, y), epochs=5, initial_epoch=2, callbacks=[rec])
    assert history.epoch == [2, 3, 4]
    assert [e for e, _ in rec.pairs] == [2, 2, 3, 3, 4, 4]


def test_shuffle_changes_order_per_epoch_and_covers_every_batch():
    x, y = make_data(160)
    seq = RecordingSequence(x, y)  # 20 batches
    fit(make_model(), seq, epochs=3, shuffle=True, workers=1)
    epochs = " ".join(map(str, seq.served)).split("end")[:3]
    orders = [[int(i) for i in e.split()] for e in epochs]
    assert all(sorted(o) == list(range(20)) for o in orders)
    assert orders[0] != list(range(20)) or orders[1] != list(range(20))
    assert orders[0] != orders[1]


class GrowingSequence(RecordingSequence):
    """Grows by one batch in every on_epoch_end."""

    def __init__(self, x, y):
        super().__init__(x, y)
        self.length = 2

    def __len__(self):
        return self.length

    def on_epoch_end(self):
        super().on_epoch_end()
        self.length += 1


@pytest.mark.parametrize("workers", [0, 1])
def test_sequence_length_is_read_again_after_each_epoch(workers):
    x, y = make_data(64)
    rec = BatchRecorder()
    seq = GrowingSequence(x, y)
    fit(make_model(), seq, epochs=3, callbacks=[rec], workers=workers, shuffle=False)
    assert rec.pairs == [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2), (2, 3)]


@pytest.mark.parametrize("workers", [0, 1])
def test_generator_with_steps_per_epoch(workers):
    x, y = make_data(32)
    rec = BatchRecorder()
    history = fit(make_model(), batch_generator(x, y), steps_per_epoch=3, epochs=2,
                  callbacks=[rec], workers=workers)
    assert rec.pairs == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert history.epoch == [0, 1]


def test_generator_that_ends_early_stops_training_with_a_warning():
    x, y = make_data(32)
    rec = BatchRecorder()
    with pytest.warns(UserWarning, match="ended after 5 of 3|ended after 2 of 3"):
        history = fit(make_model(), batch_generator(x, y, limit=5), steps_per_epoch=3, epochs=4,
                      callbacks=[rec], workers=1)
    assert rec.pairs == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    assert history.epoch == [0, 1]
    assert rec.events[-1] == "train_end"


def test_sequence_with_explicit_steps_per_epoch_streams_continuously():
    x, y = make_data(40)
    seq = RecordingSequence(x, y)  # 5 batches
    fit(make_model(), seq, steps_per_epoch=3, epochs=3, workers=0, shuffle=False)
    # 9 batches drawn from a continuous stream of passes; on_epoch_end after each full pass
    assert seq.served == [0, 1, 2, 3, 4, "end", 0, 1, 2, 3]


def test_epoch_logs_are_batch_size_weighted_averages_and_match_evaluate_for_fixed_weights():
    x, y = make_data(20)  # batches of 8, 8, 4
    model = make_model(optimizer=keras.optimizers.SGD(0.0))  # weights never change
    history = fit(model, RecordingSequence(x, y), epochs=1)
    expected = model.evaluate(x, y, batch_size=8, verbose=0)
    assert history.history["loss"][0] == pytest.approx(expected, rel=1e-5)
    per_batch = [float(np.mean((model.predict_on_batch(x[s]) - y[s]) ** 2))
                 for s in (slice(0, 8), slice(8, 16), slice(16, 20))]
    weighted = (8 * per_batch[0] + 8 * per_batch[1] + 4 * per_batch[2]) / 20
    assert history.history["loss"][0] == pytest.approx(weighted, rel=1e-5)


def test_fallback_path_gives_the_same_epoch_averages():
    x, y = make_data(20)
    a = fit(make_model(optimizer=keras.optimizers.SGD(0.0)), RecordingSequence(x, y), None)
    b = fit(make_model(optimizer=keras.optimizers.SGD(0.0)), RecordingSequence(x, y), False)
    assert a.history["loss"][0] == pytest.approx(b.history["loss"][0], rel=1e-5)


@pytest.mark.parametrize("compiled", PATHS)
def test_same_weights_as_keras_fit_after_the_same_batches(compiled):
    x, y = make_data(40)
    ours, theirs = make_model(), make_model()
    fit(ours, RecordingSequence(x, y), compiled, epochs=2, shuffle=False)
    theirs.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_steps_per_execution_is_respected():
    x, y = make_data(48)
    rec = BatchRecorder()
    model = make_model(steps_per_execution=3)
    fit(model, RecordingSequence(x, y), epochs=1, callbacks=[rec], shuffle=False)
    reference = make_model()
    fit(reference, RecordingSequence(x, y), epochs=1, shuffle=False)
    # one callback call per execution of 3 steps: begin at 0 and 3
    assert rec.pairs == [(0, 0), (0, 3)]
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("compiled", PATHS)
def test_class_weight_and_sample_weight_reach_the_loss(compiled):
    x, _ = make_data(16)
    y = (np.arange(16) % 2).astype("float32")[:, None]
    frozen = keras.optimizers.SGD(0.0)
    plain = fit(make_model(optimizer=frozen), RecordingSequence(x, y), compiled)
    zeroed = fit(make_model(optimizer=keras.optimizers.SGD(0.0)), RecordingSequence(x, y), compiled,
                 class_weight={0: 0.0, 1: 0.0})
    assert plain.history["loss"][0] > 0
    assert zeroed.history["loss"][0] == pytest.approx(0.0, abs=1e-7)
    w = np.zeros(16, dtype="float32")
    weighted = fit(make_model(optimizer=keras.optimizers.SGD(0.0)),
                   RecordingSequence(x, y, weights=w), compiled)
    assert weighted.history["loss"][0] == pytest.approx(0.0, abs=1e-7)


class StopAt(keras.callbacks.Callback):
    def __init__(self, epoch, batch):
        super().__init__()
        self.at = (epoch, batch)
        self.epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            self.model.stop_training = True


@pytest.mark.parametrize("compiled", PATHS)
def test_stop_training_from_a_callback_stops_after_the_current_batch(compiled):
    x, y = make_data(40)
    rec = BatchRecorder()
    fit(make_model(), RecordingSequence(x, y), compiled, epochs=5,
        callbacks=[StopAt(1, 2), rec], shuffle=False)
    assert rec.pairs == [(0, b) for b in range(5)] + [(1, 0), (1, 1), (1, 2)]
    assert rec.events[-2][0:2] == ("epoch_end", 1)
    assert rec.events[-1] == "train_end"


def test_public_name_is_the_engine_loop_and_returns_history():
    x, y = make_data(16)
    history = nbtrain.fit_generator(make_model(), RecordingSequence(x, y), epochs=1, verbose=0)
    assert isinstance(history, keras.callbacks.History)


class Interrupt(keras.callbacks.Callback):
    def __init__(self, exc):
        super().__init__()
        self.exc = exc

    def on_train_batch_end(self, batch, logs=None):
        if batch == 1:
            raise self.exc


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), RuntimeError("callback failed")])
@pytest.mark.parametrize("workers", [1, 2])
def test_enqueuers_are_stopped_in_every_exit_path(exc, workers):
    x, y = make_data(64)
    val = RecordingSequence(x, y)
    loop = FitLoop(make_model(), RecordingSequence(x, y), epochs=2, verbose=0, workers=workers,
                   validation_data=val, callbacks=[Interrupt(exc)])
    with pytest.raises(type(exc)):
        loop.run()
    assert loop.train_stream._enqueuer is None and loop.val_stream is None
    # the autouse fixture checks that no worker thread outlived the loop


class BadBatch(RecordingSequence):
    def __getitem__(self, index):
        if index == 2:
            raise FileNotFoundError("image 2 is missing")
        return super().__getitem__(index)


@pytest.mark.parametrize("workers", [0, 2])
def test_data_error_reaches_the_caller_as_the_original_exception(workers):
    x, y = make_data(40)
    with pytest.raises(FileNotFoundError, match="image 2 is missing"):
        nbtrain.fit_generator(make_model(), BadBatch(x, y), epochs=1, verbose=0, workers=workers,
                              shuffle=False)


@pytest.mark.parametrize("compiled", PATHS)
def test_batch_logs_are_running_averages_on_both_paths(compiled):
    x, y = make_data(24)
    rec = BatchRecorder()
    history = fit(make_model(optimizer=keras.optimizers.SGD(0.0)), RecordingSequence(x, y),
                  compiled, callbacks=[rec])
    assert rec.batch_logs[-1]["loss"] == pytest.approx(history.history["loss"][0], rel=1e-5)
