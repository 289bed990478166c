"""nbtrain: the Keras 2 `fit_generator` loop rebuilt for Keras 3, run in the
background with a live dashboard in Jupyter.

`import nbtrain` is light: TensorFlow and Keras are imported on first use of a
name that needs them, so `%load_ext nbtrain` is quick.
"""

import sys as _sys

from nbtrain import tf_startup as _tf_startup

_tf_startup.install()  # TensorFlow's native start-up lines held to TF_CPP_MIN_LOG_LEVEL
if "ipykernel" in _sys.modules:  # in a kernel: clicks reach busy cells (not in data workers)
    from nbtrain import kernel_events  # noqa: F401
from nbtrain.data import (  # noqa: E402 (after the start-up hook above)
    GeneratorEnqueuer,
    OrderedEnqueuer,
    Sequence,
    ShardedSequence,
    iter_sequence_infinite,
)

__version__ = "0.1.0"

_LAZY = {
    "fit_generator": "nbtrain.interactive",
    "evaluate_generator": "nbtrain.engine",
    "predict_generator": "nbtrain.engine",
    "fit": "nbtrain.interactive",
    "Run": "nbtrain.run",
    "multi_worker_strategy": "nbtrain.engine.distributed",
    "WorkerLostError": "nbtrain.engine.distributed",
    "Dashboard": "nbtrain.dashboard",
    "compare": "nbtrain.dashboard.compare",
    "search": "nbtrain.tuning",
}
_MODULES = {"legacy": "nbtrain.legacy"}

__all__ = [
    "Dashboard",
    "GeneratorEnqueuer",
    "OrderedEnqueuer",
    "Run",
    "Sequence",
    "ShardedSequence",
    "WorkerLostError",
    "compare",
    "evaluate_generator",
    "fit",
    "fit_generator",
    "iter_sequence_infinite",
    "legacy",
    "multi_worker_strategy",
    "predict_generator",
    "search",
]


def __getattr__(name: str) -> "object":
    import importlib

    if name in _MODULES:
        value = importlib.import_module(_MODULES[name])
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'nbtrain' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names only (what `nbtrain.<Tab>` should offer)."""
    return sorted([*__all__, "__version__", "load_ipython_extension",
                   "unload_ipython_extension"])


def load_ipython_extension(ipython: "object") -> None:
    """`%load_ext nbtrain`: register the `%nbtrain` magic (quick: no TensorFlow import)."""
    from nbtrain.magics import load

    load(ipython)
    from nbtrain.dashboard.display import register_run_display

    register_run_display(ipython)


def unload_ipython_extension(ipython: "object") -> None:
    """`%unload_ext nbtrain`: remove the magic and anything it added to Keras."""
    from nbtrain.magics import unload

    unload(ipython)
