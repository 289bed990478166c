"""Adapters that turn user data into what the loop reads: Sequences or iterators."""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from nbtrain.data.sequence import Sequence, sequence_length


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


def _n_samples(structure: Any) -> int:
    if isinstance(structure, dict):
        structure = next(iter(structure.values()))
    elif isinstance(structure, (list, tuple)):
        structure = structure[0]
    return len(structure)


def _take(structure: Any, indices: np.ndarray) -> Any:
    if structure is None:
        return None
    if isinstance(structure, dict):
        return {k: _take(v, indices) for k, v in structure.items()}
    if isinstance(structure, (list, tuple)):
        return type(structure)(_take(v, indices) for v in structure)
    return np.asarray(structure)[indices]


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
        self.n = _n_samples(x)
        for name, value in (("y", y), ("sample_weight", sample_weight)):
            if value is not None and _n_samples(value) != self.n:
                raise ValueError(
                    f"x has {self.n} samples but {name} has {_n_samples(value)}."
                )
        self._rng = np.random.default_rng(seed)
        self.permutation = self._rng.permutation(self.n) if shuffle else np.arange(self.n)

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __getitem__(self, index: int) -> tuple:
        if not 0 <= index < len(self):
            raise IndexError(f"batch index {index} out of range for {len(self)} batches")
        indices = self.permutation[index * self.batch_size : (index + 1) * self.batch_size]
        batch = (_take(self.x, indices), _take(self.y, indices))
        if self.sample_weight is not None:
            batch += (_take(self.sample_weight, indices),)
        return batch

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self.permutation = self._rng.permutation(self.n)
