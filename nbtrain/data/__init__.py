"""Data sources and enqueuers.  Knows nothing of models or widgets, and never
imports TensorFlow or Keras at import time."""

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
