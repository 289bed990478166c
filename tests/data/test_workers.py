"""The thread pool behind `OrderedEnqueuer`: results, errors, timeouts, cancellation."""

from __future__ import annotations

import concurrent.futures
import threading
import traceback

import pytest

from nbtrain.data.threads import ThreadPool


class Gated:
    """Batch i is `i * 10`; batch 0 waits for `release`; batch 2 raises."""

    def __init__(self):
        self.started = threading.Event()
        self.release = threading.Event()

    def __len__(self):
        return 4

    def __getitem__(self, i):
        if i == 0:
            self.started.set()
            assert self.release.wait(10)
        if i == 2:
            raise KeyError("no batch 2")
        return i * 10


def test_results_in_submission_order_with_a_transform():
    data = Gated()
    data.release.set()
    pool = ThreadPool(data, 2, transform=lambda v: v + 1)
    try:
        futures = [pool.submit(i) for i in (3, 1, 0)]
        assert [f.result(timeout=10) for f in futures] == [31, 11, 1]
        assert all(f.done() for f in futures)
    finally:
        pool.shutdown()


def test_an_error_is_raised_as_it_was_with_its_traceback():
    data = Gated()
    pool = ThreadPool(data, 1)
    try:
        with pytest.raises(KeyError, match="no batch 2") as info:
            pool.submit(2).result(timeout=10)
        assert "__getitem__" in "".join(traceback.format_tb(info.value.__traceback__))
    finally:
        pool.shutdown()


def test_timeout_then_result_and_shutdown_cancels_what_has_not_started():
    data = Gated()
    pool = ThreadPool(data, 1)
    first, second = pool.submit(0), pool.submit(1)
    assert data.started.wait(10)
    with pytest.raises(concurrent.futures.TimeoutError):
        first.result(timeout=0.01)
    stopper = threading.Thread(target=pool.shutdown)
    stopper.start()
    with pytest.raises(concurrent.futures.CancelledError):
        second.result(timeout=10)  # woken by the cancellation, not by the timeout
    assert stopper.is_alive()  # shutdown waits for the batch being read
    data.release.set()
    stopper.join(10)
    assert not stopper.is_alive()
    assert first.result(timeout=0) == 0
    assert not [t for t in threading.enumerate() if t.name.startswith("nbtrain-sequence")]
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(3)
