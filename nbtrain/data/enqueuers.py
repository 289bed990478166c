"""Enqueuers: read a Sequence or a generator ahead of the consumer on workers.

`OrderedEnqueuer` keeps `max_queue_size` batches of a Sequence in flight on a
pool of workers and hands them out in index order (or in a shuffled order per
pass).  `GeneratorEnqueuer` pulls items from a generator on worker threads,
serialising access so a generator that is not thread-safe never yields a
corrupted, lost or duplicated item.

Both keep the Keras 2 API: `start(workers, max_queue_size)`, `get()`,
`stop(timeout)`, `is_running()`.
"""

from __future__ import annotations

import collections
import concurrent.futures
import operator
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from nbtrain.data.handoff import DEFAULT_GRACE, END, POLL, BatchPool, Failure, is_item, iter_queue
from nbtrain.data.sequence import SequenceCursor, is_sequence
from nbtrain.data.userwarning import warn_user

_POLL = POLL


class _Source:
    """What every `GeneratorEnqueuer` of one generator shares: the lock that
    serialises `next()`, and what a thread abandoned at a stop produced after
    it (handed out first by the next enqueuer's `get()`)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.late: collections.deque = collections.deque()


_SOURCES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_SOURCES_LOCK = threading.Lock()


def _source_of(generator: Any) -> _Source:
    """The generator's `_Source` (a new one for an iterator without weak references)."""
    with _SOURCES_LOCK:
        try:
            source = _SOURCES.get(generator)
            if source is None:
                source = _SOURCES[generator] = _Source()
        except TypeError:  # not weakly referenceable, or not hashable
            source = _Source()
    return source


def _check_start(workers: Any, max_queue_size: Any) -> tuple[int, int]:
    """`start()`'s arguments as ints >= 1, else an error naming the argument."""
    checked = []
    for name, value in (("workers", workers), ("max_queue_size", max_queue_size)):
        try:
            if isinstance(value, bool):
                raise TypeError
            number = operator.index(value)
        except TypeError:
            raise TypeError(f"`{name}` must be an integer, got {value!r} "
                            f"({type(value).__name__}).") from None
        if number < 1:
            raise ValueError(f"`{name}` must be at least 1, got {number}.")
        checked.append(number)
    return checked[0], checked[1]


class OrderedEnqueuer:
    """Reads a Sequence on workers and yields its batches in order, pass after pass.

    After the consumer takes the last batch of a pass, the sequence's
    `on_epoch_end` is called (in the consumer's thread, before any batch of the
    next pass is produced) and the next pass begins with the length read again.

    Args:
        sequence: an `nbtrain.Sequence` or `keras.utils.PyDataset`.
        use_multiprocessing: read batches in worker processes instead of threads.
        shuffle: shuffle the batch order at every pass.
        cursor: an `nbtrain.data.SequenceCursor` to continue from (used by
            `nbtrain.Run` to resume at the exact next batch); a new one by default.
        transform: a function applied to every batch before `get()` yields it
            (on the worker thread where possible).
        while_waiting: called every `POLL` seconds while `get()` waits for a
            batch, on the consumer's thread; whatever it raises ends the wait
            and comes out of `get()` (a `Run`'s stop raises its `Interrupt`
            there, so a batch read that hangs does not hold the stop).

    Example:

    ```python
    enqueuer = nbtrain.OrderedEnqueuer(sequence, shuffle=True)
    enqueuer.start(workers=2, max_queue_size=10)
    batches = enqueuer.get()
    x, y = next(batches)
    enqueuer.stop()
    ```
    """

    def __init__(
        self,
        sequence: Any,
        use_multiprocessing: bool = False,
        shuffle: bool = False,
        *,
        cursor: SequenceCursor | None = None,
        transform: Callable[[Any], Any] | None = None,
        while_waiting: Callable[[], None] | None = None,
    ):
        if not is_sequence(sequence):
            raise TypeError(
                "OrderedEnqueuer needs an nbtrain.Sequence or a keras.utils.PyDataset, "
                f"got {type(sequence).__name__}."
            )
        self.sequence = sequence
        self.use_multiprocessing = use_multiprocessing
        self.shuffle = shuffle
        self.cursor = cursor if cursor is not None else SequenceCursor(sequence, shuffle)
        self.transform = transform
        self.while_waiting = while_waiting
        self._pool: BatchPool | None = None
        self._stop = threading.Event()
        self.end_of_epoch_signal = threading.Event()
        self.max_queue_size = 10
        self.workers = 1

    def is_running(self) -> bool:
        return self._pool is not None and not self._stop.is_set()

    def join_end_of_epoch(self, timeout: float | None = 30) -> bool:
        """Wait until the sequence's `on_epoch_end` for the pass just consumed has run
        (Keras 2.3's API; read `len(sequence)` after it to get the next pass's length).

        Here `on_epoch_end` runs in the consumer's thread as it takes a pass's
        last batch, so after that batch this returns at once.

        Args:
            timeout: seconds to wait at most (30, as Keras 2.3).

        Returns:
            True if a pass had ended (the signal is then cleared), False on timeout.
        """
        ended = self.end_of_epoch_signal.wait(timeout=timeout)
        self.end_of_epoch_signal.clear()
        return ended

    def start(self, workers: int = 1, max_queue_size: int = 10) -> None:
        """Start the worker pool.

        Args:
            workers: number of worker threads or processes (at least 1).
            max_queue_size: batches kept in flight ahead of the consumer.

        Raises:
            TypeError: `workers` or `max_queue_size` is not an integer.
            ValueError: either is less than 1.
            RuntimeError: already started.
        """
        workers, max_queue_size = _check_start(workers, max_queue_size)
        if self._pool is not None:
            raise RuntimeError("This enqueuer is already started.")
        self.workers, self.max_queue_size = workers, max_queue_size
        self._stop.clear()
        self.cursor.ensure_started()
        if self.use_multiprocessing:
            from nbtrain.data._processes.pool import ProcessSequencePool

            self._pool = ProcessSequencePool(self.sequence, workers, self.transform)
        else:
            from nbtrain.data.threads import ThreadPool

            self._pool = ThreadPool(self.sequence, workers, self.transform)

    def get(self) -> Iterator[Any]:
        """Yield batches forever in order; raise a worker's exception as it was raised."""
        if self._pool is None:
            raise RuntimeError("Call start() before get().")
        pool, cursor = self._pool, self.cursor
        transform = None if pool.applies_transform else self.transform
        while_waiting = self.while_waiting
        in_flight: collections.deque = collections.deque()
        planned = iter(cursor.remaining())

        def refill():
            for index in planned:
                in_flight.append(pool.submit(index))
                if len(in_flight) >= self.max_queue_size:
                    return

        low_water = self.max_queue_size // 2
        refill()
        while not self._stop.is_set():
            if not in_flight:
                raise RuntimeError("OrderedEnqueuer has no batch in flight (sequence empty?).")
            future = in_flight[0]
            while True:
                try:
                    item = future.result(timeout=_POLL)
                    break
                except concurrent.futures.TimeoutError:
                    if self._stop.is_set():
                        return
                    if while_waiting is not None:
                        while_waiting()
                except concurrent.futures.CancelledError:
                    if self._stop.is_set():  # stop() from another thread cancelled it
                        return
                    raise
            in_flight.popleft()
            if transform is not None:
                item = transform(item)
            if cursor.advance():
                self.end_of_epoch_signal.set()
                pool.new_pass()
                planned = iter(cursor.remaining())
                if not cursor.order:
                    raise ValueError(
                        f"{type(self.sequence).__name__} became empty (length 0) in on_epoch_end."
                    )
                refill()
            elif len(in_flight) <= low_water:
                # Refill in bursts: workers wake once for several batches, which
                # costs the training thread far less than a wake-up per batch.
                refill()
            yield item

    def stop(self, timeout: float | None = None) -> None:
        """Stop the workers and wait up to `timeout` seconds (None: 5 s) for the
        batches they are reading; then process workers are terminated, and
        thread workers, which cannot be, are abandoned with a `RuntimeWarning`
        naming the index they read (their batch is ignored when it comes).
        Never blocks longer than that.  Safe to call more than once."""
        self._stop.set()
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(timeout)


class GeneratorEnqueuer:
    """Pulls items from a generator on worker threads into a bounded queue.

    Access to the generator is serialised (one `next()` at a time, items queued
    in the order they were produced), so a generator that is not thread-safe is
    safe here.  When the generator ends, `get()` ends after the last item.  On
    `stop()`, items that were produced but not consumed are kept in `leftover`,
    so a consumer that resumes loses nothing.

    Args:
        generator: any iterator yielding batches.
        use_multiprocessing: run the generator in worker processes (each holds
            its own copy of the generator; see `nbtrain.data._processes`).
        random_seed: base seed for the workers' random state (process workers).
        transform: a function applied to every item before `get()` yields it
            (on the worker thread for thread workers, on the thread that
            receives the items for process workers).
        while_waiting: called every `POLL` seconds while `get()` waits for an
            item; whatever it raises ends the wait and comes out of `get()`.
    """

    def __init__(self, generator: Iterator[Any], use_multiprocessing: bool = False,
                 random_seed: int | None = None, *,
                 transform: Callable[[Any], Any] | None = None,
                 while_waiting: Callable[[], None] | None = None):
        if not hasattr(generator, "__next__"):
            raise TypeError(
                f"GeneratorEnqueuer needs an iterator or generator, got {type(generator).__name__}."
            )
        self.generator = generator
        self.use_multiprocessing = use_multiprocessing
        self.random_seed = random_seed
        self.transform = transform
        self.while_waiting = while_waiting
        self.leftover: list[Any] = []
        self._threads: list[threading.Thread] = []
        self._queue: queue.Queue | None = None
        self._source = _source_of(generator)  # its lock: one next() at a time
        self._held_lock = threading.Lock()
        self._collected = False  # stop() has taken `_held`: later items go to the source
        self._stop = threading.Event()
        self._finished = False
        self._held: list[Any] = []
        self._backend = None

    def is_running(self) -> bool:
        if self._backend is not None:
            return self._backend.is_running()
        return bool(self._threads) and not self._stop.is_set()

    def start(self, workers: int = 1, max_queue_size: int = 10) -> None:
        """Start pulling from the generator.

        Args:
            workers: number of worker threads (or processes).
            max_queue_size: items kept ready ahead of the consumer.

        Raises:
            TypeError: `workers` or `max_queue_size` is not an integer.
            ValueError: either is less than 1.
            RuntimeError: already started.
        """
        workers, max_queue_size = _check_start(workers, max_queue_size)
        if self._threads or self._backend is not None:
            raise RuntimeError("This enqueuer is already started.")
        self._stop.clear()
        self._collected = False
        if self.use_multiprocessing:
            from nbtrain.data._processes.pool import ProcessGeneratorBackend

            self._backend = ProcessGeneratorBackend(
                self.generator, workers, max_queue_size, self.random_seed, self.transform
            )
            self._backend.while_waiting = self.while_waiting
            return
        self._queue = queue.Queue(max_queue_size)
        self._threads = [
            threading.Thread(target=self._run, name=f"nbtrain-generator-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def _keep(self, item: Any) -> None:
        """An item (or a Failure) produced during or after a stop: for `leftover`,
        or, once stop() has returned, for the next enqueuer of the generator."""
        with self._held_lock:
            (self._source.late if self._collected else self._held).append(item)

    def _take_late(self) -> Iterator[Any]:
        """What a thread abandoned by an earlier enqueuer's stop produced since."""
        late = self._source.late
        while late:
            item = late.popleft()
            if isinstance(item, Failure):
                raise item.exception
            yield item

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._source.lock:
                if self._stop.is_set():
                    return
                if self._finished:  # restarted after the end: say so again
                    self._put(END)
                    return
                try:
                    item = next(self.generator)
                    if self.transform is not None:
                        item = self.transform(item)
                except StopIteration:
                    self._finished = True
                    self._put(END)
                    return
                except BaseException as exc:  # noqa: BLE001 - delivered to the consumer
                    self._finished = True
                    if not self._put(Failure(exc)):
                        self._keep(Failure(exc))
                    return
                if not self._put(item):
                    self._keep(item)  # produced during stop: keep it
                    return

    def get(self) -> Iterator[Any]:
        """Yield the generator's items; end when it ends; raise its exceptions."""
        if self._backend is not None:
            yield from self._backend.get()
            return
        if self._queue is None:
            raise RuntimeError("Call start() before get().")
        late = self._source.late
        yield from self._take_late()
        for item in iter_queue(self._queue, self._stop.is_set, self.while_waiting):
            if late:  # produced before `item`, by a thread an earlier stop abandoned
                yield from self._take_late()
            yield item
        yield from self._take_late()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the workers, join them and keep unconsumed items in `leftover`.

        Waits up to `timeout` seconds (None: 5 s) for a `next()` in progress;
        then process workers are terminated, and a thread, which cannot be,
        is abandoned with a `RuntimeWarning`.  What that `next()` returns or
        raises is handed out first by the next enqueuer of the same generator
        (whose threads wait for it: one `next()` at a time)."""
        self._stop.set()
        if self._backend is not None:
            backend, self._backend = self._backend, None
            backend.stop(timeout)
            self.leftover.extend(backend.leftover)
            return
        grace = DEFAULT_GRACE if timeout is None else max(0.0, timeout)
        deadline = time.monotonic() + grace
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        hung = [thread.name for thread in self._threads if thread.is_alive()]
        if hung:
            warn_user(
                f"The generator's next() was still running after {grace:g} s at the stop "
                f"(on {', '.join(hung)}): the thread is abandoned (a thread cannot be "
                "killed); the next start waits for that next() and hands out its item "
                "first.", RuntimeWarning,
            )
        self._threads = []
        if self._queue is not None:
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if is_item(item):
                    self.leftover.append(item)
            self._queue = None
        with self._held_lock:
            self.leftover.extend(self._held)
            self._held = []
            self._collected = True
