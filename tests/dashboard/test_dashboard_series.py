"""BucketSeries: bounded, exact bucket means, constant memory."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nbtrain.dashboard.series import BucketSeries


def test_short_series_keeps_every_point():
    series = BucketSeries(capacity=16)
    for i in range(10):
        series.add(i, i * i)
    x, y = series.arrays()
    assert x.tolist() == list(range(10))
    assert y.tolist() == [i * i for i in range(10)]
    assert series.width == 1 and len(series) == 10


@pytest.mark.parametrize("n", [17, 1000, 100_003])
def test_never_more_than_capacity_points(n):
    series = BucketSeries(capacity=64)
    for i in range(n):
        series.add(i, 1.0)
        assert len(series) <= 64
    assert len(series) > 16  # and not needlessly coarse
    assert series.count == n


def test_buckets_are_exact_means():
    rng = np.random.default_rng(0)
    values = rng.standard_normal(4096)
    series = BucketSeries(capacity=64)
    for i, v in enumerate(values):
        series.add(i, v)
    x, y = series.arrays()
    width = int(series.width)  # 4096 points in buckets of 128: 32 buckets
    assert len(y) == 4096 // width
    np.testing.assert_allclose(y, values.reshape(-1, width).mean(axis=1))
    np.testing.assert_allclose(x, np.arange(4096).reshape(-1, width).mean(axis=1))


def test_weighted_points_are_weighted_means():
    series = BucketSeries(capacity=4)
    series.add(0.0, 1.0, weight=1)
    series.add(1.0, 4.0, weight=3)  # closes the first bucket (weight 4 >= width 1)
    assert series.arrays()[1].tolist() == [1.0, 4.0]
    for _ in range(6):
        series.add(2.0, 2.0)
    _, y = series.arrays()
    assert math.isclose(series.count, 10)
    # the buckets' weighted mean is the weighted mean of every point
    weights = series._w[: series._size]
    if series._ow:
        weights = np.append(weights, series._ow)
    assert math.isclose(float(np.sum(y * weights) / np.sum(weights)), (1 + 4 * 3 + 2 * 6) / 10)


def test_non_finite_values_are_left_out():
    series = BucketSeries(capacity=8)
    for v in (1.0, float("nan"), 3.0, float("inf")):
        series.add(0, v)
    assert series.arrays()[1].tolist() == [1.0, 3.0]


def test_memory_is_fixed_at_construction():
    series = BucketSeries(capacity=128)
    arrays = (series._x, series._y, series._w)
    for i in range(200_000):
        series.add(i, i)
    assert (series._x, series._y, series._w) == arrays  # the same buffers, never grown
    assert all(a.nbytes == 128 * 8 for a in arrays)


def test_last_and_clear():
    series = BucketSeries(capacity=4)
    assert series.last() is None
    series.add(1, 2)
    assert series.last() == (1, 2)
    series.clear()
    assert len(series) == 0 and series.last() is None


def test_capacity_must_be_even():
    with pytest.raises(ValueError):
        BucketSeries(capacity=5)
