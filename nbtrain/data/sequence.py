"""The `Sequence` base class and helpers to treat Keras `PyDataset`s the same way."""

from __future__ import annotations

import random
from typing import Any


class Sequence:
    """Base class for indexable datasets of batches (the Keras 2 `Sequence`).

    A Sequence knows its length in batches and returns batch `index` from
    `__getitem__`.  Because every batch has an index, a Sequence can be read by
    several workers at once while the batches still arrive in order, and a run
    that stops can resume at the exact next batch.

    Implement `__len__` and `__getitem__`; override `on_epoch_end` to change
    the data between epochs (reshuffle, change length, ...).

    Example:

    ```python
    class Batches(nbtrain.Sequence):
        def __init__(self, x, y, batch_size):
            self.x, self.y, self.batch_size = x, y, batch_size

        def __len__(self):
            return -(-len(self.x) // self.batch_size)

        def __getitem__(self, index):
            s = slice(index * self.batch_size, (index + 1) * self.batch_size)
            return self.x[s], self.y[s]
    ```
    """

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError

    def on_epoch_end(self) -> None:
        """Called after each full pass over the sequence."""

    def __iter__(self):
        for index in range(len(self)):
            yield self[index]


def is_sequence(obj: Any) -> bool:
    """True for an `nbtrain.Sequence` or a `keras.utils.PyDataset` (without importing Keras)."""
    if isinstance(obj, Sequence):
        return True
    return any(
        cls.__name__ in ("PyDataset", "Sequence") and cls.__module__.startswith("keras")
        for cls in type(obj).__mro__
    )


def sequence_length(sequence: Any) -> int:
    """Number of batches in a Sequence or a PyDataset (its `num_batches`)."""
    if isinstance(sequence, Sequence):
        return len(sequence)
    n = getattr(sequence, "num_batches", None)
    if n is None:
        try:
            n = len(sequence)
        except TypeError:
            n = None
    if n is None:
        raise ValueError(
            f"{type(sequence).__name__} has no length: define `__len__` "
            "(or `num_batches` for a PyDataset)."
        )
    return int(n)


class SequenceCursor:
    """Where a stream over a Sequence stands: the order of the current pass and
    how many of its batches the consumer has taken.

    The cursor outlives the enqueuers that read through it, so a run that stops
    and resumes continues at the exact next batch of the same (shuffled) order.
    When the consumer takes the last batch of a pass, the cursor calls the
    sequence's `on_epoch_end` and prepares the next pass (its length read again).

    Args:
        sequence: an `nbtrain.Sequence` or `keras.utils.PyDataset`.
        shuffle: shuffle the order of batches at every pass.
        seed: seed of the shuffling.
    """

    def __init__(self, sequence: Any, shuffle: bool = False, seed: int | None = None):
        self.sequence = sequence
        self.shuffle = shuffle
        self._rng = random.Random(seed)
        self.order: list[int] | None = None
        self.position = 0
        self.passes = 0  # passes started so far

    def _new_pass(self) -> None:
        begin = getattr(self.sequence, "on_epoch_begin", None)
        if callable(begin):  # keras.utils.PyDataset hook
            begin()
        order = list(range(sequence_length(self.sequence)))
        if self.shuffle:
            self._rng.shuffle(order)
        self.order = order
        self.position = 0
        self.passes += 1

    def ensure_started(self) -> None:
        """Create the first pass's order if no pass has started yet."""
        if self.order is None:
            self._new_pass()
            if not self.order:
                raise ValueError(f"{type(self.sequence).__name__} is empty (length 0).")

    def remaining(self) -> list[int]:
        """Indices of the current pass not yet taken, in order."""
        self.ensure_started()
        return self.order[self.position :]

    def peek(self) -> int:
        """The index of the next batch to take (the first of `remaining()`, in O(1))."""
        self.ensure_started()
        return self.order[self.position]

    def advance(self) -> bool:
        """Mark one batch as taken; at the end of a pass call `on_epoch_end` and
        start the next pass.  Returns True when a new pass began."""
        self.position += 1
        if self.position >= len(self.order):
            self.sequence.on_epoch_end()
            self._new_pass()
            return True
        return False

    def state(self) -> dict:
        """A snapshot for logs and tests: pass number, order and position."""
        return {"passes": self.passes, "order": list(self.order or []), "position": self.position}
