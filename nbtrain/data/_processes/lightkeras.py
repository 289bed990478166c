"""`keras.utils.Sequence` and `PyDataset` in worker processes, without TensorFlow.

The data generator most Keras users write is a `keras.utils.Sequence` subclass
in a module (or notebook) that does `import keras` or `import tensorflow as
tf`.  For a worker to load such a dataset it must import that module, and the
module's `import keras` loads TensorFlow: seconds of CPU and hundreds of MB per
worker, for a base class whose methods the worker never calls (the parent calls
`on_epoch_end`; the worker only calls `__getitem__`).

`install()` (called in a worker before it loads a dataset) puts a finder first
on `sys.meta_path` that serves `keras`, `tensorflow` and the few submodules the
data base classes live in as *light modules*.  A light module holds:

- `PyDataset` / `Sequence`: the same API as Keras 3's class (constructor
  arguments, `workers` / `use_multiprocessing` / `max_queue_size`,
  `num_batches`, `__iter__`, `on_epoch_begin` / `on_epoch_end`), with Keras's
  module and name;
- `to_categorical`: Keras's own NumPy code path (the function the tutorial
  generators call in `__getitem__`).

Anything else (`keras.layers`, `tf.image`, `import keras.src.backend`, ...)
*realizes* Keras: the light modules leave `sys.modules`, the finder leaves
`sys.meta_path`, and the real module is imported and used from then on, so a
dataset that really uses TensorFlow gets the real thing, only later.  A class
already defined on the light base keeps it.

The switch is the parent's: `light_keras_enabled()` (`NBTRAIN_LIGHT_KERAS=0`
turns it off) is read when a pool spawns its workers, and passed to them.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import itertools
import os
import sys
import threading
import types
import warnings
from typing import Any

_ROOTS = ("keras", "tensorflow")
_PYDATASET_MODULE = "keras.src.trainers.data_adapters.py_dataset_adapter"
_LOCK = threading.RLock()


class PyDataset:
    """Keras 3's `keras.utils.PyDataset` (alias `Sequence`), for worker processes.

    Args:
        workers: number of workers (a setting for `fit()`, unused here).
        use_multiprocessing: a setting for `fit()`, unused here.
        max_queue_size: a setting for `fit()`, unused here.
    """

    def __init__(self, workers: int = 1, use_multiprocessing: bool = False,
                 max_queue_size: int = 10):
        self._workers = workers
        self._use_multiprocessing = use_multiprocessing
        self._max_queue_size = max_queue_size

    def _warn_if_super_not_called(self) -> None:
        warn = False
        for name, default in (("_workers", 1), ("_use_multiprocessing", False),
                              ("_max_queue_size", 10)):
            if not hasattr(self, name):
                setattr(self, name, default)
                warn = True
        if warn:
            warnings.warn(
                "Your `PyDataset` class should call `super().__init__(**kwargs)` in its "
                "constructor. `**kwargs` can include `workers`, `use_multiprocessing`, "
                "`max_queue_size`. Do not pass these arguments to `fit()`, as they will "
                "be ignored.",
                stacklevel=2,
            )

    @property
    def workers(self) -> int:
        """Number of workers `fit()` uses."""
        self._warn_if_super_not_called()
        return self._workers

    @workers.setter
    def workers(self, value: int) -> None:
        self._workers = value

    @property
    def use_multiprocessing(self) -> bool:
        """Whether `fit()` reads it in processes."""
        self._warn_if_super_not_called()
        return self._use_multiprocessing

    @use_multiprocessing.setter
    def use_multiprocessing(self, value: bool) -> None:
        self._use_multiprocessing = value

    @property
    def max_queue_size(self) -> int:
        """Batches `fit()` keeps queued."""
        self._warn_if_super_not_called()
        return self._max_queue_size

    @max_queue_size.setter
    def max_queue_size(self, value: int) -> None:
        self._max_queue_size = value

    def __getitem__(self, index: int) -> Any:
        del index
        raise NotImplementedError

    def __iter__(self):
        index_range = None
        try:
            num_batches = self.num_batches
            if num_batches is not None:
                index_range = range(num_batches)
        except NotImplementedError:
            pass
        for index in index_range if index_range is not None else itertools.count():
            yield self[index]

    @property
    def num_batches(self) -> int | None:
        """Number of batches (`len(self)`)."""
        if hasattr(self, "__len__"):
            return len(self)
        raise NotImplementedError(
            "You need to implement the `num_batches` property:\n\n"
            "@property\ndef num_batches(self):\n  return ..."
        )

    def on_epoch_begin(self) -> None:
        """Called at the beginning of every epoch."""

    def on_epoch_end(self) -> None:
        """Called at the end of every epoch."""


PyDataset.__module__ = _PYDATASET_MODULE


def to_categorical(x: Any, num_classes: int | None = None) -> Any:
    """`keras.utils.to_categorical` for NumPy input (Keras's own code path);
    a tensor goes to the real Keras."""
    import numpy as np

    if type(x).__module__.startswith(("tensorflow", "keras")):
        _realize()
        return importlib.import_module("keras").utils.to_categorical(x, num_classes)
    x = np.array(x, dtype="int64")
    input_shape = x.shape
    if input_shape and input_shape[-1] == 1 and len(input_shape) > 1:
        input_shape = tuple(input_shape[:-1])
    x = x.reshape(-1)
    if not num_classes:
        num_classes = np.max(x) + 1
    batch_size = x.shape[0]
    categorical = np.zeros((batch_size, num_classes))
    categorical[np.arange(batch_size), x] = 1
    return np.reshape(categorical, input_shape + (num_classes,))


_UTILS = {"PyDataset": PyDataset, "Sequence": PyDataset, "to_categorical": to_categorical}

# name -> light attributes (besides the light submodules, which are added as imported)
_LIGHT: dict[str, dict[str, Any]] = {
    "keras": {},
    "keras.utils": _UTILS,
    "keras.src": {},
    "keras.src.trainers": {},
    "keras.src.trainers.data_adapters": {},
    _PYDATASET_MODULE: {"PyDataset": PyDataset},
    "keras._tf_keras": {},
    "keras._tf_keras.keras": {},
    "keras._tf_keras.keras.utils": _UTILS,
    "tensorflow": {},
    "tensorflow.keras": {},
    "tensorflow.keras.utils": _UTILS,
}
_SUBMODULES = {"keras": ("utils", "src"), "keras.src": ("trainers",),
               "keras.src.trainers": ("data_adapters",),
               "keras.src.trainers.data_adapters": ("py_dataset_adapter",),
               "tensorflow": ("keras",), "tensorflow.keras": ("utils",),
               "keras._tf_keras": ("keras",), "keras._tf_keras.keras": ("utils",)}


class LightModule(types.ModuleType):
    """A stand-in for a Keras or TensorFlow module; other names realize the real one."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name != "__version__":  # import-system probes
            raise AttributeError(name)
        real = _real_module(self.__name__)
        return getattr(real, name)


def _real_module(name: str) -> types.ModuleType:
    _realize()
    try:
        return importlib.import_module(name)
    except ImportError:  # e.g. tensorflow.keras, an attribute of tensorflow
        root, *parts = name.split(".")
        obj: Any = importlib.import_module(root)
        for part in parts:
            obj = getattr(obj, part)
        return obj


_MISSING = object()


class _Loader(importlib.abc.Loader):
    def __init__(self):
        self._real: dict[int, tuple[Any, Any]] = {}

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        if spec.name not in _LIGHT or _STATE["real"]:
            # Realize, and hand the import system the real module; exec_module
            # undoes what the import system sets on it from this spec.
            real = _real_module(spec.name)
            self._real[id(real)] = (getattr(real, "__spec__", None),
                                    getattr(real, "__path__", _MISSING))
            return real
        module = LightModule(spec.name)
        module.__path__ = []  # a package: its submodules come through the finder
        module.__dict__.update(_LIGHT[spec.name])
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        if not isinstance(module, LightModule):
            real_spec, path = self._real.pop(id(module), (None, _MISSING))
            module.__spec__ = real_spec
            if path is _MISSING:
                vars(module).pop("__path__", None)
            return
        for child in _SUBMODULES.get(module.__name__, ()):  # `keras.utils` without an import
            setattr(module, child, importlib.import_module(f"{module.__name__}.{child}"))


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any, target: Any = None):
        if fullname.split(".", 1)[0] not in _ROOTS:
            return None
        return importlib.machinery.ModuleSpec(fullname, _LOADER, is_package=True)


_LOADER = _Loader()
_FINDER = _Finder()
_STATE = {"real": False, "installed": False}


def light_keras_enabled() -> bool:
    """Whether workers serve `keras.utils.Sequence` without TensorFlow
    (`NBTRAIN_LIGHT_KERAS=0` turns it off)."""
    return os.environ.get("NBTRAIN_LIGHT_KERAS", "1").strip().lower() not in ("0", "false", "no")


def install() -> bool:
    """Serve light Keras modules from now on (False if Keras or TensorFlow is
    loaded already, then nothing changes)."""
    with _LOCK:
        if _STATE["installed"] or any(root in sys.modules for root in _ROOTS):
            return False
        _STATE["installed"] = True
        sys.meta_path.insert(0, _FINDER)
        return True


def is_light() -> bool:
    """True while Keras has not been realized in this process."""
    return _STATE["installed"] and not _STATE["real"]


def _realize() -> None:
    """Replace the light modules by the real ones (imported on demand)."""
    with _LOCK:
        if _STATE["real"]:
            return
        _STATE["real"] = True
        if _FINDER in sys.meta_path:
            sys.meta_path.remove(_FINDER)
        for name in [n for n, m in sys.modules.items() if isinstance(m, LightModule)]:
            del sys.modules[name]
