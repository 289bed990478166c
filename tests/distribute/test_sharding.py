"""Sharding a Sequence by worker (`nbtrain.ShardedSequence`, `worker_shard` from
TF_CONFIG) and the control words' agreement checks, without starting a cluster."""

from __future__ import annotations

import json

import numpy as np
import pytest

import nbtrain
from nbtrain.data import ShardedSequence, WorkerShard, worker_shard
from nbtrain.engine.distributed import (
    IN_PASS,
    PAUSE,
    RUN,
    CollectiveControl,
    WorkersOutOfStepError,
)


class Numbers(nbtrain.Sequence):
    def __init__(self, n):
        self.n, self.ends = n, 0

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return i

    def on_epoch_end(self):
        self.ends += 1


def cluster(workers=2, chief=0, evaluator=0):
    spec = {"worker": [f"127.0.0.1:{2000 + i}" for i in range(workers)]}
    if chief:
        spec["chief"] = ["127.0.0.1:1999"]
    if evaluator:
        spec["evaluator"] = ["127.0.0.1:1998"]
    return spec


@pytest.mark.parametrize("config, expected", [
    (None, WorkerShard(0, 1)),
    ("", WorkerShard(0, 1)),
    ({"cluster": cluster(1), "task": {"type": "worker", "index": 0}}, WorkerShard(0, 1)),
    ({"cluster": cluster(3), "task": {"type": "worker", "index": 2}}, WorkerShard(2, 3)),
    ({"cluster": cluster(2, chief=1), "task": {"type": "chief", "index": 0}}, WorkerShard(0, 3)),
    ({"cluster": cluster(2, chief=1), "task": {"type": "worker", "index": 0}}, WorkerShard(1, 3)),
    ({"cluster": cluster(2, evaluator=1), "task": {"type": "worker", "index": 1}},
     WorkerShard(1, 2)),
])
def test_worker_shard_numbers_workers_as_the_strategy_does(monkeypatch, config, expected):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert worker_shard(config) == expected
    if config:
        monkeypatch.setenv("TF_CONFIG", json.dumps(config))
        assert worker_shard() == expected


def test_worker_shard_refuses_bad_configs():
    with pytest.raises(ValueError, match="not valid JSON"):
        worker_shard("{nope")
    with pytest.raises(ValueError, match="not one of the training tasks"):
        worker_shard({"cluster": cluster(2, evaluator=1), "task": {"type": "evaluator", "index": 0}})
    with pytest.raises(ValueError, match="not one of the training tasks"):
        worker_shard({"cluster": cluster(2), "task": {"type": "worker", "index": 5}})


def test_shards_stride_the_batches_and_have_equal_lengths():
    data = Numbers(11)
    shards = [ShardedSequence(data, index, 3) for index in range(3)]
    assert [len(s) for s in shards] == [3, 3, 3]  # the last 11 % 3 batches are left out
    assert [list(s) for s in shards] == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    with pytest.raises(IndexError):
        shards[0][3]
    data.n = 6  # the length is read again: a Sequence may change it between epochs
    assert [len(s) for s in shards] == [2, 2, 2]
    shards[1].on_epoch_end()
    assert data.ends == 1
    assert "index=1, count=3" in repr(shards[1])


def test_shard_position_defaults_to_tf_config(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps(
        {"cluster": cluster(2), "task": {"type": "worker", "index": 1}}))
    shard = nbtrain.ShardedSequence(Numbers(8))
    assert (shard.index, shard.count, list(shard)) == (1, 2, [1, 3, 5, 7])
    with pytest.raises(ValueError, match="0 <= index < count"):
        ShardedSequence(Numbers(8), 2, 2)


def test_a_shard_trains_like_any_sequence():
    from helpers import make_data, make_model

    x, y = make_data(64)

    class Rows(nbtrain.Sequence):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            return x[i * 8:(i + 1) * 8], y[i * 8:(i + 1) * 8]

    model = make_model()
    history = nbtrain.fit_generator(model, ShardedSequence(Rows(), 1, 2), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2


def control(chief: bool, workers: int = 2) -> CollectiveControl:
    """A CollectiveControl without a cluster: only its encoding is used."""
    c = object.__new__(CollectiveControl)
    c.num_workers, c.is_chief, c.task, c.timeout = workers, chief, "worker 0", 10.0
    return c


def test_only_the_chief_commands_and_positions_must_agree():
    chief, worker = control(True), control(False)
    summed = (chief.encode(PAUSE, 7, IN_PASS, (1, 5, 32))
              + worker.encode(RUN, 3, IN_PASS, (1, 5, 32)))
    assert chief.decode(summed) == (PAUSE, 7, ())
    assert worker.decode(summed.astype(np.float64)) == (PAUSE, 7, ())  # as a train step sums them
    for other in [(1, 6, 32), (2, 5, 32), (1, 5, 31)]:
        summed = chief.encode(RUN, 0, IN_PASS, (1, 5, 32)) + worker.encode(RUN, 0, IN_PASS, other)
        with pytest.raises(WorkersOutOfStepError, match="out of step"):
            chief.decode(summed)


def test_the_chiefs_hyperparameter_changes_travel_exactly_in_the_words():
    chief, worker = control(True), control(False)
    steer = ((0, 0.1), (3, 1e-7))
    summed = (chief.encode(RUN, 0, IN_PASS, (1, 5, 32), steer)
              + worker.encode(RUN, 0, IN_PASS, (1, 5, 32), ((1, 9.0),)))  # ignored: not the chief
    agreement = worker.decode(summed.astype(np.float64))  # as a train step sums them
    assert agreement.steer == steer  # bit for bit
    alone = control(True, workers=1)
    assert alone.decode(alone.encode(RUN, 0, IN_PASS, (0, 0, 0))).steer == ()
    with pytest.raises(ValueError, match="At most 2"):
        chief.encode(RUN, 0, IN_PASS, (0, 0, 0), ((0, 1.0), (1, 1.0), (2, 1.0)))


def test_a_workers_batch_is_split_across_its_own_replicas():
    import tensorflow as tf

    from nbtrain.engine.distributed import distribute_batch, local_replicas

    class Extended:
        worker_devices = ("/job:worker/task:1/device:GPU:0", "/job:worker/task:1/device:GPU:1")

    class TwoWorkersTwoDevices:
        """Worker 1 of 2 with 2 devices each: its replicas are 2 and 3 of 4."""

        extended = Extended()
        num_replicas_in_sync = 4

        def experimental_distribute_values_from_function(self, fn):
            return [fn(tf.distribute.experimental.ValueContext(1 * 2 + i, 4)) for i in range(2)]

    strategy = TwoWorkersTwoDevices()
    assert local_replicas(strategy) == 2
    x = np.arange(10).reshape(5, 2)
    shares = distribute_batch(strategy, (x, None))
    assert [share[0].tolist() for share in shares] == [x[:3].tolist(), x[3:].tolist()]
    assert [share[1] for share in shares] == [None, None]
