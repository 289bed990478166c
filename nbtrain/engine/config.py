"""`FitConfig`: every argument of a training job, checked and adapted once.

Every public way to train (`nbtrain.fit`, `nbtrain.Run`, `nbtrain.fit_generator`,
`nbtrain.engine.fit_generator`, `FitLoop`) calls `fit_config`, the one adapter
entry point.  It refuses bad input in the caller's thread, before any callback
or worker starts, with a message that names the argument, shows what was
received and says what to do; and it turns what the user passed (arrays, a
Sequence, a PyDataset, a generator, a `tf.data.Dataset`) into what the loop
reads.  The result is a frozen `FitConfig`: the loop never checks an argument
again.

The meaning of each argument is written once, in `ARGUMENTS` (a test checks
that `nbtrain.fit` takes and documents each).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np

from nbtrain.data import (
    ArraySequence,
    DatasetBatches,
    is_array_data,
    is_sequence,
    is_tf_dataset,
    sequence_length,
)
from nbtrain.engine.batches import check_class_weight, describe

#: The arguments of `model.fit` and `fit_generator`, and what they mean here.
ARGUMENTS: dict[str, str] = {
    "model": "a compiled `keras.Model`.",
    "x": "arrays (a NumPy array, or a list or dict of them for several inputs) with `y`, "
         "an `nbtrain.Sequence`, a `keras.utils.PyDataset`, a generator (with "
         "`steps_per_epoch`) or a `tf.data.Dataset`.",
    "y": "targets, only when `x` is arrays.",
    "batch_size": "samples per batch, only for arrays (default 32).",
    "epochs": "index of the final epoch: trains epochs `initial_epoch` to `epochs - 1`.",
    "verbose": "0 silent, 1 a progress bar, 2 one line per epoch (Keras's own display); "
               "'auto' is 1.",
    "callbacks": "a list of `keras.callbacks.Callback` (run on the training thread).",
    "validation_split": "fraction of the array samples (the last ones, before shuffling) "
                        "held out for validation, as `model.fit` does.",
    "validation_data": "`(x, y)`, `(x, y, sample_weight)`, a Sequence, a PyDataset, a "
                       "generator (with `validation_steps`) or a `tf.data.Dataset`.",
    "shuffle": "shuffle array samples, or a Sequence's batch order, at every epoch.",
    "class_weight": "dict mapping class index to a weight for the loss.",
    "sample_weight": "per-sample weights, only when `x` is arrays.",
    "initial_epoch": "epoch at which to start (to resume a previous run).",
    "steps_per_epoch": "batches per epoch; None means the Sequence's length (read again "
                       "after every epoch) or the dataset's cardinality; required for a "
                       "generator.",
    "validation_steps": "batches per validation; required for a validation generator.",
    "validation_batch_size": "samples per validation batch for array validation data "
                             "(default `batch_size`).",
    "validation_freq": "validate every N epochs (int), or at these 1-indexed epochs (list).",
    "max_queue_size": "batches read ahead by the workers.",
    "workers": "0 reads data on the training thread; N >= 1 uses N workers.",
    "use_multiprocessing": "the workers are processes instead of threads.",
}

_VERBOSE = {0: 0, 1: 1, 2: 2, "auto": 1, "silent": 0, None: 0}  # False == 0, True == 1


@dataclass(frozen=True)
class FitConfig:
    """A training job's arguments, checked and in the forms the loop reads.

    Build it with `fit_config`; nothing in it is checked again.

    Attributes:
        api: the public function called (`"fit"` or `"fit_generator"`), for messages.
        model: the compiled model.
        data: what the loop reads: a Sequence, a PyDataset or an iterator.
        steps_per_epoch: batches per epoch, or None for the Sequence's length.
        shuffle: shuffle the Sequence's batch order at every epoch.
        epochs, initial_epoch: the final epoch and the first one.
        verbose: 0, 1 or 2.
        callbacks: the user's callbacks.
        validation: the validation data the loop reads (a Sequence or an iterator), or None.
        validation_steps: batches per validation, or None for the Sequence's length.
        validation_freq: an int, or a tuple of 1-indexed epochs.
        validation_arrays: for array validation data, the list Keras 2 gave
            callbacks as `validation_data` (inputs, then targets, then sample
            weights); None otherwise.
        validation_batch_size: batch size of array validation data, or None
            for the first training batch's size.
        class_weight: None or a dict.
        max_queue_size, workers, use_multiprocessing: how the data is read.

    Example:

    ```python
    config = fit_config(model, x_train, y_train, batch_size=64, epochs=3)
    loop = FitLoop.from_config(config)
    ```
    """

    api: str
    model: Any
    data: Any
    steps_per_epoch: int | None
    shuffle: bool
    epochs: int
    initial_epoch: int
    verbose: int
    callbacks: tuple
    validation: Any
    validation_steps: int | None
    validation_freq: Any
    validation_arrays: list | None
    validation_batch_size: int | None
    class_weight: dict | None
    max_queue_size: int
    workers: int
    use_multiprocessing: bool


# -- small checks -------------------------------------------------------------------------


def _shown(value: Any) -> str:
    return describe(value)


def _integer(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_model(model: Any, api: str = "fit_generator") -> None:
    """The model must be a compiled Keras model."""
    if inspect.isclass(model):
        raise TypeError(f"`model` is the class {model.__name__}, not a model: build one "
                        f"(`model = {model.__name__}(...)`) and compile it.")
    if not hasattr(model, "compile") or not hasattr(model, "train_on_batch"):
        raise TypeError(f"`model` must be a keras.Model; {api} got {_shown(model)}.")
    if not getattr(model, "compiled", False) or getattr(model, "optimizer", None) is None:
        raise ValueError(
            f"You must compile your model before calling {api}: "
            "model.compile(optimizer=..., loss=...)."
        )


def check_int(name: str, value: Any, minimum: int, *, none: bool = False) -> int | None:
    """`value` as an int >= `minimum` (None allowed with `none`), else a ValueError naming it."""
    if value is None and none:
        return None
    if not _integer(value) or value < minimum:
        allowed = " or None" if none else ""
        raise ValueError(f"`{name}` must be an integer >= {minimum}{allowed}, got {value!r}.")
    return int(value)


def check_verbose(verbose: Any) -> int:
    """0, 1 or 2 (`'auto'` is 1, `'silent'` is 0)."""
    try:
        return _VERBOSE[verbose]
    except (KeyError, TypeError):
        raise ValueError(f"`verbose` must be 0, 1, 2 or 'auto', got {verbose!r}.") from None


def check_validation_freq(validation_freq: Any) -> Any:
    """An int >= 1, or a tuple of 1-indexed epochs."""
    if _integer(validation_freq):
        if validation_freq < 1:
            raise ValueError(f"`validation_freq` must be at least 1, got {validation_freq}.")
        return int(validation_freq)
    if isinstance(validation_freq, (list, tuple, set)) and all(
            _integer(e) for e in validation_freq):
        return tuple(int(e) for e in validation_freq)
    raise ValueError("`validation_freq` must be an int or a list of 1-indexed epochs, got "
                     f"{validation_freq!r}.")


def should_validate(epoch: int, validation_freq: Any) -> bool:
    """`epoch` is 0-indexed; `validation_freq` counts epochs from 1."""
    if isinstance(validation_freq, int):
        return (epoch + 1) % validation_freq == 0
    return epoch + 1 in validation_freq


def check_callbacks(callbacks: Any) -> tuple:
    """The callbacks as a tuple of `keras.callbacks.Callback`."""
    import keras

    if callbacks is None:
        return ()
    if isinstance(callbacks, keras.callbacks.CallbackList):
        callbacks = callbacks.callbacks
    if isinstance(callbacks, keras.callbacks.Callback):
        raise TypeError("`callbacks` must be a list of callbacks; got one "
                        f"{type(callbacks).__name__}: pass `callbacks=[...]`.")
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"`callbacks` must be a list of keras.callbacks.Callback, got "
                        f"{_shown(callbacks)}.")
    for callback in callbacks:
        if inspect.isclass(callback) and issubclass(callback, keras.callbacks.Callback):
            raise TypeError(f"`callbacks` holds the class {callback.__name__}, not an "
                            f"instance: pass {callback.__name__}(...).")
        if not isinstance(callback, keras.callbacks.Callback):
            raise TypeError(f"`callbacks` must be keras.callbacks.Callback instances, got "
                            f"{_shown(callback)}.")
    return tuple(callbacks)


# -- data ---------------------------------------------------------------------------------


def _kinds(api: str) -> str:
    if api == "fit":
        return ("NumPy arrays with `y`, an nbtrain.Sequence, a keras.utils.PyDataset, a generator "
                "or a tf.data.Dataset")
    return "a Python generator/iterator, an nbtrain.Sequence or a keras.utils.PyDataset"


def check_sequence(sequence: Any, name: str) -> int:
    """A Sequence's length, which must be at least 1."""
    try:
        length = sequence_length(sequence)
    except Exception as exc:
        raise TypeError(f"`{name}` ({type(sequence).__name__}) has no usable length: "
                        f"{type(exc).__name__}: {exc}. Define `__len__` (the number of "
                        "batches).") from exc
    if length < 1:
        raise ValueError(f"`{name}` is empty: {type(sequence).__name__} has length "
                         f"{length}. A Sequence must hold at least one batch (check its "
                         "`__len__` and the data it reads).")
    return length


def as_source(data: Any, name: str, api: str) -> Any:
    """`data` as a Sequence or an iterator the loop can read; a clear error otherwise."""
    if inspect.isclass(data):
        raise TypeError(f"`{name}` is the class {data.__name__}, not an instance: pass "
                        f"{data.__name__}(...).")
    if is_sequence(data):
        return data
    if inspect.isgeneratorfunction(data):
        raise TypeError(f"`{name}` is the generator function {data.__name__}, not a "
                        f"generator: call it, `{data.__name__}(...)`.")
    if hasattr(data, "__next__"):
        return data
    if is_tf_dataset(data):
        return DatasetBatches(data)
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
        return iter(data)  # another iterable (a data loader...): one pass
    raise TypeError(f"`{name}` must be {_kinds(api)}; got {_shown(data)}.{hint}")


def check_steps(source: Any, steps: Any, name: str, what: str) -> int | None:
    """`steps` may be None only for a Sequence (then its length, read each epoch)
    or a dataset of known cardinality."""
    if steps is None:
        if is_sequence(source):
            return None
        if isinstance(source, DatasetBatches) and source.steps is not None:
            return source.steps
        kind = ("a tf.data.Dataset of unknown or infinite cardinality"
                if isinstance(source, DatasetBatches) else "a generator")
        raise ValueError(
            f"`{name}=None` is only valid for a Sequence or a PyDataset; with {kind} "
            f"{what} cannot know where an epoch ends. Pass `{name}` (the number of batches "
            "to draw)."
        )
    return check_int(name, steps, 1)


def _split(structure: Any, index: slice) -> Any:
    if structure is None:
        return None
    if isinstance(structure, dict):
        return {k: _split(v, index) for k, v in structure.items()}
    if isinstance(structure, (list, tuple)):
        return type(structure)(_split(v, index) for v in structure)
    return structure[index]


def _numpy(structure: Any) -> Any:
    if structure is None:
        return None
    if isinstance(structure, dict):
        return {k: _numpy(v) for k, v in structure.items()}
    if isinstance(structure, (list, tuple)):
        return type(structure)(_numpy(v) for v in structure)
    return np.asarray(structure)


def _samples(structure: Any) -> int:
    if isinstance(structure, dict):
        structure = next(iter(structure.values()))
    elif isinstance(structure, (list, tuple)):
        structure = structure[0]
    return len(structure)


def _leaves(structure: Any) -> list:
    if structure is None:
        return []
    if isinstance(structure, dict):
        return [leaf for v in structure.values() for leaf in _leaves(v)]
    if isinstance(structure, (list, tuple)):
        return [leaf for v in structure for leaf in _leaves(v)]
    return [structure]


def keras2_validation_data(x: Any, y: Any, sample_weight: Any) -> list:
    """What Keras 2 set as `callback.validation_data`: inputs, targets, sample weights."""
    n = _samples(x)
    weights = _leaves(sample_weight) or [np.ones((n,), dtype="float32") for _ in _leaves(y)]
    return [*_leaves(x), *_leaves(y), *weights]


def _check_samples(x: Any, y: Any, sample_weight: Any, what: str) -> int:
    n = _samples(x)
    for name, value in (("y", y), ("sample_weight", sample_weight)):
        if value is not None and _samples(value) != n:
            raise ValueError(f"{what}: `x` has {n} samples but `{name}` has "
                             f"{_samples(value)}; they must have the same first dimension.")
    if n == 0:
        raise ValueError(f"{what}: `x` has no samples (first dimension 0).")
    return n


def _validation_tuple(value: tuple, batch_size: int | None,
                      validation_batch_size: int | None) -> tuple[ArraySequence, list]:
    if len(value) not in (2, 3):
        raise ValueError(
            "`validation_data` should be a tuple `(val_x, val_y)` or "
            "`(val_x, val_y, val_sample_weight)`, or a generator or Sequence; got a "
            f"{type(value).__name__} of length {len(value)}: {_shown(value)}."
        )
    x, y = value[0], value[1]
    sample_weight = value[2] if len(value) == 3 else None
    for name, part in (("val_x", x), ("val_y", y), ("val_sample_weight", sample_weight)):
        if part is not None and not is_array_data(part):
            raise TypeError(f"`validation_data`: `{name}` must be an array (or a list or "
                            f"dict of arrays); got {_shown(part)}.")
    if x is None:
        raise ValueError("`validation_data`: `val_x` is None.")
    x, y, sample_weight = _numpy(x), _numpy(y), _numpy(sample_weight)
    _check_samples(x, y, sample_weight, "`validation_data`")
    size = validation_batch_size or batch_size or 32
    return (ArraySequence(x, y, sample_weight, batch_size=size),
            keras2_validation_data(x, y, sample_weight))


def check_processes(source: Any, name: str, use_multiprocessing: bool, workers: int) -> None:
    if not use_multiprocessing or workers == 0:
        return
    if isinstance(source, DatasetBatches):
        raise ValueError(
            f"`{name}` is a tf.data.Dataset, which cannot be sent to worker processes: "
            "pass use_multiprocessing=False (threads) or use the dataset's own parallelism "
            "(`dataset.map(..., num_parallel_calls=tf.data.AUTOTUNE)`).")
    if is_sequence(source):
        from nbtrain.data._processes.pool import check_sendable, draw_shuffle_order

        draw_shuffle_order(source)  # before anything reads a copy of it (the first batch)
        check_sendable(source, name)
    else:
        from nbtrain.data._processes.pool import check_fresh_generator

        check_fresh_generator(source, name)


# -- the entry point ----------------------------------------------------------------------


def fit_config(model: Any, x: Any, y: Any = None, *, api: str = "fit",
               batch_size: int | None = None, epochs: int = 1, verbose: Any = "auto",
               callbacks: Any = None, validation_split: float = 0.0,
               validation_data: Any = None, shuffle: bool = True,
               class_weight: dict | None = None, sample_weight: Any = None,
               initial_epoch: int = 0, steps_per_epoch: int | None = None,
               validation_steps: int | None = None, validation_batch_size: int | None = None,
               validation_freq: Any = 1, max_queue_size: int = 10, workers: int = 1,
               use_multiprocessing: bool = False, seed: int | None = None) -> FitConfig:
    """Check every argument of a training job and adapt its data: the one entry point.

    Args: those of `model.fit` (see `ARGUMENTS`), plus
        api: `"fit"` (arrays allowed, `nbtrain.fit` and `Run`) or
            `"fit_generator"` (batches only, Keras 2's `fit_generator`).
        seed: seed of the sample shuffling of arrays (None draws one from
            `np.random`, so `keras.utils.set_random_seed` makes it reproducible).

    Returns:
        A frozen `FitConfig`.

    Raises:
        TypeError, ValueError: for bad input, naming the argument, showing what
            was received and saying what to do. Nothing has started.

    Example:

    ```python
    config = fit_config(model, sequence, api="fit_generator", epochs=5)
    config.steps_per_epoch   # None: the Sequence's length, read at every epoch
    ```
    """
    check_model(model, api)
    verbose = check_verbose(verbose)
    epochs = check_int("epochs", epochs, 1)
    initial_epoch = check_int("initial_epoch", initial_epoch, 0)
    if initial_epoch >= epochs:
        raise ValueError(
            f"`initial_epoch={initial_epoch}` is not before `epochs={epochs}`: nothing would "
            "be trained. `epochs` is the index of the final epoch, not a count: to train N "
            f"more epochs pass `epochs={initial_epoch} + N`."
        )
    workers = check_int("workers", workers, 0)
    max_queue_size = check_int("max_queue_size", max_queue_size, 1)
    if not isinstance(use_multiprocessing, (bool, np.bool_)) and use_multiprocessing not in (0, 1):
        raise TypeError(f"`use_multiprocessing` must be True or False, got "
                        f"{use_multiprocessing!r}.")
    use_multiprocessing = bool(use_multiprocessing)
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"`shuffle` must be True or False, got {shuffle!r}"
                        + (" ('batch' shuffling is not supported)." if shuffle == "batch"
                           else "."))
    callbacks = check_callbacks(callbacks)
    class_weight = check_class_weight(class_weight)
    validation_freq = check_validation_freq(validation_freq)
    validation_steps = check_int("validation_steps", validation_steps, 1, none=True)
    validation_batch_size = check_int("validation_batch_size", validation_batch_size, 1,
                                      none=True)
    if not isinstance(validation_split, (int, float, np.floating)) or isinstance(
            validation_split, bool) or not 0 <= validation_split < 1:
        raise ValueError(f"`validation_split` must be a float in [0, 1), got "
                         f"{validation_split!r}.")

    arrays = api == "fit" and is_array_data(x)
    validation_arrays = None
    val_source = None
    if arrays:
        batch_size = check_int("batch_size", 32 if batch_size is None else batch_size, 1)
        if y is None and getattr(model, "loss", None) is not None:
            raise ValueError(
                "`y` is None but `x` is arrays and the model has a loss: pass the targets, "
                "`nbtrain.fit(model, x, y, ...)` (or yield `(x, y)` batches from a "
                "Sequence).")
        if y is not None and not is_array_data(y):
            raise TypeError(f"`y` must be an array (or a list or dict of arrays) like `x`; "
                            f"got {_shown(y)}.")
        if sample_weight is not None and not is_array_data(sample_weight):
            raise TypeError(f"`sample_weight` must be an array of per-sample weights; got "
                            f"{_shown(sample_weight)}.")
        x, y, sample_weight = _numpy(x), _numpy(y), _numpy(sample_weight)
        n = _check_samples(x, y, sample_weight, "nbtrain.fit")
        if validation_split and validation_data is None:
            cut = int(n * (1.0 - validation_split))
            if cut == 0 or cut == n:
                raise ValueError(
                    f"`validation_split={validation_split}` of {n} samples leaves "
                    f"{cut} for training and {n - cut} for validation: both need at least "
                    "one; change the fraction.")
            head, tail = slice(0, cut), slice(cut, None)
            validation_data = (_split(x, tail), _split(y, tail),
                               *(() if sample_weight is None else (_split(sample_weight, tail),)))
            x, y, sample_weight = _split(x, head), _split(y, head), _split(sample_weight, head)
        if seed is None and shuffle:
            seed = int(np.random.randint(2**31 - 1))
        source: Any = ArraySequence(x, y, sample_weight, batch_size=batch_size,
                                    shuffle=bool(shuffle), seed=seed)
        shuffle_batches = False
    else:
        name = "x" if api == "fit" else "generator"
        source = as_source(x, name, api)
        for arg, value in (("y", y), ("sample_weight", sample_weight),
                           ("batch_size", batch_size)):
            if value is not None:
                raise ValueError(
                    f"`{arg}` must be None when `{name}` is {_what(x)}: its batches "
                    f"already hold {'the targets' if arg == 'y' else arg.replace('_', ' ')}"
                    f"; got {arg}={_shown(value)}.")
        if validation_split:
            raise ValueError(
                f"`validation_split` is only for arrays; `{name}` is {_what(x)}. Pass "
                "`validation_data` instead.")
        shuffle_batches = bool(shuffle)
        if is_sequence(source):
            check_sequence(source, name)
    steps_per_epoch = check_steps(source, steps_per_epoch, "steps_per_epoch",
                                  "nbtrain.fit" if api == "fit" else api)
    check_processes(source, "x" if api == "fit" else "generator", use_multiprocessing,
                     workers)

    if validation_data is not None:
        if isinstance(validation_data, tuple) or (
                isinstance(validation_data, list) and validation_data
                and all(v is None or is_array_data(v) for v in validation_data)):
            val_source, validation_arrays = _validation_tuple(
                tuple(validation_data), batch_size if arrays else None, validation_batch_size)
        else:
            val_source = as_source(validation_data, "validation_data", api)
            if validation_steps is None and isinstance(val_source, DatasetBatches):
                validation_steps = val_source.steps
            if validation_steps is None and not is_sequence(val_source):
                raise ValueError(
                    "`validation_steps=None` is only valid for a validation Sequence or "
                    "tuple. When `validation_data` is a generator, pass `validation_steps` "
                    "(the number of batches to draw from it at the end of every epoch).")
            if is_sequence(val_source):
                check_sequence(val_source, "validation_data")
            check_processes(val_source, "validation_data", use_multiprocessing, workers)

    return FitConfig(
        api=api, model=model, data=source, steps_per_epoch=steps_per_epoch,
        shuffle=shuffle_batches, epochs=epochs, initial_epoch=initial_epoch, verbose=verbose,
        callbacks=callbacks, validation=val_source, validation_steps=validation_steps,
        validation_freq=validation_freq, validation_arrays=validation_arrays,
        validation_batch_size=validation_batch_size if not arrays else
        (validation_batch_size or batch_size), class_weight=class_weight,
        max_queue_size=max_queue_size, workers=workers,
        use_multiprocessing=use_multiprocessing,
    )


def _what(x: Any) -> str:
    if is_sequence(x):
        return "a Sequence or PyDataset"
    if is_tf_dataset(x):
        return "a tf.data.Dataset"
    if hasattr(x, "__next__"):
        return "a generator"
    return type(x).__name__


__all__ = ["ARGUMENTS", "FitConfig", "check_model", "fit_config", "should_validate"]
