"""Thread workers for `OrderedEnqueuer`.

A worker pool (`handoff.BatchPool`) turns batch indices into futures of
batches (`handoff.BatchFuture`).  The enqueuer asks for batches in order and
keeps `max_queue_size` of them in flight; the pool decides where `__getitem__`
runs.  The process pool is `_processes.pool.ProcessSequencePool`.

The thread pool is built for the training loop's hand-off, which happens once
per batch: a task is a slotted object put on a `queue.SimpleQueue`, and a
finished task is read without taking a lock.  A `concurrent.futures`
executor costs several times more per batch (a condition and a work item per
future, a semaphore per submit), on both threads.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from nbtrain.data.handoff import DEFAULT_GRACE, BatchFuture, BatchPool
from nbtrain.data.userwarning import warn_user

__all__ = ["DEFAULT_GRACE", "ThreadPool"]


class ThreadPool(BatchPool):
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
        self.cond = threading.Condition(threading.Lock())
        self._closed = False
        self._reading: list[BatchFuture | None] = [None] * workers  # per thread, or None
        self._threads = [
            threading.Thread(target=self._work, args=(i,), name=f"nbtrain-sequence_{i}",
                             daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, index: int) -> BatchFuture:
        """Read batch `index` on a worker; returns its future."""
        if self._closed:
            raise RuntimeError("This pool is shut down.")
        future = BatchFuture(self.cond, index)
        self._tasks.put(future)
        return future

    def _work(self, slot: int) -> None:
        tasks, sequence, transform = self._tasks, self.sequence, self.transform
        reading = self._reading
        while True:
            future = tasks.get()
            if future is None:
                return
            if future.is_cancelled:
                continue
            reading[slot] = future
            value, error = None, None
            try:
                value = sequence[future.index]
                if transform is not None and not future.is_cancelled:
                    value = transform(value)
            except BaseException as exc:  # noqa: BLE001 - delivered to the consumer
                error = exc
            reading[slot] = None
            future.settle(value, error)  # dropped if abandoned by shutdown: nobody reads it

    def new_pass(self) -> None:
        """The sequence may have changed in `on_epoch_end`; threads see it already."""

    def shutdown(self, timeout: float | None = None) -> None:
        """Cancel the tasks not started, give the workers up to `timeout` seconds
        (None: `DEFAULT_GRACE`) to finish the batch they are reading, and join them.

        A thread still reading then (a `__getitem__` that hangs) cannot be
        killed: it is abandoned, with a `RuntimeWarning` naming the index it
        reads.  Its batch is dropped when the read returns (no transform runs
        on it), and the thread then ends.
        """
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
        grace = DEFAULT_GRACE if timeout is None else max(0.0, timeout)
        deadline = time.monotonic() + grace
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        hung = [(t, self._reading[i]) for i, t in enumerate(self._threads) if t.is_alive()]
        if not hung:
            return
        with self.cond:
            for _, future in hung:
                if future is not None and not future.is_done:
                    future.is_cancelled = True
            self.cond.notify_all()
        name = type(self.sequence).__name__
        reads = [f"{name}[{future.index}] (thread {thread.name})" if future is not None
                 else f"a batch of {name} (thread {thread.name})" for thread, future in hung]
        warn_user(
            f"{', '.join(reads)} {'was' if len(reads) == 1 else 'were'} still being read "
            f"{grace:g} s after the stop: abandoned (a thread cannot be killed); what it "
            "returns is ignored, and the batch is read again at the next start. Give a "
            "read that can hang a timeout of its own.",
            RuntimeWarning,
        )
