"""Arrays in memory (NumPy arrays, tensors, or lists or dicts of them), only for
`nbtrain.fit`: served as an `ArraySequence` of `batch_size` samples, whose
samples are reshuffled at every epoch; `validation_split` holds out the last
samples; `(x, y)` / `(x, y, sample_weight)` validation data too."""

from __future__ import annotations

from typing import Any

import numpy as np

from nbtrain.data.arrays import ArraySequence, is_array_data, leaves, n_samples, take, to_numpy
from nbtrain.engine.adapters.sequence_adapter import SequenceAdapter
from nbtrain.engine.batches import describe


def keras2_validation_data(x: Any, y: Any, sample_weight: Any) -> list:
    """What Keras 2 set as `callback.validation_data`: inputs, targets, sample weights."""
    n = n_samples(x)
    weights = leaves(sample_weight) or [np.ones((n,), dtype="float32") for _ in leaves(y)]
    return [*leaves(x), *leaves(y), *weights]


def _check_samples(x: Any, y: Any, sample_weight: Any, what: str) -> int:
    n = n_samples(x)
    for name, value in (("y", y), ("sample_weight", sample_weight)):
        if value is not None and n_samples(value) != n:
            raise ValueError(f"{what}: `x` has {n} samples but `{name}` has "
                             f"{n_samples(value)}; they must have the same first dimension.")
    if n == 0:
        raise ValueError(f"{what}: `x` has no samples (first dimension 0).")
    return n


class ArrayAdapter(SequenceAdapter):
    """Training arrays as an `ArraySequence` (its samples shuffled, not its batches).

    Build it with `ArrayAdapter.training`.

    Attributes:
        validation_data: the held-out `(x, y[, sample_weight])` of `validation_split`,
            else the `validation_data` given.
    """

    shuffles_batches = False

    def __init__(self, sequence: ArraySequence, validation_data: Any):
        super().__init__(sequence)
        self.kind = "arrays"
        self.validation_data = validation_data

    @staticmethod
    def accepts(data: Any, api: str = "fit") -> bool:
        return api == "fit" and is_array_data(data)

    def check(self, name: str) -> None:
        """Its samples were counted when it was made."""

    @classmethod
    def training(cls, model: Any, x: Any, y: Any, sample_weight: Any, *, batch_size: int,
                 validation_split: float, validation_data: Any, shuffle: bool,
                 seed: int | None) -> ArrayAdapter:
        """Check the arrays against each other and the model, hold out
        `validation_split`, and serve the rest; `batch_size` is checked already."""
        if y is None and getattr(model, "loss", None) is not None:
            raise ValueError(
                "`y` is None but `x` is arrays and the model has a loss: pass the targets, "
                "`nbtrain.fit(model, x, y, ...)` (or yield `(x, y)` batches from a "
                "Sequence).")
        if y is not None and not is_array_data(y):
            raise TypeError(f"`y` must be an array (or a list or dict of arrays) like `x`; "
                            f"got {describe(y)}.")
        if sample_weight is not None and not is_array_data(sample_weight):
            raise TypeError(f"`sample_weight` must be an array of per-sample weights; got "
                            f"{describe(sample_weight)}.")
        x, y, sample_weight = to_numpy(x), to_numpy(y), to_numpy(sample_weight)
        n = _check_samples(x, y, sample_weight, "nbtrain.fit")
        if validation_split and validation_data is None:
            cut = int(n * (1.0 - validation_split))
            if cut == 0 or cut == n:
                raise ValueError(
                    f"`validation_split={validation_split}` of {n} samples leaves "
                    f"{cut} for training and {n - cut} for validation: both need at least "
                    "one; change the fraction.")
            head, tail = slice(0, cut), slice(cut, None)
            validation_data = (take(x, tail), take(y, tail),
                               *(() if sample_weight is None else (take(sample_weight, tail),)))
            x, y, sample_weight = take(x, head), take(y, head), take(sample_weight, head)
        if seed is None and shuffle:
            seed = int(np.random.randint(2**31 - 1))
        sequence = ArraySequence(x, y, sample_weight, batch_size=batch_size,
                                 shuffle=bool(shuffle), seed=seed)
        return cls(sequence, validation_data)


def is_validation_arrays(value: Any) -> bool:
    """`(x, y)`, `(x, y, sample_weight)` (a tuple, or a list of arrays)."""
    return isinstance(value, tuple) or (
        isinstance(value, list) and bool(value)
        and all(v is None or is_array_data(v) for v in value))


def validation_arrays(value: Any, batch_size: int | None) -> tuple[ArraySequence, list]:
    """Array validation data as an `ArraySequence` of `batch_size` (None: 32, until
    the first training batch's size is known), and Keras 2's `callback.validation_data`."""
    value = tuple(value)
    if len(value) not in (2, 3):
        raise ValueError(
            "`validation_data` should be a tuple `(val_x, val_y)` or "
            "`(val_x, val_y, val_sample_weight)`, or a generator or Sequence; got a "
            f"{type(value).__name__} of length {len(value)}: {describe(value)}."
        )
    x, y = value[0], value[1]
    sample_weight = value[2] if len(value) == 3 else None
    for name, part in (("val_x", x), ("val_y", y), ("val_sample_weight", sample_weight)):
        if part is not None and not is_array_data(part):
            raise TypeError(f"`validation_data`: `{name}` must be an array (or a list or "
                            f"dict of arrays); got {describe(part)}.")
    if x is None:
        raise ValueError("`validation_data`: `val_x` is None.")
    x, y, sample_weight = to_numpy(x), to_numpy(y), to_numpy(sample_weight)
    _check_samples(x, y, sample_weight, "`validation_data`")
    return (ArraySequence(x, y, sample_weight, batch_size=batch_size or 32),
            keras2_validation_data(x, y, sample_weight))


__all__ = ["ArrayAdapter", "is_validation_arrays", "keras2_validation_data",
           "validation_arrays"]
