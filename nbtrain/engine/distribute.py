"""Splitting each global batch across the replicas of a `tf.distribute` strategy.

A model built under `strategy.scope()` trains on batches that the enqueuer
produced whole.  Handing the same batch to every replica would be silently
wrong (or wasteful); instead each global batch becomes a per-replica value:
replica `i` of `n` gets rows `[i * ceil(b / n), (i + 1) * ceil(b / n))`, so a
batch whose size does not divide by `n` (or a small last batch) still works,
the last replicas getting fewer (possibly zero) rows.
"""

from __future__ import annotations

from typing import Any


def replicas(model: Any) -> int:
    """Number of replicas the model's strategy trains on (1 without a strategy)."""
    strategy = getattr(model, "distribute_strategy", None)
    return int(getattr(strategy, "num_replicas_in_sync", 1) or 1)


def split_rows(value: Any, index: int, count: int) -> Any:
    """Replica `index`'s share of a tensor's rows (None stays None)."""
    if value is None:
        return None
    rows = value.shape[0]
    per = -(-rows // count)
    return value[index * per : (index + 1) * per]


def distribute_batch(strategy: Any, batch: Any) -> Any:
    """A per-replica value whose replica `i` holds its share of every leaf of `batch`."""
    import tensorflow as tf

    def shard(context: Any) -> Any:
        index, count = context.replica_id_in_sync_group, context.num_replicas_in_sync
        return tf.nest.map_structure(lambda v: split_rows(v, index, count), batch)

    return strategy.experimental_distribute_values_from_function(shard)
