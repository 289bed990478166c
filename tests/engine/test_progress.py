"""The text display is Keras's own: what `model.fit(verbose=1|2)` prints, at <= 10 Hz."""

from __future__ import annotations

import contextlib
import io
import re
import time

import keras
import numpy as np
import pytest
from helpers import RecordingSequence, make_data, make_model

import nbtrain
from nbtrain.engine.progress import TextProgress


def _normalised(text: str) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # colours
    text = re.sub(r"[\x08]+", "", text)  # backspaces of the redraws
    text = re.sub(r"\d+(\.\d+)?(ms|us|s)/step|\b\d+s\b", "T", text)  # timings
    return text


def _final_lines(text: str) -> list[str]:
    """Each line as it is left on screen: the last redraw after a carriage return."""
    return [line.split("\r")[-1].rstrip() for line in _normalised(text).split("\n") if line]


def _printed(fn) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        fn()
    return out.getvalue()


@pytest.mark.parametrize("verbose", [1, 2])
def test_fit_generator_prints_what_model_fit_prints(verbose):
    x, y = make_data(64)

    keras_text = _printed(lambda: make_model(metrics=["mae"]).fit(
        x, y, batch_size=8, epochs=2, verbose=verbose, validation_data=(x, y), shuffle=False))
    ours = _printed(lambda: nbtrain.fit_generator(
        make_model(metrics=["mae"]), RecordingSequence(x, y), epochs=2, verbose=verbose,
        validation_data=(x, y), shuffle=False))
    assert _final_lines(ours) == _final_lines(keras_text)
    last = _final_lines(ours)[-1]
    # one metric order: training metrics, then validation, in the bar and the final line
    assert re.search(r"8/8 .* - loss: \d+\.\d{4} - mae: \d+\.\d{4} - val_loss: \d+\.\d{4} - "
                     r"val_mae: \d+\.\d{4}$", last)


def _classifier() -> keras.Model:
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


@pytest.mark.parametrize("verbose", [1, 2])
def test_metrics_come_in_the_order_model_fit_shows_them(verbose):
    x, _ = make_data(64)
    y = (x[:, 0] > 0).astype("int32")
    keras_text = _printed(lambda: _classifier().fit(
        x, y, batch_size=8, epochs=2, verbose=verbose, validation_data=(x, y), shuffle=False))
    nbtrain.legacy.enable()
    try:
        ours = _printed(lambda: _classifier().fit_generator(
            RecordingSequence(x, y), epochs=2, verbose=verbose, validation_data=(x, y),
            shuffle=False))
    finally:
        nbtrain.legacy.disable()
    assert _final_lines(ours) == _final_lines(keras_text)
    # Keras hands callbacks their logs sorted by name: accuracy before loss, in every line
    assert re.search(r"8/8 .* - accuracy: \d\.\d{4} - loss: \d\.\d{4} - val_accuracy: "
                     r"\d\.\d{4} - val_loss: \d\.\d{4}$", _final_lines(ours)[-1])


@pytest.mark.parametrize("verbose", [0, 1, 2])
def test_evaluate_and_predict_generator_print_what_evaluate_and_predict_print(verbose):
    x, _ = make_data(64)
    y = (x[:, 0] > 0).astype("int32")
    model = _classifier()
    nbtrain.legacy.enable()
    try:
        for keras_call, ours_call in [
                (lambda: model.evaluate(x, y, batch_size=8, verbose=verbose),
                 lambda: model.evaluate_generator(RecordingSequence(x, y), verbose=verbose)),
                (lambda: model.predict(x, batch_size=8, verbose=verbose),
                 lambda: model.predict_generator(RecordingSequence(x, y), verbose=verbose))]:
            keras_text, ours = _printed(keras_call), _printed(ours_call)
            assert _final_lines(ours) == _final_lines(keras_text)
            assert (ours == "") == (verbose == 0)
    finally:
        nbtrain.legacy.disable()
    if verbose:  # the evaluation's bar ends with its metrics, in Keras's order
        assert re.search(r"^8/8 .* - accuracy: \d\.\d{4} - loss: \d\.\d{4}$",
                         _final_lines(_printed(lambda: nbtrain.evaluate_generator(
                             model, RecordingSequence(x, y), verbose=verbose)))[-1])


def test_text_progress_redraws_at_most_ten_times_a_second():
    out = io.StringIO()
    bar = TextProgress(verbose=1, stream=out)
    bar.set_params({"epochs": 1, "steps": 100000, "verbose": 1})
    bar.on_epoch_begin(0)
    start = time.monotonic()
    for b in range(100000):
        bar.on_train_batch_end(b, {"loss": 1.0})
    elapsed = time.monotonic() - start
    bar.on_epoch_end(0, {"loss": 1.0})
    redraws = out.getvalue().count("\r") + out.getvalue().count("\n")
    assert redraws <= 10 * elapsed + 3
    assert _final_lines(out.getvalue())[-1].endswith("loss: 1.0000")


def test_a_batch_not_drawn_is_not_copied_from_the_device():
    class Counting(dict):
        reads = 0

        def items(self):
            Counting.reads += 1
            return super().items()

    bar = TextProgress(verbose=1, stream=io.StringIO(), interval=3600)
    bar.set_params({"epochs": 1, "steps": 1000, "verbose": 1})
    bar.on_epoch_begin(0)
    for b in range(1000):
        bar.on_train_batch_end(b, Counting(loss=np.float32(1.0)))
    assert Counting.reads == 1  # only the first batch was drawn


def test_verbose_zero_prints_nothing(capsys):
    x, y = make_data(16)
    nbtrain.fit_generator(make_model(), RecordingSequence(x, y), epochs=2, verbose=0)
    assert capsys.readouterr().out == ""


def test_evaluate_inside_fit_is_silent_and_keras_progbar_is_used(capsys):
    x, y = make_data(16)
    bar = TextProgress(verbose=2)
    nbtrain.fit_generator(make_model(), RecordingSequence(x, y), epochs=1, verbose=0,
                          validation_data=RecordingSequence(x, y), callbacks=[bar])
    assert isinstance(bar.progbar, keras.utils.Progbar)
    lines = _final_lines(capsys.readouterr().out)
    assert len(lines) == 1 and lines[0].startswith("2/2 - T - T - loss:") and "val_loss" in lines[0]
