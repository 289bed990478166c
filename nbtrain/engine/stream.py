"""A stream of batches from a Sequence or a generator, inline or on workers.

The stream owns the enqueuer's life: started once, read epoch after epoch,
stopped in every exit path.  It also keeps what a resumed run needs to go on
at the exact next batch: the Sequence's cursor, or the generator's items that
were produced but not consumed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from nbtrain.data import GeneratorEnqueuer, OrderedEnqueuer, SequenceCursor, is_sequence

STOP_GRACE = 2.0
"""Seconds a user's stop (the gate's `Interrupt`) gives the data workers to finish
the batch they read before they are ended or abandoned (`DataStream.stop`)."""

INTERRUPT_GRACE = 0.5
"""The same after a Ctrl-C (`KeyboardInterrupt`): control comes back within about a second."""


class DataExhausted(Exception):
    """The generator ended before the requested number of steps."""


class DataStream:
    """Batches from `data` (Sequence or iterator).

    Args:
        data: an `nbtrain.Sequence`, a `keras.utils.PyDataset` or an iterator.
        workers: 0 reads on the calling thread; >= 1 uses an enqueuer.
        use_multiprocessing: enqueuer workers are processes.
        max_queue_size: batches read ahead.
        shuffle: shuffle a Sequence's batch order at each pass.
        cursor: continue a Sequence from this cursor (resume).
        pending: items to hand out before reading the generator (resume).
        transform: applied to every item before `next()` returns it; with
            thread workers it runs on the worker thread, off the consumer's path.
    """

    def __init__(self, data: Any, *, workers: int = 1, use_multiprocessing: bool = False,
                 max_queue_size: int = 10, shuffle: bool = False,
                 cursor: SequenceCursor | None = None, pending: list | None = None,
                 transform: Callable[[Any], Any] | None = None):
        self.data = data
        self.is_sequence = is_sequence(data)
        self.workers = workers
        self.use_multiprocessing = use_multiprocessing
        self.max_queue_size = max_queue_size
        self.cursor = cursor
        if self.is_sequence and self.cursor is None:
            # seeded from NumPy's global state: keras.utils.set_random_seed makes it reproducible
            seed = int(np.random.randint(2**31)) if shuffle else None
            self.cursor = SequenceCursor(data, shuffle=shuffle, seed=seed)
        self.pending = list(pending or [])  # raw items, not yet transformed
        self._ready: list = []  # transformed items an enqueuer produced but nobody consumed
        self.transform = transform or (lambda item: item)
        self.while_waiting: Callable[[], None] | None = None  # see the enqueuers' argument
        self._enqueuer = None
        self._iterator = None

    def start(self) -> None:
        """Start the workers (no-op for workers=0)."""
        if self.is_sequence:
            self.cursor.ensure_started()
        if self.workers == 0 or self._iterator is not None:
            return
        if self.is_sequence:
            self._enqueuer = OrderedEnqueuer(
                self.data, use_multiprocessing=self.use_multiprocessing, cursor=self.cursor,
                transform=self.transform, while_waiting=self.while_waiting,
            )
        else:
            self._enqueuer = GeneratorEnqueuer(
                self.data, use_multiprocessing=self.use_multiprocessing, transform=self.transform,
                while_waiting=self.while_waiting,
            )
        self._enqueuer.start(workers=self.workers, max_queue_size=self.max_queue_size)
        self._iterator = self._enqueuer.get()

    def steps_this_epoch(self) -> int:
        """Batches in the Sequence's current pass (its length, read again each pass)."""
        self.cursor.ensure_started()
        return len(self.cursor.order)

    def next(self) -> Any:
        """The next batch; raises `DataExhausted` when a generator has ended."""
        if self._ready:
            return self._ready.pop(0)
        if self.pending:
            return self.transform(self.pending.pop(0))
        if self._iterator is not None:
            try:
                return next(self._iterator)
            except StopIteration:
                raise DataExhausted from None
        if self.is_sequence:
            item = self.transform(self.data[self.cursor.peek()])
            self.cursor.advance()  # only once read: a batch that failed is read again
            return item
        try:
            item = next(self.data)
        except StopIteration:
            raise DataExhausted from None
        return self.transform(item)

    def first(self, read: Callable[[int], Any] | None = None) -> Any:
        """Take the next raw item here, before any worker starts (the first-batch
        check, `nbtrain.engine.firstbatch`); a Sequence's cursor moves past it.
        Hand it back with `unread([transform(item)])`.

        Args:
            read: reads a Sequence's batch by index (default: the Sequence's own).
        """
        if self.is_sequence:
            self.cursor.ensure_started()
            item = (read or self.data.__getitem__)(self.cursor.peek())
            self.cursor.advance()
            return item
        try:
            return next(self.data)
        except StopIteration:
            raise DataExhausted from None

    def unread(self, items: list) -> None:
        """Give back items `next()` returned but nobody used: handed out first again."""
        self._ready[:0] = items

    def stop(self, timeout: float | None = None) -> None:
        """Stop the workers, waiting up to `timeout` s (None: 5 s) for a batch being
        read before ending (processes) or abandoning (threads) its worker; items a
        generator enqueuer produced but nobody consumed are kept and handed out
        first by the next `next()`."""
        enqueuer, self._enqueuer = self._enqueuer, None
        iterator, self._iterator = self._iterator, None
        if iterator is not None:
            iterator.close()
        if enqueuer is not None:
            enqueuer.stop(timeout)
            if isinstance(enqueuer, GeneratorEnqueuer):
                self._ready.extend(enqueuer.leftover)
