"""Keras 2's generator methods back on `keras.Model`, for code written for Keras 2.

`nbtrain.legacy.enable()` gives every `keras.Model` the methods
`fit_generator`, `evaluate_generator` and `predict_generator`, with Keras 2.3's
signatures, delegating to `nbtrain.fit_generator`, `nbtrain.evaluate_generator`
and `nbtrain.predict_generator`; `nbtrain.legacy.disable()` takes them away
again.  `%nbtrain legacy on|off` in a notebook calls these two functions.

Example:

```python
import nbtrain
nbtrain.legacy.enable()
model.fit_generator(train_gen, steps_per_epoch=100, epochs=5,
                    validation_data=val_gen, validation_steps=10)
nbtrain.legacy.disable()
```
"""

from __future__ import annotations

import sys
from typing import Any

METHODS = ("fit_generator", "evaluate_generator", "predict_generator")


def _target(name: str) -> Any:
    """`nbtrain.<name>`, from the module that defines it."""
    if name == "fit_generator":
        from nbtrain.interactive import fit_generator as function
    elif name == "evaluate_generator":
        from nbtrain.engine.evaluation import evaluate_generator as function
    else:
        from nbtrain.engine.evaluation import predict_generator as function
    return function


def fit_generator(self: Any, generator: Any, steps_per_epoch: int | None = None,
                  epochs: int = 1, verbose: Any = 1, callbacks: Any = None,
                  validation_data: Any = None, validation_steps: int | None = None,
                  validation_freq: Any = 1, class_weight: dict | None = None,
                  max_queue_size: int = 10, workers: int = 1, use_multiprocessing: bool = False,
                  shuffle: bool = True, initial_epoch: int = 0) -> Any:
    return _target("fit_generator")(
        self, generator, steps_per_epoch=steps_per_epoch, epochs=epochs, verbose=verbose,
        callbacks=callbacks, validation_data=validation_data, validation_steps=validation_steps,
        validation_freq=validation_freq, class_weight=class_weight,
        max_queue_size=max_queue_size, workers=workers, use_multiprocessing=use_multiprocessing,
        shuffle=shuffle, initial_epoch=initial_epoch)


def evaluate_generator(self: Any, generator: Any, steps: int | None = None,
                       callbacks: Any = None, max_queue_size: int = 10, workers: int = 1,
                       use_multiprocessing: bool = False, verbose: Any = 0) -> Any:
    return _target("evaluate_generator")(
        self, generator, steps=steps, callbacks=callbacks, max_queue_size=max_queue_size,
        workers=workers, use_multiprocessing=use_multiprocessing, verbose=verbose)


def predict_generator(self: Any, generator: Any, steps: int | None = None,
                      callbacks: Any = None, max_queue_size: int = 10, workers: int = 1,
                      use_multiprocessing: bool = False, verbose: Any = 0) -> Any:
    return _target("predict_generator")(
        self, generator, steps=steps, callbacks=callbacks, max_queue_size=max_queue_size,
        workers=workers, use_multiprocessing=use_multiprocessing, verbose=verbose)


def _method_doc(name: str) -> str:
    """The docstring of `nbtrain.<name>`, told as a method (no `model` argument)."""
    doc = _target(name).__doc__ or ""
    out = [line for line in doc.splitlines() if not line.strip().startswith("model:")]
    text = "\n".join(out).replace(f"nbtrain.{name}(model, ", f"model.{name}(")
    return (f"Keras 2's `Model.{name}`, provided by nbtrain (`nbtrain.legacy.enable()`): "
            f"`model.{name}(...)` is `nbtrain.{name}(model, ...)`.\n\n" + text)


def _methods() -> dict[str, Any]:
    functions = {"fit_generator": fit_generator, "evaluate_generator": evaluate_generator,
                 "predict_generator": predict_generator}
    for name, function in functions.items():
        function.__doc__ = _method_doc(name)
        function.__qualname__ = f"Model.{name}"
        function._nbtrain_legacy = True  # type: ignore[attr-defined]
    return functions


def enable() -> None:
    """Add `fit_generator`, `evaluate_generator` and `predict_generator` to `keras.Model`.

    Idempotent; the methods have Keras 2.3's signatures and nbtrain's
    docstrings, so `help(model.fit_generator)` and Shift-Tab show them.

    Example:

    ```python
    nbtrain.legacy.enable()
    model.fit_generator(generator, steps_per_epoch=10, epochs=2)
    ```
    """
    import keras

    for name, function in _methods().items():
        setattr(keras.Model, name, function)


def disable() -> None:
    """Remove the methods `enable` added (and nothing else).

    Example:

    ```python
    nbtrain.legacy.disable()
    hasattr(model, "fit_generator")   # False
    ```
    """
    keras = sys.modules.get("keras")
    if keras is None:
        return
    for name in METHODS:
        if getattr(keras.Model.__dict__.get(name), "_nbtrain_legacy", False):
            delattr(keras.Model, name)


def is_enabled() -> bool:
    """True while `keras.Model` has the methods `enable` added.

    Example:

    ```python
    nbtrain.legacy.enable(); nbtrain.legacy.is_enabled()   # True
    ```
    """
    keras = sys.modules.get("keras")
    return keras is not None and all(
        getattr(keras.Model.__dict__.get(name), "_nbtrain_legacy", False) for name in METHODS)


__all__ = ["METHODS", "disable", "enable", "is_enabled"]
