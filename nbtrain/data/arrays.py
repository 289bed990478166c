"""Arrays in memory: what counts as array data, its nested structures (an array, or a
list, tuple or dict of them: a model's several inputs or outputs), and
`ArraySequence`, which serves them as batches.

The structure helpers here are the only ones in nbtrain: `n_samples`, `take`,
`to_numpy`, `leaves`.  `iter_sequence_infinite` (Keras 2's helper, public as
`nbtrain.iter_sequence_infinite`) came with `ArraySequence` from the former
`data/adapters.py`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from nbtrain.data.sequence import Sequence, is_sequence, sequence_length


def iter_sequence_infinite(sequence: Any) -> Iterator[Any]:
    """Iterate over a Sequence forever, calling `on_epoch_end` after each pass.

    Args:
        sequence: an `nbtrain.Sequence` or `keras.utils.PyDataset`.

    Example:

    ```python
    batches = nbtrain.iter_sequence_infinite(sequence)
    x, y = next(batches)
    ```
    """
    while True:
        for index in range(sequence_length(sequence)):
            yield sequence[index]
        sequence.on_epoch_end()


# -- nested structures ----------------------------------------------------------------------


def n_samples(structure: Any) -> int:
    """The first dimension of the structure's first array."""
    if isinstance(structure, dict):
        structure = next(iter(structure.values()))
    elif isinstance(structure, (list, tuple)):
        structure = structure[0]
    return len(structure)


def take(structure: Any, index: Any) -> Any:
    """The samples `index` (a slice or an array of indices) of every array in it."""
    if structure is None:
        return None
    if isinstance(structure, dict):
        return {k: take(v, index) for k, v in structure.items()}
    if isinstance(structure, (list, tuple)):
        return type(structure)(take(v, index) for v in structure)
    return np.asarray(structure)[index]


def to_numpy(structure: Any) -> Any:
    """The same structure with every array a NumPy array."""
    if structure is None:
        return None
    if isinstance(structure, dict):
        return {k: to_numpy(v) for k, v in structure.items()}
    if isinstance(structure, (list, tuple)):
        return type(structure)(to_numpy(v) for v in structure)
    return np.asarray(structure)


def leaves(structure: Any) -> list:
    """Its arrays, in order (dicts in their keys' order); none for None."""
    if structure is None:
        return []
    if isinstance(structure, dict):
        return [leaf for v in structure.values() for leaf in leaves(v)]
    if isinstance(structure, (list, tuple)):
        return [leaf for v in structure for leaf in leaves(v)]
    return [structure]


def _is_array(value: Any) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype") and not is_sequence(value)


def is_array_data(x: Any) -> bool:
    """True for an array (NumPy or anything with `shape` and `dtype`, e.g. a tensor),
    or a non-empty list, tuple or dict of them (a model's several inputs).

    Args:
        x: anything.

    Example:

    ```python
    is_array_data({"a": np.zeros((4, 2)), "b": np.ones((4, 3))})   # True
    is_array_data(my_sequence)                                      # False
    ```
    """
    if _is_array(x):
        return True
    if isinstance(x, dict):
        return bool(x) and all(_is_array(v) for v in x.values())
    if isinstance(x, (list, tuple)):
        return bool(x) and all(_is_array(v) for v in x)
    return False


class ArraySequence(Sequence):
    """In-memory arrays served as batches; samples reshuffled at every pass.

    Args:
        x: an array, or a list or dict of arrays.
        y: targets in the same forms, or None.
        sample_weight: per-sample weights, or None.
        batch_size: samples per batch (the last batch may be smaller).
        shuffle: draw a new permutation of the samples after every pass.
        seed: seed of the permutation.
    """

    def __init__(self, x: Any, y: Any = None, sample_weight: Any = None,
                 batch_size: int = 32, shuffle: bool = False, seed: int | None = None):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        self.x, self.y, self.sample_weight = x, y, sample_weight
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.n = n_samples(x)
        for name, value in (("y", y), ("sample_weight", sample_weight)):
            if value is not None and n_samples(value) != self.n:
                raise ValueError(
                    f"x has {self.n} samples but {name} has {n_samples(value)}."
                )
        self._rng = np.random.default_rng(seed)
        self.permutation = self._rng.permutation(self.n) if shuffle else np.arange(self.n)

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __getitem__(self, index: int) -> tuple:
        if not 0 <= index < len(self):
            raise IndexError(f"batch index {index} out of range for {len(self)} batches")
        indices = self.permutation[index * self.batch_size : (index + 1) * self.batch_size]
        batch = (take(self.x, indices), take(self.y, indices))
        if self.sample_weight is not None:
            batch += (take(self.sample_weight, indices),)
        return batch

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self.permutation = self._rng.permutation(self.n)


__all__ = ["ArraySequence", "is_array_data", "iter_sequence_infinite", "leaves", "n_samples",
           "take", "to_numpy"]
