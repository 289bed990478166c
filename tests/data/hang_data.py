"""A Sequence whose read hangs, for tests/data/test_never_a_hang.py.

A module of its own, light (NumPy and nbtrain.data): process workers import
it to unpickle the Sequence, and never import TensorFlow.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from nbtrain.data import Sequence

FEATURES = 4  # as tests/helpers.py's models
N = 12  # batches an epoch
AT = 5  # the index whose read hangs


class HangsAt(Sequence):
    """Batch i is 4 rows full of i; reading index `at` hangs while `hang` is set:
    on `release` (an Event, for thread workers) or for ten minutes (process
    workers, which get a copy without it; `hung` is set as it begins).
    `served` lists every batch returned in this process."""

    def __init__(self, at: int = AT, release: threading.Event | None = None):
        self.at, self.release, self.hang = at, release, True
        self.hung = threading.Event() if release is not None else None
        self.served: list[int] = []

    def __len__(self):
        return N

    def __getitem__(self, i):
        if self.hang and i == self.at:
            if self.release is not None:
                self.hung.set()
                self.release.wait(120)
            else:
                time.sleep(600)
        self.served.append(i)
        x = np.full((4, FEATURES), i / N, "float32")
        return x, x.sum(axis=1, keepdims=True)
