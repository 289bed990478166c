"""Keras 2's thread-safe generator wrapper, in a module that imports only NumPy
(worker processes import it to rebuild the wrapper; they need no TensorFlow)."""

from __future__ import annotations

import threading

import numpy as np


class threadsafe_iter:  # noqa: N801 - the name every Keras 2 tutorial uses
    """The ubiquitous Keras 2 wrapper: serialises `next` with a lock."""

    def __init__(self, it):
        self.it = it
        self.lock = threading.Lock()

    def __iter__(self):
        return self

    def __next__(self):
        with self.lock:
            return next(self.it)


def threadsafe_generator(f):
    def g(*a, **kw):
        return threadsafe_iter(f(*a, **kw))

    return g


@threadsafe_generator
def wrapped_batches(n):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 4)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    while True:
        for i in range(0, n, 8):
            yield x[i:i + 8], y[i:i + 8]


class Closure:
    """An iterator whose only state is a closure over a fresh generator."""

    def __init__(self, n):
        generator = wrapped_batches(n).it

        def step():
            return next(generator)

        self.step = step

    def __iter__(self):
        return self

    def __next__(self):
        return self.step()
