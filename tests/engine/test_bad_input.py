"""Bad input is refused before any work starts, with the seed's clear messages."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers import RecordingSequence, batch_generator, make_data, make_model

import nbtrain


def test_uncompiled_model():
    x, y = make_data(16)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="compile"):
        nbtrain.fit_generator(model, RecordingSequence(x, y))
    with pytest.raises(ValueError, match="compile"):
        nbtrain.evaluate_generator(model, RecordingSequence(x, y))


def test_generator_without_steps_per_epoch_names_it():
    x, y = make_data(16)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        nbtrain.fit_generator(make_model(), batch_generator(x, y))


def test_validation_generator_without_validation_steps_names_it():
    x, y = make_data(16)
    seq = RecordingSequence(x, y)
    with pytest.raises(ValueError, match="validation_steps"):
        nbtrain.fit_generator(make_model(), seq, validation_data=batch_generator(x, y))
    assert seq.served == []  # nothing was read


@pytest.mark.parametrize("bad", [(1,), (1, 2, 3, 4)])
def test_validation_tuple_of_wrong_length_names_validation_data(bad):
    x, y = make_data(16)
    with pytest.raises(ValueError, match="validation_data"):
        nbtrain.fit_generator(make_model(), RecordingSequence(x, y), validation_data=bad)


@pytest.mark.parametrize("bad", [np.zeros(3), "data", None, 42])
def test_data_that_is_no_generator_or_sequence(bad):
    with pytest.raises(TypeError, match="generator"):
        nbtrain.fit_generator(make_model(), bad, steps_per_epoch=1)


@pytest.mark.parametrize("batch, shown", [
    (np.zeros((8, 4)), "ndarray(shape=(8, 4)"),
    ((np.zeros((8, 4)),), "tuple of 1"),
    ([np.zeros((8, 4))] * 4, "list of 4"),
    ((1, 2, 3, 4), "tuple of 4"),
])
@pytest.mark.parametrize("workers", [0, 1])
def test_generator_output_of_wrong_form_shows_what_was_received(batch, shown, workers):
    def gen():
        while True:
            yield batch

    with pytest.raises(ValueError, match=r"\(x, y\)") as info:
        nbtrain.fit_generator(make_model(), gen(), steps_per_epoch=2, verbose=0, workers=workers)
    assert shown in str(info.value)


@pytest.mark.parametrize("kwargs, match", [
    ({"steps_per_epoch": 0}, "steps_per_epoch"),
    ({"steps_per_epoch": 1.5}, "steps_per_epoch"),
    ({"epochs": -1}, "epochs"),
    ({"workers": -1}, "workers"),
    ({"max_queue_size": 0}, "max_queue_size"),
    ({"validation_freq": 0}, "validation_freq"),
    ({"validation_freq": "x"}, "validation_freq"),
    ({"class_weight": [1, 2]}, "class_weight"),
    ({"callbacks": [object()]}, "callbacks"),
    ({"verbose": 5}, "verbose"),
])
def test_bad_arguments(kwargs, match):
    x, y = make_data(16)
    with pytest.raises((ValueError, TypeError), match=match):
        nbtrain.fit_generator(make_model(), RecordingSequence(x, y), **kwargs)


def test_evaluate_and_predict_generator_need_steps_for_a_generator():
    x, y = make_data(16)
    with pytest.raises(ValueError, match="steps"):
        nbtrain.evaluate_generator(make_model(), batch_generator(x, y))
    with pytest.raises(ValueError, match="steps"):
        nbtrain.predict_generator(make_model(), batch_generator(x, y))
