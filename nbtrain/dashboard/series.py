"""A bounded, downsampled series: what the dashboard plots.

Points are averaged into buckets.  When the buckets fill up, neighbours are
merged in pairs and the bucket width doubles, so a series never holds more
than `capacity` buckets: a million-batch run takes the same memory, and
renders as fast, as a hundred-batch one, and every bucket is the exact
(weighted) mean of the points it covers.
"""

from __future__ import annotations

import math

import numpy as np


class BucketSeries:
    """A series of `(x, y)` points kept as at most `capacity` bucket means.

    Args:
        capacity: maximum number of buckets kept (an even number >= 2).

    Example:

    ```python
    series = BucketSeries(capacity=1024)
    for step in range(1_000_000):
        series.add(step, loss[step])
    x, y = series.arrays()          # at most 1024 points, each a bucket mean
    ```
    """

    __slots__ = ("capacity", "width", "count", "_x", "_y", "_w", "_size", "_ox", "_oy", "_ow")

    def __init__(self, capacity: int = 2048):
        if capacity < 2 or capacity % 2:
            raise ValueError(f"capacity must be an even number >= 2, got {capacity!r}.")
        self.capacity = capacity
        self.width = 1.0  # weight a bucket holds before it closes
        self.count = 0.0  # total weight added
        self._x = np.empty(capacity)
        self._y = np.empty(capacity)
        self._w = np.empty(capacity)
        self._size = 0
        self._ox = self._oy = self._ow = 0.0  # the open bucket: weighted sums

    def __len__(self) -> int:
        return self._size + (self._ow > 0)

    @property
    def room(self) -> float:
        """Weight the open bucket takes before it closes."""
        return self.width - self._ow

    def add(self, x: float, y: float, weight: float = 1.0) -> None:
        """Add a point (or the mean of `weight` points) at `x`; non-finite `y` is ignored."""
        if not math.isfinite(y):
            return
        self._ox += x * weight
        self._oy += y * weight
        self._ow += weight
        self.count += weight
        if self._ow >= self.width:
            self._close()

    def _close(self) -> None:
        i = self._size
        w = self._ow
        self._x[i] = self._ox / w
        self._y[i] = self._oy / w
        self._w[i] = w
        self._size = i + 1
        self._ox = self._oy = self._ow = 0.0
        if self._size == self.capacity:
            self._halve()

    def _halve(self) -> None:
        w = self._w[0::2] + self._w[1::2]
        for values in (self._x, self._y):
            merged = (values[0::2] * self._w[0::2] + values[1::2] * self._w[1::2]) / w
            values[: self.capacity // 2] = merged
        self._w[: self.capacity // 2] = w
        self._size = self.capacity // 2
        self.width *= 2

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the bucket means `(x, y)`, the open bucket last."""
        n = self._size
        x, y = self._x[:n], self._y[:n]
        if self._ow > 0:
            x = np.append(x, self._ox / self._ow)
            y = np.append(y, self._oy / self._ow)
        else:
            x, y = x.copy(), y.copy()
        return x, y

    def last(self) -> tuple[float, float] | None:
        """The most recent point (the open bucket, else the last closed one)."""
        if self._ow > 0:
            return self._ox / self._ow, self._oy / self._ow
        if self._size:
            return float(self._x[self._size - 1]), float(self._y[self._size - 1])
        return None

    def clear(self) -> None:
        """Forget every point."""
        self.width, self.count, self._size = 1.0, 0.0, 0
        self._ox = self._oy = self._ow = 0.0
