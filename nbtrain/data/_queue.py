"""What generator workers (threads or processes) put in their queue, and how
the consumer reads it: items, a failure to re-raise, or the end."""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from typing import Any

POLL = 0.1  # seconds between checks of the stop flag while blocked


class Failure:
    """A worker's exception, to be raised in the consumer."""

    __slots__ = ("exception",)

    def __init__(self, exception: BaseException):
        self.exception = exception


END = object()  # the generator (every copy of it) has ended


class WorkerLost(RuntimeError):
    """A worker process died (killed, crashed, out of memory).

    Nothing is lost but the batches it was reading: stopping the enqueuer and
    starting it again reads them again with fresh workers (for a `Run`:
    `run.resume()` continues at the exact batch).
    """


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
