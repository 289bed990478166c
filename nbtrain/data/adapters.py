"""Adapters that turn user data into what the loop reads: Sequences or iterators.

`adapt_training_data` / `adapt_validation_data` accept everything `nbtrain.fit`
does (arrays, Sequences, PyDatasets, generators, `tf.data.Dataset`s)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from nbtrain.data.datasets import DatasetBatches, is_tf_dataset
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


# -- what `nbtrain.fit` accepts ---------------------------------------------------------


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


def _to_numpy(structure: Any) -> Any:
    if structure is None:
        return None
    if isinstance(structure, dict):
        return {k: _to_numpy(v) for k, v in structure.items()}
    if isinstance(structure, (list, tuple)):
        return type(structure)(_to_numpy(v) for v in structure)
    return np.asarray(structure)


@dataclass
class TrainingData:
    """Training data in the form the loop reads.

    Attributes:
        source: an `nbtrain.Sequence`, a `keras.utils.PyDataset` or an iterator.
        steps: batches per epoch, or None for "the Sequence's length, read each epoch".
        shuffle_batches: shuffle the order of the Sequence's batches at each epoch
            (False for arrays: their samples are shuffled by the `ArraySequence`).

    Example:

    ```python
    data = adapt_training_data(x, y, batch_size=32)
    FitLoop(model, data.source, data.steps, shuffle=data.shuffle_batches)
    ```
    """

    source: Any
    steps: int | None
    shuffle_batches: bool


def _kind(x: Any) -> str:
    if is_sequence(x):
        return "a Sequence or PyDataset"
    if is_tf_dataset(x):
        return "a tf.data.Dataset"
    return "a generator"


def adapt_training_data(x: Any, y: Any = None, *, batch_size: int | None = None,
                        steps_per_epoch: int | None = None, shuffle: bool = True,
                        seed: int | None = None,
                        use_multiprocessing: bool = False) -> TrainingData:
    """Turn what `nbtrain.fit` accepts into a Sequence or an iterator for the loop.

    Arrays become an `ArraySequence` whose samples are reshuffled at every epoch
    when `shuffle` (then the batch order itself is not shuffled again); a
    `tf.data.Dataset` becomes `DatasetBatches`, its steps its cardinality; a
    Sequence, a PyDataset or a generator is passed on as it is (the loop checks
    it and asks for `steps_per_epoch` where it is needed).

    Args:
        x: arrays (or a list/dict of arrays), a Sequence, a PyDataset, a
            generator, or a `tf.data.Dataset`.
        y: targets, only with arrays.
        batch_size: samples per batch, only with arrays (default 32).
        steps_per_epoch: batches per epoch, or None.
        shuffle: shuffle samples (arrays) or batch order (Sequence) every epoch.
        seed: seed of the sample shuffling of arrays (None draws one from
            `np.random`, so `keras.utils.set_random_seed` makes it reproducible).
        use_multiprocessing: refused for a `tf.data.Dataset`.

    Raises:
        ValueError: `y` or `batch_size` given for data that is already batched;
            a dataset of unknown or infinite cardinality without `steps_per_epoch`;
            `use_multiprocessing` with a dataset.
        TypeError: `y` given with something that is not arrays.

    Example:

    ```python
    data = adapt_training_data(x_train, y_train, batch_size=64)
    data.source[0]              # (x_batch, y_batch)
    ```
    """
    if is_array_data(x):
        if batch_size is None:
            batch_size = 32
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
        if seed is None and shuffle:
            seed = int(np.random.randint(2**31 - 1))
        source = ArraySequence(_to_numpy(x), _to_numpy(y), batch_size=int(batch_size),
                               shuffle=bool(shuffle), seed=seed)
        return TrainingData(source, steps_per_epoch, shuffle_batches=False)
    if y is not None:
        if is_sequence(x) or is_tf_dataset(x) or hasattr(x, "__next__"):
            raise ValueError(
                f"`y` must be None when `x` is {_kind(x)}: it yields `(x, y)` batches itself."
            )
        raise TypeError(
            "With `y`, `x` must be a NumPy array (or a list or dict of arrays); got "
            f"{type(x).__name__}."
        )
    if batch_size is not None and (is_sequence(x) or is_tf_dataset(x) or hasattr(x, "__next__")):
        raise ValueError(
            f"`batch_size` must be None when `x` is {_kind(x)}: its batches are already made."
        )
    if is_tf_dataset(x):
        if use_multiprocessing:
            raise ValueError(
                "use_multiprocessing=True is not supported for a tf.data.Dataset (it cannot "
                "be sent to worker processes); use threads or the dataset's own parallelism."
            )
        batches, steps = _dataset_batches(
            x, steps_per_epoch,
            "The tf.data.Dataset has an unknown or infinite cardinality, so the number of "
            "batches in an epoch is unknown: pass `steps_per_epoch` (or give the dataset "
            "a known cardinality with `dataset.apply(tf.data.experimental."
            "assert_cardinality(n))`).")
        return TrainingData(batches, steps, shuffle_batches=False)
    return TrainingData(x, steps_per_epoch, shuffle_batches=bool(shuffle))


def _dataset_batches(dataset: Any, steps: int | None, unknown: str) -> tuple[Any, int]:
    """`DatasetBatches` over `dataset` and its steps: `steps`, else its cardinality;
    a ValueError saying `unknown` when neither is known."""
    batches = DatasetBatches(dataset)
    steps = steps if steps is not None else batches.steps
    if steps is None:
        raise ValueError(unknown)
    return batches, steps


def adapt_validation_data(validation_data: Any,
                          validation_steps: int | None = None) -> tuple[Any, int | None]:
    """Validation data in the forms the loop reads, and its steps.

    A `tf.data.Dataset` becomes `DatasetBatches` with `validation_steps`
    defaulting to its cardinality; arrays in a `(x, y)` / `(x, y, w)` tuple are
    converted to NumPy once; anything else is passed on for the loop to check.

    Args:
        validation_data: None, `(x, y)`, `(x, y, sample_weight)`, a Sequence,
            a PyDataset, a generator or a `tf.data.Dataset`.
        validation_steps: batches per validation, or None.

    Raises:
        ValueError: a dataset of unknown or infinite cardinality without
            `validation_steps`.

    Example:

    ```python
    data, steps = adapt_validation_data(val_dataset)   # steps = cardinality
    ```
    """
    if is_tf_dataset(validation_data):
        return _dataset_batches(
            validation_data, validation_steps,
            "The validation tf.data.Dataset has an unknown or infinite cardinality: pass "
            "`validation_steps` (the number of batches to draw at every validation).")
    if (isinstance(validation_data, tuple) and len(validation_data) in (2, 3)
            and all(v is None or is_array_data(v) for v in validation_data)
            and validation_data[0] is not None):
        return tuple(_to_numpy(v) for v in validation_data), validation_steps
    return validation_data, validation_steps
