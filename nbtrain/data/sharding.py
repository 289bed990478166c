"""Each worker of a multi-worker job reads its own share of a Sequence.

Under `tf.distribute.MultiWorkerMirroredStrategy` every worker runs the same
program and trains on its own batches; the global batch of one step is the
batches of every worker together.  `ShardedSequence` gives worker `k` of `n`
the batches `k, k + n, k + 2n, ...` of a Sequence (index striding, so each
worker only ever loads its own batches), and the same number of them on every
worker: collective training needs every worker to run the same number of
steps per epoch, so the last `len(sequence) % n` batches of a pass are left
out.

`worker_shard()` reads which worker this is from `TF_CONFIG` without importing
TensorFlow (the data layer never does).
"""

from __future__ import annotations

import json
import os
from typing import Any, NamedTuple

from nbtrain.data.sequence import Sequence, sequence_length

# Jobs that train (an "evaluator" task does not take part in the collectives).
_TRAINING_JOBS = ("chief", "worker")


class WorkerShard(NamedTuple):
    """Which worker this process is, among how many training workers.

    Attributes:
        index: 0-based position of this worker; the chief (or worker 0 when the
            cluster has no chief job) is 0.
        count: number of training workers (chief and workers).
    """

    index: int
    count: int


def worker_shard(tf_config: str | dict | None = None) -> WorkerShard:
    """This worker's position in a multi-worker job, read from `TF_CONFIG`.

    The numbering is the one `MultiWorkerMirroredStrategy` uses for its
    replicas: the chief first, then the workers by index.  Without a
    `TF_CONFIG` (or with a one-worker cluster) it is `WorkerShard(0, 1)`.

    Args:
        tf_config: the JSON text or dict of a `TF_CONFIG`; None reads the
            `TF_CONFIG` environment variable.

    Returns:
        A `WorkerShard(index, count)`.

    Raises:
        ValueError: `TF_CONFIG` is not valid JSON, or its task is not a
            training task of its cluster.

    Example:

    ```python
    index, count = nbtrain.data.worker_shard()
    x_mine, y_mine = x[index::count], y[index::count]
    ```
    """
    if tf_config is None:
        tf_config = os.environ.get("TF_CONFIG", "")
    if isinstance(tf_config, str):
        if not tf_config.strip():
            return WorkerShard(0, 1)
        try:
            tf_config = json.loads(tf_config)
        except json.JSONDecodeError as exc:
            raise ValueError(f"TF_CONFIG is not valid JSON: {exc}") from None
    cluster = tf_config.get("cluster") or {}
    task = tf_config.get("task") or {}
    sizes = {job: len(cluster.get(job) or ()) for job in _TRAINING_JOBS}
    count = sum(sizes.values())
    if count <= 1:
        return WorkerShard(0, 1)
    task_type, task_index = task.get("type"), int(task.get("index", 0))
    if task_type not in _TRAINING_JOBS or not 0 <= task_index < sizes[task_type]:
        raise ValueError(
            f"TF_CONFIG's task {task!r} is not one of the training tasks of its cluster "
            f"({', '.join(f'{job}: {n}' for job, n in sizes.items() if n)})."
        )
    index = task_index if task_type == "chief" else sizes["chief"] + task_index
    return WorkerShard(index, count)


class ShardedSequence(Sequence):
    """Worker `index` of `count`'s share of a Sequence: batches `index, index + count, ...`.

    Every worker gets `len(sequence) // count` batches per pass (the same
    number on every worker, as collective training requires; the last
    `len(sequence) % count` batches are left out).  The length is read again
    whenever it is asked for, so a Sequence that changes its length between
    epochs is followed.  `on_epoch_end` is passed on: if it reshuffles, it must
    do so the same way on every worker (seed it), or workers will share
    batches.

    Args:
        sequence: an `nbtrain.Sequence` or a `keras.utils.PyDataset`.
        index: this worker's position; None reads it from `TF_CONFIG`.
        count: number of workers; None reads it from `TF_CONFIG`.

    Raises:
        ValueError: `index` is not in `[0, count)`.

    Example:

    ```python
    strategy = nbtrain.multi_worker_strategy()
    with strategy.scope():
        model = build_model()
    run = nbtrain.fit(model, nbtrain.ShardedSequence(Batches(x, y, 32)), epochs=5)
    ```
    """

    def __init__(self, sequence: Any, index: int | None = None, count: int | None = None):
        if index is None or count is None:
            shard = worker_shard()
            index = shard.index if index is None else index
            count = shard.count if count is None else count
        index, count = int(index), int(count)
        if count < 1 or not 0 <= index < count:
            raise ValueError(f"A shard needs 0 <= index < count, got index={index}, count={count}.")
        self.sequence, self.index, self.count = sequence, index, count

    def __len__(self) -> int:
        return sequence_length(self.sequence) // self.count

    def __getitem__(self, index: int) -> Any:
        if not 0 <= index < len(self):
            raise IndexError(f"Batch {index} of a shard of {len(self)} batches.")
        return self.sequence[index * self.count + self.index]

    def on_epoch_end(self) -> None:
        hook = getattr(self.sequence, "on_epoch_end", None)
        if callable(hook):
            hook()

    def __repr__(self) -> str:
        return f"ShardedSequence({self.sequence!r}, index={self.index}, count={self.count})"


__all__ = ["ShardedSequence", "WorkerShard", "worker_shard"]
