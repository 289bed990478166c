"""A `tf.data.Dataset`: read as NumPy batches (`DatasetBatches`), pass after pass;
an epoch is its cardinality when known."""

from __future__ import annotations

from typing import Any

from nbtrain.data import DatasetBatches, is_tf_dataset
from nbtrain.engine.adapters.data_adapter import DataAdapter


class TFDatasetAdapter(DataAdapter):
    """A `tf.data.Dataset` (or `DatasetBatches` over one)."""

    unknown_length = "a tf.data.Dataset of unknown or infinite cardinality"

    def __init__(self, data: Any):
        if is_tf_dataset(data):
            super().__init__(DatasetBatches(data), "a tf.data.Dataset")
        else:
            super().__init__(data, "a generator")

    @staticmethod
    def accepts(data: Any) -> bool:
        return is_tf_dataset(data) or isinstance(data, DatasetBatches)

    def default_steps(self, name: str, what: str) -> int | None:
        if self.source.steps is not None:
            return self.source.steps
        return super().default_steps(name, what)

    def validation_steps(self, steps: int | None) -> int | None:
        return super().validation_steps(self.source.steps if steps is None else steps)


__all__ = ["TFDatasetAdapter"]
