"""`nbtrain.fit` takes every `model.fit` argument, with Keras's meaning (issue 13, point 4)."""

from __future__ import annotations

import inspect
import re

import keras
import numpy as np
import pytest
from helpers import make_data, make_model

import nbtrain

TIMEOUT = 120


def test_every_model_fit_argument_is_accepted():
    keras_params = set(inspect.signature(keras.Model.fit).parameters) - {"self"}
    ours = inspect.signature(nbtrain.fit).parameters
    assert keras_params <= set(ours)
    for name in keras_params - {"x"}:
        assert ours[name].default == inspect.signature(keras.Model.fit).parameters[name].default \
            or name in ("y",), name


def _history(run):
    run.wait(timeout=TIMEOUT)
    assert run.state == "finished"
    return run.history.history


def test_validation_split_holds_out_the_last_samples_as_keras_does():
    x, y = make_data(40)
    keras_history = make_model().fit(x, y, batch_size=8, epochs=2, validation_split=0.25,
                                     shuffle=False, verbose=0).history
    ours = _history(nbtrain.fit(make_model(), x, y, batch_size=8, epochs=2,
                                validation_split=0.25, shuffle=False, display=False))
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(ours[key], keras_history[key], rtol=1e-5)


def test_sample_weight_and_validation_batch_size():
    x, y = make_data(32)
    weights = np.r_[np.ones(16), np.zeros(16)].astype("float32")
    keras_history = make_model().fit(x, y, batch_size=8, sample_weight=weights, shuffle=False,
                                     validation_data=(x, y), validation_batch_size=4,
                                     verbose=0).history
    ours = _history(nbtrain.fit(make_model(), x, y, batch_size=8, sample_weight=weights,
                                shuffle=False, validation_data=(x, y), validation_batch_size=4,
                                display=False))
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(ours[key], keras_history[key], rtol=1e-5)


@pytest.mark.parametrize("verbose, pattern", [
    (1, r"4/4 ━+ .* - loss: \d+\.\d{4}"),
    (2, r"4/4 - \d+s - .*/step - loss: \d+\.\d{4}"),
])
def test_verbose_is_keras_text_display_outside_a_notebook(capsys, verbose, pattern):
    x, y = make_data(32)
    _history(nbtrain.fit(make_model(), x, y, batch_size=8, epochs=2, verbose=verbose))
    out = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)
    assert "Epoch 2/2" in out and re.search(pattern, out)


def test_verbose_zero_prints_nothing(capsys):
    x, y = make_data(16)
    _history(nbtrain.fit(make_model(), x, y, batch_size=8, verbose=0))
    assert capsys.readouterr().out == ""


def test_sample_weight_and_split_need_arrays():
    x, y = make_data(16)

    def batches():
        while True:
            yield x[:8], y[:8]

    with pytest.raises(ValueError, match="`sample_weight` must be None when `x` is a generator"):
        nbtrain.fit(make_model(), batches(), steps_per_epoch=2, sample_weight=np.ones(16))
    with pytest.raises(ValueError, match="`validation_split` is only for arrays"):
        nbtrain.fit(make_model(), batches(), steps_per_epoch=2, validation_split=0.2)
    with pytest.raises(ValueError, match="validation_split"):
        nbtrain.fit(make_model(), x, y, validation_split=1.5)
