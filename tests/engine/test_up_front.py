"""Bad input is refused in the caller's thread before any callback or worker starts,
with a message naming the argument, what was received and what to do (issue 13, point 2)."""

from __future__ import annotations

import dataclasses
import threading
import warnings

import keras
import numpy as np
import pytest
from helpers import FEATURES, RecordingSequence, batch_generator, make_data, make_model

import nbtrain
from nbtrain.engine.config import ARGUMENTS, FitConfig, fit_config


class Hooks(keras.callbacks.Callback):
    """Records every hook; any entry means work had started."""

    def __init__(self):
        super().__init__()
        self.calls: list = []

    def on_train_begin(self, logs=None):
        self.calls.append("train_begin")

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append("epoch_begin")


class Empty(nbtrain.Sequence):
    def __len__(self):
        return 0

    def __getitem__(self, index):
        raise IndexError(index)


class HoldsStartedGenerator(RecordingSequence):
    def __init__(self, x, y):
        super().__init__(x, y)
        self.source = batch_generator(x, y)
        next(self.source)  # started: cannot be copied to a worker process


def _refused(call, error, *fragments):
    before = set(threading.enumerate())
    with pytest.raises(error) as info:
        call()
    assert set(threading.enumerate()) == before  # no worker, no Run thread
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)
    return str(info.value)


def test_fit_with_arrays_and_no_y():
    x, _ = make_data(16)
    hooks = Hooks()
    _refused(lambda: nbtrain.fit(make_model(), x, callbacks=[hooks], display=False),
             ValueError, "`y` is None", "pass the targets")
    assert hooks.calls == []


def test_empty_validation_sequence_is_named_before_training(tmp_path):
    x, y = make_data(16)
    hooks = Hooks()
    log = tmp_path / "log.csv"
    _refused(lambda: nbtrain.fit_generator(
        make_model(), RecordingSequence(x, y), validation_data=Empty(), verbose=0,
        callbacks=[hooks, keras.callbacks.CSVLogger(str(log))]),
        ValueError, "`validation_data` is empty", "Empty has length 0")
    assert hooks.calls == [] and not log.exists()


@pytest.mark.parametrize("api", ["fit", "fit_generator"])
def test_empty_training_sequence_before_any_callback(api, tmp_path):
    log = tmp_path / "log.csv"
    hooks = Hooks()
    callbacks = [hooks, keras.callbacks.CSVLogger(str(log))]
    if api == "fit":
        call = lambda: nbtrain.fit(make_model(), Empty(), callbacks=callbacks, display=False)  # noqa: E731
        name = "`x`"
    else:
        call = lambda: nbtrain.fit_generator(make_model(), Empty(), callbacks=callbacks)  # noqa: E731
        name = "`generator`"
    _refused(call, ValueError, f"{name} is empty")
    assert hooks.calls == [] and not log.exists()


def test_unpicklable_sequence_with_processes_before_any_callback(tmp_path):
    x, y = make_data(16)
    hooks = Hooks()
    log = tmp_path / "log.csv"
    message = _refused(lambda: nbtrain.fit_generator(
        make_model(), HoldsStartedGenerator(x, y), workers=2, use_multiprocessing=True,
        callbacks=[hooks, keras.callbacks.CSVLogger(str(log))]),
        TypeError, "`generator` (HoldsStartedGenerator) cannot be sent to worker processes",
        "use_multiprocessing=False")
    assert "`HoldsStartedGenerator.source` cannot be pickled" in message  # the attribute
    assert "suspended" in message
    assert hooks.calls == [] and not log.exists()


@pytest.mark.parametrize("where", ["generator", "validation_data"])
def test_the_sequence_class_instead_of_an_instance(where):
    x, y = make_data(16)
    args = {"generator": RecordingSequence, "validation_data": RecordingSequence(x, y)}
    if where == "validation_data":
        args = {"generator": RecordingSequence(x, y), "validation_data": RecordingSequence}
    _refused(lambda: nbtrain.fit_generator(make_model(), **args), TypeError,
             f"`{where}` is the class RecordingSequence, not an instance",
             "RecordingSequence(...)")


def test_fit_generator_with_a_list_of_arrays_points_to_fit():
    x, y = make_data(16)
    message = _refused(lambda: nbtrain.fit_generator(make_model(), [x, y]), TypeError,
                       "`generator` must be", "nbtrain.fit(model, x, y, batch_size=...)")
    assert "steps_per_epoch" not in message


def test_fit_with_a_list_of_batches_names_fit_and_x():
    x, y = make_data(16)
    batches = [(x[:8], y[:8]), (x[8:], y[8:])]
    message = _refused(lambda: nbtrain.fit(make_model(), batches, display=False), TypeError,
                       "`x` must be", "iter(batches)", "steps_per_epoch=2")
    assert "fit_generator" not in message


@pytest.mark.parametrize("initial_epoch, epochs", [(3, 3), (5, 2)])
def test_initial_epoch_not_before_epochs(initial_epoch, epochs):
    x, y = make_data(16)
    hooks = Hooks()
    _refused(lambda: nbtrain.fit_generator(make_model(), RecordingSequence(x, y), epochs=epochs,
                                           initial_epoch=initial_epoch, callbacks=[hooks]),
             ValueError, f"`initial_epoch={initial_epoch}`", f"`epochs={epochs}`",
             "index of the final epoch")
    assert hooks.calls == []


@pytest.mark.parametrize("kwargs, fragments", [
    ({"callbacks": keras.callbacks.History()}, ["`callbacks` must be a list", "callbacks=[...]"]),
    ({"callbacks": [keras.callbacks.History]}, ["class History, not an instance"]),
    ({"validation_data": (np.zeros((4, FEATURES)), "labels")}, ["`val_y` must be an array",
                                                                 "str 'labels'"]),
    ({"shuffle": "batch"}, ["`shuffle` must be True or False", "'batch'"]),
    ({"verbose": 3}, ["`verbose` must be 0, 1, 2 or 'auto', got 3"]),
    ({"validation_freq": [1, "2"]}, ["`validation_freq`", "[1, '2']"]),
])
def test_other_bad_arguments_name_themselves(kwargs, fragments):
    x, y = make_data(16)
    error = TypeError if "callbacks" in kwargs or "shuffle" in kwargs or (
        "validation_data" in kwargs) else ValueError
    _refused(lambda: nbtrain.fit_generator(make_model(), RecordingSequence(x, y), **kwargs),
             error, *fragments)


def test_generator_function_instead_of_a_generator():
    _refused(lambda: nbtrain.fit_generator(make_model(), batch_generator, steps_per_epoch=2),
             TypeError, "generator function batch_generator", "call it")


def test_warnings_point_at_the_users_line():
    x, y = make_data(16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nbtrain.fit_generator(make_model(), batch_generator(x, y, limit=3), steps_per_epoch=5,
                              verbose=0)  # the generator ends early
    [warning] = [w for w in caught if "ended after 3 of 5" in str(w.message)]
    assert warning.filename == __file__


def test_the_config_is_frozen_and_documents_every_argument():
    import inspect

    x, y = make_data(16)
    config = fit_config(make_model(), x, y, batch_size=8, validation_split=0.25)
    assert isinstance(config, FitConfig)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 3  # type: ignore[misc]
    # the display's own arguments are documented in nbtrain.fit alone
    display_params = {"display", "compare_with"}
    fit_params = set(inspect.signature(nbtrain.fit).parameters) - display_params
    assert fit_params <= set(ARGUMENTS)
    for name in display_params:
        assert f"        {name}:" in nbtrain.fit.__doc__, name
    for name in fit_params:
        assert f"        {name}:" in nbtrain.fit.__doc__, name
