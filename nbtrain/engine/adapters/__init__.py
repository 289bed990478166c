"""What the user passes as data, turned into what the loop reads: one module per
kind of input behind one dispatcher, as Keras's `trainers/data_adapters/`.

    arrays                -> array_adapter.ArrayAdapter       (`nbtrain.fit` only)
    Sequence, PyDataset   -> sequence_adapter.SequenceAdapter
    generator, iterator   -> generator_adapter.GeneratorAdapter
    tf.data.Dataset       -> tf_dataset_adapter.TFDatasetAdapter

Who owns which argument: `nbtrain.engine.config.fit_config` checks the
scalars (`epochs`, `workers`, `validation_steps`...) and `batch_size`, then
asks `adapt_training` and `adapt_validation` for the data; an adapter checks
what depends on its kind (`y`, `sample_weight`, `validation_split`, a
Sequence's length, the steps of an epoch when none are given).  Whether the
source can be sent to worker processes is checked by `fit_config` on the
adapter's `source`.
"""

from __future__ import annotations

import inspect
from typing import Any, NamedTuple

import numpy as np

from nbtrain.data.arrays import ArraySequence, is_array_data
from nbtrain.engine.adapters.array_adapter import (
    ArrayAdapter,
    is_validation_arrays,
    keras2_validation_data,
    validation_arrays,
)
from nbtrain.engine.adapters.data_adapter import DataAdapter
from nbtrain.engine.adapters.generator_adapter import GeneratorAdapter
from nbtrain.engine.adapters.sequence_adapter import SequenceAdapter, check_sequence
from nbtrain.engine.adapters.tf_dataset_adapter import TFDatasetAdapter
from nbtrain.engine.batches import describe

#: The batched kinds, in the order they are tried.
ADAPTERS = (SequenceAdapter, GeneratorAdapter, TFDatasetAdapter)


def _kinds(api: str) -> str:
    if api == "fit":
        return ("NumPy arrays with `y`, an nbtrain.Sequence, a keras.utils.PyDataset, a generator "
                "or a tf.data.Dataset")
    return "a Python generator/iterator, an nbtrain.Sequence or a keras.utils.PyDataset"


def get_data_adapter(data: Any, name: str, api: str) -> DataAdapter:
    """The adapter of batched `data` (not arrays: see `adapt_training`); a clear
    TypeError naming `name` for anything else.

    Args:
        data: what the user passed as `name`.
        name: the argument (`x`, `generator`, `validation_data`).
        api: the public function (`fit`, `fit_generator`, `evaluate_generator`...),
            which says what else it would have taken.

    Example:

    ```python
    adapter = get_data_adapter(sequence, "generator", "fit_generator")
    adapter.source is sequence        # True
    ```
    """
    if inspect.isclass(data):
        raise TypeError(f"`{name}` is the class {data.__name__}, not an instance: pass "
                        f"{data.__name__}(...).")
    if inspect.isgeneratorfunction(data):
        raise TypeError(f"`{name}` is the generator function {data.__name__}, not a "
                        f"generator: call it, `{data.__name__}(...)`.")
    for adapter in ADAPTERS:
        if adapter.accepts(data):
            return adapter(data)
    hint = ""
    if isinstance(data, (list, tuple)) and data and isinstance(data[0], (list, tuple)):
        steps = "steps_per_epoch" if name in ("x", "generator") else "validation_steps"
        hint = (f" For a list of batches pass `iter(batches)` with `{steps}={len(data)}`, or "
                "wrap them in an nbtrain.Sequence.")
    elif api != "fit" and (is_array_data(data) or (isinstance(data, (list, tuple)) and data
                                                   and all(is_array_data(v) for v in data))):
        hint = " For arrays in memory use nbtrain.fit(model, x, y, batch_size=...)."
    if not hint and hasattr(data, "__iter__") and not isinstance(
            data, (list, tuple, dict, str, bytes, np.ndarray)):
        return GeneratorAdapter.of_iterable(data)  # a data loader...: one pass
    raise TypeError(f"`{name}` must be {_kinds(api)}; got {describe(data)}.{hint}")


def adapt_training(model: Any, x: Any, y: Any, *, api: str, batch_size: int | None,
                   sample_weight: Any, validation_split: float, validation_data: Any,
                   shuffle: bool, seed: int | None) -> tuple[DataAdapter, Any]:
    """The training data's adapter, and the validation data (for arrays with
    `validation_split`, the held-out samples).

    Args:
        model, x, y, sample_weight, validation_split, validation_data, shuffle:
            as `nbtrain.fit` takes them (`validation_split` checked).
        api: `"fit"` (arrays allowed) or `"fit_generator"`.
        batch_size: checked, for arrays; as given otherwise (it must be None).
        seed: seed of the sample shuffling of arrays (None draws one from `np.random`).
    """
    if ArrayAdapter.accepts(x, api):
        adapter = ArrayAdapter.training(
            model, x, y, sample_weight, batch_size=batch_size, validation_split=validation_split,
            validation_data=validation_data, shuffle=shuffle, seed=seed)
        return adapter, adapter.validation_data
    name = "x" if api == "fit" else "generator"
    adapter = get_data_adapter(x, name, api)
    adapter.refuse_array_arguments(name, y, sample_weight, batch_size, validation_split)
    adapter.check(name)
    return adapter, validation_data


class Validation(NamedTuple):
    """Validation data as the loop reads it.

    Attributes:
        source: a Sequence or an iterator.
        steps: batches per validation, or None for the Sequence's length.
        arrays: for array data, Keras 2's `callback.validation_data`; else None.
        adapter: for batched data, its adapter; else None.
    """

    source: Any
    steps: int | None
    arrays: list | None
    adapter: DataAdapter | None


def adapt_validation(validation_data: Any, steps: int | None, *, api: str,
                     batch_size: int | None) -> Validation:
    """`validation_data` (not None) as the loop reads it.

    Args:
        validation_data: `(x, y)`, `(x, y, sample_weight)`, a Sequence, a PyDataset,
            a generator or a `tf.data.Dataset`.
        steps: `validation_steps` (checked).
        api: the public function, for messages.
        batch_size: of array validation data (None: 32 until the first training
            batch's size is known).
    """
    if is_validation_arrays(validation_data):
        source, arrays = validation_arrays(validation_data, batch_size)
        return Validation(source, steps, arrays, None)
    adapter = get_data_adapter(validation_data, "validation_data", api)
    steps = adapter.validation_steps(steps)
    adapter.check("validation_data")
    return Validation(adapter.source, steps, None, adapter)


__all__ = ["ADAPTERS", "ArrayAdapter", "ArraySequence", "DataAdapter", "GeneratorAdapter",
           "SequenceAdapter", "TFDatasetAdapter", "Validation", "adapt_training",
           "adapt_validation", "check_sequence", "get_data_adapter", "keras2_validation_data"]
