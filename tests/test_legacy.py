"""`nbtrain.legacy` for scripts, real signatures, `dir(nbtrain)`, a script ending
while a Run trains (issue 13, point 5)."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys

import keras
from helpers import batch_generator, make_data, make_model

import nbtrain

KERAS_2_3 = {
    "fit_generator": ["self", "generator", "steps_per_epoch", "epochs", "verbose", "callbacks",
                      "validation_data", "validation_steps", "validation_freq", "class_weight",
                      "max_queue_size", "workers", "use_multiprocessing", "shuffle",
                      "initial_epoch"],
    "evaluate_generator": ["self", "generator", "steps", "callbacks", "max_queue_size",
                           "workers", "use_multiprocessing", "verbose"],
    "predict_generator": ["self", "generator", "steps", "callbacks", "max_queue_size",
                          "workers", "use_multiprocessing", "verbose"],
}


def test_enable_and_disable_with_real_signatures_and_docstrings():
    assert "nbtrain.legacy.enable()" in nbtrain.legacy.__doc__
    nbtrain.legacy.enable()
    try:
        assert nbtrain.legacy.is_enabled()
        for name, params in KERAS_2_3.items():
            method = getattr(keras.Model, name)
            assert list(inspect.signature(method).parameters) == params
            assert "nbtrain.legacy.enable()" in method.__doc__ and "Args:" in method.__doc__
            assert "    model:" not in method.__doc__
        x, y = make_data(16)
        model = make_model()
        history = model.fit_generator(batch_generator(x, y), steps_per_epoch=2, verbose=0)
        assert history.epoch == [0]
    finally:
        nbtrain.legacy.disable()
    assert not nbtrain.legacy.is_enabled() and not hasattr(keras.Model, "fit_generator")


def test_dir_lists_public_names_only():
    names = dir(nbtrain)
    assert {"fit", "fit_generator", "Run", "legacy", "Sequence"} <= set(names)
    assert not {"Any", "annotations", "importlib"} & set(names)
    assert all(not n.startswith("_") or n == "__version__" for n in names)


SCRIPT = """
import keras, numpy as np, nbtrain
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
model.compile("sgd", "mse")
x, y = np.zeros((50000, 4), "float32"), np.zeros((50000, 1), "float32")
run = nbtrain.fit(model, x, y, epochs=20, display=False)
"""


def test_a_script_ending_while_a_run_trains_says_so():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            timeout=240, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "exiting while a Run is still training" in result.stderr
    assert "run.wait()" in result.stderr
