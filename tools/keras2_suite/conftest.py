"""Adapter: run Keras 2.3.1's generator tests against nbtrain's legacy methods on Keras 3.

Only import paths and Keras-2 compile arguments are mapped; the generator
methods are nbtrain's (nbtrain.legacy.enable())."""
import os
import sys
import types

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

import nbtrain  # noqa: E402


def _module(name, **attrs):
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    sys.modules[name] = mod
    return mod


# keras 2 import paths
core = _module("keras.layers.core",
               **{k: getattr(keras.layers, k) for k in dir(keras.layers) if not k.startswith("_")})
keras.layers.core = core
training_utils = _module("keras.engine.training_utils")
training = _module("keras.engine.training", Model=keras.Model)
engine = _module("keras.engine", Input=keras.Input, training=training, training_utils=training_utils)
keras.engine = engine
generic_utils = _module("keras.utils.generic_utils", slice_arrays=None)
keras.utils.generic_utils = generic_utils
for name in ("mean", "pow", "sum", "square", "abs", "cast", "equal", "argmax", "sqrt"):
    if not hasattr(keras.backend, name):
        setattr(keras.backend, name, getattr(keras.ops, name if name != "pow" else "power"))

# third-party modules the test files import at the top (unused by the tests run here)
def flaky(*args, **kwargs):
    return (lambda f: f) if not args or not callable(args[0]) else args[0]


_module("flaky", flaky=flaky)
if "pandas" not in sys.modules:
    try:
        import pandas  # noqa: F401
    except ImportError:
        _module("pandas")
try:
    import scipy.sparse  # noqa: F401
except ImportError:
    scipy = _module("scipy")
    scipy.sparse = _module("scipy.sparse")

# Keras 2 compile arguments that Keras 3 dropped
_compile = keras.Model.compile


def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None,
            sample_weight_mode=None, **kwargs):  # noqa: A001
    # Keras 2: one loss given for a model with several outputs applies to each output
    if isinstance(loss_weights, (list, tuple)) and isinstance(loss, str):
        loss = [loss] * len(loss_weights)
    return _compile(self, optimizer, loss, metrics=metrics, loss_weights=loss_weights, **kwargs)


keras.Model.compile = compile

nbtrain.legacy.enable()

# test_multiprocessing.py disables itself (a Keras 2 problem): run.sh passes -p no:skipping.


def pytest_collection_modifyitems(config, items):
    # Keras 2 forked its workers, which inherited the test module; nbtrain spawns
    # them, so the test modules' classes and functions travel by value.
    import cloudpickle

    for module in {item.module for item in items}:
        cloudpickle.register_pickle_by_value(module)
