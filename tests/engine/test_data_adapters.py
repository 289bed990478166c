"""One module per kind of input behind one dispatcher (`nbtrain.engine.adapters`), and
the fit contract the public signatures are made from (`nbtrain.engine.arguments`)
(issue 28, point 1)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import tensorflow as tf
from helpers import RecordingSequence, batch_generator, make_data, make_model

import nbtrain
from nbtrain.data import ArraySequence, DatasetBatches
from nbtrain.engine.adapters import (
    ArrayAdapter,
    GeneratorAdapter,
    SequenceAdapter,
    TFDatasetAdapter,
    adapt_training,
    adapt_validation,
    get_data_adapter,
)
from nbtrain.engine.arguments import FIT, FIT_GENERATOR, TABLE
from nbtrain.engine.config import fit_config


def _training(x, y=None, **kwargs):
    arguments = dict(api="fit", batch_size=None, sample_weight=None, validation_split=0.0,
                     validation_data=None, shuffle=True, seed=0)
    return adapt_training(make_model(), x, y, **{**arguments, **kwargs})


def test_each_kind_of_input_has_its_adapter():
    x, y = make_data(16)
    sequence = RecordingSequence(x, y)
    generator = batch_generator(x, y)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    assert type(get_data_adapter(sequence, "x", "fit")) is SequenceAdapter
    assert get_data_adapter(sequence, "x", "fit").source is sequence
    assert type(get_data_adapter(generator, "x", "fit")) is GeneratorAdapter
    adapter = get_data_adapter(dataset, "x", "fit")
    assert type(adapter) is TFDatasetAdapter and isinstance(adapter.source, DatasetBatches)
    loader = get_data_adapter(range(3), "x", "fit")  # another iterable: one pass of it
    assert type(loader) is GeneratorAdapter and next(loader.source) == 0
    arrays, validation = _training(x, y, batch_size=4)
    assert type(arrays) is ArrayAdapter and isinstance(arrays.source, ArraySequence)
    assert validation is None and len(arrays.source) == 4


def test_an_epoch_without_steps_is_the_kinds_own():
    x, y = make_data(16)
    assert get_data_adapter(RecordingSequence(x, y), "x", "fit").default_steps(
        "steps_per_epoch", "nbtrain.fit") is None  # its length, read at every epoch
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    assert get_data_adapter(dataset, "x", "fit").default_steps("steps_per_epoch", "f") == 4
    with pytest.raises(ValueError, match="`steps_per_epoch=None` is only valid for a Sequence "
                                         "or a PyDataset; with a generator nbtrain.fit cannot"):
        get_data_adapter(batch_generator(x, y), "x", "fit").default_steps(
            "steps_per_epoch", "nbtrain.fit")
    with pytest.raises(ValueError, match="with a tf.data.Dataset of unknown or infinite "
                                         "cardinality fit_generator cannot"):
        get_data_adapter(dataset.repeat(), "x", "fit").default_steps("steps_per_epoch",
                                                                     "fit_generator")


def test_arrays_hold_out_the_split_and_shuffle_samples_not_batches():
    x, y = make_data(20)
    adapter, (val_x, val_y) = _training(x, y, batch_size=4, validation_split=0.25)
    assert adapter.source.n == 15 and not adapter.shuffles_batches
    np.testing.assert_array_equal(val_x, x[15:])
    np.testing.assert_array_equal(val_y, y[15:])
    validation = adapt_validation((val_x, val_y), None, api="fit", batch_size=4)
    assert validation.steps is None and len(validation.source) == 2
    assert [a.shape[0] for a in validation.arrays] == [5, 5, 5]  # x, y, weights (Keras 2)


def test_batched_data_refuses_what_only_arrays_take():
    x, y = make_data(16)
    with pytest.raises(ValueError, match="`y` must be None when `x` is a Sequence or PyDataset"):
        _training(RecordingSequence(x, y), y)
    with pytest.raises(ValueError, match="`validation_split` is only for arrays; `x` is a "
                                         "generator"):
        _training(batch_generator(x, y), validation_split=0.5)


def test_arrays_are_for_fit_alone():
    x, y = make_data(16)
    with pytest.raises(TypeError, match="For arrays in memory use nbtrain.fit"):
        get_data_adapter((x, y), "generator", "fit_generator")


def test_the_signatures_are_the_contracts():
    fit = inspect.signature(nbtrain.fit).parameters
    assert list(fit) == ["model", "x", "y", *FIT.names, "display", "compare_with"]
    for name in FIT.names:
        assert fit[name].default == TABLE[name].default
        assert fit[name].kind is inspect.Parameter.KEYWORD_ONLY
    fit_generator = inspect.signature(nbtrain.fit_generator).parameters
    assert list(fit_generator) == ["model", "generator", *FIT_GENERATOR.names]
    assert fit_generator["verbose"].default == 1  # Keras 2's


def test_arguments_bind_as_python_binds_them():
    x, y = make_data(16)
    model = make_model()
    history = nbtrain.fit_generator(model, batch_generator(x, y), 2, 1, 0)  # Keras 2's order
    assert history.params["steps"] == 2
    with pytest.raises(TypeError, match=r"fit_generator\(\) got an unexpected keyword "
                                        r"argument 'batch_size'"):
        nbtrain.fit_generator(model, batch_generator(x, y), batch_size=4)
    with pytest.raises(TypeError, match=r"fit\(\) got an unexpected keyword argument 'foo'"):
        nbtrain.fit(model, x, y, foo=1)
    with pytest.raises(TypeError, match=r"fit_config\(\) got an unexpected keyword argument "
                                        r"'display'"):
        fit_config(model, x, y, display=False)
