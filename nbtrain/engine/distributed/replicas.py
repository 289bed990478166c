"""Splitting each global batch across the replicas of a `tf.distribute` strategy.

A model built under `strategy.scope()` trains on batches that the enqueuer
produced whole.  Handing the same batch to every replica would be silently
wrong (or wasteful); instead each global batch becomes a per-replica value:
replica `i` of `n` gets rows `[i * ceil(b / n), (i + 1) * ceil(b / n))`, so a
batch whose size does not divide by `n` (or a small last batch) still works,
the last replicas getting fewer (possibly zero) rows.

Under `MultiWorkerMirroredStrategy` the batch is one worker's share of the
global batch, and `n` is that worker's own replicas; the step is
`multi_worker_step` (Keras's step with its outputs averaged in one all-reduce,
which can also carry the control words of `gate.CollectiveGate`).
"""

from __future__ import annotations

from typing import Any


def replicas(model: Any) -> int:
    """Number of replicas the model's strategy trains on (1 without a strategy)."""
    strategy = getattr(model, "distribute_strategy", None)
    return int(getattr(strategy, "num_replicas_in_sync", 1) or 1)


def local_replicas(strategy: Any) -> int:
    """Replicas of `strategy` on this worker: all of them for `MirroredStrategy`,
    this worker's devices for `MultiWorkerMirroredStrategy`."""
    try:
        devices = strategy.extended.worker_devices
    except (AttributeError, RuntimeError):  # the default strategy has none
        devices = None
    if devices:
        return len(devices)
    return int(getattr(strategy, "num_replicas_in_sync", 1) or 1)


def split_rows(value: Any, index: int, count: int) -> Any:
    """Replica `index`'s share of a tensor's rows (None stays None)."""
    if value is None:
        return None
    rows = value.shape[0]
    per = -(-rows // count)
    return value[index * per : (index + 1) * per]


def distribute_batch(strategy: Any, batch: Any) -> Any:
    """A per-replica value whose local replica `i` holds its share of every leaf of `batch`.

    Under `MultiWorkerMirroredStrategy` `batch` is this worker's share of the
    global batch; it is split across this worker's replicas only (global
    replica ids run `worker * local + i`).
    """
    import tensorflow as tf

    count = local_replicas(strategy)

    def shard(context: Any) -> Any:
        index = context.replica_id_in_sync_group % count
        return tf.nest.map_structure(lambda v: split_rows(v, index, count), batch)

    return strategy.experimental_distribute_values_from_function(shard)


def is_multi_worker(strategy: Any) -> bool:
    """True for a `MultiWorkerMirroredStrategy` with more than one worker."""
    if strategy is None:
        return False
    import tensorflow as tf

    return bool(isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
                and strategy.extended._in_multi_worker_mode())


def multi_worker_step(model: Any, mode: str, words: bool = False) -> Any:
    """The compiled one-batch step for `MultiWorkerMirroredStrategy`.

    It is Keras's own `one_step_on_data` - `strategy.run(model.train_step)` on
    the per-replica batch (each replica's loss is scaled by
    `1 / num_replicas_in_sync`; the gradients are summed over every replica of
    every worker), then every output averaged over all replicas - with two
    differences:

    - Keras 3 averages the outputs with `strategy.reduce("MEAN", v, axis=0)`
      under this strategy, which fails on scalar metric results
      (tensorflow/tensorflow#72388); here they are averaged as under
      `MirroredStrategy`.
    - All outputs travel in one all-reduce (a float64 vector, summed, then
      divided by the number of replicas) instead of one per metric: each
      collective costs a network round trip.  With `words=True` the step also
      takes a vector of control words (`control.CollectiveControl`) and
      sums it in the same all-reduce, one replica per worker contributing:
      keeping the workers in step then costs no collective of its own.

    Args:
        model: a compiled Keras model built under the strategy.
        mode: `"train"` or `"test"`.
        words: the step takes `(data, words)` and returns `(logs, summed words)`.

    Returns:
        A `tf.function`.
    """
    import tensorflow as tf

    strategy = model.distribute_strategy
    step = model.train_step if mode == "train" else model.test_step
    local = local_replicas(strategy)
    replicas_in_sync = int(strategy.num_replicas_in_sync)
    layout: dict = {}  # the outputs' structure, shapes and dtypes, recorded while tracing

    def replica_step(data: Any, control: Any = None) -> Any:
        outputs = step(data)
        leaves = tf.nest.flatten(outputs)
        layout.update(structure=outputs, shapes=[leaf.shape for leaf in leaves],
                      dtypes=[leaf.dtype for leaf in leaves])
        parts = [tf.reshape(tf.cast(leaf, tf.float64), [-1]) for leaf in leaves]
        if control is not None:
            context = tf.distribute.get_replica_context()
            first = tf.equal(context.replica_id_in_sync_group % local, 0)
            parts.append(tf.cast(control, tf.float64) * tf.cast(first, tf.float64))
        return tf.concat(parts, axis=0)

    def reduce(data: Any, control: Any = None) -> tuple[Any, Any]:
        args = (data,) if control is None else (data, control)
        total = strategy.reduce("SUM", strategy.run(replica_step, args=args), axis=None)
        sizes = [shape.num_elements() for shape in layout["shapes"]]
        if None in sizes:
            raise ValueError("Under MultiWorkerMirroredStrategy nbtrain needs the train and test "
                             "steps' outputs (loss and metric results) to have static shapes, got "
                             f"{layout['shapes']}.")
        values = tf.split(total[:sum(sizes)] / replicas_in_sync, sizes) if sizes else []
        leaves = [tf.cast(tf.reshape(value, shape), dtype)
                  for value, shape, dtype in zip(values, layout["shapes"], layout["dtypes"])]
        return tf.nest.pack_sequence_as(layout["structure"], leaves), total[sum(sizes):]

    if words:
        def function(data: Any, control: Any) -> Any:
            return reduce(data, control)
    else:
        def function(data: Any) -> Any:
            return reduce(data)[0]

    return tf.function(function, reduce_retracing=True,
                       jit_compile=bool(getattr(model, "jit_compile", False)))


__all__ = ["distribute_batch", "is_multi_worker", "local_replicas", "multi_worker_step", "replicas",
           "split_rows"]
