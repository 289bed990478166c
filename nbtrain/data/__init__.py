"""Data sources and enqueuers.  Knows nothing of models or widgets, and never
imports TensorFlow or Keras at import time.

The rooms of this package:

- `sequence`: `Sequence` (the Keras 2 base class), `SequenceCursor` (where
  a stream over a Sequence stands: the pass's order, the batches taken),
  `is_sequence`, `sequence_length`;
- `arrays`: `ArraySequence` (arrays in memory as batches), `is_array_data`,
  the nested-structure helpers, `iter_sequence_infinite`;
- `datasets`: `DatasetBatches`, a `tf.data.Dataset` read as NumPy batches
  (TensorFlow only looked up, never imported);
- `sharding`: `ShardedSequence`, `worker_shard`: each worker of a
  multi-worker job reads its own share;
- `enqueuers`: `OrderedEnqueuer` (a Sequence, in order) and
  `GeneratorEnqueuer` (a generator), read ahead on threads or processes;
- `handoff`: what workers hand the enqueuers: the pool protocol
  (`BatchPool`) and its one future (`BatchFuture`), the generators' queue
  items, `WorkerLost`, `DEFAULT_GRACE`;
- `threads`: `ThreadPool`, the thread workers of `OrderedEnqueuer`;
- `_processes/`: the process workers (`use_multiprocessing=True`): pool,
  worker group, spawn, shared memory, pickling, light Keras; its map and the
  data flow are drawn in its `__init__`;
- `userwarning`: warnings that point at the user's line.
"""

from nbtrain.data.arrays import ArraySequence, is_array_data, iter_sequence_infinite
from nbtrain.data.datasets import DatasetBatches, dataset_steps, is_tf_dataset
from nbtrain.data.enqueuers import GeneratorEnqueuer, OrderedEnqueuer
from nbtrain.data.handoff import WorkerLost
from nbtrain.data.sequence import Sequence, SequenceCursor, is_sequence, sequence_length
from nbtrain.data.sharding import ShardedSequence, WorkerShard, worker_shard

__all__ = [
    "ArraySequence",
    "DatasetBatches",
    "GeneratorEnqueuer",
    "OrderedEnqueuer",
    "Sequence",
    "SequenceCursor",
    "ShardedSequence",
    "WorkerLost",
    "WorkerShard",
    "dataset_steps",
    "is_array_data",
    "is_sequence",
    "is_tf_dataset",
    "iter_sequence_infinite",
    "sequence_length",
    "worker_shard",
]
