"""evaluate_generator and predict_generator: the same numbers as Keras, in the same order."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers import RecordingSequence, batch_generator, make_data, make_model

import nbtrain


@pytest.mark.parametrize("compiled", [None, False])
@pytest.mark.parametrize("workers", [0, 1])
def test_evaluate_generator_matches_model_evaluate(compiled, workers):
    x, y = make_data(20)
    model = make_model(metrics=["mae", "mse"])
    expected = model.evaluate(x, y, batch_size=8, verbose=0)
    got = nbtrain.evaluate_generator(model, RecordingSequence(x, y), workers=workers,
                                     compiled_steps=compiled)
    assert isinstance(got, list) and len(got) == 3
    assert got == pytest.approx(expected, rel=1e-5)


def test_evaluate_generator_without_metrics_returns_a_scalar():
    x, y = make_data(16)
    model = make_model()
    got = nbtrain.evaluate_generator(model, batch_generator(x, y), steps=2)
    assert isinstance(got, float)
    assert got == pytest.approx(model.evaluate(x, y, batch_size=8, verbose=0), rel=1e-5)


def test_evaluate_generator_with_sample_weights():
    x, y = make_data(16)
    w = np.r_[np.ones(8), np.zeros(8)].astype("float32")
    model = make_model()
    got = nbtrain.evaluate_generator(model, RecordingSequence(x, y, weights=w))
    assert got == pytest.approx(model.evaluate(x, y, sample_weight=w, batch_size=8, verbose=0),
                                rel=1e-5)


@pytest.mark.parametrize("form", ["x", "(x,)", "(x, y)", "(x, y, w)"])
def test_predict_generator_accepts_every_batch_form(form):
    x, y = make_data(20)
    model = make_model()

    def gen():
        for s in range(0, 20, 8):
            xb, yb = x[s:s + 8], y[s:s + 8]
            yield {"x": xb, "(x,)": (xb,), "(x, y)": (xb, yb),
                   "(x, y, w)": (xb, yb, np.ones(len(xb)))}[form]

    out = nbtrain.predict_generator(model, gen(), steps=3, workers=1)
    np.testing.assert_allclose(out, model.predict(x, verbose=0), rtol=1e-5)


def test_predict_generator_multi_output_gives_a_list_per_output():
    inp = keras.Input((4,))
    model = keras.Model(inp, [keras.layers.Dense(1)(inp), keras.layers.Dense(2)(inp)])
    x, y = make_data(20)
    out = nbtrain.predict_generator(model, RecordingSequence(x, y))
    assert isinstance(out, list) and [o.shape for o in out] == [(20, 1), (20, 2)]
    ref = model.predict(x, verbose=0)
    for a, b in zip(out, ref):
        np.testing.assert_allclose(a, b, rtol=1e-5)


def test_predict_generator_with_an_ended_generator_warns_and_returns_what_it_got():
    x, y = make_data(16)
    with pytest.warns(UserWarning, match="ended after 2 of 5"):
        out = nbtrain.predict_generator(make_model(), batch_generator(x, y, limit=2), steps=5)
    assert out.shape == (16, 1)
