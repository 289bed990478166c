"""Small models, data and recording tools shared by the tests."""

from __future__ import annotations

import threading

import keras
import numpy as np

import nbtrain

FEATURES = 4


def make_data(n: int = 64, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, FEATURES)).astype("float32")
    y = (x @ np.arange(1, FEATURES + 1, dtype="float32")[:, None]).astype("float32")
    return x, y


def make_model(metrics=None, optimizer=None, **compile_kwargs) -> keras.Model:
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(1)])
    model.compile(optimizer=optimizer or keras.optimizers.SGD(0.01), loss="mse",
                  metrics=metrics, **compile_kwargs)
    return model


class RecordingSequence(nbtrain.Sequence):
    """Batches of 8 of `x, y`; records the index of every batch it serves and
    every `on_epoch_end` call (as the marker 'end')."""

    def __init__(self, x, y, batch_size: int = 8, weights=None):
        self.x, self.y, self.batch_size, self.weights = x, y, batch_size, weights
        self.served: list = []
        self.lock = threading.Lock()

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, index):
        with self.lock:
            self.served.append(index)
        s = slice(index * self.batch_size, (index + 1) * self.batch_size)
        if self.weights is not None:
            return self.x[s], self.y[s], self.weights[s]
        return self.x[s], self.y[s]

    def on_epoch_end(self):
        with self.lock:
            self.served.append("end")


class BatchRecorder(keras.callbacks.Callback):
    """Records the (epoch, batch) pairs trained and the hooks called."""

    def __init__(self):
        super().__init__()
        self.pairs: list[tuple[int, int]] = []
        self.events: list = []
        self.batch_logs: list[dict] = []
        self._epoch = None

    def on_train_begin(self, logs=None):
        self.events.append("train_begin")

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self.events.append(("epoch_begin", epoch))

    def on_train_batch_begin(self, batch, logs=None):
        self.pairs.append((self._epoch, batch))

    def on_train_batch_end(self, batch, logs=None):
        self.batch_logs.append(dict(logs or {}))

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(("epoch_end", epoch, dict(logs or {})))

    def on_train_end(self, logs=None):
        self.events.append("train_end")


class HoldAt(keras.callbacks.Callback):
    """Blocks the training thread at batch `(epoch, batch)` until `go` is set: after
    the batch (`on_train_batch_end`), or, with `before=True`, as it begins (a batch in
    flight while the test acts).  `reached` is set when it holds."""

    def __init__(self, epoch: int, batch: int, before: bool = False, timeout: float = 60):
        super().__init__()
        self.at, self.epoch, self.before, self.timeout = (epoch, batch), None, before, timeout
        self.reached, self.go = threading.Event(), threading.Event()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if self.before:
            self._hold(batch)

    def on_train_batch_end(self, batch, logs=None):
        if not self.before:
            self._hold(batch)

    def _hold(self, batch):
        if (self.epoch, batch) == self.at and not self.go.is_set():
            self.reached.set()
            assert self.go.wait(self.timeout)


def batch_generator(x, y, batch_size: int = 8, limit: int | None = None):
    """An infinite (or `limit`-batch) generator over `x, y`."""
    n = 0
    while limit is None or n < limit:
        for start in range(0, len(x), batch_size):
            if limit is not None and n >= limit:
                return
            yield x[start:start + batch_size], y[start:start + batch_size]
            n += 1
