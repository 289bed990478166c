"""`FitConfig`: every argument of a training job, checked and adapted once.

Every public way to train (`nbtrain.fit`, `nbtrain.Run`, `nbtrain.fit_generator`,
`nbtrain.engine.fit_generator`, `FitLoop`) calls `fit_config`, the one entry
point.  It refuses bad input in the caller's thread, before any callback or
worker starts, with a message that names the argument, shows what was
received and says what to do.  It checks the scalar arguments here, and asks
`nbtrain.engine.adapters` (one module per kind of input) to turn the data the
user passed (arrays, a Sequence, a PyDataset, a generator, a `tf.data.Dataset`)
into what the loop reads.  The result is a frozen `FitConfig`: the loop never
checks an argument again.

The arguments, their defaults and their meaning are written once, in
`nbtrain.engine.arguments` (`ARGUMENTS` is its glossary; a test checks that
`nbtrain.fit` takes and documents each).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np

from nbtrain.data import DatasetBatches, is_array_data, is_sequence
from nbtrain.engine.adapters import DataAdapter, adapt_training, adapt_validation
from nbtrain.engine.arguments import ARGUMENTS, FIT, FIT_GENERATOR
from nbtrain.engine.batches import check_class_weight, describe

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


def _integer(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_model(model: Any, api: str = "fit_generator") -> None:
    """The model must be a compiled Keras model."""
    if inspect.isclass(model):
        raise TypeError(f"`model` is the class {model.__name__}, not a model: build one "
                        f"(`model = {model.__name__}(...)`) and compile it.")
    if not hasattr(model, "compile") or not hasattr(model, "train_on_batch"):
        raise TypeError(f"`model` must be a keras.Model; {api} got {describe(model)}.")
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
                        f"{describe(callbacks)}.")
    for callback in callbacks:
        if inspect.isclass(callback) and issubclass(callback, keras.callbacks.Callback):
            raise TypeError(f"`callbacks` holds the class {callback.__name__}, not an "
                            f"instance: pass {callback.__name__}(...).")
        if not isinstance(callback, keras.callbacks.Callback):
            raise TypeError(f"`callbacks` must be keras.callbacks.Callback instances, got "
                            f"{describe(callback)}.")
    return tuple(callbacks)


def check_steps(adapter: DataAdapter, steps: Any, name: str, what: str) -> int | None:
    """`steps` may be None only for a Sequence (then its length, read each epoch)
    or a dataset of known cardinality (see the adapter's `default_steps`)."""
    if steps is None:
        return adapter.default_steps(name, what)
    return check_int(name, steps, 1)


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


def fit_config(model: Any, x: Any, y: Any = None, *, api: str = "fit", seed: int | None = None,
               **arguments: Any) -> FitConfig:
    """Check every argument of a training job and adapt its data: the one entry point.

    Args:
        model, x, y: as `nbtrain.fit` takes them.
        api: `"fit"` (arrays allowed, `nbtrain.fit` and `Run`) or
            `"fit_generator"` (batches only, Keras 2's `fit_generator`).
        seed: seed of the sample shuffling of arrays (None draws one from
            `np.random`, so `keras.utils.set_random_seed` makes it reproducible).
        **arguments: the others of `nbtrain.fit` (`arguments.FIT`) or of
            `fit_generator` (`arguments.FIT_GENERATOR`); their defaults when missing.

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
    args = (FIT if api == "fit" else FIT_GENERATOR).complete(arguments, "fit_config")
    args.setdefault("batch_size", None)  # the arguments only arrays take: none for fit_generator
    args.setdefault("sample_weight", None)
    args.setdefault("validation_split", 0.0)
    args.setdefault("validation_batch_size", None)
    check_model(model, api)
    verbose = check_verbose(args["verbose"])
    epochs = check_int("epochs", args["epochs"], 1)
    initial_epoch = check_int("initial_epoch", args["initial_epoch"], 0)
    if initial_epoch >= epochs:
        raise ValueError(
            f"`initial_epoch={initial_epoch}` is not before `epochs={epochs}`: nothing would "
            "be trained. `epochs` is the index of the final epoch, not a count: to train N "
            f"more epochs pass `epochs={initial_epoch} + N`."
        )
    workers = check_int("workers", args["workers"], 0)
    max_queue_size = check_int("max_queue_size", args["max_queue_size"], 1)
    use_multiprocessing, shuffle = args["use_multiprocessing"], args["shuffle"]
    if not isinstance(use_multiprocessing, (bool, np.bool_)) and use_multiprocessing not in (0, 1):
        raise TypeError(f"`use_multiprocessing` must be True or False, got "
                        f"{use_multiprocessing!r}.")
    use_multiprocessing = bool(use_multiprocessing)
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"`shuffle` must be True or False, got {shuffle!r}"
                        + (" ('batch' shuffling is not supported)." if shuffle == "batch"
                           else "."))
    callbacks = check_callbacks(args["callbacks"])
    class_weight = check_class_weight(args["class_weight"])
    validation_freq = check_validation_freq(args["validation_freq"])
    validation_steps = check_int("validation_steps", args["validation_steps"], 1, none=True)
    validation_batch_size = check_int("validation_batch_size", args["validation_batch_size"], 1,
                                      none=True)
    validation_split = args["validation_split"]
    if not isinstance(validation_split, (int, float, np.floating)) or isinstance(
            validation_split, bool) or not 0 <= validation_split < 1:
        raise ValueError(f"`validation_split` must be a float in [0, 1), got "
                         f"{validation_split!r}.")
    batch_size = args["batch_size"]
    arrays = api == "fit" and is_array_data(x)
    if arrays:
        batch_size = check_int("batch_size", 32 if batch_size is None else batch_size, 1)
        validation_batch_size = validation_batch_size or batch_size

    name = "x" if api == "fit" else "generator"
    training, validation_data = adapt_training(
        model, x, y, api=api, batch_size=batch_size, sample_weight=args["sample_weight"],
        validation_split=validation_split, validation_data=args["validation_data"],
        shuffle=shuffle, seed=seed)
    steps_per_epoch = check_steps(training, args["steps_per_epoch"], "steps_per_epoch",
                                  "nbtrain.fit" if api == "fit" else api)
    check_processes(training.source, name, use_multiprocessing, workers)
    validation = None
    if validation_data is not None:
        validation = adapt_validation(validation_data, validation_steps, api=api,
                                      batch_size=validation_batch_size)
        validation_steps = validation.steps
        if validation.adapter is not None:
            check_processes(validation.source, "validation_data", use_multiprocessing, workers)

    return FitConfig(
        api=api, model=model, data=training.source, steps_per_epoch=steps_per_epoch,
        shuffle=bool(shuffle) and training.shuffles_batches, epochs=epochs,
        initial_epoch=initial_epoch, verbose=verbose, callbacks=callbacks,
        validation=None if validation is None else validation.source,
        validation_steps=validation_steps, validation_freq=validation_freq,
        validation_arrays=None if validation is None else validation.arrays,
        validation_batch_size=validation_batch_size, class_weight=class_weight,
        max_queue_size=max_queue_size, workers=workers,
        use_multiprocessing=use_multiprocessing,
    )


__all__ = ["ARGUMENTS", "FitConfig", "check_callbacks", "check_int", "check_model",
           "check_processes", "check_steps", "check_validation_freq", "check_verbose",
           "fit_config", "should_validate"]
