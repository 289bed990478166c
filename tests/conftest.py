"""Shared test set-up: quiet TensorFlow, and no thread may outlive a test."""

from __future__ import annotations

import os
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def no_leaked_threads():
    """Every thread a test starts must be joined by the code under test."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5.0
    leaked = []
    while time.monotonic() < deadline:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked:
            break
        leaked[0].join(timeout=0.05)
    assert not leaked, f"threads outlived the test: {[t.name for t in leaked]}"
