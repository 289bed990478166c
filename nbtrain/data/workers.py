"""Thread workers for `OrderedEnqueuer`.

A worker pool turns batch indices into futures of batches.  The enqueuer asks
for batches in order and keeps `max_queue_size` of them in flight; the pool
decides where `__getitem__` runs.  Process pools live in `processes.py`.

The thread pool is built for the training loop's hand-off, which happens once
per batch: a task is a slotted object put on a `queue.SimpleQueue`, and a
finished task is read without taking a lock.  A `concurrent.futures`
executor costs several times more per batch (a condition and a work item per
future, a semaphore per submit), on both threads.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
from collections.abc import Callable
from typing import Any


class BatchFuture:
    """The batch of one index, being read by a `ThreadPool` worker.

    The subset of `concurrent.futures.Future` the enqueuer uses: `result`,
    `done`, `cancel`.
    """

    __slots__ = ("_pool", "index", "_done", "_cancelled", "_value", "_error")

    def __init__(self, pool: ThreadPool, index: int):
        self._pool = pool
        self.index = index
        self._done = False
        self._cancelled = False
        self._value: Any = None
        self._error: BaseException | None = None

    def done(self) -> bool:
        """True once the batch is read (or failed, or was cancelled)."""
        return self._done or self._cancelled

    def cancel(self) -> bool:
        """Cancel the task if no worker has started it; True if it was cancelled."""
        with self._pool._cond:
            if self._done:
                return False
            self._cancelled = True
            self._pool._cond.notify_all()
            return True

    def result(self, timeout: float | None = None) -> Any:
        """The batch; raises the worker's exception as it was raised.

        Raises:
            concurrent.futures.TimeoutError: not ready within `timeout` seconds.
            concurrent.futures.CancelledError: the pool was shut down first.
        """
        if not self._done:
            cond = self._pool._cond
            with cond:
                cond.wait_for(lambda: self._done or self._cancelled, timeout)
            if not self._done:
                if self._cancelled:
                    raise concurrent.futures.CancelledError()
                raise concurrent.futures.TimeoutError()
        if self._error is not None:
            raise self._error
        return self._value


class ThreadPool:
    """Runs `sequence[index]` on `workers` threads sharing the caller's memory.

    Args:
        sequence: the Sequence to read.
        workers: number of threads.
        transform: applied to each batch on the worker thread (the consumer's
            per-batch preparation, moved off its critical path).
    """

    applies_transform = True

    def __init__(self, sequence: Any, workers: int, transform: Callable[[Any], Any] | None = None):
        self.sequence = sequence
        self.transform = transform
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._cond = threading.Condition(threading.Lock())
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"nbtrain-sequence_{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, index: int) -> BatchFuture:
        """Read batch `index` on a worker; returns its future."""
        if self._closed:
            raise RuntimeError("This pool is shut down.")
        future = BatchFuture(self, index)
        self._tasks.put(future)
        return future

    def _work(self) -> None:
        tasks, cond, sequence, transform = self._tasks, self._cond, self.sequence, self.transform
        while True:
            future = tasks.get()
            if future is None:
                return
            if future._cancelled:
                continue
            try:
                value = sequence[future.index]
                if transform is not None:
                    value = transform(value)
            except BaseException as exc:  # noqa: BLE001 - delivered to the consumer
                future._error = exc
            else:
                future._value = value
            with cond:
                future._done = True
                cond.notify_all()

    def new_pass(self) -> None:
        """The sequence may have changed in `on_epoch_end`; threads see it already."""

    def shutdown(self, timeout: float | None = None) -> None:
        """Cancel the tasks not started, let the workers finish the batch they
        are reading, and join them."""
        self._closed = True
        while True:
            try:
                future = self._tasks.get_nowait()
            except queue.Empty:
                break
            if future is not None:
                future.cancel()
        for _ in self._threads:
            self._tasks.put(None)
        for thread in self._threads:
            thread.join()
