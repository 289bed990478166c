"""Data sources and enqueuers.  Knows nothing of models or widgets, and never
imports TensorFlow or Keras at import time."""

from nbtrain.data.adapters import ArraySequence, iter_sequence_infinite
from nbtrain.data.enqueuers import GeneratorEnqueuer, OrderedEnqueuer
from nbtrain.data.sequence import Sequence, SequenceCursor, is_sequence, sequence_length

__all__ = [
    "ArraySequence",
    "GeneratorEnqueuer",
    "OrderedEnqueuer",
    "Sequence",
    "SequenceCursor",
    "is_sequence",
    "iter_sequence_infinite",
    "sequence_length",
]
