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

import inspect
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


# The methods' bodies; `_methods` gives them Keras 2.3's signatures (self first).


def fit_generator(self: Any, generator: Any, **arguments: Any) -> Any:
    return _target("fit_generator")(self, generator, **arguments)


def evaluate_generator(self: Any, generator: Any, **arguments: Any) -> Any:
    return _target("evaluate_generator")(self, generator, **arguments)


def predict_generator(self: Any, generator: Any, **arguments: Any) -> Any:
    return _target("predict_generator")(self, generator, **arguments)


def _method_doc(name: str, method: Any) -> str:
    """The docstring of `nbtrain.<name>`, told as `method` (no `model` argument)."""
    from nbtrain.engine.arguments import document

    doc = document(_target(name).__doc__ or "", inspect.signature(method), others=True)
    text = doc.replace(f"nbtrain.{name}(model, ", f"model.{name}(")
    return (f"Keras 2's `Model.{name}`, provided by nbtrain (`nbtrain.legacy.enable()`): "
            f"`model.{name}(...)` is `nbtrain.{name}(model, ...)`.\n\n" + text)


def _methods() -> dict[str, Any]:
    from nbtrain.engine.arguments import FIT_GENERATOR, INFERENCE

    functions = {"fit_generator": FIT_GENERATOR.takes(fit_generator),
                 "evaluate_generator": INFERENCE.takes(evaluate_generator),
                 "predict_generator": INFERENCE.takes(predict_generator)}
    for name, function in functions.items():
        function.__doc__ = _method_doc(name, function)
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
