"""Checks made before any work starts, with the seed's clear messages."""

from __future__ import annotations

from typing import Any

import numpy as np

from nbtrain.data import ArraySequence, is_sequence, sequence_length


def check_model(model: Any, what: str = "fit_generator") -> None:
    """The model must be a compiled Keras model."""
    if not hasattr(model, "compile") or not hasattr(model, "train_on_batch"):
        raise TypeError(f"{what} needs a keras.Model, got {type(model).__name__}.")
    if not getattr(model, "compiled", False) or getattr(model, "optimizer", None) is None:
        raise ValueError(
            f"You must compile your model before calling {what}: "
            "model.compile(optimizer=..., loss=...)."
        )


def as_source(data: Any, name: str = "generator") -> Any:
    """A Sequence or an iterator; anything else is a clear TypeError."""
    if is_sequence(data):
        return data
    if hasattr(data, "__next__"):
        return data
    if isinstance(data, (np.ndarray, str, bytes, dict)) or data is None:
        raise TypeError(
            f"`{name}` must be a Python generator/iterator, an nbtrain.Sequence or a "
            f"keras.utils.PyDataset; got {type(data).__name__}. For in-memory arrays use "
            "nbtrain.fit(model, x, y, batch_size=...)."
        )
    if hasattr(data, "__iter__"):
        return iter(data)  # e.g. a tf.data.Dataset or a list of batches: one pass
    raise TypeError(
        f"`{name}` must be a Python generator/iterator, an nbtrain.Sequence or a "
        f"keras.utils.PyDataset; got {type(data).__name__}."
    )


def check_steps(source: Any, steps: Any, name: str, what: str) -> int | None:
    """`steps` may be None only for a Sequence (then its length, read each epoch)."""
    if steps is None:
        if is_sequence(source):
            return None
        raise ValueError(
            f"`{name}=None` is only valid for a Sequence or PyDataset; with a generator "
            f"{what} cannot know where an epoch ends. Pass `{name}` (the number of batches "
            "to draw)."
        )
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"`{name}` must be a positive integer or None, got {steps!r}.")
    return int(steps)


def check_validation(validation_data: Any, validation_steps: Any) -> tuple[Any, int | None]:
    """Normalise `validation_data` to a Sequence or an iterator (or None)."""
    if validation_data is None:
        return None, None
    if isinstance(validation_data, (tuple, list)) and not is_sequence(validation_data):
        if len(validation_data) not in (2, 3):
            raise ValueError(
                "`validation_data` should be a tuple `(val_x, val_y)` or "
                f"`(val_x, val_y, val_sample_weight)`, or a generator or Sequence; "
                f"got a {type(validation_data).__name__} of length {len(validation_data)}."
            )
        # Batch size is set from the first training batch (see FitLoop).
        return ArraySequence(*validation_data, batch_size=32), None
    source = as_source(validation_data, "validation_data")
    if validation_steps is None and not is_sequence(source):
        raise ValueError(
            "`validation_steps=None` is only valid for a validation Sequence or tuple. "
            "When validation_data is a generator, pass `validation_steps` (the number of "
            "batches to draw from it at the end of every epoch)."
        )
    return source, check_steps(source, validation_steps, "validation_steps", "fit_generator")


def check_validation_freq(validation_freq: Any) -> Any:
    if isinstance(validation_freq, bool):
        raise ValueError(f"`validation_freq` must be an int or a list of epochs, got {validation_freq!r}.")
    if isinstance(validation_freq, (int, np.integer)):
        if validation_freq < 1:
            raise ValueError(f"`validation_freq` must be at least 1, got {validation_freq}.")
        return int(validation_freq)
    if isinstance(validation_freq, (list, tuple, set)):
        return [int(e) for e in validation_freq]
    raise ValueError(
        "`validation_freq` must be an int or a list of 1-indexed epochs, got "
        f"{type(validation_freq).__name__}."
    )


def should_validate(epoch: int, validation_freq: Any) -> bool:
    """`epoch` is 0-indexed; `validation_freq` counts epochs from 1."""
    if isinstance(validation_freq, int):
        return (epoch + 1) % validation_freq == 0
    return epoch + 1 in validation_freq


def check_workers(workers: Any, max_queue_size: Any) -> None:
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 0:
        raise ValueError(f"`workers` must be an integer >= 0, got {workers!r}.")
    if not isinstance(max_queue_size, (int, np.integer)) or max_queue_size < 1:
        raise ValueError(f"`max_queue_size` must be an integer >= 1, got {max_queue_size!r}.")


def check_epochs(epochs: Any, initial_epoch: Any) -> None:
    for name, value in (("epochs", epochs), ("initial_epoch", initial_epoch)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"`{name}` must be an integer >= 0, got {value!r}.")


def source_length(source: Any) -> int:
    return sequence_length(source)
