"""Thread workers for `OrderedEnqueuer`.

A worker pool turns batch indices into futures of batches.  The enqueuer asks
for batches in order and keeps `max_queue_size` of them in flight; the pool
decides where `__getitem__` runs.  Process pools live in `processes.py`.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any


class ThreadPool:
    """Runs `sequence[index]` on `workers` threads sharing the caller's memory.

    Args:
        sequence: the Sequence to read.
        workers: number of threads.
    """

    def __init__(self, sequence: Any, workers: int):
        self.sequence = sequence
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="nbtrain-sequence"
        )

    def submit(self, index: int) -> concurrent.futures.Future:
        return self._executor.submit(self.sequence.__getitem__, index)

    def new_pass(self) -> None:
        """The sequence may have changed in `on_epoch_end`; threads see it already."""

    def shutdown(self, timeout: float | None = None) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
