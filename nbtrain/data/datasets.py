"""`tf.data.Dataset` as a stream of NumPy batches, without importing TensorFlow.

A dataset is not indexable, so it is read like a generator: `DatasetBatches`
iterates it as NumPy batches and starts a new pass (`iter(dataset)` again, so
`shuffle(reshuffle_each_iteration=True)` reshuffles) each time a pass ends.
With `steps_per_epoch` equal to the dataset's cardinality, every epoch is
exactly one pass.  TensorFlow is only looked up in `sys.modules`: if it was
never imported, the object cannot be a `tf.data.Dataset`.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Iterator


def is_tf_dataset(obj: Any) -> bool:
    """True for a `tf.data.Dataset` (never imports TensorFlow).

    Args:
        obj: anything.

    Example:

    ```python
    is_tf_dataset(tf.data.Dataset.range(3))   # True
    is_tf_dataset([1, 2, 3])                  # False
    ```
    """
    tf = sys.modules.get("tensorflow")
    data = getattr(tf, "data", None) if tf is not None else None
    dataset_type = getattr(data, "Dataset", None)
    return dataset_type is not None and isinstance(obj, dataset_type)


def dataset_steps(dataset: Any) -> int | None:
    """Batches in one pass of `dataset`: its cardinality when finite and known, else None.

    Args:
        dataset: a `tf.data.Dataset`.

    Example:

    ```python
    dataset_steps(tf.data.Dataset.range(10).batch(4))   # 3
    dataset_steps(tf.data.Dataset.range(10).repeat())   # None (infinite)
    ```
    """
    cardinality = int(dataset.cardinality())
    return cardinality if cardinality >= 0 else None


class DatasetBatches:
    """An endless iterator of NumPy batches over a `tf.data.Dataset`, pass after pass.

    When a pass ends the dataset is iterated again.  An empty pass ends the
    iterator (`StopIteration`) instead of looping forever.  `next()` is
    serialised by a lock, so worker threads may share the iterator.

    Args:
        dataset: a `tf.data.Dataset` whose elements are `(x, y)` or
            `(x, y, sample_weight)` (nested structures of tensors).

    Attributes:
        steps: batches per pass (the finite cardinality), or None when unknown
            or infinite.
        passes: passes started so far.

    Example:

    ```python
    batches = DatasetBatches(tf.data.Dataset.from_tensor_slices((x, y)).batch(32))
    x0, y0 = next(batches)           # NumPy arrays
    batches.steps                    # len(x) // 32 rounded up
    ```
    """

    def __init__(self, dataset: Any):
        if not is_tf_dataset(dataset):
            raise TypeError(f"DatasetBatches needs a tf.data.Dataset, got {type(dataset).__name__}.")
        self.dataset = dataset
        self.steps = dataset_steps(dataset)
        self.passes = 0
        self._iterator: Iterator[Any] | None = None
        self._lock = threading.Lock()

    def __iter__(self) -> DatasetBatches:
        return self

    def __next__(self) -> Any:
        with self._lock:
            if self._iterator is not None:
                try:
                    return next(self._iterator)
                except StopIteration:
                    self._iterator = None
            self._iterator = self.dataset.as_numpy_iterator()
            self.passes += 1
            try:
                return next(self._iterator)
            except StopIteration:
                self._iterator = None
                raise StopIteration from None  # an empty pass: end, do not spin

    def __repr__(self) -> str:
        return f"DatasetBatches(steps={self.steps}, passes={self.passes})"
