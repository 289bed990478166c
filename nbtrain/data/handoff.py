"""How workers, threads or processes, hand their work to the enqueuers.

- A Sequence is read by a *pool* (`BatchPool`: `threads.ThreadPool` or
  `_processes.pool.ProcessSequencePool`): `submit(index)` returns a
  `BatchFuture`, the one future type of both, which the `OrderedEnqueuer`
  waits on in index order.  A pool declares whether it applies the
  enqueuer's transform itself (`applies_transform`).
- A generator's items come through a queue: items, a `Failure` to re-raise,
  or `END`; `iter_queue` reads it for the `GeneratorEnqueuer`.
- `WorkerLost`: a worker process died.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol

POLL = 0.1  # seconds between checks of the stop flag while blocked

DEFAULT_GRACE = 5.0
"""Seconds `shutdown(timeout=None)` / `stop(timeout=None)` lets a worker (thread or
process) finish the batch it reads before it is abandoned or terminated."""


class WorkerLost(RuntimeError):
    """A worker process died (killed, crashed, out of memory).

    Nothing is lost but the batches it was reading: stopping the enqueuer and
    starting it again reads them again with fresh workers (for a `Run`:
    `run.resume()` continues at the exact batch).
    """


# -- Sequences: a pool of workers, a future per batch ------------------------------------


class BatchFuture:
    """The batch of one index, being read by a pool's worker.

    The subset of `concurrent.futures.Future` the enqueuer uses: `result`,
    `done`, `cancel`; the pool settles it with `settle`.  The futures of one
    pool share its condition (one lock per pool, none per batch).
    """

    __slots__ = ("cond", "index", "is_done", "is_cancelled", "value", "error")

    def __init__(self, cond: threading.Condition, index: int):
        self.cond = cond
        self.index = index
        self.is_done = False
        self.is_cancelled = False
        self.value: Any = None
        self.error: BaseException | None = None

    def done(self) -> bool:
        """True once the batch is read (or failed, or was cancelled)."""
        return self.is_done or self.is_cancelled

    def cancel(self) -> bool:
        """Cancel the task if no worker has finished it; True if it was cancelled."""
        with self.cond:
            if self.is_done:
                return False
            self.is_cancelled = True
            self.cond.notify_all()
            return True

    def settle(self, value: Any = None, error: BaseException | None = None) -> bool:
        """Deliver the batch (or the error reading it); False, and nothing kept,
        if the future was cancelled (nobody reads it)."""
        with self.cond:
            if self.is_cancelled or self.is_done:
                return False
            self.value, self.error = value, error
            self.is_done = True
            self.cond.notify_all()
            return True

    def result(self, timeout: float | None = None) -> Any:
        """The batch; raises the worker's exception as it was raised.

        Raises:
            concurrent.futures.TimeoutError: not ready within `timeout` seconds.
            concurrent.futures.CancelledError: the pool was shut down first.
        """
        if not self.is_done:
            cond = self.cond
            with cond:
                cond.wait_for(lambda: self.is_done or self.is_cancelled, timeout)
            if not self.is_done:
                if self.is_cancelled:
                    raise concurrent.futures.CancelledError()
                raise concurrent.futures.TimeoutError()
        if self.error is not None:
            raise self.error
        return self.value


class BatchPool(Protocol):
    """What the `OrderedEnqueuer` asks of a pool of workers reading a Sequence."""

    applies_transform: bool
    """True: the pool applies the enqueuer's transform to each batch (off the
    consumer's path); False: the enqueuer applies it as it hands a batch out."""

    def submit(self, index: int) -> BatchFuture:
        """Read `sequence[index]` on a worker."""

    def new_pass(self) -> None:
        """The sequence's `on_epoch_end` has run: later batches see its new state."""

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop the workers, waiting up to `timeout` seconds (None: `DEFAULT_GRACE`)."""


# -- generators: a queue of items ----------------------------------------------------------


class Failure:
    """A worker's exception, to be raised in the consumer."""

    __slots__ = ("exception",)

    def __init__(self, exception: BaseException):
        self.exception = exception


END = object()  # the generator (every copy of it) has ended


def is_item(value: Any) -> bool:
    """True for a produced item (not the end marker, not a failure)."""
    return value is not END and not isinstance(value, Failure)


def iter_queue(items: queue.Queue, stopped: Callable[[], bool],
               check: Callable[[], None] | None = None) -> Iterator[Any]:
    """Yield items from `items` until END (return) or a Failure (raise it),
    polling `stopped` so a stop from another thread ends the iteration.

    Args:
        items: the queue workers put into.
        stopped: returns True once the consumer should stop waiting.
        check: called while waiting; raises to report a broken worker pool.
    """
    while not stopped():
        if check is not None:
            check()
        try:
            item = items.get(timeout=POLL)
        except queue.Empty:
            continue
        if item is END:
            return
        if isinstance(item, Failure):
            raise item.exception
        yield item
