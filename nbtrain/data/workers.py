"""Thread workers for `OrderedEnqueuer`.

A worker pool turns batch indices into futures of batches.  The enqueuer asks
for batches in order and keeps `max_queue_size` of them in flight; the pool
decides where `__getitem__` runs.  Process pools live in `processes.py`.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any


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
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="nbtrain-sequence"
        )

    def submit(self, index: int) -> concurrent.futures.Future:
        if self.transform is None:
            return self._executor.submit(self.sequence.__getitem__, index)
        return self._executor.submit(self._get, index)

    def _get(self, index: int) -> Any:
        return self.transform(self.sequence[index])

    def new_pass(self) -> None:
        """The sequence may have changed in `on_epoch_end`; threads see it already."""

    def shutdown(self, timeout: float | None = None) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
