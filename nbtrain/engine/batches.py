"""Checking and unpacking what a generator yields, and class weights."""

from __future__ import annotations

import threading
import warnings
from typing import Any

import numpy as np

from nbtrain.data.userwarning import user_stacklevel


def describe(value: Any, depth: int = 0) -> str:
    """A short description of a batch for error messages (types and shapes, not data)."""
    if isinstance(value, np.ndarray) or hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"{type(value).__name__}(shape={tuple(value.shape)}, dtype={value.dtype})"
    if depth < 2 and isinstance(value, (list, tuple)):
        inner = ", ".join(describe(v, depth + 1) for v in value[:4])
        more = ", ..." if len(value) > 4 else ""
        return f"{type(value).__name__} of {len(value)} [{inner}{more}]"
    if depth < 2 and isinstance(value, dict):
        inner = ", ".join(f"{k!r}: {describe(v, depth + 1)}" for k, v in list(value.items())[:4])
        return f"dict {{{inner}}}"
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def unpack_batch(batch: Any, source: str = "generator") -> tuple[Any, Any, Any]:
    """Split a training batch into `(x, y, sample_weight)`.

    Args:
        batch: `(x, y)` or `(x, y, sample_weight)`.
        source: what produced it, for the error message.

    Raises:
        ValueError: for anything else, showing what was received.
    """
    if isinstance(batch, (tuple, list)) and len(batch) in (2, 3):  # Keras 2 took lists too
        x, y = batch[0], batch[1]
        sample_weight = batch[2] if len(batch) == 3 else None
        if x is None:
            raise ValueError(f"Output of {source} has x = None: {describe(batch)}")
        return x, y, sample_weight
    raise ValueError(
        f"Output of {source} should be a tuple `(x, y)` or `(x, y, sample_weight)` "
        "(or a list of 2 or 3 items). "
        f"Found: {describe(batch)}"
    )


def cast_float64(structure: Any, floatx: str) -> Any:
    """NumPy float64 arrays in `structure` cast to `floatx`, as Keras 2 fed them
    (its placeholders were floatx); everything else is left as it is.

    Example:

    ```python
    x, y, w = cast_float64((np.random.random((4, 2)), y, None), "float32")
    ```
    """
    if isinstance(structure, np.ndarray):
        return structure.astype(floatx) if structure.dtype == np.float64 else structure
    if isinstance(structure, dict):
        return {k: cast_float64(v, floatx) for k, v in structure.items()}
    if isinstance(structure, (list, tuple)):
        items = [cast_float64(v, floatx) for v in structure]
        return type(structure)(*items) if hasattr(structure, "_fields") else type(structure)(items)
    return structure


def unpack_inputs(batch: Any) -> Any:
    """The `x` of a prediction batch: `(x,)`, `(x, y)`, `(x, y, w)` or a bare `x`."""
    if isinstance(batch, tuple):
        if len(batch) in (1, 2, 3):
            return batch[0]
        raise ValueError(
            "Output of generator should be `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)`. "
            f"Found: {describe(batch)}"
        )
    return batch


def _names(structure: Any) -> frozenset | None:
    if isinstance(structure, dict):
        return frozenset(structure)
    tensors = structure if isinstance(structure, (list, tuple)) else [structure]
    names = [getattr(tensor, "name", None) for tensor in tensors]
    return frozenset(names) if names and all(isinstance(n, str) for n in names) else None


def input_names(model: Any) -> frozenset | None:
    """The names that feed `model`'s inputs from a dict: the keys of a functional
    model built on a dict of inputs, else its input tensors' names; None for a
    model whose inputs have no names (subclassed, not built)."""
    try:
        return _names(model.input)
    except Exception:  # noqa: BLE001 - no symbolic inputs: a subclassed model
        return None


class NamedFeed:
    """Keras 2 fed a model from dicts by name: the entries of a dict `x` that
    its inputs name, the entries of a dict `y` that its outputs name, ignoring
    the others.  Keras 3 passes a dict `x` whole to the model (Keras 2.3.1's
    image_ocr.py adds `'source_str'`, a list of strings "used for visualization
    only": the step fails) and takes a dict `y` only for a model whose outputs
    are a dict.  This does what Keras 2 did, before the step.

    The first batch with keys that name nothing warns, once, naming them (so a
    typo in a key is not silent).  A dict none of whose keys names an input
    (or, for `y`, that lacks an output's name) is left as it is: the model says
    what it expected.  Safe to call from several threads.

    Args:
        model: the model the batches feed.
        source: what yields the batches, for the warning.

    Example:

    ```python
    feed = NamedFeed(model)
    x = feed.inputs({"the_input": images, "source_str": ["a", "b"]})   # {"the_input": images}
    y = feed.targets({"ctc": zeros})   # zeros, for a model with the one output 'ctc'
    ```
    """

    def __init__(self, model: Any, source: str = "generator"):
        self.source = source
        self.input_names = input_names(model)
        try:
            outputs = model.output
        except Exception:  # noqa: BLE001 - no symbolic outputs: a subclassed model
            outputs = None
        self._outputs = outputs
        names = [getattr(t, "name", None) for t in (
            outputs if isinstance(outputs, (list, tuple)) else [outputs])]
        ordered = list(getattr(model, "output_names", None) or names)
        self.output_names = (list(outputs) if isinstance(outputs, dict) else ordered
                             if outputs is not None and all(isinstance(n, str) for n in ordered)
                             else None)
        self._warned: set = set()
        self._lock = threading.Lock()

    def inputs(self, x: Any) -> Any:
        """`x` with the dict entries that name no input dropped."""
        names = self.input_names
        if names is None or not isinstance(x, dict):
            return x
        unused = [key for key in x if key not in names]
        if not unused or len(unused) == len(x):
            return x
        self._warn("input", unused, names)
        return {key: value for key, value in x.items() if key in names}

    def targets(self, y: Any) -> Any:
        """A dict `y` as the model's outputs take it: by output name."""
        names = self.output_names
        if names is None or not isinstance(y, dict) or not all(n in y for n in names):
            return y
        unused = [key for key in y if key not in names]
        if unused:
            self._warn("output", unused, names)
        if isinstance(self._outputs, dict):
            return {name: y[name] for name in names} if unused else y
        if isinstance(self._outputs, (list, tuple)):
            return [y[name] for name in names]
        return y[names[0]]

    def _warn(self, what: str, unused: list, names: Any) -> None:
        key = (what, tuple(unused))
        with self._lock:
            if key in self._warned:
                return
            self._warned.add(key)
        plural = len(unused) > 1
        warnings.warn(
            f"The {self.source}'s {'input' if what == 'input' else 'target'} dict has the "
            f"key{'s' if plural else ''} {', '.join(map(repr, unused))}, which "
            f"name{'' if plural else 's'} no {what} of the model (its {what}s: "
            f"{', '.join(map(repr, sorted(names)))}): dropped before each step, as Keras 2 did.",
            UserWarning, stacklevel=user_stacklevel(),
        )


def batch_size_of(x: Any) -> int:
    """Number of samples in `x` (array, list/tuple or dict of arrays)."""
    while isinstance(x, (list, tuple, dict)):
        x = next(iter(x.values())) if isinstance(x, dict) else x[0]
    return int(x.shape[0]) if hasattr(x, "shape") else len(x)


def check_class_weight(class_weight: Any) -> dict | None:
    """Validate `class_weight`: None or a dict mapping class index to weight."""
    if class_weight is None:
        return None
    if not isinstance(class_weight, dict):
        raise TypeError(
            f"class_weight must be a dict mapping class index to weight, got "
            f"{type(class_weight).__name__}."
        )
    for key in class_weight:
        if not isinstance(key, (int, np.integer)):
            raise ValueError(f"class_weight keys must be integer class indices, got {key!r}.")
    return class_weight


def apply_class_weight(y: Any, sample_weight: Any, class_weight: dict | None) -> Any:
    """Per-sample weights from `class_weight` (multiplied into `sample_weight`).

    `y` holds class indices (shape `(n,)` or `(n, 1)`) or one-hot rows
    (shape `(n, k)`, the class being the argmax), as in Keras.
    """
    if not class_weight:
        return sample_weight
    if isinstance(y, (list, tuple, dict)):
        raise ValueError("class_weight is only supported for models with a single output.")
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        classes = np.argmax(y, axis=1)
    elif y.ndim <= 2:
        classes = np.round(y.reshape(len(y))).astype(np.int64)
    else:
        raise ValueError(f"class_weight needs targets of rank 1 or 2, got shape {y.shape}.")
    lookup = np.ones(max(int(classes.max(initial=0)), max(class_weight)) + 1, dtype=np.float32)
    for cls, weight in class_weight.items():
        lookup[int(cls)] = weight
    weights = lookup[classes]
    if sample_weight is not None:
        weights = weights * np.asarray(sample_weight, dtype=np.float32).reshape(len(weights))
    return weights
